/**
 * Sweeps (issue 17), for real: spec validation naming the path (nothing created on a bad space), trial generation
 * deterministic by seed (grid, random, TPE; and TPE through real Iris trainings, twice), ASHA early termination
 * stopping a poor trial of a real sweep as a machine decision, the engineer's decisions (pause, resume, extend, stop,
 * choose the winner) in the ledger, and audit content verification clean on it and catching a tampered spec.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count, eq, ne } from "drizzle-orm";
import { auditEvents, runs, sweeps } from "@/db/schema";
import {
  paramImportance,
  parseSweepSpec,
  suggestTrial,
  type SweepSpecInput,
  type SweepSpec,
  type TrialObservation,
} from "@/contracts/sweep-spec";
import { driveSweep } from "@/server/sweeps/driver";
import { checkContent } from "@/server/audit/content/verify-content";
import { snapshot } from "@/server/audit/content/tests/content-fixture";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { users } from "@/db/schema";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { exportReportBundle } from "@/server/audit/report/export-bundle";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

const spec = (over: Partial<SweepSpecInput> = {}): SweepSpecInput => ({
  base: irisConfig({ epochs: 3 }),
  space: {
    "training.learningRate": { type: "logUniform", min: 0.001, max: 0.1 },
    "model.layers.0.units": { type: "int", min: 4, max: 32, step: 4 },
    "training.optimizer.name": { type: "choice", values: ["adam", "rmsprop"] },
  },
  method: "random",
  budget: { maxTrials: 3, maxParallel: 1 },
  metric: { name: "val_loss", direction: "minimize" },
  seed: 11,
  rationale: "find a learning rate and width for the Iris MLP",
  ...over,
});

const ok = (input: unknown): SweepSpec => {
  const p = parseSweepSpec(input);
  if (!p.ok) throw new Error(p.message);
  return p.spec;
};

describe("sweep spec", () => {
  it("names the offending path of an invalid space", () => {
    const bad = (space: unknown, extra: Partial<SweepSpecInput> = {}) => {
      const p = parseSweepSpec({ ...spec(extra), space });
      return p.ok ? "accepted" : p.message;
    };
    expect(bad({ "training.learningRate": { type: "logUniform", min: 0, max: 0.1 } })).toBe(
      "space.training.learningRate: min must be > 0 for log scale",
    );
    expect(bad({ "training.learningRate": { type: "uniform", min: 0.1, max: 0.01 } })).toBe(
      "space.training.learningRate: min must be < max",
    );
    expect(bad({ "model.layers.0.units": { type: "int", min: 0, max: 8 } })).toMatch(
      /^space\.model\.layers\.0\.units: the value 0 gives an invalid config \(model\.layers\.0\.units: units must be at least 1\)/,
    );
    expect(bad({ "model.layers.3.units": { type: "int", min: 1, max: 8 } })).toMatch(
      /^space\.model\.layers\.3\.units: index 3 is past the end/,
    );
    expect(bad({ "training.learningRate": { type: "uniform", min: 0.01, max: 0.1 } }, { method: "grid" })).toBe(
      "space.training.learningRate: a uniform range needs gridPoints for a grid search",
    );
    expect(bad({ "training.optimizer.name": { type: "choice", values: ["adam", "lbfgs"] } })).toMatch(
      /^space\.training\.optimizer\.name: the value "lbfgs" gives an invalid config/,
    );
    const noRationale = parseSweepSpec({ ...spec(), rationale: " " });
    expect(noRationale.ok ? "" : noRationale.message).toMatch(/^rationale: a rationale is required/);
  });

  it("generates the same trials from the same spec and seed (grid, random, TPE), other trials from another seed", () => {
    const gen = (s: SweepSpec, n: number, history: TrialObservation[] = []) =>
      Array.from({ length: n }, (_, i) => suggestTrial(s, i, history));
    const random = ok(spec());
    expect(gen(random, 6)).toEqual(gen(ok(spec()), 6));
    expect(gen(random, 6)).not.toEqual(gen(ok(spec({ seed: 12 })), 6));
    for (const t of gen(random, 20)) {
      expect(t["training.learningRate"]).toBeGreaterThanOrEqual(0.001);
      expect(t["training.learningRate"]).toBeLessThanOrEqual(0.1);
      expect([4, 8, 12, 16, 20, 24, 28, 32]).toContain(t["model.layers.0.units"]);
    }
    const grid = ok(
      spec({
        method: "grid",
        space: {
          "training.learningRate": { type: "logUniform", min: 0.001, max: 0.1, gridPoints: 3 },
          "model.layers.0.units": { type: "choice", values: [8, 16] },
        },
      }),
    );
    expect(gen(grid, 6).map((t) => [Number((t["training.learningRate"] as number).toPrecision(6)), t["model.layers.0.units"]])).toEqual([
      [0.001, 8],
      [0.01, 8],
      [0.1, 8],
      [0.001, 16],
      [0.01, 16],
      [0.1, 16],
    ]);
    // TPE: after the startup trials, suggestions concentrate where the good trials are (low learning rates here).
    const tpe = ok(spec({ method: "tpe", tpe: { startupTrials: 4, gamma: 0.25, candidates: 48 } }));
    const history: TrialObservation[] = Array.from({ length: 16 }, (_, i) => {
      const lr = 0.001 * Math.pow(100, i / 15);
      return { params: { "training.learningRate": lr, "model.layers.0.units": 16, "training.optimizer.name": "adam" }, value: lr };
    });
    const a = gen(tpe, 24, history).slice(4);
    expect(a).toEqual(gen(ok(spec({ method: "tpe", tpe: { startupTrials: 4, gamma: 0.25, candidates: 48 } })), 24, history).slice(4));
    const lrs = a.map((t) => t["training.learningRate"] as number);
    const median = [...lrs].sort((x, y) => x - y)[Math.floor(lrs.length / 2)]!;
    expect(median).toBeLessThan(0.01); // the log-uniform prior's median is 0.01
  });

  it("ranks the hyperparameter the metric depends on as the most important", () => {
    const trials: TrialObservation[] = Array.from({ length: 12 }, (_, i) => ({
      params: { lr: 0.001 * (i + 1), units: [8, 16, 32][i % 3], opt: i % 2 ? "adam" : "sgd" },
      value: 0.001 * (i + 1) * 10 + (i % 3 === 0 ? 0.0001 : 0),
    }));
    const imp = paramImportance(trials, ["lr", "opt", "units"])!;
    expect(imp[0]!.path).toBe("lr");
    expect(imp[0]!.importance).toBeGreaterThan(0.8);
    expect(imp.find((x) => x.path === "units")!.importance).toBeLessThan(0.2);
    expect(paramImportance(trials.slice(0, 2), ["lr"])).toBeNull();
  });
});

describe("sweeps on a real app", () => {
  let app: TestApp;
  beforeAll(() => {
    app = createTestApp();
  });
  afterAll(() => app?.close());
  const events = (action: string) => app.db.select().from(auditEvents).where(eq(auditEvents.action, action)).all();

  it("refuses an invalid space with the path at fault and creates nothing", async () => {
    const before = {
      sweeps: app.db.select({ n: count() }).from(sweeps).get()!.n,
      runs: app.db.select({ n: count() }).from(runs).get()!.n,
      events: app.db.select({ n: count() }).from(auditEvents).where(ne(auditEvents.action, "audit.checkpoint")).get()!.n,
    };
    await expect(
      app.as("engineer").sweeps.create({
        experimentId: app.experimentId,
        spec: spec({ space: { "training.learningRate": { type: "logUniform", min: -1, max: 0.1 } } }),
      }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST", message: "invalid sweep: space.training.learningRate: min must be > 0 for log scale" });
    await expect(app.as("reviewer").sweeps.create({ experimentId: app.experimentId, spec: spec() })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    expect({
      sweeps: app.db.select({ n: count() }).from(sweeps).get()!.n,
      runs: app.db.select({ n: count() }).from(runs).get()!.n,
      events: app.db.select({ n: count() }).from(auditEvents).where(ne(auditEvents.action, "audit.checkpoint")).get()!.n,
    }).toEqual(before);
  });

  it("TPE over real Iris trainings: the same spec and seed give the same trial configs twice", async () => {
    const engineer = app.as("engineer");
    const s = spec({
      name: "tpe-twice",
      method: "tpe",
      budget: { maxTrials: 4, maxParallel: 1 },
      tpe: { startupTrials: 2, gamma: 0.25, candidates: 24 },
      seed: 5,
    });
    const ids: number[] = [];
    for (let k = 0; k < 2; k++) {
      const { id } = await engineer.sweeps.create({ experimentId: app.experimentId, spec: s });
      await driveSweep(app, app.orchestrator, id);
      ids.push(id);
    }
    const [a, b] = await Promise.all(ids.map((id) => engineer.sweeps.get({ id })));
    expect(a!.status).toBe("completed");
    expect(a!.trials).toHaveLength(4);
    const configsOf = (sw: typeof a) =>
      sw!.trials.map((t) => app.db.select({ sha: runs.configSha256 }).from(runs).where(eq(runs.id, t.runId)).get()!.sha);
    expect(b!.trials.map((t) => t.params)).toEqual(a!.trials.map((t) => t.params));
    expect(configsOf(b)).toEqual(configsOf(a));
    expect(a!.trials.every((t) => t.status === "completed" && t.value !== null)).toBe(true);
    // Trials are runs of origin "sweep", created by the sweep (system actor) and naming it.
    const trialRun = app.db.select().from(runs).where(eq(runs.id, a!.trials[3]!.runId)).get()!;
    expect(trialRun.origin).toBe("sweep");
    const create = events("run.create").find((e) => e.entityId === String(trialRun.id))!;
    expect(create.role).toBe("system");
    expect(create.actorName).toMatch(new RegExp(`sweep #${ids[0]}`));
    expect(JSON.parse(create.payload)).toMatchObject({ origin: "sweep", sweepId: ids[0], trialIndex: 3, generatedBy: "sweep" });
    const created = events("sweep.create").find((e) => e.entityId === String(ids[0]))!;
    expect(JSON.parse(created.payload).specSha256).toBe(app.db.select().from(sweeps).where(eq(sweeps.id, ids[0]!)).get()!.specSha256);
    expect(created.role).toBe("engineer");
  }, 300_000);

  it("ASHA stops a poor trial at its rung (a recorded machine decision); the engineer chooses the winner; audit verify stays clean and catches a tampered spec", async () => {
    const engineer = app.as("engineer");
    const base = irisConfig({ epochs: 40 });
    (base.training as { batchSize: number }).batchSize = 8;
    const { id } = await engineer.sweeps.create({
      experimentId: app.experimentId,
      spec: spec({
        name: "asha-lr",
        base,
        method: "grid",
        space: { "training.learningRate": { type: "choice", values: [0.05, 0.00001] } },
        budget: { maxTrials: 2, maxParallel: 1 },
        earlyTermination: { type: "asha", rungs: [2], eta: 2 },
        rationale: "does a tiny learning rate keep up? stop it early if not",
      }),
    });
    await driveSweep(app, app.orchestrator, id);
    const sw = await engineer.sweeps.get({ id });
    expect(sw.status).toBe("completed");
    const [good, poor] = sw.trials;
    expect(good!.status).toBe("completed");
    expect(good!.stoppedAtRung).toBeNull();
    expect(poor!.params).toEqual({ "training.learningRate": 0.00001 });
    expect(poor!.stoppedAtRung).toBe(2);
    expect(poor!.status).toBe("cancelled");
    expect(poor!.epochsRun!).toBeLessThan(40);
    const stop = events("sweep.stopTrial").find((e) => e.entityId === String(id))!;
    expect(stop.role).toBe("system");
    expect(JSON.parse(stop.payload)).toMatchObject({ runId: poor!.runId, rung: 2, metric: "val_loss", eta: 2, trialsAtRung: 2 });
    expect(JSON.parse(stop.payload).reason).toMatch(/^asha: val_loss .* at epoch 2 is not in the top 1\/2 of the 2 trial\(s\)/);
    // The trial's run page says who stopped it and why: the sweep's machine decision, not a person.
    expect((await engineer.runs.get({ id: poor!.runId })).cancellation).toEqual({
      by: stop.actorName,
      at: stop.at,
      reason: JSON.parse(stop.payload).reason,
    });
    expect((await engineer.runs.get({ id: good!.runId })).cancellation).toBeNull();
    expect(sw.best).toEqual({ runId: good!.runId, metric: "val_loss", value: good!.value });

    // The engineer's decisions, each with its rationale.
    await expect(engineer.sweeps.chooseWinner({ sweepId: id, runId: poor!.runId, rationale: "x" })).rejects.toMatchObject({
      code: "CONFLICT",
      message: `runId: run ${poor!.runId} is cancelled; only a completed trial can win`,
    });
    await expect(app.as("auditor").sweeps.chooseWinner({ sweepId: id, runId: good!.runId, rationale: "x" })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await expect(engineer.sweeps.pause({ sweepId: id, rationale: "hold" })).rejects.toMatchObject({ code: "CONFLICT" });
    const won = await engineer.sweeps.chooseWinner({
      sweepId: id,
      runId: good!.runId,
      rationale: "lowest val loss; the tiny rate was stopped at epoch 2",
    });
    expect(won).toMatchObject({ runId: good!.runId, trials: 2 });
    await expect(engineer.sweeps.extend({ sweepId: id, addTrials: 1, rationale: "one more look" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: `addTrials: the grid of sweep ${id} has 2 point(s); the budget cannot exceed it`,
    });
    const after = await engineer.sweeps.get({ id });
    expect(after.winnerRunId).toBe(good!.runId);
    expect(after.winnerChosenByName).toBe("Erin Engineer");
    // The run page reads which sweep generated a run (sweeps.ofRun): the winner with its decision, the other trial without.
    expect(await app.as("auditor").sweeps.ofRun({ runId: good!.runId })).toMatchObject({
      sweepId: id,
      sweepName: "asha-lr",
      trialIndex: 0,
      trials: 2,
      chosen: { by: "Erin Engineer", rationale: "lowest val loss; the tiny rate was stopped at epoch 2" },
    });
    expect(await app.as("auditor").sweeps.ofRun({ runId: poor!.runId })).toMatchObject({ sweepId: id, trialIndex: 1, chosen: null });
    const { id: handRunId } = await engineer.runs.create({
      experimentId: app.experimentId,
      config: irisConfig({ epochs: 1 }),
      rationale: "not a trial",
    });
    expect(await app.as("auditor").sweeps.ofRun({ runId: handRunId })).toBeNull();
    await app.orchestrator.waitFor(handRunId);
    // The lineage of a model registered from the winner says where it came from and who chose it, why.
    const registered = await engineer.models.register({ runId: good!.runId, modelName: "iris-sweep-winner" });
    const lineage = await app.as("auditor").models.lineage({ modelName: "iris-sweep-winner", version: registered.version });
    const node = lineage.graph.nodes.find((n) => n.id === `run:${good!.runId}`)!;
    expect(node.lines).toContain(
      `chosen from sweep #${id} "asha-lr" (2 trials) by Erin Engineer because lowest val loss; the tiny rate was stopped at epoch 2`,
    );
    expect(node.details).toContainEqual({ label: "How it came to be", value: `trial 1 generated by sweep #${id}` });
    // … and so does the auditor's report (section 5, the run's meta line).
    const bundle = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "runledger-sweep-report-")), "bundle");
    const auditorRow = app.db.select().from(users).where(eq(users.email, DEMO_USERS[3]!.email)).get()!;
    exportReportBundle({ db: app.db, auditKeys: app.auditKeys }, actorOf(auditorRow), registered.modelVersionId, bundle);
    const html = fs.readFileSync(path.join(bundle, "report.html"), "utf8");
    fs.rmSync(path.dirname(bundle), { recursive: true, force: true });
    expect(html).toContain(
      `Sweep: chosen from sweep #${id} &quot;asha-lr&quot; (2 trials) by Erin Engineer because lowest val loss; the tiny rate was stopped at epoch 2.`,
    );
    const list = await app.as("auditor").sweeps.list({ experimentId: app.experimentId });
    expect(list.map((s) => s.id)).toContain(id);

    // Pause, extend, resume and stop: each an engineer's decision with its rationale; stop cancels the active trial.
    const { id: id2 } = await engineer.sweeps.create({
      experimentId: app.experimentId,
      spec: spec({ base: irisConfig({ epochs: 200 }), budget: { maxTrials: 1, maxParallel: 1 }, rationale: "a long one, to steer" }),
    });
    expect(await engineer.sweeps.pause({ sweepId: id2, rationale: "hold new trials while we look" })).toMatchObject({ status: "paused" });
    expect(await engineer.sweeps.extend({ sweepId: id2, addTrials: 2, rationale: "three trials after all" })).toMatchObject({
      maxTrials: 3,
      status: "paused",
    });
    await expect(engineer.sweeps.pause({ sweepId: id2, rationale: "again" })).rejects.toMatchObject({
      message: `sweep ${id2} is paused: pause needs a sweep that is running`,
    });
    await engineer.sweeps.resume({ sweepId: id2, rationale: "go on" });
    const stopped = await engineer.sweeps.stop({ sweepId: id2, rationale: "budget spent elsewhere" });
    expect(stopped.cancelledTrialRunIds.length).toBeGreaterThanOrEqual(1);
    await driveSweep(app, app.orchestrator, id2);
    const s2 = await engineer.sweeps.get({ id: id2 });
    for (const t of s2.trials) await app.orchestrator.waitFor(t.runId);
    expect(s2.status).toBe("stopped");
    expect((await engineer.sweeps.get({ id: id2 })).trials.every((t) => t.status === "cancelled")).toBe(true);
    expect((await engineer.runs.get({ id: stopped.cancelledTrialRunIds[0]! })).cancellation).toMatchObject({
      by: "Erin Engineer",
      reason: "budget spent elsewhere",
    });
    expect(
      app.db
        .select({ action: auditEvents.action })
        .from(auditEvents)
        .where(eq(auditEvents.entityType, "sweep"))
        .all()
        .filter((_, i, all) => all.length > 0)
        .map((e) => e.action)
        .slice(-5),
    ).toEqual(["sweep.create", "sweep.pause", "sweep.extend", "sweep.resume", "sweep.stop"]);

    // Audit content: clean, then a tampered spec (budget raised behind the app's back) and a tampered early stop.
    const clean = snapshot(app);
    try {
      const r = checkContent(clean.db, { artifactsDir: clean.artifactsDir, uptoSeq: clean.maxSeq });
      expect(r.level.problems.map((p) => p.message)).toEqual([]);
    } finally {
      clean.close();
    }
    const spec1 = snapshot(app);
    try {
      spec1.db.prepare("UPDATE sweeps SET spec_json = json_set(spec_json, '$.budget.maxTrials', 50) WHERE id = ?").run(id);
      spec1.db.prepare("UPDATE sweep_trials SET stopped_at_rung = NULL WHERE run_id = ?").run(poor!.runId);
      const r = checkContent(spec1.db, { artifactsDir: spec1.artifactsDir, uptoSeq: spec1.maxSeq });
      expect(r.level.ok).toBe(false);
      const fields = r.level.problems.filter((p) => p.entityType === "sweep" && p.entityId === String(id)).map((p) => p.field);
      expect(fields).toContain("spec (sha256 of the stored spec)");
      expect(fields).toContain(`trial 1 (run ${poor!.runId}): early stop rung`);
    } finally {
      spec1.close();
    }
  }, 300_000);
});
