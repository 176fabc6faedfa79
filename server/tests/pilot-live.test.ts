/**
 * Live piloting end to end (server/runs/orchestrator/orchestrator.ts): real Iris training in worker threads on a
 * temporary app database. Interventions are requested while a run is queued (so they are pending at its first epoch
 * boundary, deterministically) and the orchestrator applies them there: a learning-rate change with its decision
 * and the checkpoint of that boundary (forced even when the cadence would skip it); a pause that parks the run,
 * frees the training slot (the next queued run trains) and, on resume, continues exactly (same final weights hash as
 * the same config trained without a pause, no duplicate epochs); a stop that completes the run at that boundary.
 * The content check of the whole database stays clean.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { and, asc, eq } from "drizzle-orm";
import { auditEvents, checkpoints, decisions, metrics, runInterventions, runs, users } from "@/db/schema";
import { createRun } from "@/server/runs/service";
import { requestIntervention } from "@/server/runs/pilot";
import { actorOf } from "@/server/users/service";
import { checkContent } from "@/server/audit/content/verify-content";
import { verifyDatabase } from "@/server/audit/verify";
import { DEMO_USERS } from "@/server/demo/seed";
import type { TrainingConfigInput } from "@/contracts/training-config";
import { RunOrchestrator } from "@/server/runs/orchestrator/orchestrator";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

let app: TestApp;
const engineer = () => {
  const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
  return { ...app, actor: actorOf(app.db.select().from(users).where(eq(users.email, email)).get()!) };
};
const runRow = (id: number) => app.db.select().from(runs).where(eq(runs.id, id)).get()!;
const checkpointEpochs = (id: number) =>
  app.db
    .select({ epoch: checkpoints.epoch })
    .from(checkpoints)
    .where(eq(checkpoints.runId, id))
    .orderBy(asc(checkpoints.epoch))
    .all()
    .map((c) => c.epoch);
const epochPoints = (id: number, key: string) =>
  app.db
    .select({ epoch: metrics.epoch, value: metrics.value })
    .from(metrics)
    .where(and(eq(metrics.runId, id), eq(metrics.key, key)))
    .orderBy(asc(metrics.step))
    .all();
const create = (config: TrainingConfigInput, rationale: string) =>
  createRun(engineer(), { experimentId: app.experimentId, config, rationale }).id;

beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app?.close());

describe("live piloting through the orchestrator", () => {
  it("a learning-rate change applies at the next boundary with its decision and that boundary's checkpoint; the run completes", async () => {
    const base = irisConfig({ epochs: 4, learningRate: 0.03 });
    // Checkpoints every 3 epochs: the boundary of epoch 1 is checkpointed only because a decision takes effect there.
    const id = create({ ...base, training: { ...base.training, checkpointEvery: 3 } }, "piloted lr");
    const set = requestIntervention(engineer(), {
      runId: id,
      kind: "set",
      set: { "training.learningRate": 0.01 },
      rationale: "loss oscillates: lower the rate",
    });
    await app.orchestrator.launch(id);
    await app.orchestrator.waitFor(id);
    const run = runRow(id);
    expect(run.status).toBe("completed");
    const row = app.db.select().from(runInterventions).where(eq(runInterventions.id, set.id)).get()!;
    expect(row.status).toBe("applied");
    expect(row.appliedAtEpoch).toBe(1);
    const ck = app.db.select().from(checkpoints).where(eq(checkpoints.id, row.checkpointId!)).get()!;
    expect([ck.runId, ck.epoch, ck.step]).toEqual([id, 1, row.appliedAtStep]);
    expect(checkpointEpochs(id)).toEqual([1, 3, 4]);
    const snapshot = JSON.parse(row.metricsSnapshotJson!) as { last: Record<string, number> };
    expect(snapshot.last.loss).toBeGreaterThan(0);
    const decision = app.db.select().from(decisions).where(eq(decisions.id, row.decisionId!)).get()!;
    expect(decision).toMatchObject({ kind: "intervention", path: "training.learningRate", rationale: "loss oscillates: lower the rate" });
    expect(JSON.parse(decision.oldValueJson!)).toEqual({ "training.learningRate": 0.03 });
    expect(JSON.parse(decision.newValueJson!)).toEqual({ "training.learningRate": 0.01 });
    // The applied rate is the lr series: 0.03 for epoch 1, 0.01 from epoch 2.
    expect(epochPoints(id, "lr").map((p) => [p.epoch, p.value])).toEqual([
      [1, 0.03],
      [2, 0.01],
      [3, 0.01],
      [4, 0.01],
    ]);
  }, 120_000);

  it("a pause parks the run at that boundary with a checkpoint and frees the slot; resume continues exactly to completion", async () => {
    const config = irisConfig({ epochs: 4, seed: 5 });
    const paused = create(config, "to pause");
    const straight = create(config, "same config, no pause");
    const pause = requestIntervention(engineer(), { runId: paused, kind: "pause", rationale: "look at the curves first" });
    await app.orchestrator.launch(paused);
    await app.orchestrator.launch(straight);
    await app.orchestrator.waitFor(paused);
    expect(runRow(paused).status).toBe("paused");
    expect(app.db.select().from(runInterventions).where(eq(runInterventions.id, pause.id)).get()!).toMatchObject({
      status: "applied",
      appliedAtEpoch: 1,
    });
    expect(checkpointEpochs(paused)).toEqual([1]);
    // The slot is free: the queued run trains to completion while the first one stays paused.
    await app.orchestrator.waitFor(straight);
    expect(runRow(straight).status).toBe("completed");
    expect(runRow(paused).status).toBe("paused");

    // Through tRPC: the resume request re-queues the run (runs.pilot.request → requestPilotInterventionOn).
    const resume = await app.as("engineer").runs.pilot.request({ runId: paused, kind: "resume", rationale: "curves look fine" });
    expect(app.orchestrator.isTracking(paused)).toBe(true);
    await app.orchestrator.waitFor(paused);
    const done = runRow(paused);
    expect(done.status).toBe("completed");
    expect(app.db.select().from(runInterventions).where(eq(runInterventions.id, resume.id)).get()!).toMatchObject({
      status: "applied",
      appliedAtEpoch: 1,
    });
    // Exact resume: the same weights as the same config trained without a pause; each epoch once.
    expect(done.finalWeightsSha256).toBe(runRow(straight).finalWeightsSha256);
    expect(checkpointEpochs(paused)).toEqual([1, 2, 3, 4]);
    expect(epochPoints(paused, "loss").map((p) => p.epoch)).toEqual([1, 2, 3, 4]);
    expect(epochPoints(paused, "loss")).toEqual(epochPoints(straight, "loss"));
    // Piloting (a wait at each boundary) and resumable checkpoints change no weights: an unpiloted run agrees.
    const unpilotedId = create(config, "same config, trained without the boundary control");
    const unpiloted = new RunOrchestrator(app, { piloted: false });
    await unpiloted.launch(unpilotedId);
    await unpiloted.waitFor(unpilotedId);
    expect(runRow(unpilotedId).finalWeightsSha256).toBe(done.finalWeightsSha256);
    const starts = app.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "run.start"), eq(auditEvents.entityId, String(paused))))
      .all();
    expect(starts).toHaveLength(2);
  }, 180_000);

  it("a stop completes the run at that boundary", async () => {
    const id = create(irisConfig({ epochs: 5 }), "to stop");
    const stop = requestIntervention(engineer(), { runId: id, kind: "stop", rationale: "good enough already" });
    await app.orchestrator.launch(id);
    await app.orchestrator.waitFor(id);
    const run = runRow(id);
    expect(run.status).toBe("completed");
    expect(app.db.select().from(runInterventions).where(eq(runInterventions.id, stop.id)).get()!).toMatchObject({
      status: "applied",
      appliedAtEpoch: 1,
    });
    expect(checkpointEpochs(id)).toEqual([1]);
    const complete = app.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "run.complete"), eq(auditEvents.entityId, String(id))))
      .get()!;
    expect(JSON.parse(complete.payload)).toMatchObject({ status: "completed", epochsRun: 1, stoppedByDecision: true });
  }, 120_000);

  it("a change the trainer refuses at the boundary is rejected with its message; the run goes on unchanged", async () => {
    const id = create(irisConfig({ epochs: 3 }), "to refuse a change");
    requestIntervention(engineer(), { runId: id, kind: "pause", rationale: "pause after the first epoch" });
    await app.orchestrator.launch(id);
    await app.orchestrator.waitFor(id);
    expect(runRow(id).status).toBe("paused");
    // Valid for the config, but the data has no class "nope": the trainer refuses it at the resume point, where a
    // change asked for while paused takes effect (the run then continues without it).
    const shorten = requestIntervention(engineer(), {
      runId: id,
      kind: "set",
      set: { "training.classWeights": { nope: 2 } },
      rationale: "weigh the rare class",
    });
    await app.as("engineer").runs.pilot.request({ runId: id, kind: "resume", rationale: "go on" });
    await app.orchestrator.waitFor(id);
    expect(runRow(id).status).toBe("completed");
    expect(checkpointEpochs(id)).toEqual([1, 2, 3]);
    const row = app.db.select().from(runInterventions).where(eq(runInterventions.id, shorten.id)).get()!;
    expect(row.status).toBe("rejected");
    expect(row.closeReason).toMatch(/the trainer refused the change at the resume point: .*unknown class "nope"/);
  }, 120_000);

  it("the content check and audit verify stay clean after all of it", async () => {
    const result = checkContent(app.db.$client, { artifactsDir: null, uptoSeq: Number.MAX_SAFE_INTEGER });
    expect(result.level.problems.map((p) => p.message)).toEqual([]);
    const verified = await verifyDatabase(app.dataDir, { publicKeyPem: app.auditKeys.publicKeyPem });
    expect(verified.ok, verified.problem ?? "").toBe(true);
  });
});
