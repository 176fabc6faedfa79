/**
 * The lineage view at 50+ boxes (issue 14 point 10): it opens fitted to the graph area (every box within the area's
 * width, only vertical scrolling, no text under 10 px), boxes never overlap, a box reached with the keyboard focuses
 * the view on its lineage (ancestors and descendants only) and "Show whole graph" brings everything back; a run's
 * details name the Runledger build that trained it; at 390 px the graph stays within the screen.
 *
 * Seed (cheap and real): one tiny Iris run and a chain of four forks (each fork changes the learning rate, so each
 * has its own "change" decision), eight decision notes on each run, then the last fork's best checkpoint registered.
 * Only the five 2-epoch runs train; the notes are real decisions written through the API.
 */
import { test, expect, type Locator, type Page } from "@playwright/test";
import { createExperiment, signIn, trpcCall, unique } from "./helpers";

const FORKS = 4;
const NOTES_PER_RUN = 8;

async function data<T>(res: Awaited<ReturnType<typeof trpcCall>>): Promise<T> {
  expect(res.status(), await res.text()).toBe(200);
  return ((await res.json()) as { result: { data: T } }).result.data;
}

async function seedLineage(page: Page) {
  await createExperiment(page, unique("e2e lineage"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const config = (learningRate: number) => ({
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 7 },
    },
    model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate, batchSize: 16, epochs: 2, seed: 1 },
  });
  const ids: number[] = [];
  ids.push(
    (
      await data<{ id: number }>(
        await trpcCall(page, "mutation", "runs.create", { experimentId, config: config(0.01), rationale: "e2e lineage: baseline" }),
      )
    ).id,
  );
  for (let f = 1; f <= FORKS; f++) {
    const res = await trpcCall(page, "mutation", "runs.create", {
      experimentId,
      config: config(0.01 * (f + 1)),
      rationale: `e2e lineage: fork ${f}, a larger learning rate`,
      origin: "fork",
      parentRunId: ids[ids.length - 1],
    });
    ids.push((await data<{ id: number }>(res)).id);
  }
  for (const runId of ids)
    for (let n = 1; n <= NOTES_PER_RUN; n++)
      await data(
        await trpcCall(page, "mutation", "decisions.addNote", { runId, rationale: `e2e lineage: observation ${n} on run ${runId}` }),
      );
  const last = ids[ids.length - 1]!;
  await expect
    .poll(async () => (await data<{ status: string }>(await trpcCall(page, "query", "runs.get", { id: last }))).status, {
      timeout: 110_000,
      intervals: [500],
    })
    .toBe("completed");
  const model = unique("e2e-lineage").replace(/\s+/g, "-");
  await data(await trpcCall(page, "mutation", "models.register", { runId: last, modelName: model }));
  return { ids, model };
}

type Geometry = {
  area: {
    left: number;
    right: number;
    top: number;
    bottom: number;
    clientWidth: number;
    scrollWidth: number;
    clientHeight: number;
    scrollHeight: number;
  };
  boxes: { name: string; left: number; right: number; top: number; bottom: number; unscaled: boolean }[];
  smallestFont: number;
};

/** The graph area's size and scroll extent, every box's rectangle, and the smallest font size of any text drawn in it. */
async function geometry(area: Locator): Promise<Geometry> {
  return area.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const boxes = [...el.querySelectorAll("button")].map((b) => {
      const br = b.getBoundingClientRect();
      // No CSS transform scales the drawing: a box's rendered width is its layout width, so font sizes are real.
      return {
        name: b.getAttribute("aria-label") ?? "",
        left: br.left,
        right: br.right,
        top: br.top,
        bottom: br.bottom,
        unscaled: Math.abs(br.width - b.offsetWidth) < 0.5,
      };
    });
    let smallestFont = Infinity;
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      if (!t.textContent?.trim() || !t.parentElement) continue;
      smallestFont = Math.min(smallestFont, parseFloat(getComputedStyle(t.parentElement).fontSize));
    }
    return {
      area: {
        left: r.left,
        right: r.right,
        top: r.top,
        bottom: r.bottom,
        clientWidth: el.clientWidth,
        scrollWidth: el.scrollWidth,
        clientHeight: el.clientHeight,
        scrollHeight: el.scrollHeight,
      },
      boxes,
      smallestFont,
    };
  });
}

function expectReadableAndFitted(g: Geometry, boxCount: number) {
  expect(g.boxes).toHaveLength(boxCount);
  expect(g.smallestFont).toBeGreaterThanOrEqual(10);
  for (const b of g.boxes) expect(b.unscaled, b.name).toBe(true);
  // Fitted to the width: no horizontal scrolling, every box within the area's left and right edges.
  expect(g.area.scrollWidth).toBeLessThanOrEqual(g.area.clientWidth + 1);
  for (const b of g.boxes) {
    expect(b.left, b.name).toBeGreaterThanOrEqual(g.area.left - 1);
    expect(b.right, b.name).toBeLessThanOrEqual(g.area.right + 1);
  }
  // Either every box is within the area vertically too, or the area scrolls vertically.
  const allInside = g.boxes.every((b) => b.top >= g.area.top - 1 && b.bottom <= g.area.bottom + 1);
  if (!allInside) expect(g.area.scrollHeight).toBeGreaterThan(g.area.clientHeight);
  // No two boxes overlap.
  for (let i = 0; i < g.boxes.length; i++)
    for (let j = i + 1; j < g.boxes.length; j++) {
      const a = g.boxes[i]!;
      const b = g.boxes[j]!;
      const overlap = a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
      expect(overlap, `${a.name} overlaps ${b.name}`).toBe(false);
    }
}

test("[LINEAGE]: a 50-box lineage opens fitted and readable, boxes do not overlap, focus shows one box's lineage and back", async ({
  page,
}) => {
  test.setTimeout(240_000);
  await signIn(page, "engineer");
  const { ids, model } = await seedLineage(page);
  const runs = FORKS + 1;
  const decisionsPerRun = NOTES_PER_RUN + 1; // the initial configuration or the fork's change, plus the notes
  // The server's lineage of the version: the page must draw every box of it.
  const lineage = await data<{ graph: { nodes: { kind: string }[] } }>(
    await trpcCall(page, "query", "models.lineage", { modelName: model, version: 1 }),
  );
  const total = lineage.graph.nodes.length;
  expect(total).toBeGreaterThanOrEqual(50);
  expect(lineage.graph.nodes.filter((n) => n.kind === "decision")).toHaveLength(runs * decisionsPerRun);
  expect(lineage.graph.nodes.filter((n) => n.kind === "run")).toHaveLength(runs);

  await page.goto(`/models/${encodeURIComponent(model)}/versions/1`);
  const graph = page.getByRole("region", { name: "Lineage graph" });
  const area = graph.getByRole("region", { name: "Graph area" });
  const boxes = graph.getByRole("list", { name: "Lineage boxes" }).getByRole("button");
  await expect(boxes).toHaveCount(total);
  await expect(graph.getByRole("button", { name: /^Model version: / })).toBeVisible();
  const legend = graph.getByRole("list", { name: "Legend" });
  for (const kind of ["Raw dataset", "Training run", "Human decision", "Saved weights (checkpoint)", "Model version"])
    await expect(legend.getByRole("listitem").filter({ hasText: kind })).toHaveCount(1);

  // Opens fitted: within the width, vertical scrolling only, readable text, no overlaps.
  expectReadableAndFitted(await geometry(area), total);
  await page.screenshot({ path: test.info().outputPath("lineage-open.png") });

  // Zooming out stops where text would go under 10 px.
  const zoomOut = graph.getByRole("button", { name: "Zoom out" });
  for (let i = 0; i < 10 && (await zoomOut.isEnabled()); i++) await zoomOut.click();
  await expect(zoomOut).toBeDisabled();
  expect((await geometry(area)).smallestFont).toBeGreaterThanOrEqual(10);
  await graph.getByRole("button", { name: "Zoom in" }).click();
  await graph.getByRole("button", { name: "Fit view" }).click();
  expectReadableAndFitted(await geometry(area), total);

  // With the keyboard: the first fork's box, then focus on its lineage.
  const fork = graph.getByRole("button", { name: new RegExp(`^Training run: Run #${ids[1]}: `) });
  await fork.focus();
  await page.keyboard.press("Enter");
  const details = page.getByRole("complementary", { name: "Node details" });
  await expect(details.getByRole("heading", { name: new RegExp(`^Run #${ids[1]}: `) })).toBeVisible();
  // Which build of Runledger trained it, as its environment recorded it: the version, the commit short with a copy
  // button when one was recorded (the server under test is a git checkout, unless RUNLEDGER_COMMIT says otherwise).
  const forkRun = await data<{ backend: string; environment: { appVersion: string; appCommit?: string; tfjs: string } }>(
    await trpcCall(page, "query", "runs.get", { id: ids[1] }),
  );
  const { appVersion, appCommit, tfjs } = forkRun.environment;
  const commit = appCommit && /^[0-9a-f]{7,64}$/.test(appCommit) ? appCommit : undefined;
  const software = `Runledger ${appVersion} (commit ${commit ? commit.slice(0, 12) : "not recorded"}) · TensorFlow.js ${tfjs} on ${forkRun.backend}`;
  await expect(details.getByRole("definition").filter({ hasText: software })).toHaveCount(1);
  const copyCommit = details.getByRole("button", { name: "Copy Runledger commit" });
  if (commit)
    await expect(
      details.getByRole("definition").filter({ has: page.getByRole("button", { name: "Copy Runledger commit" }) }),
    ).toContainText(`${commit.slice(0, 12)}…`);
  else await expect(copyCommit).toHaveCount(0);
  await details.getByRole("button", { name: "Focus on its lineage" }).click();
  await expect(graph.getByRole("status", { name: "Focus" })).toContainText(`Lineage of Run #${ids[1]}`);
  // Its ancestors (the data, the baseline run, both runs' decisions) and descendants (later forks, checkpoint, version)
  // stay; the decisions of the later forks, unrelated to it, are hidden.
  const focused = total - (runs - 2) * decisionsPerRun;
  await expect(boxes).toHaveCount(focused);
  await expect(graph.getByRole("button", { name: /^Human decision: / })).toHaveCount(2 * decisionsPerRun);
  for (const id of ids) await expect(graph.getByRole("button", { name: new RegExp(`^Training run: Run #${id}: `) })).toBeVisible();
  await expect(graph.getByRole("button", { name: /^Raw dataset: / })).toBeVisible();
  await expect(graph.getByRole("button", { name: /^Model version: / })).toBeVisible();
  expectReadableAndFitted(await geometry(area), focused);
  await page.screenshot({ path: test.info().outputPath("lineage-focused.png") });

  // Back to the whole graph.
  await graph.getByRole("button", { name: "Show whole graph" }).click();
  await expect(boxes).toHaveCount(total);
  await expect(graph.getByRole("status", { name: "Focus" })).toContainText(`All ${total} boxes`);
  expectReadableAndFitted(await geometry(area), total);

  // Escape also leaves a focus (the keyboard focus moves to the focused box, inside the graph).
  await fork.click();
  await details.getByRole("button", { name: "Focus on its lineage" }).click();
  await expect(boxes).toHaveCount(focused);
  await expect(fork).toBeFocused();
  await page.keyboard.press("Escape");
  await expect(boxes).toHaveCount(total);

  // On a phone (390 px) the details wrap below the graph; the graph stays within the screen (its own area scrolls,
  // not the page) and its text stays readable.
  await page.setViewportSize({ width: 390, height: 844 });
  await expect.poll(async () => (await geometry(area)).area.right).toBeLessThanOrEqual(390);
  expect((await graph.boundingBox())!.x + (await graph.boundingBox())!.width).toBeLessThanOrEqual(390);
  expect((await geometry(area)).smallestFont).toBeGreaterThanOrEqual(10);
  await expect(graph.getByRole("button", { name: /^Model version: / })).toBeVisible();
});
