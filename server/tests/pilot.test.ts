/**
 * Live piloting (server/runs/pilot.ts) on a real app database: requests through tRPC and the service, who may pilot,
 * validation that writes nothing when it refuses, applying at an epoch boundary (decision, snapshot, checkpoint),
 * old values following earlier applied interventions, the `pilot` CLI command, and the content check of
 * run_interventions (clean, then tampered for real on a copy).
 */
import fs from "node:fs";
import { spawnSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { and, eq } from "drizzle-orm";
import { auditEvents, checkpoints, runInterventions, runs, users } from "@/db/schema";
import { createRun } from "@/server/runs/service";
import { applyIntervention, cancelIntervention, requestIntervention } from "@/server/runs/pilot";
import { listInterventions, runEffectiveConfig } from "@/server/runs/pilot-queries";
import { actorOf } from "@/server/users/service";
import { DomainError } from "@/server/errors";
import { checkContent } from "@/server/audit/content/verify-content";
import { pilotCommand } from "@/server/cli/pilot";
import { exportReportBundle } from "@/server/audit/report/export-bundle";
import { verifyReportBundle } from "@/server/audit/report/verify-report";
import { DEMO_USERS } from "@/server/demo/seed";
import { trainingConfigSchema } from "@/contracts/training-config";
import { effectiveConfig, settingsPatchOf, validatePilotChanges } from "@/contracts/pilot-config";
import { parseEpochControl } from "@/contracts/training-control";
import { snapshot } from "@/server/audit/content/tests/content-fixture";
import { canonicalJson } from "@/contracts/canonical";
import { interventionOutcomeSha256 } from "@/server/audit/content/intervention-records";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { RunOrchestrator } from "@/server/runs/orchestrator/orchestrator";

vi.mock("server-only", () => ({}));

let app: TestApp;
let queuedRunId: number;
let trainedRunId: number;
let setId: number;
let pauseId: number;
let stopId: number;

const actor = (role: "engineer" | "reviewer" | "auditor") => {
  const email = DEMO_USERS.find((u) => u.role === role)!.email;
  return actorOf(app.db.select().from(users).where(eq(users.email, email)).get()!);
};
const counts = () => ({
  interventions: app.db.select().from(runInterventions).all().length,
  events: app.db.select().from(auditEvents).all().length,
});
function domainError(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return err;
    throw err;
  }
  throw new Error("expected a DomainError");
}

beforeAll(async () => {
  app = createTestApp();
  const ctx = { ...app, actor: actor("engineer") };
  // A queued run nobody starts, and a run that will train after interventions were queued on it.
  queuedRunId = createRun(ctx, { experimentId: app.experimentId, config: irisConfig({ epochs: 5 }), rationale: "queued baseline" }).id;
  trainedRunId = createRun(ctx, {
    experimentId: app.experimentId,
    config: irisConfig({ epochs: 3, learningRate: 0.03 }),
    rationale: "piloted run",
  }).id;
  setId = requestIntervention(ctx, {
    runId: trainedRunId,
    kind: "set",
    set: { "training.learningRate": 0.01, "training.earlyStopping": { patience: 2 } },
    rationale: "validation loss oscillates: lower the rate",
  }).id;
  pauseId = requestIntervention(ctx, { runId: trainedRunId, kind: "pause", rationale: "look at the curves" }).id;
  stopId = requestIntervention(ctx, { runId: trainedRunId, kind: "stop", rationale: "maybe stop early" }).id;
  // Not piloted: this file applies the interventions by hand (pilot-live.test.ts covers the orchestrator applying them).
  const unpiloted = new RunOrchestrator(app, { piloted: false });
  await unpiloted.launch(trainedRunId);
  await unpiloted.waitFor(trainedRunId);
}, 180_000);
afterAll(() => app?.close());

describe("requesting an intervention", () => {
  it("an engineer queues a change through tRPC: pending, old → new from the effective config, audited", async () => {
    const out = await app.as("engineer").runs.pilot.request({
      runId: queuedRunId,
      kind: "set",
      set: { "training.epochs": 8 },
      rationale: "more epochs: still improving",
    });
    expect(out.status).toBe("pending");
    expect(out.changes).toEqual([{ path: "training.epochs", oldValue: 5, newValue: 8 }]);
    const list = await app.as("auditor").runs.pilot.list({ runId: queuedRunId });
    expect(list.map((i) => [i.id, i.status, i.decision])).toEqual([[out.id, "pending", null]]);
    const ev = app.db.select().from(auditEvents).where(eq(auditEvents.action, "run.interventionRequested")).all().at(-1)!;
    expect(ev.entityId).toBe(String(out.id));
    expect(JSON.parse(ev.payload)).toMatchObject({ runId: queuedRunId, kind: "set", rationale: "more epochs: still improving" });
  });

  it("auditors and reviewers cannot pilot: forbidden, nothing written", async () => {
    const before = counts();
    for (const role of ["auditor", "reviewer"] as const) {
      await expect(
        app.as(role).runs.pilot.request({ runId: queuedRunId, kind: "pause", rationale: "not mine to decide" }),
      ).rejects.toMatchObject({ code: "FORBIDDEN" });
      const e = domainError(() =>
        requestIntervention({ db: app.db, actor: actor(role) }, { runId: queuedRunId, kind: "pause", rationale: "not mine" }),
      );
      expect(e.kind).toBe("forbidden");
    }
    expect(counts()).toEqual(before);
  });

  it("a rationale is required", async () => {
    const before = counts();
    await expect(app.as("engineer").runs.pilot.request({ runId: queuedRunId, kind: "pause", rationale: "   " })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    const e = domainError(() =>
      requestIntervention({ db: app.db, actor: actor("engineer") }, { runId: queuedRunId, kind: "pause", rationale: "" }),
    );
    expect(e.kind).toBe("invalid_input");
    expect(e.message).toMatch(/rationale is required/);
    expect(counts()).toEqual(before);
  });

  it("an unknown path or an invalid value is a clear error naming the path, and changes nothing", () => {
    const before = counts();
    const ctx = { db: app.db, actor: actor("engineer") };
    const unknown = domainError(() =>
      requestIntervention(ctx, { runId: queuedRunId, kind: "set", set: { "training.batchSize": 8 }, rationale: "bigger batches" }),
    );
    expect(unknown.kind).toBe("invalid_input");
    expect(unknown.message).toMatch(/training\.batchSize: not a path a pilot can change/);
    const invalid = domainError(() =>
      requestIntervention(ctx, { runId: queuedRunId, kind: "set", set: { "training.learningRate": -1 }, rationale: "oops" }),
    );
    expect(invalid.kind).toBe("invalid_input");
    expect(invalid.message).toMatch(/training\.learningRate: learningRate must be > 0 \(got -1\)/);
    const weights = domainError(() =>
      requestIntervention(ctx, { runId: queuedRunId, kind: "set", set: { "training.classWeights": "even" }, rationale: "weights" }),
    );
    expect(weights.message).toMatch(/training\.classWeights/);
    expect(counts()).toEqual(before);
  });

  it("the run's state must allow the kind", () => {
    const e = domainError(() =>
      requestIntervention({ db: app.db, actor: actor("engineer") }, { runId: queuedRunId, kind: "resume", rationale: "go on" }),
    );
    expect(e.message).toBe(`run ${queuedRunId} is queued: resume needs a run that is paused`);
    const done = domainError(() =>
      requestIntervention({ db: app.db, actor: actor("engineer") }, { runId: trainedRunId, kind: "pause", rationale: "too late" }),
    );
    expect(done.message).toMatch(/is completed: pause needs a run that is queued or running/);
  });
});

describe("applying at an epoch boundary", () => {
  const ck = (epoch: number) =>
    app.db
      .select()
      .from(checkpoints)
      .where(eq(checkpoints.runId, trainedRunId))
      .all()
      .find((c) => c.epoch === epoch)!;

  it("pending → applied with its decision (requester, old → new, rationale, snapshot, checkpoint), in order", () => {
    const applied = applyIntervention(app, { interventionId: setId, epoch: 1, step: 7, checkpointId: ck(1).id });
    expect(applied.intervention).toMatchObject({ status: "applied", appliedAtEpoch: 1, appliedAtStep: 7, checkpointId: ck(1).id });
    expect(applied.decision).toMatchObject({
      kind: "intervention",
      runId: trainedRunId,
      path: "training.earlyStopping, training.learningRate",
      authorId: actor("engineer").id,
      rationale: "validation loss oscillates: lower the rate",
    });
    expect(JSON.parse(applied.decision.oldValueJson!)).toEqual({ "training.earlyStopping": null, "training.learningRate": 0.03 });
    expect(JSON.parse(applied.decision.newValueJson!)).toEqual({
      "training.earlyStopping": { metric: "val_loss", minDelta: 0, mode: "min", patience: 2 },
      "training.learningRate": 0.01,
    });
    const snapshotGiven = { last: { loss: 0.5 }, watched: { metric: "val_loss", trend: [{ epoch: 2, value: 0.4 }] } };
    applyIntervention(app, { interventionId: pauseId, epoch: 2, step: 14, checkpointId: ck(2).id, metricsSnapshot: snapshotGiven });
    cancelIntervention({ db: app.db, actor: actor("engineer") }, { interventionId: stopId, rationale: "the pause is enough" });
    // The withdrawal's row and event, byte for byte (closeIntervention): the engineer closed it, with the rationale.
    const stop = app.db.select().from(runInterventions).where(eq(runInterventions.id, stopId)).get()!;
    expect(stop).toMatchObject({ status: "cancelled", closedBy: actor("engineer").id, closeReason: "the pause is enough" });
    const withdrawn = app.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "run.interventionCancelled"), eq(auditEvents.entityId, String(stopId))))
      .get()!;
    expect(withdrawn).toMatchObject({ actorId: actor("engineer").id, entityType: "intervention" });
    expect(withdrawn.payload).toBe(
      canonicalJson({
        runId: trainedRunId,
        rationale: "the pause is enough",
        closedAt: stop.closedAt,
        sha256: interventionOutcomeSha256(stop),
      }),
    );

    const list = listInterventions(app.db, trainedRunId);
    expect(list.map((i) => [i.kind, i.status])).toEqual([
      ["set", "applied"],
      ["pause", "applied"],
      ["stop", "cancelled"],
    ]);
    expect(list[0]!.decision?.id).toBe(applied.decision.id);
    expect(Object.keys(list[0]!.metricsSnapshot!.last)).toContain("loss");
    expect(list[0]!.metricsSnapshot!.watched?.metric).toBe("val_loss");
    expect(list[1]!.metricsSnapshot).toEqual(snapshotGiven);
    expect(list[1]!.decision?.path).toBe("pause");
    expect(list[2]!.closeReason).toBe("the pause is enough");
    expect(runEffectiveConfig(app.db, trainedRunId).effective.training.learningRate).toBe(0.01);
  });

  it("applies once; the checkpoint must be of that run and that epoch", () => {
    expect(domainError(() => applyIntervention(app, { interventionId: setId, epoch: 1, step: 7, checkpointId: ck(1).id })).kind).toBe(
      "wrong_state",
    );
    const again = requestIntervention({ db: app.db, actor: actor("engineer") }, { runId: queuedRunId, kind: "stop", rationale: "enough" });
    const e = domainError(() => applyIntervention(app, { interventionId: again.id, epoch: 1, step: 7, checkpointId: ck(1).id }));
    expect(e.message).toMatch(/is not a checkpoint of run/);
    cancelIntervention({ db: app.db, actor: actor("engineer") }, { interventionId: again.id, rationale: "withdrawn" });
  });

  it("the content check passes, then names the intervention whose rationale, new value or decision was edited", () => {
    const clean = checkContent(app.db.$client, { artifactsDir: null, uptoSeq: Number.MAX_SAFE_INTEGER });
    expect(clean.level.problems.map((p) => p.message)).toEqual([]);
    const tampered = (sqlText: string, ...args: unknown[]) => {
      const s = snapshot(app);
      try {
        s.db.exec("DROP TRIGGER run_interventions_one_transition");
        s.db.exec("DROP TRIGGER decisions_no_update");
        s.db.prepare(sqlText).run(...args);
        return checkContent(s.db, { artifactsDir: null, uptoSeq: s.maxSeq }).level;
      } finally {
        s.close();
      }
    };
    const r1 = tampered("UPDATE run_interventions SET rationale = 'approved by the board' WHERE id = ?", setId);
    expect(r1.ok).toBe(false);
    expect(r1.problems.find((p) => p.entityType === "intervention" && p.field === "rationale")?.message).toMatch(
      new RegExp(`^intervention ${setId}: rationale does not match the ledger`),
    );
    const r2 = tampered("UPDATE run_interventions SET changes_json = replace(changes_json, '0.01', '0.02') WHERE id = ?", setId);
    expect(r2.problems.map((p) => `${p.entityType} ${p.entityId} ${p.field}`)).toContain(
      `intervention ${setId} changes (path, old value, new value)`,
    );
    const decisionId = app.db.select().from(runInterventions).where(eq(runInterventions.id, setId)).get()!.decisionId!;
    const r3 = tampered("UPDATE decisions SET new_value_json = '{}' WHERE id = ?", decisionId);
    expect(r3.problems.map((p) => `${p.entityType} ${p.entityId}`)).toContain(`decision ${decisionId}`);
    const r4 = tampered("UPDATE run_interventions SET status = 'applied' WHERE id = ?", stopId);
    expect(r4.problems.map((p) => `${p.entityType} ${p.entityId} ${p.field}`)).toContain(`intervention ${stopId} status`);
  });

  it("the trigger refuses any other edit of an intervention", () => {
    expect(() => app.db.$client.prepare("UPDATE run_interventions SET rationale = 'x' WHERE id = ?").run(setId)).toThrow(/UPDATE rejected/);
    expect(() => app.db.$client.prepare("DELETE FROM run_interventions WHERE id = ?").run(setId)).toThrow(/DELETE rejected/);
  });

  it("a pause taking effect parks a running run as paused, and the content check derives the same status", async () => {
    const ctx = { ...app, actor: actor("engineer") };
    const run = createRun(ctx, { experimentId: app.experimentId, config: irisConfig({ epochs: 400 }), rationale: "long run to pause" });
    await app.orchestrator.launch(run.id);
    let first: typeof checkpoints.$inferSelect | undefined;
    for (let i = 0; i < 600 && !first; i++) {
      await new Promise((r) => setTimeout(r, 50));
      first = app.db.select().from(checkpoints).where(eq(checkpoints.runId, run.id)).get();
    }
    expect(first).toBeDefined();
    const pause = requestIntervention(ctx, { runId: run.id, kind: "pause", rationale: "the curve is flat: look before going on" });
    applyIntervention(app, { interventionId: pause.id, epoch: first!.epoch, step: first!.step, checkpointId: first!.id });
    expect(app.db.select().from(runs).where(eq(runs.id, run.id)).get()!.status).toBe("paused");
    const mid = checkContent(app.db.$client, { artifactsDir: null, uptoSeq: Number.MAX_SAFE_INTEGER });
    expect(mid.level.problems.filter((p) => p.entityType === "run" && p.entityId === String(run.id))).toEqual([]);
    // Until the orchestrator glue frees the slot on a pause, the worker is stopped here.
    await app.orchestrator.cancel(run.id);
    await app.orchestrator.waitFor(run.id);
    const end = checkContent(app.db.$client, { artifactsDir: null, uptoSeq: Number.MAX_SAFE_INTEGER });
    expect(end.level.problems.map((p) => p.message)).toEqual([]);
  }, 60_000);

  it("the auditor's report bundle of a piloted run verifies offline (the intervention decisions are backed by their events)", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-pilot-bundle-"));
    try {
      const v = await app.as("engineer").models.register({ runId: trainedRunId, modelName: "iris-piloted" });
      const bundle = path.join(tmp, "bundle");
      exportReportBundle({ db: app.db, auditKeys: app.auditKeys }, actor("auditor"), v.modelVersionId, bundle);
      const full = await verifyReportBundle(bundle, { publicKeyPem: app.auditKeys.publicKeyPem });
      expect(full.problems).toEqual([]);
      expect(full.ok).toBe(true);
      // The standalone verifier an auditor runs (its own copy of the checks) agrees.
      const script = spawnSync(process.execPath, ["verify-bundle.mjs", "--json"], {
        cwd: bundle,
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "", NODE_ENV: "production" },
      });
      expect(script.status, script.stdout + script.stderr).toBe(0);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("a later request's old value follows the interventions applied before it", () => {
    // The orchestrator glue pauses the run; here the status is set directly (this test only reads the service's answer).
    app.db.update(runs).set({ status: "paused" }).where(eq(runs.id, trainedRunId)).run();
    const out = requestIntervention(
      { db: app.db, actor: actor("engineer") },
      {
        runId: trainedRunId,
        kind: "set",
        set: { "training.learningRate": 0.005, "training.earlyStopping.patience": 4 },
        rationale: "lower again",
      },
    );
    expect(out.changes).toEqual([
      { path: "training.earlyStopping.patience", oldValue: 2, newValue: 4 },
      { path: "training.learningRate", oldValue: 0.01, newValue: 0.005 },
    ]);
  });
});

describe("npm run cli -- pilot", () => {
  async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = "";
    let err = "";
    const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
    const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((err += String(s)), true));
    try {
      return { code: await pilotCommand([...args, "--data-dir", app.dataDir]), out, err };
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
  }

  it("records a pending intervention as the user named by --as and prints it as JSON", async () => {
    const engineer = DEMO_USERS.find((u) => u.role === "engineer")!.email;
    const r = await cli([
      "--run",
      String(queuedRunId),
      "--set",
      "training.classWeights=balanced",
      "--set",
      "training.learningRate=0.02",
      "--rationale",
      "class 2 is rare",
      "--as",
      engineer,
      "--json",
    ]);
    expect(r.code).toBe(0);
    const shown = JSON.parse(r.out) as Record<string, unknown>;
    expect(shown).toMatchObject({
      runId: queuedRunId,
      kind: "set",
      status: "pending",
      requestedBy: engineer,
      changes: [
        { path: "training.classWeights", oldValue: null, newValue: "balanced" },
        { path: "training.learningRate", oldValue: 0.03, newValue: 0.02 },
      ],
    });
    const row = app.db
      .select()
      .from(runInterventions)
      .where(eq(runInterventions.id, shown.id as number))
      .get()!;
    expect(row.requestedBy).toBe(actor("engineer").id);
  });

  it("refuses an auditor, and a request without a rationale", async () => {
    const before = counts();
    const auditor = DEMO_USERS.find((u) => u.role === "auditor")!.email;
    await expect(cli(["--run", String(queuedRunId), "--pause", "--rationale", "x", "--as", auditor])).rejects.toThrow(/cannot pilot runs/);
    expect((await cli(["--run", String(queuedRunId), "--pause"])).code).toBe(2);
    expect(counts()).toEqual(before);
  });

  it("the help says when it takes effect", async () => {
    expect((await cli(["--help"])).out).toMatch(/takes effect at the run's next epoch boundary/);
  });
});

describe("effectiveConfig and validatePilotChanges (contracts/pilot-config.ts)", () => {
  const config = trainingConfigSchema.parse(irisConfig({ epochs: 5, learningRate: 0.03 }));

  it("lays applied changes over the config in order, leaving the config itself unchanged", () => {
    const out = effectiveConfig(config, [
      { changes: [{ path: "training.learningRate", oldValue: 0.03, newValue: 0.01 }] },
      {
        changes: [
          { path: "training.learningRate", oldValue: 0.01, newValue: 0.005 },
          { path: "training.epochs", oldValue: 5, newValue: 9 },
        ],
      },
    ]);
    expect([out.training.learningRate, out.training.epochs]).toEqual([0.005, 9]);
    expect([config.training.learningRate, config.training.epochs]).toEqual([0.03, 5]);
  });

  it("names what cannot be changed on this run", () => {
    const es = validatePilotChanges(config, { "training.earlyStopping.patience": 3 });
    expect(es).toEqual({ ok: false, message: expect.stringMatching(/^training\.earlyStopping\.patience: this run has no early stopping/) });
    const ft = validatePilotChanges(config, { "fineTune.freezeLayers": 1 });
    expect(ft).toEqual({ ok: false, message: "fineTune.freezeLayers: this run is not a fine-tune, it has no frozen layers" });
    const schedule = validatePilotChanges(config, { "training.lrSchedule": { type: "step", everyEpochs: 2, factor: 0.5 } });
    expect(schedule.ok && schedule.changes).toEqual([
      { path: "training.lrSchedule", oldValue: { type: "constant" }, newValue: { type: "step", everyEpochs: 2, factor: 0.5 } },
    ]);
  });
});

describe("settingsPatchOf: what the orchestrator hands the trainer", () => {
  it("is accepted by the trainer's epoch control schema", () => {
    const config = trainingConfigSchema.parse({ ...irisConfig(), training: { ...irisConfig().training, earlyStopping: { patience: 2 } } });
    const v = validatePilotChanges(config, { "training.earlyStopping.patience": 5, "training.learningRate": 0.01 });
    if (!v.ok) throw new Error(v.message);
    const apply = settingsPatchOf(v.changes, effectiveConfig(config, [v]));
    expect(apply).toEqual({ earlyStopping: { metric: "val_loss", mode: "min", patience: 5, minDelta: 0 }, learningRate: 0.01 });
    expect(parseEpochControl({ apply, then: "continue" }).ok).toBe(true);
  });
});
