/**
 * Issue 14, points 7 and 9: the audit page reads each event as a sentence, expands its payload in full and opens an
 * event's inclusion proof right under it; "New run" starts from the experiment's latest completed run (split seed
 * included), not from a later failed one, and each run in "Start from" names its status.
 * Each test seeds its own experiment and runs through the API with the page's session; no fixed sleeps.
 */
import { test, expect, type Page } from "@playwright/test";
import { createExperiment, firstBatchDivergingConfig, signIn, trpcCall, unique } from "./helpers";

async function call<T>(page: Page, kind: "query" | "mutation", proc: string, input: unknown): Promise<T> {
  const res = await trpcCall(page, kind, proc, input);
  expect(res.status(), `${proc}: ${await res.text()}`).toBe(200);
  return ((await res.json()) as { result: { data: T } }).result.data;
}

const irisConfig = (splitSeed: number, learningRate: number) => ({
  data: {
    dataset: { builtin: "iris" },
    normalization: "standard",
    split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: splitSeed },
  },
  model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
  training: { optimizer: { name: "adam" }, learningRate, batchSize: 16, epochs: 2, seed: 3 },
});

async function seedExperiment(page: Page): Promise<number> {
  await createExperiment(page, unique("e2e daily audit"));
  return Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
}

test("[DAILY-AUDIT]: an event reads as a sentence, its payload expands in full, and its proof opens right under it", async ({ page }) => {
  await signIn(page, "engineer");
  const experimentId = await seedExperiment(page);
  const run = await call<{ id: number }>(page, "mutation", "runs.create", {
    experimentId,
    config: irisConfig(11, 0.03),
    rationale: "e2e: audit sentences",
  });
  const tag = unique("e2e-tag").replace(/\s+/g, "-");
  await call(page, "mutation", "runs.addTag", { runId: run.id, tag });
  // A note longer than the old 240-character cut, ending with a marker: the expanded payload must hold all of it.
  const marker = unique("END-OF-NOTE").replace(/\s+/g, "-");
  const note = `${"the validation loss oscillates between epochs, so the next run lowers the learning rate; ".repeat(6)}${marker}`;
  await call(page, "mutation", "decisions.addNote", { runId: run.id, rationale: note });

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit" }).click();
  await expect(page.getByRole("heading", { name: "Audit ledger" })).toBeVisible();
  const filters = page.getByRole("form", { name: "Event filters" });
  const events = page.getByRole("table", { name: "Audit events" });

  // The tag event as a sentence: actor, verb, object, value.
  await filters.getByLabel("Filter by action").selectOption("run.tag");
  await filters.getByRole("button", { name: "Apply filters" }).click();
  await expect(events.getByRole("row").filter({ hasText: tag }).first()).toContainText(`Erin Engineer tagged run #${run.id} with '${tag}'`);

  // The note: its payload expands in full (valid JSON, the whole rationale, marker included).
  await filters.getByLabel("Filter by action").selectOption("decision.create");
  await filters.getByRole("button", { name: "Apply filters" }).click();
  const row = events.getByRole("row").filter({ hasText: marker }).first();
  await expect(row).toContainText(`Erin Engineer recorded a decision on run #${run.id}: 'the validation loss oscillates`);
  const seq = Number(await row.getAttribute("data-seq"));
  const payloadButton = row.getByRole("button", { name: `Payload of event ${seq}` });
  await expect(payloadButton).toHaveAttribute("aria-expanded", "false");
  await payloadButton.click();
  await expect(payloadButton).toHaveAttribute("aria-expanded", "true");
  const payload = page.getByRole("region", { name: `Full payload of event ${seq}` });
  await expect(payload).toContainText(marker);
  const parsed = JSON.parse((await payload.textContent()) ?? "") as { rationale: string; runId: number };
  expect(parsed.rationale).toBe(note);
  expect(parsed.runId).toBe(run.id);

  // Proof opens next to its event: inside the viewport, right under the event's row (above its payload).
  await row.getByRole("button", { name: "Proof" }).click();
  const proof = page.getByRole("complementary", { name: `Inclusion proof of event ${seq}` });
  await expect(proof).toContainText("Verified");
  await expect(proof).toBeInViewport();
  const rowBox = (await row.boundingBox())!;
  const proofBox = (await proof.boundingBox())!;
  expect(proofBox.y).toBeGreaterThanOrEqual(rowBox.y + rowBox.height - 1);
  expect(proofBox.y - (rowBox.y + rowBox.height)).toBeLessThan(40);
  await proof.getByRole("button", { name: "Close" }).click();
  await expect(proof).toHaveCount(0);
});

test("[DAILY-AUDIT]: a new run starts from the experiment's latest run, split seed and config included", async ({ page }) => {
  await signIn(page, "engineer");
  const experimentId = await seedExperiment(page);
  const older = await call<{ id: number }>(page, "mutation", "runs.create", {
    experimentId,
    config: irisConfig(11, 0.03),
    rationale: "e2e: older run",
  });
  const latest = await call<{ id: number }>(page, "mutation", "runs.create", {
    experimentId,
    config: irisConfig(13, 0.042),
    rationale: "e2e: latest run, the baseline",
  });
  // "Start from" defaults to the latest completed run: both have finished before the form opens.
  for (const id of [older.id, latest.id]) {
    await expect
      .poll(async () => (await call<{ status: string }>(page, "query", "runs.get", { id })).status, { timeout: 90_000 })
      .toBe("completed");
  }

  await page.goto(`/experiments/${experimentId}`);
  await page.getByRole("link", { name: "New run" }).click();
  const startFrom = page.getByLabel("Start from");
  await expect(startFrom).toHaveValue(String(latest.id));
  await expect(page.getByLabel("Split seed", { exact: true })).toHaveValue("13");
  await expect(page.getByLabel("Learning rate", { exact: true })).toHaveValue("0.042");
  await expect(page.getByRole("group", { name: /Changes from the baseline/ })).toContainText("like-for-like");

  // A change shows as a diff against the baseline before launch.
  await page.getByLabel("Learning rate", { exact: true }).fill("0.01");
  const diff = page.getByRole("table", { name: "Changes from the baseline" });
  await expect(diff.getByRole("row", { name: /training\.learningRate/ })).toContainText("0.042");

  // Another baseline resets the form to its config; the demo default uses the demo baseline's split seed.
  await startFrom.selectOption(String(older.id));
  await expect(page.getByLabel("Split seed", { exact: true })).toHaveValue("11");
  await startFrom.selectOption("default");
  await expect(page.getByLabel("Split seed", { exact: true })).toHaveValue("7");
  await expect(page.getByRole("group", { name: /Changes from the baseline/ })).toHaveCount(0);

  // Back to the latest run: launching keeps its split seed.
  await startFrom.selectOption(String(latest.id));
  await expect(page.getByLabel("Split seed", { exact: true })).toHaveValue("13");
  await page.getByLabel("Rationale").fill("e2e: same as the baseline, like for like");
  await page.getByRole("button", { name: "Launch run" }).click();
  await expect(page).toHaveURL(/\/runs\/\d+/);
  const created = Number(/\/runs\/(\d+)/.exec(page.url())![1]);
  const got = await call<{ config: { data: { split: { seed: number } }; training: { learningRate: number } } }>(page, "query", "runs.get", {
    id: created,
  });
  expect(got.config.data.split.seed).toBe(13);
  expect(got.config.training.learningRate).toBe(0.042);
});

test("[DAILY-AUDIT]: a new run starts from the latest completed run, not a later failed one; each option names its status", async ({
  page,
}) => {
  await signIn(page, "engineer");
  const experimentId = await seedExperiment(page);
  const completed = await call<{ id: number }>(page, "mutation", "runs.create", {
    experimentId,
    config: irisConfig(17, 0.03),
    rationale: "e2e: the run that completes",
  });
  await expect
    .poll(async () => (await call<{ status: string }>(page, "query", "runs.get", { id: completed.id })).status, { timeout: 90_000 })
    .toBe("completed");
  // A later run that fails in training: a one-trial sweep whose config passes every launch check but whose loss
  // overflows at its first batch (firstBatchDivergingConfig), split seed 19 to tell its config apart.
  const diverging = await firstBatchDivergingConfig(page);
  const failing = { ...diverging, data: { ...diverging.data, split: { ...diverging.data.split, seed: 19 } } };
  await call(page, "mutation", "sweeps.create", {
    experimentId,
    spec: {
      name: unique("e2e failing trial"),
      base: failing,
      space: { "training.learningRate": { type: "choice", values: [0.03] } },
      method: "grid",
      budget: { maxTrials: 1, maxParallel: 1 },
      metric: { name: "val_loss", direction: "minimize" },
      seed: 1,
      rationale: "e2e: a later run that fails",
    },
  });
  const runs = async () => call<{ id: number; status: string }[]>(page, "query", "runs.list", { experimentId });
  await expect.poll(async () => (await runs())[0]?.status, { timeout: 60_000 }).toBe("failed");
  const failed = (await runs())[0]!;
  expect(failed.id).toBeGreaterThan(completed.id);

  await page.goto(`/experiments/${experimentId}/new-run`);
  const startFrom = page.getByLabel("Start from");
  await expect(startFrom).toHaveValue(String(completed.id));
  await expect(page.getByLabel("Split seed", { exact: true })).toHaveValue("17");
  await expect(startFrom.locator(`option[value="${completed.id}"]`)).toContainText(/· completed \(latest completed\)$/);
  await expect(startFrom.locator(`option[value="${failed.id}"]`)).toContainText(/· failed$/);
  // The failed run can still be chosen knowingly: its config prefills the form.
  await startFrom.selectOption(String(failed.id));
  await expect(page.getByLabel("Split seed", { exact: true })).toHaveValue("19");
});
