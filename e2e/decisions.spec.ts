import { test, expect, type Page } from "@playwright/test";
import { createExperiment, signIn, trpcCall, unique } from "./helpers";

/** Seeds a small completed Iris run in a fresh experiment through the API with the page's session, and opens it. */
async function seedRun(page: Page, rationale: string) {
  await createExperiment(page, unique("e2e decisions"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const config = {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 3 },
    },
    model: { layers: [{ type: "dense", units: 12, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 6, seed: 1 },
  };
  const res = await trpcCall(page, "mutation", "runs.create", { experimentId, config, rationale });
  expect(res.status()).toBe(200);
  const id = ((await res.json()) as { result: { data: { id: number } } }).result.data.id;
  await page.goto(`/runs/${id}`);
  await expect(page.locator("[data-status]").first()).toHaveAttribute("data-status", "completed", { timeout: 90_000 });
  return id;
}

test("[DECISIONS]: an engineer forks a run with a rationale per change and sees the decision and its effect beside the curves", async ({
  page,
}) => {
  await signIn(page, "engineer");
  const parentId = await seedRun(page, "e2e: baseline for the fork");
  const timeline = page.getByRole("region", { name: "Decisions timeline" });
  await expect(timeline.getByText("Initial configuration")).toBeVisible();
  await expect(timeline.getByText("“e2e: baseline for the fork”")).toBeVisible();

  await page.getByRole("link", { name: "Fork run" }).click();
  await expect(page.getByRole("heading", { name: /^Fork / })).toBeVisible();
  await page.getByLabel("Learning rate").fill("0.01");
  await page.getByLabel("Batch size").fill("8");
  const diff = page.getByRole("table", { name: "Changes from the parent run" });
  await expect(diff.getByRole("row")).toHaveCount(3);
  await expect(diff).toContainText("training.learningRate");
  await page.getByLabel("Rationale").fill("e2e: the validation loss oscillated");
  await page.getByRole("button", { name: "Review changes" }).click();
  await page.getByLabel("Rationale for training.learningRate").fill("e2e: halve the step size");
  await page.getByRole("button", { name: "Launch fork" }).click();

  await expect(page).not.toHaveURL(new RegExp(`/runs/${parentId}(/|$)`));
  await expect(page).toHaveURL(/\/runs\/\d+$/);
  await expect(page.locator("[data-status]").first()).toHaveAttribute("data-status", "completed", { timeout: 90_000 });
  await expect(page.getByText(`fork of run #${parentId}`).first()).toBeVisible();
  const mine = page.getByRole("listitem", { name: /Decisions of run #\d+/ }).and(page.locator('[data-relation="this run"]'));
  await expect(mine).toContainText("training.learningRate 0.03 → 0.01");
  await expect(mine).toContainText("“e2e: halve the step size”");
  await expect(mine).toContainText("training.batchSize 16 → 8");
  await expect(mine).toContainText("“e2e: the validation loss oscillated”");
  await expect(page.getByLabel(`Effect of run`, { exact: false })).toContainText(/val_loss at epoch 6: [\d.]+ → [\d.]+/);
  await expect(page.getByRole("img", { name: "Validation loss against parent" })).toHaveAttribute("data-points", "12");
  await expect(page.locator('[data-relation="ancestor"]')).toContainText(`run #${parentId}`);

  // A correction is a new note linked to the old decision; the original stays as it was.
  await page.getByLabel("Decision note", { exact: true }).fill("e2e: correction, it was the training loss that oscillated");
  const option = page.getByLabel("Corrects decision").locator("option", { hasText: "training.learningRate" });
  await page.getByLabel("Corrects decision").selectOption((await option.getAttribute("value"))!);
  await page.getByRole("button", { name: "Add note" }).click();
  await expect(mine).toContainText(/Correction of #\d+/);
  await expect(mine).toContainText(/corrected by #\d+/);
  await expect(mine).toContainText("“e2e: halve the step size”");
});
