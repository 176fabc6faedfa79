/**
 * The trainer in depth, in the browser: CSV upload (a ragged file's message names the row; a good file is listed
 * with its hash), the size estimate before a run, cancelling a long run, evaluating a checkpoint on demand, and
 * fine-tuning from a checkpoint with frozen layers and a new head. Each test seeds its own experiment and data.
 */
import { createHash } from "node:crypto";
import { test, expect, type Page } from "@playwright/test";
import { createExperiment, signIn, trpcMutate, trpcQuery, unique } from "./helpers";

async function uploadCsv(page: Page, name: string, csv: string) {
  await page.goto("/datasets");
  const form = page.getByRole("form", { name: "Upload a CSV dataset" });
  await form.getByLabel("CSV file").setInputFiles({ name: `${name}.csv`, mimeType: "text/csv", buffer: Buffer.from(csv) });
  await form.getByLabel("Dataset name").fill(name);
  await form.getByRole("button", { name: "Upload" }).click();
  return form;
}

/** Opens "New run" in a fresh experiment and fills the settings every test here uses. */
async function newIrisRun(page: Page, epochs: number, opts: { batchSize?: number } = {}) {
  await createExperiment(page, unique("e2e trainer"));
  await page.getByRole("link", { name: "New run" }).click();
  await page.getByLabel("Dataset", { exact: true }).selectOption("builtin:iris");
  await page.getByLabel("Epochs", { exact: true }).fill(String(epochs));
  if (opts.batchSize) await page.getByLabel("Batch size", { exact: true }).fill(String(opts.batchSize));
}

const status = (page: Page) => page.locator("[data-status]").first();

test("[DATASETS]: a CSV with a ragged row is refused with a message naming the row", async ({ page }) => {
  await signIn(page, "engineer");
  const form = await uploadCsv(page, unique("ragged"), "a,b,label\n1,2,x\n3,4,y\n5,z\n");
  await expect(form.getByRole("alert")).toContainText("row 3 has 2 fields, the header has 3");
});

test("[DATASETS]: a good CSV upload appears in the datasets list with its SHA-256", async ({ page }) => {
  await signIn(page, "engineer");
  const name = unique("good csv");
  // Fresh bytes (a time-based value in the last row), so a new dataset row: the same bytes are stored once.
  const rows = Array.from({ length: 12 }, (_, i) => `${i},${(i * 7) % 5},${i % 2 ? "odd" : "even"}`);
  const csv = `x0,x1,label\n${rows.join("\n")}\n${Date.now()},0,even\n`;
  const sha = createHash("sha256").update(csv).digest("hex");
  const form = await uploadCsv(page, name, csv);
  await expect(form.getByRole("status")).toContainText(`Uploaded “${name}”: 13 rows`);
  const row = page.getByRole("table", { name: "Datasets" }).getByRole("row").filter({ hasText: name });
  await expect(row).toHaveCount(1);
  await expect(row).toContainText("tabular");
  await expect(row.locator(`code[title="${sha}"]`)).toHaveText(`${sha.slice(0, 12)}…`);
});

test("[DATASETS]: an image upload takes its height × width × channels, and a shape that does not fit the pixels is refused", async ({
  page,
}) => {
  await signIn(page, "engineer");
  const name = unique("tiny images");
  const csv = `p0,p1,p2,p3,p4,p5,label\n${Array.from({ length: 8 }, (_, i) => `${i % 2},0,1,1,0,${Date.now() % 7},${i % 2 ? "odd" : "even"}`).join("\n")}\n`;
  await page.goto("/datasets");
  const form = page.getByRole("form", { name: "Upload a CSV dataset" });
  await form.getByLabel("Kind").selectOption("image");
  await form.getByLabel("Image height").fill("3");
  await form.getByLabel("Image width").fill("3");
  await form.getByLabel("CSV file").setInputFiles({ name: `${name}.csv`, mimeType: "text/csv", buffer: Buffer.from(csv) });
  await form.getByLabel("Dataset name").fill(name);
  await form.getByRole("button", { name: "Upload" }).click();
  await expect(form.getByRole("alert")).toContainText(
    "image shape 3×3×1 needs 9 pixel columns, but the file has 6 besides the label column 'label'",
  );
  await form.getByLabel("Image height").fill("2");
  await form.getByRole("button", { name: "Upload" }).click();
  await expect(form.getByRole("status")).toContainText(`Uploaded “${name}”: 8 rows`);
  await expect(page.getByRole("table", { name: "Datasets" }).getByRole("row").filter({ hasText: name })).toContainText("image");
});

test("[RUNS]: the size estimate shows the parameter count and a memory table with units", async ({ page }) => {
  await signIn(page, "engineer");
  await newIrisRun(page, 5);
  const panel = page.getByRole("group", { name: "Size estimate" });
  await panel.getByRole("button", { name: "Estimate size" }).click();
  // Iris: 4 features → dense(16) → 3 classes = 4·16 + 16 + 16·3 + 3 parameters.
  await expect(panel.getByTestId("param-count")).toHaveText("131 parameters");
  const table = panel.getByRole("table", { name: "Memory estimate" });
  await expect(table.getByRole("row", { name: /^Weights/ })).toContainText("524 B");
  await expect(table.getByRole("row", { name: /^Total/ })).toContainText(/KiB/);
  await expect(panel).toContainText("bfloat16 262 B · int8 131 B");
  // Changing the model makes the shown estimate stale rather than wrong.
  await page.getByLabel("Layer 1 Units").fill("32");
  await expect(panel.getByRole("status")).toContainText("estimate again");
  await panel.getByRole("button", { name: "Estimate size" }).click();
  await expect(panel.getByTestId("param-count")).toHaveText(`${4 * 32 + 32 + 32 * 3 + 3} parameters`);
});

test("[RUNS]: cancelling a long run stops it and keeps its curves", async ({ page }) => {
  await signIn(page, "engineer");
  await newIrisRun(page, 3000, { batchSize: 4 });
  await page.getByLabel("Rationale").fill("e2e: a long run to cancel");
  await page.getByRole("button", { name: "Launch run" }).click();
  await expect(page).toHaveURL(/\/runs\/\d+$/);
  await expect(status(page)).toHaveAttribute("data-status", "running", { timeout: 60_000 });
  const loss = page.getByRole("img", { name: "Loss curve" });
  await expect.poll(async () => Number(await loss.getAttribute("data-points")), { timeout: 60_000 }).toBeGreaterThan(50);

  // Cancel run asks why first: Do not cancel closes the form with nothing sent; a blank reason is refused on the page.
  const header = page.getByRole("region", { name: "Run header" });
  await header.getByRole("button", { name: "Cancel run" }).click();
  const form = page.getByRole("form", { name: /^Cancel run #\d+$/ });
  await expect(form.getByRole("textbox", { name: "Why cancel this run" })).toBeFocused();
  await form.getByRole("button", { name: "Do not cancel" }).click();
  await expect(form).toHaveCount(0);
  await expect(status(page)).toHaveAttribute("data-status", "running");
  await header.getByRole("button", { name: "Cancel run" }).click();
  await form.getByRole("button", { name: "Cancel run" }).click();
  await expect(form.getByRole("alert")).toHaveText("A reason is required to cancel a run.");
  await expect(status(page)).toHaveAttribute("data-status", "running");
  await form.getByRole("textbox", { name: "Why cancel this run" }).fill("e2e: loss flat since epoch 2, freeing the slot");
  await form.getByRole("button", { name: "Cancel run" }).click();
  await expect(status(page)).toHaveAttribute("data-status", "cancelled");
  await expect(page.getByRole("button", { name: "Cancel run" })).toHaveCount(0);
  // Who cancelled it and why, read back from the ledger.
  await expect(page.getByRole("note", { name: "Cancellation" })).toContainText(
    /Cancelled at the request of Erin Engineer, .*: “e2e: loss flat since epoch 2, freeing the slot”/,
  );
  const kept = Number(await loss.getAttribute("data-points"));
  expect(kept).toBeGreaterThan(50);
  // After a reload the points are still there (read back from the database), and no more arrive.
  await page.reload();
  await expect
    .poll(async () => Number(await page.getByRole("img", { name: "Loss curve" }).getAttribute("data-points")))
    .toBeGreaterThanOrEqual(kept);
  await expect(page.getByRole("table", { name: "Checkpoints table" }).getByRole("row")).not.toHaveCount(1);
  await expect(page.getByRole("region", { name: "Summary" })).toContainText("Statuscancelled");
});

test("[EVAL+FINETUNE]: evaluate a checkpoint on demand, then fine-tune from it with a frozen layer and a new head", async ({ page }) => {
  await signIn(page, "engineer");
  await newIrisRun(page, 4);
  await page.getByLabel("Rationale").fill("e2e: parent for evaluation and fine-tuning");
  await page.getByRole("button", { name: "Launch run" }).click();
  await expect(page).toHaveURL(/\/runs\/\d+$/);
  const parentId = Number(/\/runs\/(\d+)$/.exec(page.url())![1]);
  await expect(status(page)).toHaveAttribute("data-status", "completed", { timeout: 90_000 });

  // On-demand evaluation of epoch 2: listed beside the trainer's own, naming its epoch and data digest.
  const evaluations = page.getByRole("table", { name: "Evaluations" });
  await expect(evaluations.getByRole("row")).toHaveCount(2);
  await expect(evaluations.getByRole("row").nth(1).getByRole("cell").nth(3)).toHaveText("End of training");
  await page.getByRole("button", { name: "Evaluate epoch 2 on the test set" }).click();
  await expect(page.getByRole("region", { name: "Checkpoints" }).getByRole("status")).toContainText(
    "Evaluated the checkpoint of epoch 2 on the test partition",
  );
  await expect(evaluations.getByRole("row")).toHaveCount(3);
  const latest = evaluations.getByRole("row").nth(2);
  await expect(latest.getByRole("cell").nth(1)).toHaveText("2");
  await expect(latest.getByRole("cell").nth(3)).toHaveText("Requested by Erin Engineer");
  await expect(latest).toContainText(/accuracy \d+\.\d %/);
  await expect(page.getByRole("group", { name: /^Evaluation \d+$/ })).toContainText("checkpoint of epoch 2");
  await expect(page.getByRole("table", { name: "Confusion matrix" })).toBeVisible();

  // The datasheet behind the run shows what its split fitted: label encoding and train-only normalisation statistics.
  await page.getByRole("link", { name: "Datasheet of Iris flowers", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Iris flowers", level: 1, exact: true })).toBeVisible();
  await expect(page.getByText(/^Split #\d+$/).first()).toBeVisible();
  await expect(page.getByLabel(/^Split \d+ label encoding$/).first()).toContainText("0 → setosa, 1 → versicolor, 2 → virginica");
  await page
    .getByText(/^Normalisation statistics fitted on the train partition \(4 columns\)$/)
    .first()
    .click();
  const stats = page.getByRole("table", { name: /^Split \d+ normalisation statistics$/ }).first();
  await expect(stats.getByRole("row").nth(1)).toContainText("sepal_length"); // file order, not sorted by name
  await expect(stats.getByRole("columnheader", { name: "Standard deviation" })).toBeVisible();
  await page.goBack();
  await expect(page).toHaveURL(new RegExp(`/runs/${parentId}$`));

  // Fine-tune from epoch 3 through the checkpoints table.
  await page.getByRole("link", { name: "Fine-tune from epoch 3" }).click();
  await expect(page.getByRole("heading", { name: "Fine-tune from a checkpoint" })).toBeVisible();
  await page.getByLabel("Freeze layers").fill("1");
  await page.getByLabel("Output layer").selectOption("replace");
  await page.getByLabel("Epochs", { exact: true }).fill("3");
  const estimate = page.getByRole("group", { name: "Size estimate" });
  await estimate.getByRole("button", { name: "Estimate size" }).click();
  await expect(estimate.getByTestId("param-count")).toHaveText("131 parameters");
  await expect(estimate).toContainText(`${16 * 3 + 3} trainable`);
  await expect(estimate).toContainText("frozen: l0_dense · replaced: head");
  await page.getByLabel("Rationale").fill("e2e: keep the first layer, retrain a new head");
  await page.getByRole("button", { name: "Launch fine-tune" }).click();
  await expect(page).toHaveURL(new RegExp(`/runs/(?!${parentId}$)\\d+$`));
  await expect(status(page)).toHaveAttribute("data-status", "completed", { timeout: 90_000 });
  const summary = page.getByRole("region", { name: "Summary" });
  await expect(summary).toContainText(new RegExp(`Fine-tuned from\\s*run #${parentId}, epoch 3`));
  await expect(summary).toContainText("frozen: l0_dense · replaced: head");
  await expect(page.getByText(new RegExp(`created .* · fine-tune of run #${parentId}, from its checkpoint at epoch 3$`))).toBeVisible();
});

test("[RUNS]: a run whose loss diverges fails saying where and what to change, and keeps the curve it drew before", async ({ page }) => {
  await signIn(page, "engineer");
  const name = unique("exploding targets");
  // Raw features in the thousands, targets in the millions (fresh bytes each time): plain SGD at learning rate 10 explodes.
  const rows = Array.from({ length: 60 }, (_, i) => `${i * 100},${(i * 37) % 11},${i * 1e5}`);
  const form = await uploadCsv(page, name, `x0,x1,target\n${rows.join("\n")}\n${Date.now() % 1000},1,0\n`);
  await expect(form.getByRole("status")).toContainText(`Uploaded “${name}”: 61 rows`);
  const dataset = (await trpcQuery<{ id: number; name: string }[]>(page, "datasets.list")).find((d) => d.name === name)!;
  await createExperiment(page, unique("e2e diverging"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const run = await trpcMutate<{ id: number }>(page, "runs.create", {
    experimentId,
    rationale: "e2e: too large a step",
    config: {
      data: {
        dataset: { datasetId: String(dataset.id) },
        task: "regression",
        normalization: "none",
        split: { strategy: "random", train: 0.6, validation: 0.2, test: 0.2, seed: 2 },
      },
      model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
      training: { optimizer: { name: "sgd" }, learningRate: 10, batchSize: 8, epochs: 3, seed: 1 },
    },
  });
  await page.goto(`/runs/${run.id}`);
  await expect(status(page)).toHaveAttribute("data-status", "failed", { timeout: 60_000 });
  await expect(page.getByRole("alert").filter({ hasText: "Training failed" })).toContainText(
    /training diverged: batch_loss became (NaN|Infinity|-Infinity) at epoch 1, batch \d+ \(step \d+\) with learning rate 10; lower the learning rate, or normalise the inputs and scale the targets/,
  );
  // The batches before the divergence are on the loss curve (the first one's loss is computed before any update).
  const loss = page.getByRole("region", { name: "Curves" }).getByRole("img", { name: "Loss curve" });
  await expect.poll(async () => Number(await loss.getAttribute("data-points"))).toBeGreaterThanOrEqual(1);
});
