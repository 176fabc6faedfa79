/**
 * From search to a smaller model, all in the browser (issue 17): an engineer starts a small sweep over the Iris demo
 * data, watches its trials arrive on the sweep page, chooses the winner with a rationale, opens the winner's run (which
 * names its sweep and the decision), quantizes its best checkpoint to int8, sees that the compression run offers no
 * piloting, and compares the two models' size and accuracy in the compare view. The test seeds its own experiment; the
 * real trainer trains every trial and the compression; it waits on states, not time.
 */
import { test, expect, type Locator } from "@playwright/test";
import { createExperiment, signIn, unique } from "./helpers";

/** The number a cell of the compare view's Models table shows ("93.3 %", "41%"). */
async function numberIn(cell: Locator): Promise<number> {
  const text = (await cell.textContent()) ?? "";
  const m = /-?\d+(\.\d+)?/.exec(text);
  if (!m) throw new Error(`no number in "${text}"`);
  return Number(m[0]);
}

test("[SWEEP-TO-COMPRESS]: sweep, choose the winner, quantize it to int8, compare size and accuracy", async ({ page }) => {
  test.setTimeout(300_000);
  await signIn(page, "engineer");
  const experiment = unique("e2e sweep to compress");
  await createExperiment(page, experiment);
  const sweepName = unique("width sweep");
  const spec = {
    name: sweepName,
    base: {
      data: {
        dataset: { builtin: "iris" },
        normalization: "standard",
        split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 5 },
      },
      model: { layers: [{ type: "dense", units: 16, activation: "relu" }] },
      training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 4, seed: 2 },
    },
    space: {
      "training.learningRate": { type: "logUniform", min: 0.005, max: 0.1 },
      "model.layers.0.units": { type: "choice", values: [16, 32] },
    },
    method: "random",
    budget: { maxTrials: 3, maxParallel: 1 },
    metric: { name: "val_loss", direction: "minimize" },
    seed: 9,
    rationale: "e2e: a learning rate and width for the Iris model we will ship quantized",
  };

  // Start the sweep from the sweeps page.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sweeps" }).click();
  const form = page.getByRole("region", { name: "Start a sweep" });
  await form.getByRole("combobox", { name: "Experiment" }).selectOption({ label: `Demo: flower classifier / ${experiment}` });
  await form.getByRole("textbox", { name: /Spec/ }).fill(JSON.stringify(spec));
  await form.getByRole("button", { name: "Start sweep" }).click();
  await expect(page).toHaveURL(/\/sweeps\/\d+$/);
  const sweepId = Number(/\/sweeps\/(\d+)$/.exec(page.url())![1]);
  await expect(page.getByRole("heading", { name: `Sweep #${sweepId}: ${sweepName}` })).toBeVisible();

  // Watch the trials arrive (the page polls; no reload) until the sweep has spent its budget.
  const trials = page.getByRole("region", { name: "Trials", exact: true }); // not "Best trials"
  await expect(trials.getByRole("link", { name: `${sweepName} · trial 1` })).toBeVisible({ timeout: 60_000 });
  const progress = page.getByRole("region", { name: "Progress" });
  await expect(progress.locator("[data-status]")).toHaveAttribute("data-status", "completed", { timeout: 180_000 });
  await expect(progress).toContainText("3 of 3 trials created");
  await expect(trials.getByRole("row")).toHaveCount(4); // header + 3 trials
  for (const n of [1, 2, 3]) await expect(trials.getByRole("link", { name: `${sweepName} · trial ${n}` })).toBeVisible();

  // Choose the winner (the best trial is preselected) with a rationale.
  const choose = page.getByRole("form", { name: "Choose the winner" });
  await choose.getByRole("textbox", { name: "Why this one" }).fill("lowest validation loss; small enough to quantize");
  await choose.getByRole("button", { name: "Choose winner" }).click();
  await expect(page.getByRole("region", { name: "Best trials" })).toContainText(
    /Winner: run #\d+, chosen by Erin Engineer: “lowest validation loss; small enough to quantize”/,
  );
  const winnerRow = trials.getByRole("row").filter({ hasText: "(winner)" });
  await expect(winnerRow).toHaveCount(1);
  await winnerRow.getByRole("link").click();

  // The winner's run page names its sweep (a link back to it) and the decision that chose it.
  await page.waitForURL(/\/runs\/\d+$/);
  const winnerId = Number(/\/runs\/(\d+)$/.exec(page.url())![1]);
  const sweepLink = page.getByRole("link", { name: new RegExp(`^Trial [123] of sweep #${sweepId} \\(`) });
  await expect(sweepLink).toHaveAttribute("href", `/sweeps/${sweepId}`);
  await expect(
    page.getByText(/chosen as its winner \(of 3 trials\) by Erin Engineer: “lowest validation loss; small enough to quantize”/),
  ).toBeVisible();
  const winnerName = (await page.getByRole("region", { name: "Run header" }).getByRole("heading").textContent())!;
  expect(winnerName).toMatch(new RegExp(`^${sweepName} · trial [123]$`));

  // Quantize its best checkpoint to int8 from the checkpoints table.
  const checkpoints = page.getByRole("region", { name: "Checkpoints" });
  const best = checkpoints.getByRole("row").filter({ has: page.getByText("best", { exact: true }) });
  await expect(best).toHaveCount(1);
  await best.getByRole("button", { name: /^Compress epoch \d+$/ }).click();
  const panel = page.getByRole("region", { name: /^Compress epoch \d+$/ });
  await expect(panel.getByRole("combobox", { name: "Compression method" })).toHaveValue("int8");
  await panel.getByRole("textbox", { name: "Compression rationale" }).fill("e2e: the device holds a quarter of the float32 size");
  await panel.getByRole("button", { name: "Compress", exact: true }).click();
  const created = panel.getByRole("link", { name: /Compression run \d+ \(int8\) created/ });
  await expect(created).toBeVisible();
  await created.click();
  await page.waitForURL((url) => /^\/runs\/\d+$/.test(url.pathname) && url.pathname !== `/runs/${winnerId}`);
  const compressedId = Number(/\/runs\/(\d+)$/.exec(page.url())![1]);
  const header = page.getByRole("region", { name: "Run header" });
  await expect(header.locator("[data-status]")).toHaveAttribute("data-status", "completed", { timeout: 120_000 });
  await expect(page.getByText("Compressed from", { exact: true })).toBeVisible();
  await expect(page.getByRole("link", { name: `run #${winnerId}` }).first()).toBeVisible();
  // A compression has no epoch boundaries: no Pilot action, no pilot or rollback panel.
  await expect(header.getByRole("button", { name: "Pilot" })).toHaveCount(0);
  await expect(page.getByRole("textbox", { name: "Pilot rationale" })).toHaveCount(0);
  await expect(page.getByRole("combobox", { name: "Checkpoint to continue from" })).toHaveCount(0);
  const compressedName = (await header.getByRole("heading").textContent())!;

  // Compare the two from the experiment's runs table.
  await page.getByRole("link", { name: experiment }).click();
  await expect(page.getByRole("heading", { name: experiment })).toBeVisible();
  const runsTable = page.getByRole("table", { name: "Runs" });
  await runsTable.getByRole("checkbox", { name: `Select run ${winnerName}`, exact: true }).check();
  await runsTable.getByRole("checkbox", { name: `Select run ${compressedName}`, exact: true }).check();
  await page.getByRole("button", { name: "Compare (2)" }).click();
  await expect(page).toHaveURL(new RegExp(`/compare\\?ids=(${winnerId},${compressedId}|${compressedId},${winnerId})$`));

  const models = page.getByRole("table", { name: "Model size and accuracy" });
  await expect(models).toBeVisible();
  const headers = models.getByRole("columnheader");
  await expect(headers).toHaveCount(3);
  const names = [(await headers.nth(1).textContent())!, (await headers.nth(2).textContent())!];
  const [o, c] = names[0] === compressedName ? [2, 1] : [1, 2]; // column of the original, of the compression
  expect(names[c - 1]).toBe(compressedName);
  expect(names[o - 1]).toBe(winnerName);
  const cell = (row: RegExp, col: number) => models.getByRole("row", { name: row }).getByRole("cell").nth(col);
  await expect(cell(/^Compression/, c)).toHaveText("int8");
  await expect(cell(/^Compression/, o)).toHaveText("–");
  // Size: the int8 model is a fraction of its source's.
  await expect(cell(/^Size vs source/, c)).toHaveText(/^\d+%$/);
  expect(await numberIn(cell(/^Size vs source/, c))).toBeLessThan(100);
  // Accuracy: both measured on the same test partition, side by side.
  await expect(cell(/^Test accuracy/, o)).toHaveText(/^\d+\.\d %$/);
  await expect(cell(/^Test accuracy/, c)).toHaveText(/^\d+\.\d %$/);
  const accuracyDrop = (await numberIn(cell(/^Test accuracy/, o))) - (await numberIn(cell(/^Test accuracy/, c)));
  expect(Math.abs(accuracyDrop)).toBeLessThanOrEqual(20); // int8 with per-channel scales keeps this small model's accuracy
});
