/**
 * Live piloting in the browser (issue 13): an engineer pauses a running run from the Pilot panel, lowers the learning
 * rate (and shortens the run) with a rationale while it is paused, resumes it, and it completes; the curves carry a
 * marker per intervention (asserted on their accessible list: canvas content is not inspectable), the decisions
 * timeline shows the in-flight decision with its metrics snapshot and effect, and the auditor's report lists it.
 * An auditor sees the interventions read-only, with no Pilot controls, and the server refuses a request from them.
 *
 * The test seeds its own experiment and run through the API (the real trainer trains it) and waits on states, never
 * on fixed sleeps.
 */
import { test, expect, type Page } from "@playwright/test";
import { createExperiment, signIn, trpcCall, unique } from "./helpers";

async function call<T>(page: Page, kind: "query" | "mutation", proc: string, input: unknown): Promise<T> {
  const res = await trpcCall(page, kind, proc, input);
  expect(res.status(), `${proc}: ${await res.text()}`).toBe(200);
  return ((await res.json()) as { result: { data: T } }).result.data;
}

test("[PILOT]: an engineer pauses a running run, lowers the learning rate with a rationale and resumes; markers, decision snapshot and the auditor's report show it", async ({
  page,
  browser,
  baseURL,
}) => {
  test.setTimeout(240_000);
  await signIn(page, "engineer");
  await createExperiment(page, unique("e2e pilot"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  // Enough small epochs that the run is still training when the pause is asked for; the pilot shortens it later.
  const config = {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 5 },
    },
    model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.05, batchSize: 8, epochs: 400, seed: 2 },
  };
  const run = await call<{ id: number }>(page, "mutation", "runs.create", { experimentId, config, rationale: "e2e: a run to pilot" });
  await page.goto(`/runs/${run.id}`);
  const status = page.locator("[data-status]").first();
  await expect(status).toHaveAttribute("data-status", "running", { timeout: 90_000 });
  // The web server trains it: its Summary names this live process by its heartbeat, never as gone.
  const summary = page.getByRole("region", { name: "Summary" });
  const holder = summary.getByRole("definition").filter({ hasText: /· pid \d+/ });
  await expect(holder).toContainText(/^process on .+ · pid \d+ — heartbeat /);

  // Pause: a rationale is required first.
  const pilot = page.getByRole("region", { name: "Pilot" });
  await pilot.getByRole("button", { name: "Pause", exact: true }).click();
  await expect(pilot.getByRole("alert")).toHaveText("A rationale is required: say why you pause this run.");
  await pilot.getByLabel("Pilot rationale").fill("e2e: hold on, look at the curves");
  await pilot.getByRole("button", { name: "Pause", exact: true }).click();
  await expect(status).toHaveAttribute("data-status", "paused", { timeout: 60_000 });
  await expect(status).toHaveText(/^paused at epoch \d+$/);
  const pausedAt = Number(/epoch (\d+)/.exec((await status.textContent())!)![1]);
  expect(pausedAt).toBeGreaterThan(0);
  expect(pausedAt).toBeLessThan(400);
  const interventions = page.getByRole("region", { name: "Interventions" });
  await expect(interventions.getByRole("listitem", { name: /: Pause$/ })).toContainText(`applied at epoch ${pausedAt} (step `);
  await expect(page.getByRole("region", { name: "Paused" })).toContainText(`Paused at epoch ${pausedAt} of 400`);
  // A paused run may still train: its metrics are the latest, not final.
  await expect(summary.getByRole("term").filter({ hasText: /^val_loss/ })).toHaveText("val_loss (latest)");

  // An auditor, meanwhile, sees the run paused and its interventions, but no pilot controls; the server refuses them too.
  const auditorContext = await browser.newContext({ baseURL });
  const auditor = await auditorContext.newPage();
  await signIn(auditor, "auditor");
  await auditor.goto(`/runs/${run.id}`);
  await expect(auditor.locator("[data-status]").first()).toHaveText(`paused at epoch ${pausedAt}`);
  await expect(auditor.getByRole("region", { name: "Interventions" }).getByRole("listitem", { name: /: Pause$/ })).toBeVisible();
  await expect(auditor.getByRole("region", { name: "Pilot" })).toHaveCount(0);
  await expect(auditor.getByRole("button", { name: "Pause" })).toHaveCount(0);
  await expect(auditor.getByRole("button", { name: "Resume" })).toHaveCount(0);
  const refused = await trpcCall(auditor, "mutation", "runs.pilot.request", { runId: run.id, kind: "resume", rationale: "not mine" });
  expect(refused.status()).toBe(403);

  // An invalid value: the server's message, verbatim.
  await pilot.getByLabel("Learning rate").fill("-1");
  await pilot.getByLabel("Pilot rationale").fill("e2e: on purpose");
  await pilot.getByRole("button", { name: "Apply changes" }).click();
  await expect(pilot.getByRole("alert")).toContainText("training.learningRate: learningRate must be > 0 (got -1)");

  // Lower the learning rate and end the run a few epochs after the resume.
  const epochs = pausedAt + 6;
  await pilot.getByLabel("Learning rate").fill("0.005");
  await pilot.getByLabel("Total epochs").fill(String(epochs));
  await pilot.getByLabel("Pilot rationale").fill("e2e: the validation loss oscillates, lower the learning rate");
  await pilot.getByRole("button", { name: "Apply changes" }).click();
  const adjust = interventions.getByRole("listitem", { name: /: Adjust$/ });
  await expect(adjust).toContainText("pending — takes effect when the run resumes");
  await expect(adjust).toContainText(`training.epochs 400 → ${epochs}; training.learningRate 0.05 → 0.005`);
  await expect(adjust.getByRole("button", { name: "Cancel" })).toBeVisible();

  await pilot.getByLabel("Pilot rationale").fill("e2e: go on with the lower rate");
  await pilot.getByRole("button", { name: "Resume" }).click();
  await expect(status).toHaveAttribute("data-status", "completed", { timeout: 120_000 });
  await expect(summary.getByRole("term").filter({ hasText: /^val_loss/ })).toHaveText("val_loss (final)");
  await expect(adjust).toContainText(/applied at epoch \d+ \(step \d+\)/);
  const appliedAt = Number(/applied at epoch (\d+)/.exec((await adjust.textContent())!)![1]);
  expect(appliedAt).toBeGreaterThanOrEqual(pausedAt);
  const decisionId = Number(/decision #(\d+)/.exec((await adjust.textContent())!)![1]);
  await expect(interventions.getByRole("listitem", { name: /: Resume$/ })).toContainText(`applied at epoch ${pausedAt}`);

  // The curves: one marker per applied intervention, listed accessibly; the learning-rate chart shows the drop.
  const markers = page.getByRole("list", { name: "Intervention markers" });
  await expect(markers.getByRole("listitem")).toHaveCount(3);
  await expect(markers.getByRole("listitem", { name: `Marker at epoch ${pausedAt}: pause` })).toContainText(
    "Erin Engineer: pause — “e2e: hold on, look at the curves”",
  );
  await expect(
    markers.getByRole("listitem", {
      name: `Marker at epoch ${appliedAt}: training.epochs 400 → ${epochs}; training.learningRate 0.05 → 0.005`,
    }),
  ).toContainText("“e2e: the validation loss oscillates, lower the learning rate”");
  await expect(page.getByRole("img", { name: "Loss curve" })).toHaveAttribute("data-markers", "3");
  await expect(page.getByRole("img", { name: "Learning rate curve" })).toHaveAttribute("data-points", String(epochs));

  // The decisions timeline: the in-flight decision with the metrics the pilot saw and its effect afterwards.
  const timeline = page.getByRole("region", { name: "Decisions timeline" });
  await expect(timeline).toContainText("training.learningRate 0.05 → 0.005");
  const snapshot = timeline.getByLabel(`Metrics at decision #${decisionId}`);
  await expect(snapshot).toContainText(`took effect at epoch ${appliedAt} (step `);
  await expect(snapshot).toContainText(/at decision: .*val_loss \d/);
  await expect(snapshot).toContainText(/trend before: val_loss .*\(epoch \d+\)/);
  await expect(snapshot).toContainText(
    new RegExp(`effect: val_loss [\\d.e+-]+ at epoch ${appliedAt} → [\\d.e+-]+ at epoch ${appliedAt + 3} \\(`),
  );

  // The auditor's report lists the in-flight decision: who, when (epoch, step), what, why, and the metrics snapshot.
  const version = await call<{ modelVersionId: number }>(page, "mutation", "models.register", {
    runId: run.id,
    modelName: unique("e2e-pilot").replace(/\s+/g, "-"),
  });
  await auditor.goto(`/report/${version.modelVersionId}`);
  await auditor.getByRole("button", { name: "Preview report" }).click();
  const report = auditor.frameLocator('iframe[title="Auditor\'s report preview"]');
  const inFlight = report.getByRole("table", { name: "In-flight decisions" });
  const row = inFlight.getByRole("row").filter({ hasText: new RegExp(`^\\s*#${decisionId}\\s`) });
  await expect(row).toContainText(`epoch ${appliedAt}, step `);
  await expect(row).toContainText("training.learningRate: 0.05 → 0.005");
  await expect(row).toContainText("e2e: the validation loss oscillates, lower the learning rate");
  await expect(row).toContainText("Erin Engineer");
  await expect(row).toContainText(/val_loss trend: /);
  await expect(inFlight.getByRole("row")).toHaveCount(4); // header + pause, resume, adjust
  await auditorContext.close();
});
