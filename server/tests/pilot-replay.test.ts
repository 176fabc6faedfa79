/**
 * Replay, planned interventions and rollback branches (server/runs/replay.ts, contracts/pilot-config.ts
 * validateSchedule, server/runs/pilot.ts applyRollback), with real Iris training in worker threads:
 * - a live-piloted run (learning rate lowered at epoch 1, stopped at epoch 2; reached deterministically through a
 *   pause, which changes no weights) is re-run: the re-run replays those changes as planned decisions citing the
 *   interventions and ends with the same weights hash and the same "lr" series; so does a run piloted without pauses
 *   (lr lowered at epoch 2, stopped at epoch 4: requests timed by a hook on the resume-state store of a boundary);
 * - the same changes written in a config's `schedule` give that hash too (another config hash), are recorded as
 *   planned decisions, show in the effective config; a bad entry is refused by name with nothing written;
 * - a rollback of a completed run to its epoch-2 checkpoint creates a branch (origin "branch", parent checkpoint
 *   that checkpoint) that trains only the remaining epochs: with unchanged settings it reproduces the source's hash,
 *   with a lower learning rate it differs; a rollback of a running run stops it at its next boundary;
 * - `npm run cli -- show` (spawned) and `rerun` print their JSON shapes; the content check stays clean.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { and, asc, count, eq } from "drizzle-orm";
import { checkpoints, decisions, metrics, resumeStates, runInterventions, runs, users } from "@/db/schema";
import { createRun, requestPilotInterventionOn } from "@/server/runs/service";
import { requestIntervention } from "@/server/runs/pilot";
import { runEffectiveConfig } from "@/server/runs/pilot-queries";
import { createRerun } from "@/server/runs/replay";
import { runRecord } from "@/server/runs/run-record";
import { pilotCommand } from "@/server/cli/pilot";
import { exportReportBundle } from "@/server/audit/report/export-bundle";
import { verifyReportBundle } from "@/server/audit/report/verify-report";
import { actorOf } from "@/server/users/service";
import { checkContent } from "@/server/audit/content/verify-content";
import { verifyDatabase } from "@/server/audit/verify";
import { DEMO_USERS } from "@/server/demo/seed";
import type { TrainingConfigInput } from "@/contracts/training-config";
import { snapshot } from "@/server/audit/content/tests/content-fixture";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

/**
 * Requests made when a run's resume state of an epoch is stored (its checkpoint at that boundary, whose control was
 * already answered): they are pending at the next boundary, so a live intervention lands at a chosen epoch.
 */
const atCheckpoint = new Map<string, () => unknown>();
vi.mock("@/server/runs/resume-states", async (importOriginal) => {
  const original = await importOriginal<typeof import("@/server/runs/resume-states")>();
  return {
    ...original,
    storeResumeStateOn: async (...args: Parameters<typeof original.storeResumeStateOn>) => {
      const key = `${args[1].runId}-${args[1].epoch}`;
      const run = atCheckpoint.get(key);
      atCheckpoint.delete(key);
      await (run?.() as Promise<void> | undefined);
      return original.storeResumeStateOn(...args);
    },
  };
});

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
const lrSeries = (id: number) =>
  app.db
    .select({ epoch: metrics.epoch, value: metrics.value })
    .from(metrics)
    .where(and(eq(metrics.runId, id), eq(metrics.key, "lr")))
    .orderBy(asc(metrics.step))
    .all()
    .map((p) => [p.epoch, p.value]);
const create = (config: TrainingConfigInput, rationale: string) =>
  createRun(engineer(), { experimentId: app.experimentId, config, rationale }).id;
const train = async (id: number) => {
  await app.orchestrator.launch(id);
  await app.orchestrator.waitFor(id);
  return runRow(id);
};
const countRows = () => ({
  runs: app.db.select({ n: count() }).from(runs).get()!.n,
  decisions: app.db.select({ n: count() }).from(decisions).get()!.n,
});

const base = irisConfig({ epochs: 5, seed: 7, learningRate: 0.03 });
let piloted: number;
/** Runs whose auditor's bundle is verified at the end: one with a schedule, one branch. */
const bundled: number[] = [];

beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app?.close());

describe("replay of a piloted run", () => {
  it("a live-piloted run (lr 0.03 → 0.01 at epoch 1, stopped at epoch 2) re-runs to the same weights hash", async () => {
    piloted = create(base, "to pilot live");
    // Requested while queued, the rate change and a pause take effect at epoch 1; the stop, asked while paused,
    // takes effect at the next boundary after the resume: epoch 2. A pause changes no weights (exact resume).
    const set = requestIntervention(engineer(), {
      runId: piloted,
      kind: "set",
      set: { "training.learningRate": 0.01 },
      rationale: "loss oscillates",
    });
    requestIntervention(engineer(), { runId: piloted, kind: "pause", rationale: "look first" });
    expect((await train(piloted)).status).toBe("paused");
    const stop = requestIntervention(engineer(), { runId: piloted, kind: "stop", rationale: "good enough" });
    await requestPilotInterventionOn(engineer(), app.orchestrator, { runId: piloted, kind: "resume", rationale: "finish" });
    await app.orchestrator.waitFor(piloted);
    const source = runRow(piloted);
    expect(source.status).toBe("completed");
    const applied = (id: number) => app.db.select().from(runInterventions).where(eq(runInterventions.id, id)).get()!;
    expect([applied(set.id).appliedAtEpoch, applied(stop.id).appliedAtEpoch]).toEqual([1, 2]);
    expect(lrSeries(piloted)).toEqual([
      [1, 0.03],
      [2, 0.01],
    ]);

    const rerun = createRerun(engineer(), { runId: piloted });
    expect(rerun).toMatchObject({ origin: "rerun", parentRunId: piloted });
    const done = await train(rerun.id);
    expect(done.status).toBe("completed");
    expect(done.finalWeightsSha256).toBe(source.finalWeightsSha256);
    expect(lrSeries(rerun.id)).toEqual(lrSeries(piloted));
    expect(checkpointEpochs(rerun.id)).toEqual(checkpointEpochs(piloted));

    // Its record: the creation decision, then one planned decision per replayed change, citing the intervention.
    const record = await runRecord(app.db, rerun.id);
    expect(record).toMatchObject({ status: "completed", epoch: 2, weightsSha256: source.finalWeightsSha256 });
    expect(record.decisions.map((d) => [d.kind, d.atEpoch, d.replays?.interventionId ?? null])).toEqual([
      ["initial", 0, null],
      ["planned", 1, set.id],
      ["planned", 2, stop.id],
    ]);
    expect(record.decisions[1]!.changes).toEqual([{ path: "training.learningRate", oldValue: 0.03, newValue: 0.01 }]);
    expect(record.decisions[1]!.rationale).toMatch(new RegExp(`replays intervention #${set.id} .*loss oscillates`));
    expect(record.decisions[1]!.metricsAtDecision?.last.lr).toBe(0.03);
    expect(record.decisions[2]!.changes).toEqual([{ path: "stop", oldValue: null, newValue: true }]);
    expect(runEffectiveConfig(app.db, rerun.id).effective.training.learningRate).toBe(0.01);
    // The source's record shows its interventions where they took effect.
    const sourceRecord = await runRecord(app.db, piloted);
    expect(sourceRecord.decisions.filter((d) => d.kind === "intervention").map((d) => [d.action, d.atEpoch])).toEqual([
      ["set", 1],
      ["pause", 1],
      ["resume", 1],
      ["stop", 2],
    ]);
  }, 300_000);

  it("live changes landing at epochs 2 and 4 (lr 0.03 → 0.01, then stop) are replayed at those epochs: same hash", async () => {
    const config = irisConfig({ epochs: 6, seed: 9, learningRate: 0.03 });
    const live = create(config, "piloted without pauses");
    const ids: number[] = [];
    atCheckpoint.set(`${live}-1`, () =>
      ids.push(
        requestIntervention(engineer(), { runId: live, kind: "set", set: { "training.learningRate": 0.01 }, rationale: "lower" }).id,
      ),
    );
    atCheckpoint.set(`${live}-3`, () => ids.push(requestIntervention(engineer(), { runId: live, kind: "stop", rationale: "done" }).id));
    const done = await train(live);
    expect(done.status).toBe("completed");
    expect(ids.map((id) => app.db.select().from(runInterventions).where(eq(runInterventions.id, id)).get()!.appliedAtEpoch)).toEqual([
      2, 4,
    ]);
    expect(lrSeries(live).map(([, lr]) => lr)).toEqual([0.03, 0.03, 0.01, 0.01]);
    const rerun = createRerun(engineer(), { runId: live });
    expect((await train(rerun.id)).finalWeightsSha256).toBe(done.finalWeightsSha256);
    expect((await runRecord(app.db, rerun.id)).decisions.map((d) => [d.kind, d.atEpoch])).toEqual([
      ["initial", 0],
      ["planned", 2],
      ["planned", 4],
    ]);
    // The same path written as a schedule gives that hash too.
    const scheduled = create(
      {
        ...config,
        schedule: [
          { atEpoch: 2, set: { "training.learningRate": 0.01 }, rationale: "lower" },
          { atEpoch: 4, stop: true, rationale: "done" },
        ],
      },
      "planned path",
    );
    expect((await train(scheduled)).finalWeightsSha256).toBe(done.finalWeightsSha256);
    // And differs from the run without changes.
    expect((await train(create(config, "unpiloted"))).finalWeightsSha256).not.toBe(done.finalWeightsSha256);
  }, 300_000);

  it("a config's schedule with the same changes gives the same hash, as planned decisions in the effective config", async () => {
    const scheduled: TrainingConfigInput = {
      ...base,
      schedule: [
        { atEpoch: 1, set: { "training.learningRate": 0.01 }, rationale: "planned: lower the rate after warm-up" },
        { atEpoch: 2, stop: true, rationale: "planned: two epochs are enough" },
      ],
    };
    const id = create(scheduled, "a planned piloting path");
    bundled.push(id);
    expect(runRow(id).configSha256).not.toBe(runRow(piloted).configSha256);
    const planned = app.db
      .select()
      .from(decisions)
      .where(and(eq(decisions.runId, id), eq(decisions.kind, "planned")))
      .all();
    expect(planned.map((d) => [d.path, d.rationale])).toEqual([
      ["training.learningRate", "planned: lower the rate after warm-up"],
      ["stop", "planned: two epochs are enough"],
    ]);
    expect(runEffectiveConfig(app.db, id).effective.training.learningRate).toBe(0.03); // not reached yet
    const done = await train(id);
    expect(done.status).toBe("completed");
    expect(done.finalWeightsSha256).toBe(runRow(piloted).finalWeightsSha256);
    expect(lrSeries(id)).toEqual(lrSeries(piloted));
    expect(runEffectiveConfig(app.db, id).effective.training.learningRate).toBe(0.01);
    expect((await runRecord(app.db, id)).decisions.filter((d) => d.kind === "planned").map((d) => [d.atEpoch, d.reached])).toEqual([
      [1, true],
      [2, true],
    ]);
  }, 300_000);

  it("a bad schedule entry is refused by name and nothing is written", () => {
    const before = countRows();
    const bad = (schedule: unknown) => () => create({ ...base, schedule } as TrainingConfigInput, "bad plan");
    expect(bad([{ atEpoch: 2, set: { "training.batchSize": 8 }, rationale: "x" }])).toThrow(
      /schedule\.0 \(atEpoch 2\): training\.batchSize: not a path a pilot can change/,
    );
    expect(
      bad([
        { atEpoch: 1, set: {}, rationale: "x" },
        { atEpoch: 2, set: { "training.learningRate": -1 }, rationale: "y" },
      ]),
    ).toThrow(/schedule\.0: a schedule entry sets at least one path/);
    expect(bad([{ atEpoch: 2, set: { "training.learningRate": -1 }, rationale: "y" }])).toThrow(
      /schedule\.0 \(atEpoch 2\): training\.learningRate: learningRate must be > 0/,
    );
    expect(bad([{ atEpoch: 9, stop: true, rationale: "late" }])).toThrow(/schedule\.0 \(atEpoch 9\): the run trains only 5 epochs/);
    expect(bad([{ atEpoch: 2, stop: true }])).toThrow(/schedule\.0\.rationale/);
    expect(countRows()).toEqual(before);
  });
});

describe("rollback branches", () => {
  let source: number;
  it("a branch from epoch 2 of a completed run, settings unchanged, continues exactly: same hash, epochs 3-5 only", async () => {
    source = create(base, "to branch from");
    const done = await train(source);
    expect(done.status).toBe("completed");
    const ck2 = app.db
      .select()
      .from(checkpoints)
      .where(and(eq(checkpoints.runId, source), eq(checkpoints.epoch, 2)))
      .get()!;
    const out = (await requestPilotInterventionOn(engineer(), app.orchestrator, {
      runId: source,
      kind: "rollback",
      fromCheckpointId: ck2.id,
      rationale: "continue from epoch 2 again",
    })) as { id: number; status: string; branchRunId?: number };
    expect(out.status).toBe("applied");
    const branchId = out.branchRunId!;
    expect(runRow(branchId)).toMatchObject({ origin: "branch", parentRunId: source, parentCheckpointId: ck2.id });
    await app.orchestrator.waitFor(branchId);
    const branch = runRow(branchId);
    expect(branch.status).toBe("completed");
    expect(checkpointEpochs(branchId)).toEqual([3, 4, 5]);
    expect(branch.finalWeightsSha256).toBe(done.finalWeightsSha256);
    expect(runRow(source).status).toBe("completed");
    // The source's decision names the branch; the branch's creation decision carries the rationale.
    const record = await runRecord(app.db, source);
    const rollback = record.decisions.find((d) => d.action === "rollback")!;
    expect(rollback).toMatchObject({ atEpoch: 2, branchRunId: branchId, rationale: "continue from epoch 2 again" });
    expect((await runRecord(app.db, branchId)).decisions.map((d) => d.kind)).toEqual(["initial"]);
  }, 300_000);

  it("a branch with a lower learning rate trains the remaining epochs with it and ends elsewhere", async () => {
    const ck2 = app.db
      .select()
      .from(checkpoints)
      .where(and(eq(checkpoints.runId, source), eq(checkpoints.epoch, 2)))
      .get()!;
    const out = (await requestPilotInterventionOn(engineer(), app.orchestrator, {
      runId: source,
      kind: "rollback",
      fromCheckpointId: ck2.id,
      set: { "training.learningRate": 0.005 },
      rationale: "overshoots after epoch 2: retry slower",
    })) as { branchRunId?: number };
    const branchId = out.branchRunId!;
    bundled.push(branchId);
    await app.orchestrator.waitFor(branchId);
    const branch = runRow(branchId);
    expect(branch.status).toBe("completed");
    expect(branch.finalWeightsSha256).not.toBe(runRow(source).finalWeightsSha256);
    expect(lrSeries(branchId)).toEqual([
      [3, 0.005],
      [4, 0.005],
      [5, 0.005],
    ]);
    const changes = (await runRecord(app.db, branchId)).decisions;
    expect(changes.map((d) => [d.kind, d.changes])).toEqual([
      ["change", [{ path: "training.learningRate", oldValue: 0.03, newValue: 0.005 }]],
    ]);
    // A rollback's changes are the branch's: the source's effective config is unchanged.
    expect(runEffectiveConfig(app.db, source).effective.training.learningRate).toBe(0.03);
    expect((await runRecord(app.db, branchId)).decisions[0]!.atEpoch).toBe(2);
    // A branch is not re-run from scratch: it continues another run's checkpoint.
    expect(() => createRerun(engineer(), { runId: branchId })).toThrow(/is a branch: it continues checkpoint/);
  }, 300_000);

  it("a rollback to a checkpoint without a resume state is refused and records nothing", async () => {
    const ck1 = app.db
      .select()
      .from(checkpoints)
      .where(and(eq(checkpoints.runId, source), eq(checkpoints.epoch, 1)))
      .get()!;
    // As for a checkpoint written before live piloting: no resume-state pointer.
    app.db
      .delete(resumeStates)
      .where(and(eq(resumeStates.runId, source), eq(resumeStates.epoch, 1)))
      .run();
    const before = app.db.select({ n: count() }).from(runInterventions).get()!.n;
    await expect(
      requestPilotInterventionOn(engineer(), app.orchestrator, {
        runId: source,
        kind: "rollback",
        fromCheckpointId: ck1.id,
        rationale: "x",
      }),
    ).rejects.toThrow(/checkpoint \d+ \(epoch 1\) has no resume state/);
    expect(app.db.select({ n: count() }).from(runInterventions).get()!.n).toBe(before);
  });

  it("npm run cli -- pilot --rollback of a completed run creates the branch and trains it in the CLI's process", async () => {
    const ck3 = app.db
      .select()
      .from(checkpoints)
      .where(and(eq(checkpoints.runId, source), eq(checkpoints.epoch, 3)))
      .get()!;
    let out = "";
    const o = vi.spyOn(process.stdout, "write").mockImplementation((x) => ((out += String(x)), true));
    const e = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    let code: number;
    try {
      code = await pilotCommand([
        "--run",
        String(source),
        "--rollback",
        String(ck3.id),
        "--rationale",
        "again from epoch 3",
        "--data-dir",
        app.dataDir,
        "--key-dir",
        app.keyDir,
        "--json",
      ]);
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
    expect(code).toBe(0);
    const shown = JSON.parse(out) as {
      kind: string;
      status: string;
      branchRunId: number;
      branch: { status: string; weightsSha256: string };
    };
    expect(shown).toMatchObject({ kind: "rollback", status: "applied", branch: { status: "completed" } });
    expect(shown.branch.weightsSha256).toBe(runRow(source).finalWeightsSha256);
    expect(runRow(shown.branchRunId)).toMatchObject({ origin: "branch", parentCheckpointId: ck3.id });
    expect(checkpointEpochs(shown.branchRunId)).toEqual([4, 5]);
  }, 300_000);

  it("a rollback of a running run stops it at its next boundary and the branch trains on", async () => {
    const id = create(irisConfig({ epochs: 8, seed: 11 }), "long run");
    // Asked while it trains (at its epoch-2 checkpoint): it takes effect at the boundary of epoch 3.
    let req: { id: number } | undefined;
    let ck1: typeof checkpoints.$inferSelect | undefined;
    atCheckpoint.set(`${id}-2`, async () => {
      ck1 = app.db
        .select()
        .from(checkpoints)
        .where(and(eq(checkpoints.runId, id), eq(checkpoints.epoch, 1)))
        .get()!;
      req = await requestPilotInterventionOn(engineer(), app.orchestrator, {
        runId: id,
        kind: "rollback",
        fromCheckpointId: ck1.id,
        set: { "training.epochs": 3 },
        rationale: "branch a short variant from epoch 1",
      });
    });
    await app.orchestrator.launch(id);
    await app.orchestrator.waitFor(id);
    const row = app.db.select().from(runInterventions).where(eq(runInterventions.id, req!.id)).get()!;
    expect(row).toMatchObject({ status: "applied", appliedAtEpoch: 3 });
    expect(runRow(id).status).toBe("completed");
    expect(checkpointEpochs(id)).toEqual([1, 2, 3]);
    expect(app.db.select().from(decisions).where(eq(decisions.id, row.decisionId!)).get()!.path).toBe("rollback, stop");
    const branchId = (await runRecord(app.db, id)).decisions.find((d) => d.action === "rollback")!.branchRunId!;
    await app.orchestrator.waitFor(branchId);
    expect(runRow(branchId)).toMatchObject({ status: "completed", origin: "branch", parentCheckpointId: ck1!.id });
    expect(checkpointEpochs(branchId)).toEqual([2, 3]);
    // A re-run of the stopped source replays the rollback as a stop at that boundary.
    const rerun = createRerun(engineer(), { runId: id });
    expect((await train(rerun.id)).finalWeightsSha256).toBe(runRow(id).finalWeightsSha256);
  }, 300_000);

  it("the content check and audit verify stay clean", async () => {
    const result = checkContent(app.db.$client, { artifactsDir: null, uptoSeq: Number.MAX_SAFE_INTEGER });
    expect(result.level.problems.map((p) => p.message)).toEqual([]);
    const verified = await verifyDatabase(app.dataDir, { publicKeyPem: app.auditKeys.publicKeyPem });
    expect(verified.ok, verified.problem ?? "").toBe(true);
  }, 120_000);

  it("the auditor's bundles of a scheduled run and of a branch verify offline (both verifiers)", async () => {
    for (const [n, runId] of bundled.entries()) {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-replay-bundle-"));
      try {
        const v = await app.as("engineer").models.register({ runId, modelName: `iris-replay-${n}` });
        const bundle = path.join(tmp, "bundle");
        const auditor = DEMO_USERS.find((u) => u.role === "auditor")!.email;
        exportReportBundle(
          { db: app.db, auditKeys: app.auditKeys },
          actorOf(app.db.select().from(users).where(eq(users.email, auditor)).get()!),
          v.modelVersionId,
          bundle,
        );
        expect(fs.readFileSync(path.join(bundle, "report.html"), "utf8")).toMatch(n === 0 ? /planned: / : /branch/);
        const full = await verifyReportBundle(bundle, { publicKeyPem: app.auditKeys.publicKeyPem });
        expect(full.problems).toEqual([]);
        const script = spawnSync(process.execPath, ["verify-bundle.mjs", "--json"], {
          cwd: bundle,
          encoding: "utf8",
          env: { PATH: process.env.PATH ?? "", NODE_ENV: "production" },
        });
        expect(script.status, script.stdout + script.stderr).toBe(0);
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
  }, 120_000);

  it("tampering with a planned decision, a branch's parent checkpoint or a rollback's decision is found", () => {
    const tampered = (sqlText: string, ...args: unknown[]) => {
      const s = snapshot(app);
      try {
        s.db.exec("DROP TRIGGER IF EXISTS decisions_no_update");
        s.db.exec("DROP TRIGGER IF EXISTS runs_no_update");
        s.db.prepare(sqlText).run(...args);
        return checkContent(s.db, { artifactsDir: null, uptoSeq: s.maxSeq }).level.problems.map((p) => `${p.entityType} ${p.entityId}`);
      } finally {
        s.close();
      }
    };
    const plannedId = app.db.select().from(decisions).where(eq(decisions.kind, "planned")).get()!.id;
    expect(tampered("UPDATE decisions SET rationale = 'approved by the board' WHERE id = ?", plannedId)).toContain(`decision ${plannedId}`);
    expect(tampered("UPDATE decisions SET new_value_json = '{\"training.learningRate\":0.5}' WHERE id = ?", plannedId)).toContain(
      `decision ${plannedId}`,
    );
    const branch = app.db.select().from(runs).where(eq(runs.origin, "branch")).get()!;
    expect(tampered("UPDATE runs SET parent_checkpoint_id = parent_checkpoint_id + 1 WHERE id = ?", branch.id)).toContain(
      `run ${branch.id}`,
    );
    const rollbackDecision = app.db.select().from(decisions).where(eq(decisions.path, "rollback")).get()!.id;
    expect(tampered(`UPDATE decisions SET new_value_json = '{"branchRunId":1}' WHERE id = ?`, rollbackDecision)).toContain(
      `decision ${rollbackDecision}`,
    );
  });
});

describe("npm run cli -- show / rerun", () => {
  const cli = (args: string[]) =>
    spawnSync(process.execPath, ["--import", "tsx", "server/cli/main.ts", ...args, "--data-dir", app.dataDir, "--json"], {
      // The CLI signs ledger checkpoints with the app's key (tests never use the default key directory).
      env: { ...process.env, RUNLEDGER_KEY_DIR: app.keyDir },
      encoding: "utf8",
      timeout: 240_000,
    });

  it("show prints the run's status, epoch, weights hash and decisions", () => {
    const r = cli(["show", "--run", String(piloted)]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      runId: number;
      status: string;
      epoch: number;
      weightsSha256: string;
      decisions: {
        kind: string;
        atEpoch: number;
        changes: unknown[];
        rationale: string;
        actor: { name: string };
        metricsAtDecision: unknown;
      }[];
    };
    expect(out).toMatchObject({ runId: piloted, status: "completed", epoch: 2, weightsSha256: runRow(piloted).finalWeightsSha256 });
    const set = out.decisions.find((d) => d.kind === "intervention" && d.changes.length > 0)!;
    expect(set).toMatchObject({
      atEpoch: 1,
      changes: [{ path: "training.learningRate", oldValue: 0.03, newValue: 0.01 }],
      rationale: "loss oscillates",
      actor: { name: expect.any(String) },
      metricsAtDecision: { last: expect.any(Object) },
    });
    expect(Object.keys(out.decisions[0]!).slice(0, 6)).toEqual(["kind", "atEpoch", "changes", "rationale", "actor", "metricsAtDecision"]);
    expect(cli(["show", "--run", "99999"]).status).toBe(2);
  }, 120_000);

  it("rerun trains the re-run in the CLI's process and prints train's JSON, reproducing the hash", () => {
    const r = cli(["rerun", "--run", String(piloted)]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(
      expect.arrayContaining([
        "runId",
        "status",
        "backend",
        "configSha256",
        "weightsSha256",
        "checkpoints",
        "metrics",
        "rerunOf",
        "reproduced",
      ]),
    );
    expect(out).toMatchObject({
      status: "completed",
      rerunOf: piloted,
      reproduced: true,
      weightsSha256: runRow(piloted).finalWeightsSha256,
    });
  }, 300_000);
});
