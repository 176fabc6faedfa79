/**
 * The runs table for daily use (issue 14 point 6): at 1280 px the metric columns (val_accuracy, val_loss) are in
 * view without scrolling right, and "Export CSV" downloads the current view (filter, sort, columns) as a file whose
 * rows are the filtered table's runs with unrounded metrics; an engineer renames, describes and tags a run from the
 * table and sees it after a reload. Seeds its own tiny Iris runs in a fresh experiment.
 */
import fs from "node:fs";
import { test, expect, type Page } from "@playwright/test";
import { createExperiment, signIn, trpcCall, unique } from "./helpers";

const RUNS = [
  { name: "table-adam", optimizer: "adam", learningRate: 0.03 },
  { name: "table-sgd", optimizer: "sgd", learningRate: 0.1 },
  { name: 'table-adam, "quoted"', optimizer: "adam", learningRate: 0.01 },
];

async function seedRuns(page: Page): Promise<number> {
  await createExperiment(page, unique("e2e runs table"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const ids: number[] = [];
  for (const r of RUNS) {
    const config = {
      data: {
        dataset: { builtin: "iris" },
        normalization: "standard",
        split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 7 },
      },
      model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
      training: { optimizer: { name: r.optimizer }, learningRate: r.learningRate, batchSize: 16, epochs: 2, seed: 1 },
    };
    const res = await trpcCall(page, "mutation", "runs.create", { experimentId, name: r.name, config, rationale: "e2e runs table" });
    expect(res.status(), await res.text()).toBe(200);
    ids.push(((await res.json()) as { result: { data: { id: number } } }).result.data.id);
  }
  for (const id of ids) {
    await expect
      .poll(
        async () =>
          ((await (await trpcCall(page, "query", "runs.get", { id })).json()) as { result?: { data?: { status?: string } } }).result?.data
            ?.status,
        { timeout: 110_000, intervals: [500] },
      )
      .toBe("completed");
  }
  return experimentId;
}

/** RFC 4180 fields of a CSV text (quoted fields, doubled quotes, CRLF rows). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += c;
  }
  return rows;
}

test("[RUNS-TABLE]: metric columns in view at 1280 px; Export CSV downloads the filtered view; rename and tag a run", async ({ page }) => {
  test.setTimeout(200_000);
  await page.setViewportSize({ width: 1280, height: 900 });
  await signIn(page, "engineer");
  const experimentId = await seedRuns(page);
  await page.goto(`/experiments/${experimentId}`);
  const table = page.getByRole("table", { name: "Runs" });
  await expect(table.getByRole("row")).toHaveCount(1 + RUNS.length);

  // Metric columns first: both headers wholly visible without scrolling the table right.
  for (const name of ["val_accuracy", "val_loss"])
    await expect(table.getByRole("columnheader", { name, exact: true })).toBeInViewport({ ratio: 1 });
  // The column chooser still works: dropping val_loss removes its column.
  await page.getByText(/^Columns \(\d+\)$/).click();
  await page
    .getByRole("group", { name: "Choose columns" })
    .getByRole("checkbox", { name: /val_loss/ })
    .first()
    .uncheck();
  await expect(table.getByRole("columnheader", { name: "val_loss", exact: true })).toHaveCount(0);

  // Filter to the adam runs, then export: the file holds exactly the filtered rows, in the table's order.
  await page.getByLabel("Filter runs").fill('params.optimizer = "adam"');
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(table.getByRole("row")).toHaveCount(3);
  // The box is as tall as its two rows: no blank band under them (a fixed 3-row height left one).
  const blank = await table.evaluate((t) => t.parentElement!.clientHeight - t.getBoundingClientRect().height);
  expect(blank).toBeLessThanOrEqual(1);
  const shown = await table.getByRole("row").evaluateAll((rows) => rows.slice(1).map((r) => r.querySelector("a")?.textContent ?? ""));

  const downloading = page.waitForEvent("download");
  await page.getByRole("button", { name: "Export CSV" }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe("runs.csv");
  const csv = parseCsv(fs.readFileSync((await download.path())!, "utf8"));
  const header = csv[0]!;
  expect(header.slice(0, 2)).toEqual(["id", "name"]);
  expect(header).toContain("metrics.val_accuracy");
  expect(header).not.toContain("metrics.val_loss");
  expect(header).toContain("params.training.learningRate");
  expect(csv.slice(1).map((r) => r[1])).toEqual(shown);
  expect(shown.sort()).toEqual([RUNS[0]!.name, RUNS[2]!.name].sort());
  // Metrics unrounded: the CSV value is the stored double the API reports.
  const acc = csv[1]![header.indexOf("metrics.val_accuracy")]!;
  expect(Number.isFinite(Number(acc))).toBe(true);
  const api = (await (
    await trpcCall(page, "query", "explore.search", {
      experimentId,
      filter: 'params.optimizer = "adam"',
      columns: ["metrics.val_accuracy"],
    })
  ).json()) as { result: { data: { rows: { id: number; metrics: Record<string, number> }[] } } };
  const byId = new Map(api.result.data.rows.map((r) => [r.id, r.metrics.val_accuracy]));
  expect(Number(acc)).toBe(byId.get(Number(csv[1]![0])));
  await expect(page.getByRole("status").filter({ hasText: "Exported 2 runs as CSV." })).toBeVisible();

  // Rename, describe and tag a run from the table; the change persists after a reload.
  await table.getByRole("button", { name: "Edit run table-adam", exact: true }).click();
  const dialog = page.getByRole("dialog", { name: /^Edit run #\d+$/ });
  await dialog.getByLabel("Run name").fill("adam baseline");
  await dialog.getByLabel("Description").fill("Baseline of the optimizer sweep.");
  await dialog.getByLabel("Tags (comma-separated)").fill("baseline, sweep");
  await dialog.getByRole("button", { name: "Save" }).click();
  await expect(dialog).toHaveCount(0);
  const renamed = table.getByRole("row").filter({ has: page.getByRole("link", { name: "adam baseline", exact: true }) });
  await expect(renamed).toContainText("baseline, sweep");
  await page.reload();
  await expect(renamed).toContainText("baseline, sweep");
  await expect(table.getByRole("link", { name: "table-adam", exact: true })).toHaveCount(0);
  await renamed.getByRole("button", { name: "Edit run adam baseline" }).click();
  await expect(dialog.getByLabel("Description")).toHaveValue("Baseline of the optimizer sweep.");
});
