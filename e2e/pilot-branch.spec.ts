/**
 * Rollback branches and replaying re-runs in the browser (issue 13). An engineer rolls a completed Iris run back to an
 * earlier checkpoint with a lower learning rate and a rationale: the server's refusal of an impossible branch is shown
 * verbatim, the branch run opens from the link, names its origin (run and epoch), trains to completion, and the
 * source's decisions show the rollback and the branch. A re-run of a run whose learning rate was changed in flight
 * says it replays that decision, shows it as a planned decision at its epoch, and ends with the source's weights hash.
 *
 * Each test seeds its own experiment and run through the API (the real trainer trains them) and waits on states,
 * never on fixed sleeps.
 */
import { test, expect, type Page } from "@playwright/test";
import { createExperiment, signIn, trpcCall, unique } from "./helpers";

async function call<T>(page: Page, kind: "query" | "mutation", proc: string, input: unknown): Promise<T> {
  const res = await trpcCall(page, kind, proc, input);
  expect(res.status(), `${proc}: ${await res.text()}`).toBe(200);
  return ((await res.json()) as { result: { data: T } }).result.data;
}

/** A small Iris run (checkpoints every epoch, the default). */
function irisConfig(epochs: number) {
  return {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 5 },
    },
    model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.05, batchSize: 8, epochs, seed: 2 },
  };
}

/** The final weights hash as the Summary shows it (first 12 hex digits). */
async function shortWeightsHash(page: Page): Promise<string> {
  const dd = page
    .getByRole("region", { name: "Summary" })
    .getByRole("definition")
    .filter({ has: page.getByRole("button", { name: "Copy final weights sha256" }) });
  await expect(dd).toHaveText(/[0-9a-f]{12}…/);
  return /([0-9a-f]{12})…/.exec((await dd.textContent())!)![1]!;
}

test("[BRANCH]: an engineer rolls a completed run back to an earlier checkpoint with a lower learning rate; the branch names its origin and completes; the source's decisions show the rollback", async ({
  page,
}) => {
  test.setTimeout(180_000);
  await signIn(page, "engineer");
  await createExperiment(page, unique("e2e branch"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const source = await call<{ id: number }>(page, "mutation", "runs.create", {
    experimentId,
    config: irisConfig(10),
    rationale: "e2e: a run to roll back",
  });
  await page.goto(`/runs/${source.id}`);
  const status = page.locator("[data-status]").first();
  await expect(status).toHaveAttribute("data-status", "completed", { timeout: 120_000 });

  // A completed run shows only the rollback control (nothing else to pilot).
  await expect(page.getByRole("region", { name: "Pilot" })).toHaveCount(0);
  const rollback = page.getByRole("region", { name: "Roll back" });
  await rollback.getByRole("button", { name: "Roll back" }).click();
  await expect(rollback.getByRole("alert")).toHaveText(
    "Pick the checkpoint to continue from. A rationale is required: say why you roll this run back.",
  );

  const run = await call<{ checkpoints: { id: number; epoch: number }[] }>(page, "query", "runs.get", { id: source.id });
  const ck4 = run.checkpoints.find((c) => c.epoch === 4)!;
  expect(ck4).toBeTruthy();
  await rollback.getByLabel("Checkpoint to continue from").selectOption(String(ck4.id));

  // A branch that could not train is refused by the server: its message, verbatim, and nothing is created.
  await rollback.getByLabel("Branch total epochs").fill("3");
  await rollback.getByLabel("Rollback rationale").fill("e2e: on purpose, too few epochs");
  await rollback.getByRole("button", { name: "Roll back" }).click();
  await expect(rollback.getByRole("alert")).toHaveText(
    "the branch continues after epoch 4 but would train only 3 epochs: raise training.epochs",
  );

  await rollback.getByLabel("Branch total epochs").fill("");
  await rollback.getByLabel("Branch learning rate").fill("0.01");
  await rollback.getByLabel("Rollback rationale").fill("e2e: the loss jumped after epoch 4, go back with a lower rate");
  await rollback.getByRole("button", { name: "Roll back" }).click();
  const link = rollback.getByRole("status").getByRole("link", { name: /^Branch run \d+ created from epoch 4$/ });
  await expect(link).toBeVisible();
  const branchId = Number(/Branch run (\d+)/.exec((await link.textContent())!)![1]);

  // The source's decisions and interventions show the rollback (applied at once, at its checkpoint) and the branch.
  const timeline = page.getByRole("region", { name: "Decisions timeline" });
  const own = timeline.getByRole("listitem", { name: `Decisions of run #${source.id}` });
  await expect(own).toContainText("In flight");
  await expect(own).toContainText("rollback; training.learningRate 0.05 → 0.01");
  await expect(own).toContainText("“e2e: the loss jumped after epoch 4, go back with a lower rate”");
  await expect(timeline.getByRole("listitem", { name: `Decisions of run #${branchId}` })).toContainText(
    `branched from run #${source.id} at epoch 4`,
  );
  const rolledBack = page.getByRole("region", { name: "Interventions" }).getByRole("listitem", { name: /: Roll back$/ });
  await expect(rolledBack).toContainText("applied at epoch 4");
  await expect(rolledBack.getByRole("link", { name: `branch run #${branchId} (from epoch 4)` })).toBeVisible();

  // The branch: its origin, its change decision, and it trains from epoch 5 to the end.
  await link.click();
  await expect(page).toHaveURL(new RegExp(`/runs/${branchId}$`));
  await expect(page.getByText(`branched from run #${source.id} at epoch 4`).first()).toBeVisible();
  const branchStatus = page.locator("[data-status]").first();
  await expect(branchStatus).toHaveAttribute("data-status", "completed", { timeout: 120_000 });
  const branchOwn = page
    .getByRole("region", { name: "Decisions timeline" })
    .getByRole("listitem", { name: `Decisions of run #${branchId}` });
  await expect(branchOwn).toContainText(`branched from run #${source.id} at epoch 4`);
  await expect(branchOwn).toContainText("training.learningRate 0.05 → 0.01");
  await expect(page.getByRole("region", { name: "Summary" })).toContainText(`run #${source.id}, epoch 4`);
});

test("[REPLAY]: a re-run of a run with an in-flight learning-rate change replays it as a planned decision and ends with the same weights hash", async ({
  page,
}) => {
  test.setTimeout(180_000);
  await signIn(page, "engineer");
  await createExperiment(page, unique("e2e replay"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const source = await call<{ id: number }>(page, "mutation", "runs.create", {
    experimentId,
    config: irisConfig(30),
    rationale: "e2e: a run to pilot then re-run",
  });
  // Asked while the run is queued or starting: it takes effect at its first epoch boundary.
  await call(page, "mutation", "runs.pilot.request", {
    runId: source.id,
    kind: "set",
    set: { "training.learningRate": 0.01 },
    rationale: "e2e: lower the learning rate early",
  });
  await page.goto(`/runs/${source.id}`);
  await expect(page.locator("[data-status]").first()).toHaveAttribute("data-status", "completed", { timeout: 120_000 });
  const adjust = page.getByRole("region", { name: "Interventions" }).getByRole("listitem", { name: /: Adjust$/ });
  await expect(adjust).toContainText(/applied at epoch \d+ \(step \d+\)/);
  const appliedAt = Number(/applied at epoch (\d+)/.exec((await adjust.textContent())!)![1]);
  const sourceHash = await shortWeightsHash(page);

  await page.getByRole("link", { name: "Re-run", exact: true }).click();
  const form = page.getByRole("form", { name: "Re-run" });
  await expect(form.getByRole("note", { name: "Replayed decisions" })).toHaveText(
    "This re-run replays 1 in-flight decision at its epoch, each recorded as a planned decision: on the same backend it ends with the same weights.",
  );
  await form.getByLabel("Rationale").fill("e2e: check that the piloted run reproduces");
  await form.getByRole("button", { name: "Launch re-run" }).click();
  await expect(page).not.toHaveURL(new RegExp(`/runs/${source.id}(/|$)`));
  await expect(page).toHaveURL(/\/runs\/\d+$/);

  await expect(page.getByText(`re-run of run #${source.id}`).first()).toBeVisible();
  await expect(page.locator("[data-status]").first()).toHaveAttribute("data-status", "completed", { timeout: 120_000 });
  const timeline = page.getByRole("region", { name: "Decisions timeline" });
  await expect(timeline).toContainText("Planned");
  await expect(timeline).toContainText(`at epoch ${appliedAt}: training.learningRate 0.05 → 0.01`);
  await expect(timeline).toContainText(`replays intervention #`);
  expect(await shortWeightsHash(page)).toBe(sourceHash);
  await expect(page.getByText(`reproduced run #${source.id} exactly`)).toBeVisible();
});
