/**
 * Defects found by exploring the app as a demanding ML engineer (session 12, H6), each pinned here:
 * - a fine-tune's layers are its parent checkpoint's: the form shows them fixed, and a config naming other layers
 *   (through the JSON editor or the API) is refused with the reason, instead of being recorded while the trainer
 *   silently trained the parent's layers;
 * - "New run" does not copy the baseline run's name (every run was called like the demo baseline); the name typed is used;
 * - the compare view tells two runs with the same name (a fork keeps its parent's name) apart by their id;
 * - a fork's effect on an accuracy is a difference in percentage points ("pp"), not "%";
 * - the sweep pages have one main landmark (they nested a second <main> inside the shell's).
 *
 * Each test seeds its own experiment and runs through the API (the real trainer trains them) and waits on states.
 */
import { test, expect, type Page } from "@playwright/test";
import { createExperiment, firstBatchDivergingConfig, signIn, trpcCall, unique, irisConfig } from "./helpers";

type RunData = { id: number; name: string; status: string; config: Record<string, unknown> };

async function data<T>(res: Awaited<ReturnType<typeof trpcCall>>): Promise<T> {
  expect(res.status(), await res.text()).toBe(200);
  return ((await res.json()) as { result: { data: T } }).result.data;
}

async function experimentOf(page: Page, prefix: string): Promise<number> {
  await createExperiment(page, unique(prefix));
  return Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
}

async function createRun(page: Page, input: Record<string, unknown>): Promise<number> {
  return (await data<{ id: number }>(await trpcCall(page, "mutation", "runs.create", input))).id;
}

const getRun = async (page: Page, id: number) => data<RunData>(await trpcCall(page, "query", "runs.get", { id }));

/** The run of a one-trial sweep over `base` in the experiment. */
async function failingSweepTrial(page: Page, experimentId: number, base: unknown): Promise<number> {
  await data(
    await trpcCall(page, "mutation", "sweeps.create", {
      experimentId,
      spec: {
        name: unique("qa failing trial"),
        base,
        space: { "training.learningRate": { type: "choice", values: [0.01] } },
        method: "grid",
        budget: { maxTrials: 1, maxParallel: 1 },
        metric: { name: "val_loss", direction: "minimize" },
        seed: 1,
        rationale: "e2e qa: a trial that fails at its first batch",
      },
    }),
  );
  const trialRun = async () => (await data<{ id: number }[]>(await trpcCall(page, "query", "runs.list", { experimentId })))[0]?.id;
  await expect.poll(trialRun, { timeout: 30_000, intervals: [300] }).toBeGreaterThan(0);
  return (await trialRun())!;
}

async function waitCompleted(page: Page, id: number) {
  await expect.poll(async () => (await getRun(page, id)).status, { timeout: 90_000, intervals: [500] }).toBe("completed");
}

test("[FINE-TUNE]: the parent's layers are fixed, and a config naming other layers is refused with the reason, creating nothing", async ({
  page,
}) => {
  await signIn(page, "engineer");
  const experimentId = await experimentOf(page, "e2e qa fine-tune");
  const parentId = await createRun(page, { experimentId, config: irisConfig(0.03), rationale: "e2e qa: a parent to fine-tune" });
  await waitCompleted(page, parentId);
  const checkpoint = ((await getRun(page, parentId)) as unknown as { checkpoints: { id: number; isBest: boolean }[] }).checkpoints.find(
    (c) => c.isBest,
  )!;

  // The API refuses a fine-tune whose layers differ from its parent checkpoint's, naming the difference.
  const countRuns = async () => (await data<unknown[]>(await trpcCall(page, "query", "runs.list", { experimentId }))).length;
  const before = await countRuns();
  const wider = irisConfig(0.01);
  wider.model.layers[0]!.units = 32;
  const refused = await trpcCall(page, "mutation", "runs.create", {
    experimentId,
    config: { ...wider, fineTune: { parentCheckpointId: String(checkpoint.id), freezeLayers: 0, replaceHead: false } },
    rationale: "e2e qa: wider layer",
  });
  expect(refused.status()).toBe(400);
  expect(await refused.text()).toContain(
    `a fine-tune keeps the architecture of its parent checkpoint (run #${parentId}'s model.layers), but model.layers.0.units is 8 there, 32 here`,
  );
  expect(await countRuns()).toBe(before);

  // The page shows the layers fixed, with why.
  await page.goto(`/runs/${parentId}/finetune?checkpoint=${checkpoint.id}`);
  const model = page.getByRole("group", { name: "Model (fixed)" });
  await expect(model.getByRole("spinbutton", { name: "Layer 1 Units" })).toBeDisabled();
  await expect(model.getByRole("button", { name: "Add layer" })).toBeDisabled();
  await expect(model.getByRole("note")).toContainText(`The layers are those of run #${parentId}'s checkpoint`);

  // The JSON editor can still name other layers: launching then shows the server's reason and stays on the page.
  await page.getByText("Advanced: edit the whole configuration as JSON").click();
  const json = page.getByRole("textbox", { name: "Configuration JSON" });
  await json.fill((await json.inputValue()).replace(/"units": 8/, '"units": 32'));
  await page.getByRole("textbox", { name: "Rationale" }).fill("e2e qa: wider layer through the JSON editor");
  await page.getByRole("button", { name: "Launch fine-tune" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "a fine-tune keeps the architecture" })).toContainText(
    "model.layers.0.units is 8 there, 32 here",
  );
  await expect(page).toHaveURL(/\/finetune/);
  expect(await countRuns()).toBe(before);
});

test("[NEW RUN]: a run started from a baseline does not take the baseline's name; the name typed is used", async ({ page }) => {
  await signIn(page, "engineer");
  const experimentId = await experimentOf(page, "e2e qa new run");
  const baselineName = unique("qa baseline");
  const baselineId = await createRun(page, { experimentId, config: irisConfig(0.03, baselineName), rationale: "e2e qa: the baseline" });
  expect((await getRun(page, baselineId)).name).toBe(baselineName);
  // "Start from" defaults to the latest completed run.
  await waitCompleted(page, baselineId);

  await page.goto(`/experiments/${experimentId}/new-run`);
  await expect(page.getByLabel("Start from")).toHaveValue(String(baselineId));
  // Like for like: leaving the name out is not a change of configuration.
  await expect(page.getByRole("group", { name: /Changes from the baseline/ })).toContainText("like-for-like");
  await page.getByRole("textbox", { name: "Rationale" }).fill("e2e qa: same as the baseline");
  await page.getByRole("button", { name: "Launch run" }).click();
  await expect(page).toHaveURL(/\/runs\/\d+$/);
  const unnamed = Number(/\/runs\/(\d+)/.exec(page.url())![1]);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("run 2");
  expect((await getRun(page, unnamed)).name).toBe("run 2");
  expect((await getRun(page, unnamed)).config).not.toHaveProperty("name");

  await page.goto(`/experiments/${experimentId}/new-run`);
  const typed = unique("qa lower lr");
  await page.getByRole("textbox", { name: "Run name" }).fill(typed);
  await page.getByLabel("Learning rate", { exact: true }).fill("0.01");
  await page.getByRole("textbox", { name: "Rationale" }).fill("e2e qa: a lower learning rate");
  await page.getByRole("button", { name: "Launch run" }).click();
  await expect(page).toHaveURL(/\/runs\/\d+$/);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText(typed);
});

test("[COMPARE]: a fork and its parent (same name) are told apart by id, and the fork's effect on accuracy is in percentage points", async ({
  page,
}) => {
  await signIn(page, "engineer");
  const experimentId = await experimentOf(page, "e2e qa compare");
  const name = unique("qa same name");
  const parentId = await createRun(page, { experimentId, config: irisConfig(0.03, name), rationale: "e2e qa: parent" });
  // Without a name the fork would be "‹name› · fork of #N"; named like its parent by hand, the two share a name.
  const forkId = await createRun(page, {
    experimentId,
    name,
    config: irisConfig(0.003, name),
    rationale: "e2e qa: a much lower learning rate",
    origin: "fork",
    parentRunId: parentId,
  });
  expect((await getRun(page, forkId)).name).toBe(name);

  await page.goto(`/compare?ids=${parentId},${forkId}`);
  const params = page.getByRole("table", { name: "Hyperparameters side by side" });
  await expect(params.getByRole("columnheader", { name: `${name} #${parentId}`, exact: true })).toBeVisible();
  await expect(params.getByRole("columnheader", { name: `${name} #${forkId}`, exact: true })).toBeVisible();
  await expect(page.getByRole("group", { name: `Decisions of ${name}` }).first()).toContainText(`${name} #`);

  await waitCompleted(page, parentId);
  await waitCompleted(page, forkId);
  await page.goto(`/runs/${forkId}`);
  const effect = page.getByLabel(`Effect of run #${forkId} against run #${parentId}`);
  await expect(effect).toContainText(/val_accuracy at epoch 3: [\d.]+ % → [\d.]+ % \([+−±][\d.]+ pp\)/);
  await expect(effect).toContainText(/test accuracy: [\d.]+ % → [\d.]+ % \([+−±][\d.]+ pp\)/);
  await expect(effect).toContainText(/val_loss at epoch 3: [\d.]+ → [\d.]+ \([+−±][\d.]+\)/);
});

test("[SWEEPS]: the sweeps list and a sweep's page have one main landmark", async ({ page }) => {
  await signIn(page, "engineer");
  const experimentId = await experimentOf(page, "e2e qa sweep");
  const sweep = await data<{ id: number }>(
    await trpcCall(page, "mutation", "sweeps.create", {
      experimentId,
      spec: {
        name: unique("qa sweep"),
        base: irisConfig(0.02),
        space: { "training.learningRate": { type: "choice", values: [0.01, 0.02] } },
        method: "grid",
        budget: { maxTrials: 1, maxParallel: 1 },
        metric: { name: "val_loss", direction: "minimize" },
        seed: 1,
        rationale: "e2e qa: one trial",
      },
    }),
  );
  await page.goto("/sweeps");
  await expect(page.getByRole("table", { name: "Sweeps" }).getByRole("link", { name: new RegExp(`^#${sweep.id} `) })).toBeVisible();
  await expect(page.getByRole("main")).toHaveCount(1);
  await page.goto(`/sweeps/${sweep.id}`);
  await expect(page.getByRole("heading", { name: new RegExp(`^Sweep #${sweep.id}: `) })).toBeVisible();
  await expect(page.getByRole("main")).toHaveCount(1);
});

test("[RUN PAGE]: a run that failed before it recorded a batch says so in Curves, without empty charts or their controls", async ({
  page,
}) => {
  await signIn(page, "engineer");
  const experimentId = await experimentOf(page, "e2e qa failed run");
  // What a launch can check is refused at every launch, sweeps included (a model that cannot be built, a class weight
  // or a watched metric the data or task lacks: launch-*.test.ts); a loss that overflows at the first batch is only
  // known by training, which stops there (training-diverged.test.ts).
  const id = await failingSweepTrial(page, experimentId, await firstBatchDivergingConfig(page));
  await page.goto(`/runs/${id}`);
  await expect(page.locator("[data-status]").first()).toHaveAttribute("data-status", "failed", { timeout: 60_000 });
  await expect(page.getByRole("alert").filter({ hasText: "Training failed" })).toContainText(
    "training diverged: batch_loss became Infinity at epoch 1, batch 1 (step 1)",
  );
  const curves = page.getByRole("region", { name: "Curves" });
  await expect(curves).toContainText("This run recorded no metrics: it failed before it recorded a batch");
  await expect(curves.getByRole("img")).toHaveCount(0);
  await expect(curves.getByRole("group", { name: "Curve controls" })).toHaveCount(0);
});

test("[SWEEPS]: trials without a value are left out of the parallel coordinates, which say so while none has one", async ({ page }) => {
  await signIn(page, "engineer");
  const experimentId = await experimentOf(page, "e2e qa sweep no value");
  // Its only trial diverges at its first batch (firstBatchDivergingConfig), so it never reports a val_loss.
  const base = await firstBatchDivergingConfig(page);
  const sweep = await data<{ id: number }>(
    await trpcCall(page, "mutation", "sweeps.create", {
      experimentId,
      spec: {
        name: unique("qa failing sweep"),
        base,
        space: { "training.learningRate": { type: "choice", values: [0.01, 0.02] } },
        method: "grid",
        budget: { maxTrials: 1, maxParallel: 1 },
        metric: { name: "val_loss", direction: "minimize" },
        seed: 1,
        rationale: "e2e qa: a trial that reports nothing",
      },
    }),
  );
  await page.goto(`/sweeps/${sweep.id}`);
  await expect(page.getByRole("region", { name: "Trials" }).locator('[data-status="failed"]')).toHaveCount(1, { timeout: 60_000 });
  const pcp = page.getByRole("region", { name: "Parallel coordinates" });
  await expect(pcp).toContainText("No trial has a val_loss yet");
  await expect(pcp.getByRole("img", { name: "Parallel coordinates chart" })).toHaveCount(0);
});
