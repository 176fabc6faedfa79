/**
 * Live piloting seen from the compare view and the run page (issue 13 follow-ups):
 * - /compare shows each compared run's in-flight decisions: markers on every compared curve (counted on the
 *   canvas's data-markers: canvas content is not inspectable) and the accessible "In-flight decisions" table under
 *   the charts with run, epoch, who, change old → new, rationale and the watched metric before → after;
 * - a paused run can be cancelled from its run page ("Cancel run" shows for paused runs, the server accepts it).
 *
 * Each test seeds its own experiment and small Iris runs through the API (the real trainer trains them; the pilot
 * requests go through runs.pilot.request) and waits on states, never on fixed sleeps.
 */
import { test, expect, type Page } from "@playwright/test";
import { cancelRunOnPage, createExperiment, signIn, trpcCall, unique } from "./helpers";

async function call<T>(page: Page, kind: "query" | "mutation", proc: string, input: unknown): Promise<T> {
  const res = await trpcCall(page, kind, proc, input);
  expect(res.status(), `${proc}: ${await res.text()}`).toBe(200);
  return ((await res.json()) as { result: { data: T } }).result.data;
}

const statusOf = async (page: Page, id: number) => (await call<{ status: string }>(page, "query", "runs.get", { id })).status;

async function waitForStatus(page: Page, id: number, status: string, timeout: number) {
  await expect.poll(() => statusOf(page, id), { timeout, intervals: [250] }).toBe(status);
}

function irisConfig(epochs: number, learningRate: number) {
  return {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 5 },
    },
    model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate, batchSize: 8, epochs, seed: 2 },
  };
}

/** A long run, paused through the API once it trains; returns the epoch it paused at. */
async function createPausedRun(page: Page, experimentId: number, name: string): Promise<{ id: number; pausedAt: number }> {
  const run = await call<{ id: number }>(page, "mutation", "runs.create", {
    experimentId,
    name,
    config: irisConfig(400, 0.05),
    rationale: `e2e: ${name}`,
  });
  await waitForStatus(page, run.id, "running", 90_000);
  await call(page, "mutation", "runs.pilot.request", { runId: run.id, kind: "pause", rationale: "e2e: hold on, look at the curves" });
  await waitForStatus(page, run.id, "paused", 60_000);
  const list = await call<{ kind: string; appliedAtEpoch: number | null }[]>(page, "query", "runs.pilot.list", { runId: run.id });
  const pausedAt = list.find((i) => i.kind === "pause")!.appliedAtEpoch!;
  expect(pausedAt).toBeGreaterThan(0);
  return { id: run.id, pausedAt };
}

test("[COMPARE PILOT]: the compare view marks each run's in-flight decisions on the curves and lists them with their effect", async ({
  page,
}) => {
  test.setTimeout(240_000);
  await signIn(page, "engineer");
  await createExperiment(page, unique("e2e compare pilot"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);

  // A plain run trains meanwhile (no interventions), beside a piloted one: paused, learning rate lowered, resumed.
  const plain = await call<{ id: number }>(page, "mutation", "runs.create", {
    experimentId,
    name: "plain-run",
    config: irisConfig(4, 0.05),
    rationale: "e2e: a run left alone",
  });
  const piloted = await createPausedRun(page, experimentId, "piloted-run");
  const epochs = piloted.pausedAt + 4;
  await call(page, "mutation", "runs.pilot.request", {
    runId: piloted.id,
    kind: "set",
    set: { "training.learningRate": 0.005, "training.epochs": epochs },
    rationale: "e2e: the validation loss oscillates, lower the learning rate",
  });
  await call(page, "mutation", "runs.pilot.request", { runId: piloted.id, kind: "resume", rationale: "e2e: go on with the lower rate" });
  await waitForStatus(page, piloted.id, "completed", 120_000);
  await waitForStatus(page, plain.id, "completed", 60_000);
  const applied = await call<{ kind: string; appliedAtEpoch: number }[]>(page, "query", "runs.pilot.list", { runId: piloted.id });
  const setAt = applied.find((i) => i.kind === "set")!.appliedAtEpoch;

  await page.goto(`/compare?ids=${plain.id},${piloted.id}`);
  const curves = page.getByRole("region", { name: "Curves", exact: true });
  const table = curves.getByRole("table", { name: "In-flight decisions" });
  // Header + the piloted run's pause, adjust and resume; the plain run has none.
  await expect(table.getByRole("row")).toHaveCount(4);
  await expect(table.getByRole("row").filter({ hasText: "plain-run" })).toHaveCount(0);
  const adjust = table.getByRole("row").filter({ hasText: "training.learningRate" });
  await expect(adjust.getByRole("cell").nth(0)).toHaveText("piloted-run");
  await expect(adjust.getByRole("cell").nth(1)).toHaveText(new RegExp(`^${setAt} \\(step \\d+\\)$`));
  await expect(adjust.getByRole("cell").nth(2)).toHaveText("Erin Engineer");
  await expect(adjust.getByRole("cell").nth(3)).toHaveText(`training.epochs 400 → ${epochs}; training.learningRate 0.05 → 0.005`);
  await expect(adjust.getByRole("cell").nth(4)).toHaveText("e2e: the validation loss oscillates, lower the learning rate");
  await expect(adjust.getByRole("cell").nth(5)).toHaveText(
    new RegExp(`^val_loss [\\d.e+-]+ at epoch ${setAt} → [\\d.e+-]+ at epoch ${Math.min(setAt + 3, epochs)} \\([−+±]`),
  );
  const pause = table.getByRole("row").filter({ hasText: "e2e: hold on, look at the curves" });
  await expect(pause.getByRole("cell").nth(1)).toHaveText(new RegExp(`^${piloted.pausedAt} \\(step \\d+\\)$`));
  await expect(pause.getByRole("cell").nth(3)).toHaveText("pause");

  // Every charted metric carries the three markers, on the epoch axis and on the step axis alike.
  await expect(curves.getByRole("img", { name: "val_loss chart" })).toHaveAttribute("data-markers", "3");
  await expect(curves.getByRole("img", { name: /chart$/ }).first()).toHaveAttribute("data-markers", "3");
  await curves.getByLabel("x axis").selectOption("step");
  await expect(curves.getByRole("img", { name: "val_loss chart" })).toHaveAttribute("data-markers", "3");
});

test("[COMPARE PILOT]: a paused run can be cancelled from its run page", async ({ page }) => {
  test.setTimeout(180_000);
  await signIn(page, "engineer");
  await createExperiment(page, unique("e2e cancel paused"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const run = await createPausedRun(page, experimentId, "paused-run");

  await page.goto(`/runs/${run.id}`);
  const status = page.locator("[data-status]").first();
  await expect(status).toHaveText(`paused at epoch ${run.pausedAt}`);
  await cancelRunOnPage(page, "e2e: paused for good, not worth resuming");
  await expect(status).toHaveAttribute("data-status", "cancelled", { timeout: 30_000 });
  await expect(page.getByRole("button", { name: "Cancel run" })).toHaveCount(0);
  expect(await statusOf(page, run.id)).toBe("cancelled");
});
