/**
 * Issue 15, piloting a run logged by a script, in the real app: a Node loop (the typed client of
 * contracts/mlflow/client.ts, with a token from the account page) logs a metric per epoch and asks the server between
 * epochs what the pilot wants (betweenEpochs: pending interventions, acknowledged at its step). An engineer pauses the
 * run on its page: the page shows the pause applied at the step the loop acknowledged and the run paused there; the
 * loop waits; Resume lets it go on; Stop ends it, kept as completed (stopped by decision). The audit page says the
 * same sentences as for an embedded run. An engineer also changes the learning rate (a logged param) of an API run:
 * the loop (followPilot) applies the new value from the step it acknowledged it at, and the run page shows the
 * change at that step.
 */
import { expect, test } from "@playwright/test";
import { MlflowClient } from "../contracts/mlflow/client";
import { createTokenOnAccountPage, signIn, unique } from "./helpers";

test("an engineer pauses, resumes and stops an API run in the browser; the script's loop follows at its steps", async ({
  page,
  baseURL,
}) => {
  await signIn(page, "engineer");
  const ml = new MlflowClient(baseURL!, await createTokenOnAccountPage(page, "e2e pilot script"));

  const { experiment_id } = await ml.call("experiments/create", { name: unique("e2e-api-pilot") });
  const { run } = await ml.call("runs/create", { experiment_id, run_name: "piloted script" });
  const run_id = run.info.run_id;

  // The script: an epoch (a short stand-in for training), its metric, then what the pilot wants at this step.
  const acknowledged: string[] = [];
  const abort = new AbortController();
  const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const loop = (async () => {
    for (let step = 1; step <= 5000 && !abort.signal.aborted; step++) {
      await ml.call("runs/log-metric", { run_id, key: "loss", value: 1 / step, timestamp: Date.now(), step });
      await tick(150);
      for (;;) {
        const { action, applied } = await ml.betweenEpochs(run_id, step);
        for (const a of applied) acknowledged.push(`${a.kind}@${a.applied_at_step}`);
        if (action === "stop") return step;
        if (action === "continue" || abort.signal.aborted) break;
        await tick(250); // paused: ask again a little later
      }
    }
    return null;
  })();

  try {
    await page.goto(`/runs/${run_id}`);
    const status = page.locator("[data-status]").first();
    await expect(status).toHaveAttribute("data-status", "running");
    const pilot = page.getByRole("region", { name: "Pilot" });
    await expect(pilot).toContainText("logged by a script through the tracking API");
    // The subtitle says where the run came from (it read "api of run #null").
    await expect(page.getByText(/created .* · logged through the MLflow-compatible API$/)).toBeVisible();
    await expect(page.getByText("of run #null")).toHaveCount(0);
    // A script's run has no training config to adjust: its settings are its logged params (none logged here).
    await expect(pilot.getByRole("form", { name: "Adjust settings" })).toHaveCount(0);
    await expect(pilot.getByRole("form", { name: "Change a param" })).toContainText("The script has logged no param yet.");

    await pilot.getByLabel("Pilot rationale").fill("e2e: hold the script, look at the loss");
    await pilot.getByRole("button", { name: "Pause", exact: true }).click();
    await expect(status).toHaveAttribute("data-status", "paused");
    const interventions = page.getByRole("region", { name: "Interventions" });
    const pause = interventions.getByRole("listitem", { name: /: Pause$/ });
    await expect(pause).toContainText(/applied at epoch \d+ \(step \d+\)/);
    const step = Number(/\(step (\d+)\)/.exec((await pause.textContent())!)![1]);
    expect(step).toBeGreaterThan(0);
    // The step the page shows is the one the loop acknowledged it at.
    await expect.poll(() => acknowledged).toEqual([`pause@${step}`]);
    await expect(page.getByRole("region", { name: "Paused" })).toContainText(`Paused at step ${step}`);
    await expect(pause).toContainText("“e2e: hold the script, look at the loss”");
    await expect(pause).toContainText(/decision #\d+/);

    // While paused the loop logs nothing further.
    const history = async () => (await ml.call("metrics/get-history", { run_id, metric_key: "loss" })).metrics?.length ?? 0;
    expect(await history()).toBe(step);

    await pilot.getByLabel("Pilot rationale").fill("e2e: looks fine, go on");
    await pilot.getByRole("button", { name: "Resume" }).click();
    await expect(status).toHaveAttribute("data-status", "running");
    await expect(interventions.getByRole("listitem", { name: /: Resume$/ })).toContainText(`applied at epoch ${step} (step ${step})`);
    await expect.poll(history).toBeGreaterThan(step);

    await pilot.getByLabel("Pilot rationale").fill("e2e: enough, keep it");
    await pilot.getByRole("button", { name: "Stop (keep as completed)" }).click();
    await expect(status).toHaveAttribute("data-status", "completed");
    const stoppedAt = await loop;
    expect(stoppedAt).toBeGreaterThan(step);
    await expect(interventions.getByRole("listitem", { name: /: Stop$/ })).toContainText(
      `applied at epoch ${stoppedAt} (step ${stoppedAt})`,
    );
    expect(acknowledged).toEqual([`pause@${step}`, `resume@${step}`, `stop@${stoppedAt}`]);
    await expect(page.getByRole("region", { name: "Summary" })).toContainText("completed (stopped by decision)");

    // The audit page: the same sentences as for an embedded run.
    await page.goto("/audit");
    await page.getByLabel("Filter by action").selectOption("run.interventionApplied");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect(
      page.getByText(new RegExp(`Erin Engineer's request #\\d+ \\(pause\\) took effect on run #${run_id} at epoch ${step}`)),
    ).toBeVisible();
    await expect(
      page.getByText(new RegExp(`Erin Engineer's request #\\d+ \\(stop\\) took effect on run #${run_id} at epoch ${stoppedAt}`)),
    ).toBeVisible();
  } finally {
    abort.abort();
    await loop.catch(() => null);
  }
});

test("an engineer changes the learning rate of an API run in the browser; the script applies it from the step it acknowledged", async ({
  page,
  baseURL,
}) => {
  await signIn(page, "engineer");
  const ml = new MlflowClient(baseURL!, await createTokenOnAccountPage(page, "e2e settings script"));

  const { experiment_id } = await ml.call("experiments/create", { name: unique("e2e-api-settings") });
  const { run } = await ml.call("runs/create", {
    experiment_id,
    run_name: "script with a learning rate",
    tags: [{ key: "runledger.rationale", value: "e2e: the usual settings" }],
  });
  const run_id = run.info.run_id;
  await ml.call("runs/log-batch", {
    run_id,
    params: [
      { key: "learning_rate", value: "0.01" },
      { key: "batch_size", value: "32" },
    ],
  });

  // The script: an epoch with the learning rate in force (logged as the metric "lr"), then what the pilot wants.
  let lr = 0.01;
  const changedAt: string[] = [];
  const abort = new AbortController();
  const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const loop = (async () => {
    for (let step = 1; step <= 5000 && !abort.signal.aborted; step++) {
      await ml.call("runs/log-batch", {
        run_id,
        metrics: [
          { key: "loss", value: 1 / step, timestamp: Date.now(), step },
          { key: "lr", value: lr, timestamp: Date.now(), step },
        ],
      });
      await tick(150);
      const { action, settings } = await ml.followPilot(run_id, step, { pollMs: 250, signal: abort.signal });
      if (settings.learning_rate !== undefined) {
        lr = Number(settings.learning_rate);
        changedAt.push(`${settings.learning_rate}@${step}`);
      }
      if (action === "stop") return step;
    }
    return null;
  })();

  try {
    await page.goto(`/runs/${run_id}`);
    const settings = page.getByRole("region", { name: "Settings" });
    const lrRow = settings.getByRole("row", { name: /learning_rate/ });
    await expect(lrRow).toContainText("0.01");
    const pilot = page.getByRole("region", { name: "Pilot" });
    const form = pilot.getByRole("form", { name: "Change a param" });
    await form.getByLabel("Param").selectOption("learning_rate");
    await expect(form).toContainText("current 0.01");
    await form.getByLabel("New value").fill("0.005");
    // A rationale is required before anything is sent.
    await form.getByRole("button", { name: "Request change" }).click();
    await expect(pilot.getByRole("alert")).toContainText("A rationale is required");
    await pilot.getByLabel("Pilot rationale").fill("e2e: the loss flattens, halve the learning rate");
    await form.getByRole("button", { name: "Request change" }).click();

    // The loop acknowledges it at a step; the page shows it applied there, as a decision with from → to.
    const interventions = page.getByRole("region", { name: "Interventions" });
    const change = interventions.getByRole("listitem", { name: /: Adjust$/ });
    // A param's values are text: shown quoted, as a text setting of an embedded run is.
    await expect(change).toContainText('learning_rate "0.01" → "0.005"');
    await expect(change).toContainText(/applied at epoch \d+ \(step \d+\)/);
    const step = Number(/\(step (\d+)\)/.exec((await change.textContent())!)![1]);
    await expect.poll(() => changedAt).toEqual([`0.005@${step}`]);
    await expect(change).toContainText(/decision #\d+/);
    await expect(change).toContainText("“e2e: the loss flattens, halve the learning rate”");
    await expect(lrRow).toContainText(`0.01 → 0.005 from step ${step}`);
    await expect(lrRow.getByRole("cell").first()).toHaveText("0.005");
    await expect(settings.getByRole("row", { name: /batch_size/ })).not.toContainText("→");

    // The script trained with the new value from the next step on.
    await expect
      .poll(
        async () => (await ml.call("metrics/get-history", { run_id, metric_key: "lr" })).metrics?.find((m) => m.step === step + 1)?.value,
      )
      .toBe(0.005);
    const history = (await ml.call("metrics/get-history", { run_id, metric_key: "lr" })).metrics ?? [];
    expect(history.filter((m) => m.step <= step).every((m) => m.value === 0.01)).toBe(true);

    // The decisions timeline holds the change, by the engineer, with its rationale.
    await expect(page.getByRole("region", { name: "Decisions timeline" })).toContainText("e2e: the loss flattens, halve the learning rate");

    await pilot.getByLabel("Pilot rationale").fill("e2e: enough");
    await pilot.getByRole("button", { name: "Stop (keep as completed)" }).click();
    await expect(page.locator("[data-status]").first()).toHaveAttribute("data-status", "completed");
    expect(await loop).toBeGreaterThan(step);
  } finally {
    abort.abort();
    await loop.catch(() => null);
  }
});
