/**
 * Piloting a run logged by a script (issue 15): an engineer pauses, resumes and stops an API run through tRPC (the run
 * page's Pilot panel), and a script-like loop driving the real route handlers over plain HTTP (mlflow-http-fixture)
 * logs metrics, polls GET /api/2.0/runledger/runs/pending-interventions between its epochs and acknowledges each
 * intervention at a step (MlflowClient.betweenEpochs). The record is the one an embedded run's trainer writes: same
 * rows, decisions, ledger actions and sentences (compared with an embedded run's pause), and `audit verify` (chain and
 * content) passes. Tokens of auditors and reviewers cannot acknowledge; bad input is an MLflow error recording nothing.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { and, eq } from "drizzle-orm";
import { auditEvents, checkpoints, decisions, runInterventions, runs } from "@/db/schema";
import { verifyDatabase } from "@/server/audit/verify";
import { checkContent } from "@/server/audit/content/verify-content";
import { snapshot } from "@/server/audit/content/tests/content-fixture";
import { canonicalJson } from "@/contracts/canonical";
import { interventionOutcomeSha256 } from "@/server/audit/content/intervention-records";
import { createRun } from "@/server/runs/service";
import { applyIntervention } from "@/server/runs/pilot";
import { RunOrchestrator } from "@/server/runs/orchestrator/orchestrator";
import { actorOf } from "@/server/users/service";
import { eventSentence } from "@/app/_components/audit/event-sentence";
import { MlflowClient } from "@/contracts/mlflow/client";
import { expectMlflowError, startMlflowServer, tokenFor, userOf } from "./mlflow-http-fixture";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

let app: TestApp;
let mlflow: Awaited<ReturnType<typeof startMlflowServer>>;
let engineer: MlflowClient;
let engineerTokenId: number;

const counts = () => ({
  events: app.db.select().from(auditEvents).all().length,
  interventions: app.db.select().from(runInterventions).all().length,
  applied: app.db.select().from(runInterventions).where(eq(runInterventions.status, "applied")).all().length,
  decisions: app.db.select().from(decisions).all().length,
});
const eventsOf = (action: string) => app.db.select().from(auditEvents).where(eq(auditEvents.action, action)).all();
const sentence = (e: typeof auditEvents.$inferSelect) =>
  eventSentence({
    actorName: e.actorName,
    action: e.action,
    entityType: e.entityType,
    entityId: e.entityId,
    payload: JSON.parse(e.payload),
  });

async function newApiRun(name: string): Promise<string> {
  const { experiment_id } = await engineer.call("experiments/create", { name: `pilot-${name}` });
  const { run } = await engineer.call("runs/create", { experiment_id, run_name: name, start_time: Date.now() });
  return run.info.run_id;
}
const logEpoch = (run_id: string, step: number, loss: number) =>
  engineer.call("runs/log-batch", {
    run_id,
    metrics: [
      { key: "loss", value: loss, timestamp: Date.now(), step },
      { key: "accuracy", value: 1 - loss, timestamp: Date.now(), step },
    ],
  });

beforeAll(async () => {
  app = createTestApp();
  mlflow = await startMlflowServer(app);
  const t = await tokenFor(app, "engineer", "training script");
  engineerTokenId = t.id;
  engineer = new MlflowClient(mlflow.base, t.token);
});

afterAll(async () => {
  await mlflow?.close();
  app?.close();
});

describe("a script follows a pilot: pause, resume, stop", () => {
  it("the loop acknowledges each at a step; the run page and the ledger hold the same record as for an embedded run", async () => {
    const run_id = await newApiRun("followed");
    const runId = Number(run_id);
    const pilot = app.as("engineer");
    const actions: string[] = [];
    const losses = [0.9, 0.7, 0.55, 0.5, 0.45, 0.4];
    let step = 0;
    let paused = 0;
    // The script: one epoch, its metrics, then what the pilot wants; the pilot acts at fixed points of the loop.
    for (const loss of losses) {
      step += 1;
      await logEpoch(run_id, step, loss);
      if (step === 2) await pilot.runs.pilot.request({ runId, kind: "pause", rationale: "look at the curves before going on" });
      if (step === 4) await pilot.runs.pilot.request({ runId, kind: "stop", rationale: "good enough: stop and keep it" });
      let { action } = await engineer.betweenEpochs(run_id, step);
      while (action === "pause") {
        actions.push(`pause@${step}`);
        paused += 1;
        if (paused === 1) {
          // While paused: reading the pending list changes nothing; the script may not set itself RUNNING.
          const before = counts();
          const pending = await engineer.pendingInterventions(run_id);
          expect(pending).toEqual({ run_id, run_status: "paused", interventions: [] });
          await expectMlflowError(engineer.call("runs/update", { run_id, status: "RUNNING" }), "INVALID_STATE", 400, /paused by a pilot/);
          const page = await app.as("auditor").runs.get({ id: runId });
          expect(page.status).toBe("paused");
          await pilot.runs.pilot.request({ runId, kind: "resume", rationale: "curves look fine: go on" });
          const asked = await engineer.pendingInterventions(run_id);
          expect(asked.interventions.map((i) => [i.kind, i.rationale, i.requested_by])).toEqual([
            ["resume", "curves look fine: go on", userOf(app, "engineer").email],
          ]);
          expect(counts().events).toBe(before.events + 1); // the resume request only
        }
        ({ action } = await engineer.betweenEpochs(run_id, step));
      }
      actions.push(`${action}@${step}`);
      if (action === "stop") break;
    }
    expect(actions).toEqual(["continue@1", "pause@2", "continue@2", "continue@3", "stop@4"]);

    // The run ended as an embedded run a pilot stopped: completed, run.complete with stoppedByDecision.
    const row = app.db.select().from(runs).where(eq(runs.id, runId)).get()!;
    expect(row.status).toBe("completed");
    const complete = eventsOf("run.complete").find((e) => e.entityId === run_id)!;
    expect(JSON.parse(complete.payload)).toMatchObject({ status: "completed", stoppedByDecision: true, finalMetrics: { loss: 0.5 } });
    expect((await engineer.call("runs/get", { run_id })).run.info.status).toBe("FINISHED");
    await expectMlflowError(logEpoch(run_id, 5, 0.45), "INVALID_PARAMETER_VALUE", 400, /has ended/);

    // The run page's data: three interventions applied at their steps, each with its decision by the requester.
    const list = await app.as("auditor").runs.pilot.list({ runId });
    expect(list.map((i) => [i.kind, i.status, i.appliedAtEpoch, i.appliedAtStep, i.checkpointId, i.decision?.path])).toEqual([
      ["pause", "applied", 2, 2, null, "pause"],
      ["resume", "applied", 2, 2, null, "resume"],
      ["stop", "applied", 4, 4, null, "stop"],
    ]);
    const engineerUser = userOf(app, "engineer");
    for (const i of list) {
      expect(i.decision).toMatchObject({ kind: "intervention", authorId: engineerUser.id, rationale: i.rationale, runId });
      expect(i.metricsSnapshot?.watched?.metric).toBe("loss");
    }
    expect(list[0]!.metricsSnapshot).toEqual({
      last: { accuracy: 1 - 0.7, loss: 0.7 },
      watched: {
        metric: "loss",
        trend: [
          { epoch: 1, value: 0.9 },
          { epoch: 2, value: 0.7 },
        ],
      },
    });
    // The effect of the pause on the watched metric over the following steps, as for an embedded run.
    expect(list[0]!.effect).toMatchObject({ metric: "loss", before: { epoch: 2, value: 0.7 }, delta: 0.5 - 0.7 });
    expect((await app.as("auditor").runs.get({ id: runId })).status).toBe("completed");

    // The ledger: requested and applied events (the applied one by the requester, naming the token that acknowledged
    // it), the resume as the run's next run.start, and the sentences of the audit page.
    const applied = eventsOf("run.interventionApplied").filter((e) => JSON.parse(e.payload).runId === runId);
    expect(applied.map((e) => [e.actorId, JSON.parse(e.payload).kind, JSON.parse(e.payload).step])).toEqual([
      [engineerUser.id, "pause", 2],
      [engineerUser.id, "resume", 2],
      [engineerUser.id, "stop", 4],
    ]);
    for (const e of applied)
      expect(JSON.parse(e.payload)).toMatchObject({ acknowledgedBy: engineerUser.id, acknowledgedViaTokenId: engineerTokenId });
    expect(applied.map(sentence)).toEqual(
      list.map((i) => `${engineerUser.name}'s request #${i.id} (${i.kind}) took effect on run #${runId} at epoch ${i.appliedAtEpoch}`),
    );
    const requested = eventsOf("run.interventionRequested").filter((e) => JSON.parse(e.payload).runId === runId);
    expect(requested.map(sentence)).toEqual([
      `${engineerUser.name} asked to pause run #${runId}: 'look at the curves before going on'`,
      `${engineerUser.name} asked to resume run #${runId}: 'curves look fine: go on'`,
      `${engineerUser.name} asked to stop run #${runId}: 'good enough: stop and keep it'`,
    ]);
    const starts = eventsOf("run.start").filter((e) => e.entityId === run_id);
    expect(starts).toHaveLength(2); // runs/create, then the resume
    expect(starts[1]!.seq).toBeGreaterThan(applied[1]!.seq);

    // The same record as an embedded run's trainer writes when it applies a pause at an epoch boundary.
    const ctx = { ...app, actor: actorOf(engineerUser) };
    const embeddedId = createRun(ctx, { experimentId: app.experimentId, config: irisConfig({ epochs: 1 }), rationale: "embedded" }).id;
    const pause = await pilot.runs.pilot.request({ runId: embeddedId, kind: "pause", rationale: "compare" });
    const unpiloted = new RunOrchestrator(app, { piloted: false });
    await unpiloted.launch(embeddedId);
    await unpiloted.waitFor(embeddedId);
    const ck = app.db.select().from(checkpoints).where(eq(checkpoints.runId, embeddedId)).get()!;
    applyIntervention(app, { interventionId: pause.id, epoch: ck.epoch, step: ck.step, checkpointId: ck.id });
    const embeddedEvent = eventsOf("run.interventionApplied").find((e) => e.entityId === String(pause.id))!;
    const keys = (e: typeof auditEvents.$inferSelect) => Object.keys(JSON.parse(e.payload)).sort();
    expect(keys(applied[0]!)).toEqual([...keys(embeddedEvent), "acknowledgedBy", "acknowledgedViaTokenId"].sort());
    const embeddedDecision = app.db.select().from(decisions).where(eq(decisions.runId, embeddedId)).all().at(-1)!;
    expect(Object.keys(list[0]!.decision!).sort()).toEqual(Object.keys(embeddedDecision).sort());
    expect(sentence(embeddedEvent)).toBe(
      `${engineerUser.name}'s request #${pause.id} (pause) took effect on run #${embeddedId} at epoch 1`,
    );

    // audit verify: the chain, and the content check of interventions, decisions and run states, pass.
    const verified = await verifyDatabase(app.dataDir, { publicKeyPem: app.auditKeys.publicKeyPem });
    expect(verified.ok, verified.problem ?? JSON.stringify(verified.problems.slice(0, 10))).toBe(true);
    expect((verified.levels.content as { skipped?: string }).skipped).toBeUndefined();
  }, 180_000);
});

describe("who may acknowledge, and bad input", () => {
  it("auditor and reviewer tokens read the pending list but cannot acknowledge: 403, nothing recorded", async () => {
    const run_id = await newApiRun("roles");
    await logEpoch(run_id, 1, 0.8);
    const pause = await app.as("engineer").runs.pilot.request({ runId: Number(run_id), kind: "pause", rationale: "check it" });
    const clients = await Promise.all(
      ["auditor", "reviewer"].map(async (role) => new MlflowClient(mlflow.base, (await tokenFor(app, role)).token)),
    );
    const before = counts();
    for (const c of clients) {
      expect((await c.pendingInterventions(run_id)).interventions.map((i) => i.intervention_id)).toEqual([String(pause.id)]);
      await expectMlflowError(
        c.ackIntervention({ run_id, intervention_id: String(pause.id), step: 1 }),
        "PERMISSION_DENIED",
        403,
        /cannot acknowledge interventions/,
      );
      await expectMlflowError(c.betweenEpochs(run_id, 1), "PERMISSION_DENIED", 403);
    }
    await expectMlflowError(new MlflowClient(mlflow.base, null).pendingInterventions(run_id), "UNAUTHENTICATED", 401);
    await expectMlflowError(
      new MlflowClient(mlflow.base, null).ackIntervention({ run_id, intervention_id: String(pause.id), step: 1 }),
      "UNAUTHENTICATED",
      401,
    );
    expect(counts()).toEqual(before);
    expect(app.db.select().from(runInterventions).where(eq(runInterventions.id, pause.id)).get()!.status).toBe("pending");
  });

  it("bad input is MLflow's error with a clear message, and records nothing", async () => {
    const run_id = await newApiRun("bad-input");
    const other = await newApiRun("other-run");
    await logEpoch(run_id, 1, 0.8);
    await logEpoch(run_id, 2, 0.7);
    const pilot = app.as("engineer");
    const pause = await pilot.runs.pilot.request({ runId: Number(run_id), kind: "pause", rationale: "check it" });
    const stop = await pilot.runs.pilot.request({ runId: Number(other), kind: "stop", rationale: "not needed" });
    const pid = String(pause.id);
    const rawToken = (await tokenFor(app, "engineer", "raw")).token;
    const before = counts();
    const raw = (body: string, headers: Record<string, string> = { "content-type": "application/json" }) =>
      fetch(`${mlflow.base}/api/2.0/runledger/runs/ack-intervention`, {
        method: "POST",
        headers: { authorization: `Bearer ${rawToken}`, ...headers },
        body,
      }).then(async (r) => ({ status: r.status, json: (await r.json()) as { error_code: string; message: string } }));

    await expectMlflowError(
      engineer.ackIntervention({ run_id, intervention_id: pid } as never),
      "INVALID_PARAMETER_VALUE",
      400,
      /Missing value for required parameter 'step'/,
    );
    await expectMlflowError(
      engineer.ackIntervention({ run_id, intervention_id: pid, step: -1 }),
      "INVALID_PARAMETER_VALUE",
      400,
      /parameter 'step'.*0 or more/,
    );
    await expectMlflowError(
      engineer.ackIntervention({ run_id, intervention_id: pid, step: "two" as never }),
      "INVALID_PARAMETER_VALUE",
      400,
      /parameter 'step'/,
    );
    await expectMlflowError(
      engineer.ackIntervention({ run_id: "999999", intervention_id: pid, step: 1 }),
      "RESOURCE_DOES_NOT_EXIST",
      404,
      /Run with id=999999 not found/,
    );
    // Another run's intervention, and an unknown one.
    await expectMlflowError(
      engineer.ackIntervention({ run_id, intervention_id: String(stop.id), step: 2 }),
      "RESOURCE_DOES_NOT_EXIST",
      404,
      new RegExp(`Intervention with id=${stop.id} not found on run ${run_id}`),
    );
    await expectMlflowError(engineer.ackIntervention({ run_id, intervention_id: "x1", step: 2 }), "RESOURCE_DOES_NOT_EXIST", 404);
    expect(await raw("{not json")).toMatchObject({
      status: 400,
      json: { error_code: "INVALID_PARAMETER_VALUE", message: /not valid JSON/ },
    });
    expect(await raw("[1]")).toMatchObject({ status: 400, json: { error_code: "INVALID_PARAMETER_VALUE", message: /JSON object/ } });
    expect(await raw("{}", { "content-type": "text/plain" })).toMatchObject({
      status: 400,
      json: { error_code: "INVALID_PARAMETER_VALUE" },
    });
    await expectMlflowError(
      engineer.pendingInterventions(""),
      "INVALID_PARAMETER_VALUE",
      400,
      /Missing value for required parameter 'run_id'/,
    );
    // An unknown endpoint, or the wrong method.
    const notFound = await fetch(`${mlflow.base}/api/2.0/runledger/runs/pending-interventions`, {
      method: "POST",
      headers: { authorization: "Bearer x", "content-type": "application/json" },
      body: "{}",
    });
    expect(notFound.status).toBe(404);
    expect(((await notFound.json()) as { error_code: string }).error_code).toBe("ENDPOINT_NOT_FOUND");
    expect(counts()).toEqual(before);

    // A resume of a run that is not paused is a state error; a pause acknowledged once cannot be acknowledged again.
    await engineer.ackIntervention({ run_id, intervention_id: pid, step: 2 });
    const afterPause = counts();
    await expectMlflowError(engineer.ackIntervention({ run_id, intervention_id: pid, step: 2 }), "INVALID_STATE", 400, /already applied/);
    const resume = await pilot.runs.pilot.request({ runId: Number(run_id), kind: "resume", rationale: "go on" });
    await expectMlflowError(
      engineer.ackIntervention({ run_id, intervention_id: String(resume.id), step: 1 }),
      "INVALID_PARAMETER_VALUE",
      400,
      /step'.*1 is before step 2/,
    );
    expect(counts()).toEqual({ ...afterPause, events: afterPause.events + 1, interventions: afterPause.interventions + 1 });
  });

  it("a pilot may pause, resume, stop or change a logged param of a script's run; an embedded run's list is not served to scripts", async () => {
    const run_id = await newApiRun("kinds");
    const pilot = app.as("engineer");
    const before = counts();
    // A script's settings are its logged params, not a training config.
    await expect(
      pilot.runs.pilot.request({ runId: Number(run_id), kind: "set", set: { "training.learningRate": 0.01 }, rationale: "lower" }),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/training\.learningRate: not a param of run \d+ \(it has logged no param yet\)/),
    });
    await expect(pilot.runs.pilot.request({ runId: Number(run_id), kind: "resume", rationale: "x" })).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringMatching(/is running: resume needs a run that is paused/),
    });
    expect(counts()).toEqual(before);
    const embedded = createRun(
      { ...app, actor: actorOf(userOf(app, "engineer")) },
      { experimentId: app.experimentId, config: irisConfig({ epochs: 1 }), rationale: "never started" },
    );
    await expectMlflowError(
      engineer.pendingInterventions(String(embedded.id)),
      "INVALID_PARAMETER_VALUE",
      400,
      /trained by Runledger.*applies its interventions itself/,
    );
  });

  it("a pause acknowledged before any metric: the run page and the compare view read the watched metric from the run's metrics", async () => {
    const run_id = await newApiRun("early-pause");
    const runId = Number(run_id);
    const pilot = app.as("engineer");
    await engineer.call("runs/set-tag", { run_id, key: "runledger.watched_metric", value: "accuracy" });
    await pilot.runs.pilot.request({ runId, kind: "pause", rationale: "before it starts" });
    expect((await engineer.betweenEpochs(run_id, 0)).action).toBe("pause");
    await pilot.runs.pilot.request({ runId, kind: "resume", rationale: "go" });
    expect((await engineer.betweenEpochs(run_id, 0)).action).toBe("continue");
    for (const step of [1, 2, 3]) await logEpoch(run_id, step, 1 / (step + 1));
    const list = await app.as("auditor").runs.pilot.list({ runId });
    expect(list[0]!.metricsSnapshot).toEqual({ last: {}, watched: null });
    // The tag names the watched metric: the effect of the pause on accuracy over the next steps.
    expect(list[0]!.effect).toMatchObject({ metric: "accuracy", before: null, after: [{ epoch: 1 }, { epoch: 2 }, { epoch: 3 }] });
    const partner = Number(await newApiRun("compare-partner"));
    const compared = await app.as("auditor").explore.compare({ ids: [runId, partner] });
    expect(compared.interventions[1]).toEqual([]);
    expect(compared.interventions[0]!.map((i) => [i.kind, i.appliedAtStep, i.effect?.metric])).toEqual([
      ["pause", 0, "accuracy"],
      ["resume", 0, "accuracy"],
    ]);
  });

  it("followPilot waits while the run is paused until a pilot resumes it (or the wait is aborted)", async () => {
    const run_id = await newApiRun("follow");
    const runId = Number(run_id);
    const pilot = app.as("engineer");
    await logEpoch(run_id, 1, 0.9);
    await pilot.runs.pilot.request({ runId, kind: "pause", rationale: "wait a moment" });
    const followed = engineer.followPilot(run_id, 1, { pollMs: 50 });
    await vi.waitFor(() => expect(app.db.select().from(runs).where(eq(runs.id, runId)).get()!.status).toBe("paused"), { timeout: 20_000 });
    await pilot.runs.pilot.request({ runId, kind: "resume", rationale: "go on" });
    expect(await followed).toMatchObject({ action: "continue", settings: {}, rejected: [] });
    expect(app.db.select().from(runs).where(eq(runs.id, runId)).get()!.status).toBe("running");

    await pilot.runs.pilot.request({ runId, kind: "pause", rationale: "again" });
    const abort = new AbortController();
    const waiting = engineer.followPilot(run_id, 1, { pollMs: 50, signal: abort.signal });
    await vi.waitFor(() => expect(app.db.select().from(runs).where(eq(runs.id, runId)).get()!.status).toBe("paused"), { timeout: 20_000 });
    abort.abort(new Error("the script gave up"));
    await expect(waiting).rejects.toThrow("the script gave up");
    await pilot.runs.pilot.request({ runId, kind: "stop", rationale: "done" });
    expect((await engineer.followPilot(run_id, 1, { pollMs: 50 })).action).toBe("stop");
  });

  it("a script that ends its run with an intervention pending: the intervention is rejected, with why", async () => {
    const run_id = await newApiRun("ends");
    await logEpoch(run_id, 1, 0.8);
    const pause = await app.as("engineer").runs.pilot.request({ runId: Number(run_id), kind: "pause", rationale: "check it" });
    await engineer.call("runs/update", { run_id, status: "FINISHED", end_time: Date.now() });
    const row = app.db.select().from(runInterventions).where(eq(runInterventions.id, pause.id)).get()!;
    expect(row).toMatchObject({
      status: "rejected",
      closeReason: expect.stringMatching(/the run ended \(FINISHED\) before the script applied it/),
    });
    const rejected = app.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "run.interventionRejected"), eq(auditEvents.entityId, String(pause.id))))
      .get()!;
    expect(sentence(rejected)).toMatch(new RegExp(`Request #${pause.id} on run #${run_id} was rejected`));
    expect((await engineer.pendingInterventions(run_id)).interventions).toEqual([]);
    expect(await engineer.betweenEpochs(run_id, 1)).toEqual({ action: "stop", settings: {}, applied: [], rejected: [] });
  });
});

describe("a pilot changes a script's settings (its logged params)", () => {
  const logParams = (run_id: string, params: Record<string, string>) =>
    engineer.call("runs/log-batch", {
      run_id,
      params: Object.entries(params).map(([key, value]) => ({ key, value })),
      tags: [{ key: "runledger.rationale", value: "baseline settings" }],
    });
  const interventionRow = (id: number) => app.db.select().from(runInterventions).where(eq(runInterventions.id, id)).get()!;

  it("requested on the run page, seen by the script (key, from, to), acknowledged at step N: a decision with from → to by the requester", async () => {
    const run_id = await newApiRun("lr-change");
    const runId = Number(run_id);
    const pilot = app.as("engineer");
    const requester = userOf(app, "engineer");
    await logParams(run_id, { learning_rate: "0.01", batch_size: "32" });
    await logEpoch(run_id, 1, 0.9);
    await logEpoch(run_id, 2, 0.8);

    const set = await pilot.runs.pilot.request({
      runId,
      kind: "set",
      set: { learning_rate: 0.005 },
      rationale: "the loss flattens: halve the learning rate",
    });
    expect(set.changes).toEqual([{ path: "learning_rate", oldValue: "0.01", newValue: "0.005" }]);
    const requested = eventsOf("run.interventionRequested").find((e) => e.entityId === String(set.id))!;
    expect(sentence(requested)).toBe(
      `${requester.name} asked to change the learning_rate of run #${runId} from 0.01 to 0.005: 'the loss flattens: halve the learning rate'`,
    );
    // Nothing has taken effect yet: the value in force is the logged one.
    expect((await pilot.runs.get({ id: runId })).scriptSettings!.find((s) => s.key === "learning_rate")).toMatchObject({
      current: "0.01",
      changes: [],
    });

    // The script sees it between its epochs: the key, the value in force and the value to apply.
    const pending = await engineer.pendingInterventions(run_id);
    expect(pending.interventions).toEqual([
      expect.objectContaining({
        intervention_id: String(set.id),
        kind: "set",
        changes: [{ key: "learning_rate", from: "0.01", to: "0.005" }],
        rationale: "the loss flattens: halve the learning rate",
        requested_by: requester.email,
      }),
    ]);

    // It applies it from step 3 on and acknowledges it at step 2 (the last step it logged).
    const out = await engineer.betweenEpochs(run_id, 2);
    expect(out.action).toBe("continue");
    expect(out.settings).toEqual({ learning_rate: "0.005" });
    expect(out.applied.map((i) => [i.intervention_id, i.applied_at_step])).toEqual([[String(set.id), 2]]);
    expect((await engineer.pendingInterventions(run_id)).interventions).toEqual([]);

    const row = interventionRow(set.id);
    expect(row).toMatchObject({ status: "applied", appliedAtStep: 2, appliedAtEpoch: 2, checkpointId: null });
    expect(JSON.parse(row.metricsSnapshotJson!)).toMatchObject({ last: { loss: 0.8 }, watched: { metric: "loss" } });
    const decision = app.db.select().from(decisions).where(eq(decisions.id, row.decisionId!)).get()!;
    expect(decision).toMatchObject({
      runId,
      kind: "intervention",
      path: "learning_rate",
      oldValueJson: JSON.stringify({ learning_rate: "0.01" }),
      newValueJson: JSON.stringify({ learning_rate: "0.005" }),
      rationale: "the loss flattens: halve the learning rate",
      authorId: requester.id,
    });
    const applied = eventsOf("run.interventionApplied").find((e) => e.entityId === String(set.id))!;
    expect(applied.actorId).toBe(requester.id);
    expect(JSON.parse(applied.payload)).toMatchObject({
      kind: "set",
      step: 2,
      decisionId: decision.id,
      acknowledgedBy: requester.id,
      acknowledgedViaTokenId: engineerTokenId,
    });

    // The run page: the value in force changed at step 2; the param as logged stays (MLflow params are write-once).
    const page = await app.as("auditor").runs.get({ id: runId });
    expect(page.scriptSettings).toEqual([
      {
        key: "learning_rate",
        logged: "0.01",
        current: "0.005",
        changes: [expect.objectContaining({ step: 2, from: "0.01", to: "0.005", interventionId: set.id, decisionId: decision.id })],
      },
      { key: "batch_size", logged: "32", current: "32", changes: [] },
    ]);
    const list = await app.as("auditor").runs.pilot.list({ runId });
    expect(list[0]).toMatchObject({ kind: "set", status: "applied", appliedAtStep: 2, decision: { id: decision.id } });
    const { run } = await engineer.call("runs/get", { run_id });
    expect(run.data.params).toContainEqual({ key: "learning_rate", value: "0.01" });

    // A later change starts from the value in force; it is acknowledged at a later step.
    await logEpoch(run_id, 3, 0.7);
    const again = await pilot.runs.pilot.request({ runId, kind: "set", set: { learning_rate: "0.001" }, rationale: "lower again" });
    expect(again.changes).toEqual([{ path: "learning_rate", oldValue: "0.005", newValue: "0.001" }]);
    const followed = await engineer.followPilot(run_id, 3, { pollMs: 50 });
    expect(followed).toMatchObject({ action: "continue", settings: { learning_rate: "0.001" } });
    expect((await pilot.runs.get({ id: runId })).scriptSettings![0]!.changes.map((c) => [c.step, c.from, c.to])).toEqual([
      [2, "0.01", "0.005"],
      [3, "0.005", "0.001"],
    ]);

    const verified = await verifyDatabase(app.dataDir, { publicKeyPem: app.auditKeys.publicKeyPem });
    expect(verified.ok, verified.problem ?? JSON.stringify(verified.problems.slice(0, 10))).toBe(true);
  }, 120_000);

  it("a script rejects a change it cannot apply, with its reason: recorded as rejected by the token's user", async () => {
    const run_id = await newApiRun("reject");
    const runId = Number(run_id);
    const pilot = app.as("engineer");
    const scriptUser = userOf(app, "engineer");
    await logParams(run_id, { learning_rate: "0.01", batch_size: "32" });
    await logEpoch(run_id, 1, 0.9);
    const set = await pilot.runs.pilot.request({ runId, kind: "set", set: { batch_size: "64" }, rationale: "bigger batches" });
    const out = await engineer.betweenEpochs(run_id, 1, {
      canApply: (key) => (key === "batch_size" ? "the data loader is built once: batch size cannot change mid-run" : true),
    });
    expect(out).toMatchObject({ action: "continue", settings: {}, applied: [] });
    expect(out.rejected).toEqual([
      expect.objectContaining({
        intervention_id: String(set.id),
        kind: "set",
        reason: "the data loader is built once: batch size cannot change mid-run",
      }),
    ]);
    expect(interventionRow(set.id)).toMatchObject({
      status: "rejected",
      closedBy: scriptUser.id,
      closeReason: "the data loader is built once: batch size cannot change mid-run",
      decisionId: null,
    });
    const ev = eventsOf("run.interventionRejected").find((e) => e.entityId === String(set.id))!;
    expect(ev.actorId).toBe(scriptUser.id);
    expect(JSON.parse(ev.payload)).toMatchObject({ rejectedByScript: true, viaTokenId: engineerTokenId, kind: "set" });
    // Byte for byte (closeIntervention): the script's user closed it, with its reason, kind, flag and token.
    expect(ev.payload).toBe(
      canonicalJson({
        runId,
        kind: "set",
        reason: "the data loader is built once: batch size cannot change mid-run",
        closedAt: interventionRow(set.id).closedAt,
        rejectedByScript: true,
        sha256: interventionOutcomeSha256(interventionRow(set.id)),
        viaTokenId: engineerTokenId,
      }),
    );
    expect(sentence(ev)).toBe(
      `${scriptUser.name}'s script rejected request #${set.id} on run #${runId}: 'the data loader is built once: batch size cannot change mid-run'`,
    );
    expect((await pilot.runs.get({ id: runId })).scriptSettings!.find((s) => s.key === "batch_size")).toMatchObject({
      current: "32",
      changes: [],
    });
    const list = await app.as("auditor").runs.pilot.list({ runId });
    expect(list.find((i) => i.id === set.id)).toMatchObject({ status: "rejected", closeReason: expect.stringMatching(/data loader/) });

    // Rejecting through the endpoint: a pause the script cannot honour; then it is no longer pending.
    const pause = await pilot.runs.pilot.request({ runId, kind: "pause", rationale: "look" });
    const before = counts();
    await expectMlflowError(
      engineer.rejectIntervention({ run_id, intervention_id: String(pause.id), reason: "   " }),
      "INVALID_PARAMETER_VALUE",
      400,
      /reason.*say why the script cannot apply it/,
    );
    expect(counts()).toEqual(before);
    const rejected = await engineer.rejectIntervention({ run_id, intervention_id: String(pause.id), reason: "runs on a preemptible node" });
    expect(rejected).toMatchObject({ run_status: "running", intervention: { kind: "pause", reason: "runs on a preemptible node" } });
    const afterReject = counts();
    await expectMlflowError(
      engineer.rejectIntervention({ run_id, intervention_id: String(pause.id), reason: "again" }),
      "INVALID_STATE",
      400,
      /already rejected/,
    );
    await expectMlflowError(
      engineer.ackIntervention({ run_id, intervention_id: String(pause.id), step: 1 }),
      "INVALID_STATE",
      400,
      /already rejected/,
    );
    expect(counts()).toEqual(afterReject);

    const verified = await verifyDatabase(app.dataDir, { publicKeyPem: app.auditKeys.publicKeyPem });
    expect(verified.ok, verified.problem ?? JSON.stringify(verified.problems.slice(0, 10))).toBe(true);
  }, 120_000);

  it("bad requests record nothing; auditor and reviewer tokens cannot acknowledge or reject a change: 403", async () => {
    const run_id = await newApiRun("set-bad");
    const runId = Number(run_id);
    const other = await newApiRun("set-bad-other");
    const pilot = app.as("engineer");
    await logParams(run_id, { learning_rate: "0.01" });
    await logEpoch(run_id, 1, 0.9);
    const before = counts();
    const refused = async (input: Parameters<typeof pilot.runs.pilot.request>[0], message: RegExp, code = "BAD_REQUEST") =>
      expect(pilot.runs.pilot.request(input)).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    await refused(
      { runId, kind: "set", set: { lr: "0.1" }, rationale: "typo" },
      /lr: not a param of run \d+ \(its params: learning_rate\)/,
    );
    await refused(
      { runId, kind: "set", set: { learning_rate: "0.01" }, rationale: "same" },
      /learning_rate already has that value/,
      "CONFLICT",
    );
    await refused({ runId, kind: "set", set: { learning_rate: "  " }, rationale: "empty" }, /learning_rate: give a new value/);
    await refused({ runId, kind: "set", set: { learning_rate: { v: 1 } }, rationale: "object" }, /give the new value as text or a number/);
    await refused({ runId, kind: "set", set: { learning_rate: "0.1" }, rationale: "  " }, /a rationale is required/);
    await refused({ runId, kind: "set", rationale: "nothing named" }, /name at least one path to change/);
    await expect(
      app.as("reviewer").runs.pilot.request({ runId, kind: "set", set: { learning_rate: "0.1" }, rationale: "not mine" }),
    ).rejects.toMatchObject({ code: "FORBIDDEN" });
    expect(counts()).toEqual(before);

    const set = await pilot.runs.pilot.request({ runId, kind: "set", set: { learning_rate: "0.02" }, rationale: "faster" });
    // One pending change per param, so its "from" stays the value in force when the script applies it.
    await refused(
      { runId, kind: "set", set: { learning_rate: "0.03" }, rationale: "even faster" },
      new RegExp(`already has a pending change of learning_rate \\(intervention ${set.id}\\)`),
      "CONFLICT",
    );
    const clients = await Promise.all(
      ["auditor", "reviewer"].map(async (role) => new MlflowClient(mlflow.base, (await tokenFor(app, role)).token)),
    );
    const pendingOnly = counts();
    for (const c of clients) {
      expect((await c.pendingInterventions(run_id)).interventions[0]!.changes).toEqual([
        { key: "learning_rate", from: "0.01", to: "0.02" },
      ]);
      await expectMlflowError(c.ackIntervention({ run_id, intervention_id: String(set.id), step: 1 }), "PERMISSION_DENIED", 403);
      await expectMlflowError(
        c.rejectIntervention({ run_id, intervention_id: String(set.id), reason: "no" }),
        "PERMISSION_DENIED",
        403,
        /cannot reject interventions/,
      );
      await expectMlflowError(c.betweenEpochs(run_id, 1), "PERMISSION_DENIED", 403);
    }
    await expectMlflowError(
      engineer.rejectIntervention({ run_id: other, intervention_id: String(set.id), reason: "wrong run" }),
      "RESOURCE_DOES_NOT_EXIST",
      404,
    );
    await expectMlflowError(
      engineer.rejectIntervention({ run_id, intervention_id: String(set.id) } as never),
      "INVALID_PARAMETER_VALUE",
      400,
      /Missing value for required parameter 'reason'/,
    );
    expect(counts()).toEqual(pendingOnly);
    expect(interventionRow(set.id).status).toBe("pending");
  });

  it("a rollback of a script's run is refused with what a pilot can do on it, even with a registered checkpoint", async () => {
    const run_id = await newApiRun("rollback");
    const runId = Number(run_id);
    await logParams(run_id, { learning_rate: "0.01" });
    await logEpoch(run_id, 1, 0.9);
    const { run } = await engineer.call("runs/get", { run_id });
    await engineer.logArtifact(run.info.artifact_uri, "model/weights.bin", new Uint8Array([1, 2, 3, 4]));
    await engineer.call("runs/update", { run_id, status: "FINISHED", end_time: Date.now() });
    await engineer.call("registered-models/create", { name: "pilot-rollback" });
    await engineer.call("model-versions/create", { name: "pilot-rollback", source: `runs:/${run_id}/model/weights.bin`, run_id });
    const ck = app.db.select().from(checkpoints).where(eq(checkpoints.runId, runId)).get()!;
    expect(ck).toBeDefined();
    const before = counts();
    const refusal = app.as("engineer").runs.pilot.request({ runId, kind: "rollback", fromCheckpointId: ck.id, rationale: "go back" });
    await expect(refusal).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(
        /logged by a script through the tracking API: a pilot can pause, resume or stop it, or change its logged params .* not rollback it/,
      ),
    });
    await expect(refusal).rejects.not.toMatchObject({ message: expect.stringMatching(/resume state/) });
    await expect(
      app.as("engineer").runs.pilot.request({ runId, kind: "rollback", rationale: "no checkpoint named" }),
    ).rejects.toMatchObject({
      message: expect.stringMatching(/not rollback it/),
    });
    expect(counts()).toEqual(before);
  });
});

describe("audit verify's content check covers a script's setting changes and rejections", () => {
  it("passes on the record, then names a decision whose from → to disagrees with its intervention, and a rejection's closer", async () => {
    const run_id = await newApiRun("content");
    const runId = Number(run_id);
    const pilot = app.as("engineer");
    await engineer.call("runs/log-batch", {
      run_id,
      params: [
        { key: "learning_rate", value: "0.01" },
        { key: "optimizer", value: "adam" },
      ],
    });
    await logEpoch(run_id, 1, 0.9);
    const set = await pilot.runs.pilot.request({ runId, kind: "set", set: { learning_rate: "0.002" }, rationale: "slower" });
    const other = await pilot.runs.pilot.request({ runId, kind: "set", set: { optimizer: "sgd" }, rationale: "try sgd" });
    await engineer.betweenEpochs(run_id, 1, { canApply: (key) => (key === "optimizer" ? "the optimizer is built once" : true) });
    const decisionId = app.db.select().from(runInterventions).where(eq(runInterventions.id, set.id)).get()!.decisionId!;
    expect(app.db.select().from(runInterventions).where(eq(runInterventions.id, other.id)).get()!.status).toBe("rejected");

    const clean = checkContent(app.db.$client, { artifactsDir: null, uptoSeq: Number.MAX_SAFE_INTEGER });
    expect(clean.level.problems.map((p) => p.message)).toEqual([]);
    const tampered = (sqlText: string, ...args: unknown[]) => {
      const s = snapshot(app);
      try {
        s.db.exec("DROP TRIGGER IF EXISTS run_interventions_one_transition");
        s.db.exec("DROP TRIGGER IF EXISTS decisions_no_update");
        s.db.prepare(sqlText).run(...args);
        return checkContent(s.db, { artifactsDir: null, uptoSeq: s.maxSeq }).level.problems.map(
          (p) => `${p.entityType} ${p.entityId} ${p.field}`,
        );
      } finally {
        s.close();
      }
    };
    expect(tampered(`UPDATE decisions SET old_value_json = '{"learning_rate":"0.05"}' WHERE id = ?`, decisionId)).toContain(
      `intervention ${set.id} decision old values (from)`,
    );
    expect(tampered(`UPDATE decisions SET path = 'optimizer' WHERE id = ?`, decisionId)).toContain(
      `intervention ${set.id} decision path (what it changed)`,
    );
    expect(tampered("UPDATE run_interventions SET closed_by = NULL WHERE id = ?", other.id)).toContain(
      `intervention ${other.id} rejected by`,
    );
  });
});
