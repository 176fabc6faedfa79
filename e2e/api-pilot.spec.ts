/**
 * Issue 15, piloting a run logged by a script, in the real app: a Node loop (the typed client of
 * contracts/mlflow/client.ts, with a token from the account page) logs a metric per epoch and asks the server between
 * epochs what the pilot wants (betweenEpochs: pending interventions, acknowledged at its step). An engineer pauses the
 * run on its page: the page shows the pause applied at the step the loop acknowledged and the run paused there; the
 * loop waits; Resume lets it go on; Stop ends it, kept as completed (stopped by decision). The audit page says the
 * same sentences as for an embedded run.
 */
import { expect, test } from "@playwright/test";
import { MlflowClient } from "../contracts/mlflow/client";
import { signIn, unique } from "./helpers";

test("an engineer pauses, resumes and stops an API run in the browser; the script's loop follows at its steps", async ({
  page,
  baseURL,
}) => {
  await signIn(page, "engineer");
  await page.goto("/account");
  const tokens = page.getByRole("region", { name: "Access tokens" });
  await tokens.getByLabel("Token name").fill(unique("e2e pilot script"));
  await tokens.getByRole("button", { name: "Create token" }).click();
  const shown = tokens.getByLabel("New token");
  await expect(shown).toHaveText(/^rlt_/);
  const ml = new MlflowClient(baseURL!, (await shown.textContent())!.trim());

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
    // A script's run takes pause, resume and stop only: no settings to adjust.
    await expect(pilot.getByRole("form", { name: "Adjust settings" })).toHaveCount(0);

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
