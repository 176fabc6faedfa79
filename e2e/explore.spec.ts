/**
 * Explore and compare runs in the browser: the filter language (OR, parentheses, an error with
 * its position), the column chooser, sorting, selection, the compare view (differences only, not like for
 * like), and that the curves, parallel-coordinates and scatter canvases are really drawn (pixels in the
 * runs' colours, not only the containers). Seeds its own tiny Iris runs in a fresh experiment through the API.
 */
import { test, expect, type Page } from "@playwright/test";
import { createExperiment, signIn, trpcCall, unique } from "./helpers";

const RUNS = [
  { name: "adam-a", optimizer: "adam", learningRate: 0.03, splitSeed: 42 },
  { name: "sgd-b", optimizer: "sgd", learningRate: 0.1, splitSeed: 42 },
  { name: "rmsprop-c", optimizer: "rmsprop", learningRate: 0.01, splitSeed: 42 },
  { name: "momentum-d", optimizer: "momentum", learningRate: 0.05, splitSeed: 7 }, // another split: not like for like
];
// Compare colours of the first runs (app/_components/compare/run-colors.ts), as RGB.
const FIRST_COLOURS = [
  [0x1f, 0x77, 0xb4],
  [0xd6, 0x27, 0x28],
  [0x2c, 0xa0, 0x2c],
] as const;

async function seedRuns(page: Page): Promise<{ experimentId: number; ids: Record<string, number> }> {
  await createExperiment(page, unique("e2e explore"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const ids: Record<string, number> = {};
  for (const r of RUNS) {
    const config = {
      data: {
        dataset: { builtin: "iris" },
        normalization: "standard",
        split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: r.splitSeed },
      },
      model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
      training: { optimizer: { name: r.optimizer }, learningRate: r.learningRate, batchSize: 16, epochs: 4, seed: 1 },
    };
    const res = await trpcCall(page, "mutation", "runs.create", {
      experimentId,
      name: r.name,
      config,
      rationale: `e2e explore: ${r.optimizer}`,
    });
    expect(res.status(), await res.text()).toBe(200);
    ids[r.name] = ((await res.json()) as { result: { data: { id: number } } }).result.data.id;
  }
  for (const id of Object.values(ids)) {
    await expect
      .poll(
        async () =>
          ((await (await trpcCall(page, "query", "runs.get", { id })).json()) as { result?: { data?: { status?: string } } }).result?.data
            ?.status,
        { timeout: 110_000, intervals: [500] },
      )
      .toBe("completed");
  }
  return { experimentId, ids };
}

/** How many pixels of the canvas are close to the given colour (lines drawn in a run's colour). */
async function pixelsNear(page: Page, label: string, rgb: readonly [number, number, number]): Promise<number> {
  return page.getByRole("img", { name: label, exact: true }).evaluate((el, [r, g, b]) => {
    const c = el as HTMLCanvasElement;
    const data = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3]! > 200 && Math.abs(data[i]! - r) < 40 && Math.abs(data[i + 1]! - g) < 40 && Math.abs(data[i + 2]! - b) < 40) n++;
    }
    return n;
  }, rgb);
}

test("[EXPLORE]: filter with OR and parentheses, choose columns, select runs and compare them with differences only and drawn charts", async ({
  page,
}) => {
  test.setTimeout(240_000);
  await signIn(page, "engineer");
  const { experimentId, ids } = await seedRuns(page);
  await page.goto(`/experiments/${experimentId}`);
  const table = page.getByRole("table", { name: "Runs" });
  await expect(table.getByRole("row")).toHaveCount(1 + RUNS.length);

  // Filter: OR inside parentheses, AND a metric comparison. The filter goes into the URL and survives a reload.
  const filter = '(params.optimizer = "adam" OR params.optimizer = "rmsprop") AND metrics.val_accuracy >= 0';
  await page.getByLabel("Filter runs").fill(filter);
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(table.getByRole("row")).toHaveCount(3);
  await expect(table.getByRole("link", { name: "adam-a" })).toBeVisible();
  await expect(table.getByRole("link", { name: "rmsprop-c" })).toBeVisible();
  await expect(table.getByRole("link", { name: "sgd-b" })).toHaveCount(0);
  await expect.poll(() => new URL(page.url()).searchParams.get("q")).toBe(filter);
  await page.reload();
  await expect(page.getByLabel("Filter runs")).toHaveValue(filter);
  await expect(table.getByRole("row")).toHaveCount(3);

  // A bad filter says what is wrong and points at the position.
  const bad = '(params.optimizer = "adam" OR params.lr > ) AND status = "completed"';
  await page.getByLabel("Filter runs").fill(bad);
  await page.getByRole("button", { name: "Apply" }).click();
  const error = page.getByRole("alert", { name: "Filter error" });
  await expect(error).toContainText("expected a value after '>' at position 42");
  await expect(error.locator("[data-position]")).toHaveAttribute("data-position", "42");
  await expect(error.locator(".caret")).toHaveText(`${" ".repeat(42)}^`);
  await page.getByLabel("Filter runs").fill(filter);
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(error).toHaveCount(0);
  await expect(table.getByRole("row")).toHaveCount(3);

  // Choose columns: add the minimum validation loss, drop epochs. The choice is in the URL too.
  await page.getByText(/^Columns \(\d+\)$/).click();
  await page.getByLabel("metrics.val_loss.min", { exact: true }).check();
  await page.getByLabel("params.training.epochs", { exact: true }).uncheck();
  await expect(table.getByRole("columnheader", { name: "val_loss (min)" })).toBeVisible();
  await expect(table.getByRole("columnheader", { name: "training.epochs" })).toHaveCount(0);
  await expect.poll(() => new URL(page.url()).searchParams.get("cols") ?? "").toContain("metrics.val_loss.min");

  // Sort on the server by clicking a header.
  await table.getByRole("button", { name: /^val_accuracy/ }).click();
  await expect(table.getByRole("columnheader", { name: /val_accuracy/ })).toHaveAttribute("aria-sort", /ascending|descending/);
  // The URL is updated after the table re-sorts: wait for it rather than reading it once.
  await expect.poll(() => new URL(page.url()).searchParams.get("sort") ?? "").toMatch(/^metrics\.val_accuracy:(asc|desc)$/);

  // Select the two filtered runs, then clear the filter and add the run trained on another split.
  await page.getByLabel("Select run adam-a").check();
  await page.getByLabel("Select run rmsprop-c").check();
  await expect(page.getByRole("button", { name: "Compare (2)" })).toBeEnabled();
  await page.getByRole("button", { name: "Clear", exact: true }).click();
  await expect(table.getByRole("row")).toHaveCount(1 + RUNS.length);
  await page.getByLabel("Select run momentum-d").check();
  await page.getByRole("button", { name: "Compare (3)" }).click();

  await expect(page).toHaveURL(/\/compare\?ids=/);
  const compared = new URL(page.url()).searchParams.get("ids")!.split(",").map(Number).sort();
  expect(compared).toEqual([ids["adam-a"]!, ids["rmsprop-c"]!, ids["momentum-d"]!].sort());
  await expect(page.getByRole("list", { name: "Run colours" }).getByRole("listitem")).toHaveCount(3);
  await expect(page.getByRole("alert", { name: "Not like for like" })).toContainText("different splits");

  // Differences only: the shared epochs row goes, the optimizer row stays, every row left differs.
  const params = page.getByRole("table", { name: "Hyperparameters side by side" });
  await expect(params.getByRole("row", { name: /training\.epochs/ })).toHaveCount(1);
  const allRows = await params.getByRole("row").count();
  await page.getByRole("switch", { name: "Differences only" }).check();
  await expect(params.getByRole("row", { name: /training\.epochs/ })).toHaveCount(0);
  await expect(params.getByRole("row", { name: /training\.optimizer\.name/ })).toBeVisible();
  await expect(params.getByRole("row", { name: /data\.split\.seed/ })).toBeVisible();
  const diffRows = await params.getByRole("row").count();
  expect(diffRows).toBeLessThan(allRows);
  await expect(params.locator('tbody tr[data-differs="false"]')).toHaveCount(0);

  // Decisions per run.
  await expect(page.getByRole("group", { name: "Decisions of adam-a" })).toContainText("e2e explore: adam");

  // Curves: each run's line is drawn in its colour.
  const curve = page.getByRole("img", { name: "val_loss chart" });
  await expect.poll(async () => Number(await curve.getAttribute("data-points"))).toBeGreaterThan(0);
  for (const colour of FIRST_COLOURS) await expect.poll(() => pixelsNear(page, "val_loss chart", colour)).toBeGreaterThan(20);
  // Log scale and smoothing redraw the chart; zooming (drag) asks the server for the visible range.
  await page.getByLabel("Log scale").check();
  await page.getByLabel("x axis").selectOption("step");
  await expect.poll(() => pixelsNear(page, "val_loss chart", FIRST_COLOURS[0])).toBeGreaterThan(20);
  await curve.scrollIntoViewIfNeeded();
  const box = (await curve.boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.5, { steps: 8 });
  await page.mouse.up();
  await expect(page.getByRole("group", { name: "val_loss curves" })).toContainText("zoomed to");
  await expect(page.getByRole("group", { name: "val_loss curves" }).getByRole("button", { name: "Reset zoom" })).toBeEnabled();

  // Parallel coordinates and the scatter are drawn too.
  for (const colour of FIRST_COLOURS) await expect.poll(() => pixelsNear(page, "Parallel coordinates chart", colour)).toBeGreaterThan(20);
  await page.getByLabel("Scatter hyperparameter").selectOption("training.learningRate");
  for (const colour of FIRST_COLOURS) await expect.poll(() => pixelsNear(page, "Scatter chart", colour)).toBeGreaterThan(10);

  // All runs across experiments: an experiment column, and the filter scopes by experiment name.
  await page.goto("/runs");
  await expect(page.getByRole("heading", { name: "All runs" })).toBeVisible();
  const all = page.getByRole("table", { name: "Runs" });
  await expect(all.getByRole("columnheader", { name: "Experiment" })).toBeVisible();
  await page.getByLabel("Filter runs").fill(`experiment = ${experimentId} AND params.optimizer IN ("adam", "sgd")`);
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page.getByText("2 runs match the filter")).toBeVisible();
  await expect(all.getByRole("link", { name: "sgd-b" })).toBeVisible();
  await expect(all.getByRole("link", { name: "rmsprop-c" })).toHaveCount(0);
});
