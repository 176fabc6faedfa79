/**
 * Rollback branches and pilot requests on the store (issue 16): the orchestrator's apply at a boundary
 * (server/runs/replay.ts applyPendingAtBoundaryOn: a rollback's branch run created by pilot.ts applyRollbackOn with
 * the runs service's branchRunOnStore; any other kind applied) and an engineer's pilot request
 * (server/runs/service.ts requestPilotInterventionOn: a resume handed to the orchestrator, a paused or completed run's
 * rollback applied at once and its branch launched) and a re-run (replay.ts launchRerun: the piloting path replayed as
 * schedule entries) give the same runs, params, decisions, interventions, datasets, launches, refusals and ledger rows
 * (seq, action, payload, chain hash, under one fixed clock) on SQLite through the synchronous forms (the boundary's
 * apply: the store form given the SQLite handle; its synchronous form is gone), on SQLite through the store forms, and
 * on PostgreSQL. No training: the interventions are applied by hand, as the orchestrator would at
 * a boundary. On PostgreSQL, through two pools: one rollback applied at once by two servers creates one branch.
 */
import { describe, expect, it } from "vitest";
import { eq, inArray } from "drizzle-orm";
import crypto from "node:crypto";
import { exec, pgStore, reader, rows, sqliteStore, transact, type Store } from "@/db/store";
import type { Db } from "@/db/client";
import { canonicalJson } from "@/contracts/canonical";
import { trainingConfigSchema } from "@/contracts/training-config";
import { fileArtifactStore } from "@/server/artifacts/store";
import { asyncFileArtifactStore } from "@/server/artifacts/async-store";
import type { ServiceContext, SignedInActor } from "@/server/app-context/service-context";
import { createExperiment, createProject } from "@/server/projects/service";
import { requestIntervention, requestInterventionOn, type RequestInterventionInput } from "@/server/runs/pilot";
import { watchedMetric } from "@/server/runs/pilot-queries";
import { applyPendingAtBoundaryOn, createRerun, launchRerun } from "@/server/runs/replay";
import { storeResumeStateOn } from "@/server/runs/resume-states";
import { requestPilotInterventionOn } from "@/server/runs/service";
import { describePg } from "./pg-test-env";
import {
  fixedDateForEachTest,
  refusal,
  seedPeople,
  sqliteForSuite,
  TEST_PEOPLE,
  tempDirForSuite,
  twoPgServersForSuite,
} from "./store-test-env";
import { irisConfig } from "./test-app";

const AT = "2026-12-05T04:30:00.000Z";
const { engineer, reviewer } = TEST_PEOPLE;

/** The synchronous SQLite forms (what the orchestrator and the router call until they switch), or the store forms. */
type Forms = "sync" | "store";

/** People, an experiment, runs (running, paused, completed, a compression), checkpoints with resume states, metrics. */
async function seed(store: Store, dataDir: string) {
  await seedPeople(store, { at: AT, passwordHash: "x" });
  const project = await createProject({ db: store, actor: engineer }, { name: "Rollback" });
  const experiment = await createExperiment({ db: store, actor: engineer }, { projectId: project.id, name: "iris" });
  const config = trainingConfigSchema.parse(irisConfig({ epochs: 4 }));
  const watched = watchedMetric(config);
  const run = (status: string, origin: string) => ({
    experimentId: experiment.id,
    name: `${origin}-${status}`,
    status: status as "running",
    configJson: canonicalJson(config),
    configSha256: "0".repeat(64),
    seed: 1,
    origin: origin as "new",
    createdBy: engineer.id,
    createdAt: AT,
  });
  const { runs, checkpoints, metrics, metricSummaries } = store.tables;
  const seeded = await transact(store, function* (tx) {
    const ids: Record<string, number> = {};
    for (const [name, status, origin] of [
      ["running", "running", "new"],
      ["paused", "paused", "new"],
      ["completed", "completed", "new"],
      ["compress", "paused", "compress"],
    ] as const)
      ids[name] = (yield* rows(tx.insert(runs).values(run(status, origin)).returning({ id: runs.id })))[0]!.id;
    const cks: Record<string, { id: number; runId: number; epoch: number }> = {};
    for (const [name, runId, epoch] of [
      ["running1", ids.running!, 1],
      ["running2", ids.running!, 2],
      ["running3", ids.running!, 3],
      ["paused1", ids.paused!, 1],
      ["paused2", ids.paused!, 2],
      ["completed2", ids.completed!, 2],
      ["compress1", ids.compress!, 1],
    ] as const) {
      const [ck] = yield* rows(
        tx
          .insert(checkpoints)
          .values({ runId, epoch, step: epoch * 7, sha256: "a".repeat(64), bytes: 1, metricsJson: "{}", createdAt: AT })
          .returning({ id: checkpoints.id }),
      );
      cks[name] = { id: ck!.id, runId, epoch };
    }
    for (const runId of [ids.running!, ids.paused!, ids.completed!]) {
      for (let epoch = 1; epoch <= 3; epoch++)
        yield* exec(tx.insert(metrics).values({ runId, key: watched, step: epoch * 7, epoch, value: 1 / (epoch + runId), wallTimeMs: 0 }));
      yield* exec(
        tx
          .insert(metricSummaries)
          .values({ runId, key: watched, last: 1 / (3 + runId), lastStep: 21, min: 1 / (3 + runId), max: 1 / (1 + runId), count: 3 }),
      );
    }
    return { runs: ids, cks };
  });
  // Every checkpoint but paused2 has an exact-resume state (a branch continues it; a rollback from paused2 is refused).
  const files = fileArtifactStore(dataDir);
  for (const [name, ck] of Object.entries(seeded.cks)) {
    if (name === "paused2") continue;
    const state = new TextEncoder().encode(`resume state of run ${ck.runId} at epoch ${ck.epoch}`);
    await storeResumeStateOn({ db: store, artifacts: files }, ck, state, crypto.createHash("sha256").update(state).digest("hex"));
  }
  return seeded;
}

async function scenario(store: Store, forms: Forms, dataDir: string) {
  const { runs: r, cks } = await seed(store, dataDir);
  const files = fileArtifactStore(dataDir);
  const launched: number[] = [];
  const orchestrator = {
    launch: (runId: number) => {
      launched.push(runId);
      return forms === "store" ? Promise.resolve(true) : true;
    },
  };
  const ctx = (actor: SignedInActor) => ({ db: store.db as Db, artifacts: files, dataDir, actor }) as unknown as ServiceContext;
  const request = (input: RequestInterventionInput) =>
    forms === "store"
      ? requestInterventionOn({ db: store, actor: engineer }, input)
      : Promise.resolve().then(() => requestIntervention(ctx(engineer), input));
  /** The orchestrator's call at a boundary; `awaited`: PostgreSQL's awaited artifact store (the file store otherwise). */
  const atBoundary = (interventionId: number, ck: { id: number; epoch: number }, awaited = false) => {
    const input = { interventionId, epoch: ck.epoch, step: ck.epoch * 7, checkpointId: ck.id };
    return forms === "store"
      ? applyPendingAtBoundaryOn({ db: store, artifacts: awaited ? asyncFileArtifactStore(dataDir) : files }, input)
      : applyPendingAtBoundaryOn({ db: store.db as Db, artifacts: files }, input); // the store form given the SQLite handle, as its SQLite callers did
  };
  const pilot = (actor: SignedInActor, input: RequestInterventionInput) =>
    forms === "store"
      ? requestPilotInterventionOn({ db: store, artifacts: files, dataDir, actor }, orchestrator, input)
      : requestPilotInterventionOn(ctx(actor), orchestrator, input);

  const ok: Record<string, unknown> = {};
  const refused: Record<string, unknown> = {};
  const attempt = async (name: string, p: Promise<unknown>, expectOk: boolean) => {
    if (expectOk) ok[name] = await p;
    else refused[name] = await refusal(p);
  };

  // A rollback of the training run, applied at its next boundary: the branch is created (its dataset registered on
  // first use, from the file store), the run's decision says "rollback, stop".
  const rollback = (await request({
    runId: r.running!,
    kind: "rollback",
    fromCheckpointId: cks.running1!.id,
    set: { "training.epochs": 6, "training.learningRate": 0.01 },
    rationale: "the rate was too high after epoch 1",
  })) as { id: number };
  await attempt("rollback at the wrong epoch's checkpoint", atBoundary(rollback.id, { id: cks.running3!.id, epoch: 2 }), false);
  await attempt("rollback at another run's checkpoint", atBoundary(rollback.id, cks.paused1!), false);
  await attempt("rollback at a boundary", atBoundary(rollback.id, cks.running2!), true);
  await attempt("rollback applied again", atBoundary(rollback.id, cks.running2!), false);
  // A rollback of the paused run, at its own checkpoint (it stays paused), its branch created with the awaited
  // artifact store (the dataset is registered by now).
  const again = (await request({
    runId: r.paused!,
    kind: "rollback",
    fromCheckpointId: cks.paused1!.id,
    rationale: "once more from epoch 1, unchanged",
  })) as { id: number };
  await attempt("second rollback at a boundary", atBoundary(again.id, cks.paused1!, true), true);
  // Any other kind is applied and launches nothing.
  const set = (await request({ runId: r.paused!, kind: "set", set: { "training.learningRate": 0.02 }, rationale: "slower" })) as {
    id: number;
  };
  await attempt("set at a boundary", atBoundary(set.id, cks.paused1!), true);
  await attempt("unknown intervention at a boundary", atBoundary(999, cks.paused1!), false);

  // Pilot requests: a paused run's resume goes to the orchestrator; a completed run's rollback applies at once.
  await attempt("resume the paused run", pilot(engineer, { runId: r.paused!, kind: "resume", rationale: "go on" }), true);
  await attempt(
    "rollback the completed run",
    pilot(engineer, {
      runId: r.completed!,
      kind: "rollback",
      fromCheckpointId: cks.completed2!.id,
      set: { "training.epochs": 5 },
      rationale: "one more epoch from epoch 2",
    }),
    true,
  );
  await attempt(
    "rollback from a checkpoint without resume state",
    pilot(engineer, { runId: r.paused!, kind: "rollback", fromCheckpointId: cks.paused2!.id, rationale: "x" }),
    false,
  );
  await attempt(
    "rollback a compression",
    pilot(engineer, { runId: r.compress!, kind: "rollback", fromCheckpointId: cks.compress1!.id, rationale: "x" }),
    false,
  );
  await attempt(
    "rollback by a reviewer",
    pilot(reviewer, { runId: r.completed!, kind: "rollback", fromCheckpointId: cks.completed2!.id, rationale: "x" }),
    false,
  );
  await attempt("pause the completed run", pilot(engineer, { runId: r.completed!, kind: "pause", rationale: "x" }), false);

  // Re-runs replay a finished run's piloting path: the training run (ended here by hand with its first branch, as the
  // orchestrator would) replays its set of epoch 1 and the stop of its first rollback at epoch 2.
  const lr = (await request({ runId: r.running!, kind: "set", set: { "training.learningRate": 0.02 }, rationale: "slower" })) as {
    id: number;
  };
  await attempt("set of the training run at epoch 1", atBoundary(lr.id, cks.running1!), true);
  const ended = [r.running!, ok["rollback at a boundary"] as number];
  await transact(store, (tx) =>
    exec(tx.update(store.tables.runs).set({ status: "completed" }).where(inArray(store.tables.runs.id, ended))),
  );
  const rerun = (actor: SignedInActor, runId: number) =>
    forms === "store"
      ? launchRerun({ db: store, artifacts: files, actor, dataDir }, orchestrator, { runId })
      : Promise.resolve().then(() => {
          const run = createRerun(ctx(actor), { runId });
          orchestrator.launch(run.id);
          return { id: run.id, name: run.name };
        });
  await attempt("re-run the piloted run", rerun(engineer, r.running!), true);
  await attempt("re-run a paused run", rerun(engineer, r.paused!), false);
  await attempt("re-run a branch", rerun(engineer, ended[1]!), false);
  await attempt("re-run by a reviewer", rerun(reviewer, r.completed!), false);
  await attempt("re-run an unknown run", rerun(engineer, 999), false);

  const { runs, runParams, decisions, runInterventions, datasets, auditEvents } = store.tables;
  const read = reader(store);
  return {
    ok,
    refused,
    launched,
    runs: await read.select().from(runs).orderBy(runs.id),
    params: await read.select().from(runParams).orderBy(runParams.runId, runParams.key),
    decisions: await read.select().from(decisions).orderBy(decisions.id),
    interventions: await read.select().from(runInterventions).orderBy(runInterventions.id),
    datasets: await read.select().from(datasets).orderBy(datasets.id),
    ledger: await read.select().from(auditEvents).orderBy(auditEvents.seq),
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<"sqlite sync" | "sqlite store" | "pg store", Outcome>> = {};

function behaviourCases(key: keyof typeof outcomes, storeOf: () => Store, forms: Forms, dataDir: () => string): void {
  fixedDateForEachTest(AT);
  it("applies rollbacks at boundaries and pilot requests, creates and launches their branches, refuses what it must", async () => {
    const outcome = await scenario(storeOf(), forms, dataDir());
    outcomes[key] = outcome;
    expect(Object.keys(outcome.ok)).toEqual([
      "rollback at a boundary",
      "second rollback at a boundary",
      "set at a boundary",
      "resume the paused run",
      "rollback the completed run",
      "set of the training run at epoch 1",
      "re-run the piloted run",
    ]);
    expect(outcome.refused["rollback applied again"]).toMatchObject({ kind: "wrong_state" });
    expect(outcome.refused["rollback at the wrong epoch's checkpoint"]).toMatchObject({ kind: "invalid_input" });
    expect(outcome.refused["rollback from a checkpoint without resume state"]).toMatchObject({
      kind: "invalid_input",
      message: expect.stringMatching(/has no resume state/),
    });
    expect(outcome.refused["rollback a compression"]).toMatchObject({ message: expect.stringMatching(/is a compression/) });
    expect(outcome.refused["rollback by a reviewer"]).toMatchObject({ kind: "forbidden" });
    expect(outcome.ok["set at a boundary"]).toBeNull();
    expect(outcome.refused["re-run a paused run"]).toMatchObject({ kind: "wrong_state" });
    expect(outcome.refused["re-run a branch"]).toMatchObject({ kind: "invalid_input", message: expect.stringMatching(/is a branch/) });
    expect(outcome.refused["re-run by a reviewer"]).toMatchObject({ kind: "forbidden" });
    expect(outcome.refused["re-run an unknown run"]).toMatchObject({ kind: "not_found" });

    const branches = outcome.runs.filter((x) => x.origin === "branch");
    expect(branches).toHaveLength(3);
    const [first, second, third] = branches;
    expect(outcome.ok["rollback at a boundary"]).toBe(first!.id);
    expect(outcome.ok["second rollback at a boundary"]).toBe(second!.id);
    expect(outcome.ok["rollback the completed run"]).toMatchObject({ kind: "rollback", status: "applied", branchRunId: third!.id });
    expect(JSON.parse(first!.configJson)).toMatchObject({ training: { epochs: 6, learningRate: 0.01 } });
    // The re-run replays the set at epoch 1 and the stop of the rollback at epoch 2, citing them.
    const rerun = outcome.runs.find((x) => x.origin === "rerun")!;
    expect(outcome.ok["re-run the piloted run"]).toEqual({ id: rerun.id, name: "re-run of new-running" });
    expect(rerun.parentRunId).toBe(outcome.runs.find((x) => x.name === "new-running")!.id);
    expect(JSON.parse(rerun.configJson).schedule).toMatchObject([
      { atEpoch: 1, set: { "training.learningRate": 0.02 } },
      { atEpoch: 2, stop: true },
    ]);
    // Launched: the resumed run, the completed run's branch (branches applied at a boundary are the caller's), the re-run.
    expect(outcome.launched).toEqual([outcome.runs.find((x) => x.name === "new-paused")!.id, third!.id, rerun.id]);
    expect(outcome.decisions.filter((d) => d.path.startsWith("rollback")).map((d) => d.path)).toEqual([
      "rollback, stop",
      "rollback",
      "rollback",
    ]);
    expect(outcome.datasets).toHaveLength(1);
    expect(outcome.ledger.map((e) => e.action)).toEqual([
      "project.create",
      "experiment.create",
      "run.interventionRequested",
      "dataset.create",
      "run.create",
      "run.interventionApplied",
      "run.interventionRequested",
      "run.create",
      "run.interventionApplied",
      "run.interventionRequested",
      "run.interventionApplied",
      "run.interventionRequested",
      "run.interventionRequested",
      "run.create",
      "run.interventionApplied",
      "run.interventionRequested",
      "run.interventionApplied",
      "run.create",
    ]);
  });
}

describe("rollback branches and pilot requests on SQLite, synchronous forms", () => {
  const sqlite = sqliteForSuite("rl-pilot-rollback-sync-");
  behaviourCases(
    "sqlite sync",
    () => sqlite.store(),
    "sync",
    () => sqlite.dir(),
  );
});

describe("rollback branches and pilot requests on SQLite, store forms", () => {
  const sqlite = sqliteForSuite("rl-pilot-rollback-store-");
  behaviourCases(
    "sqlite store",
    () => sqliteStore(sqlite.db()),
    "store",
    () => sqlite.dir(),
  );

  it("gives the same rows, refusals, launches and ledger rows as the synchronous forms", () => {
    expect(outcomes["sqlite sync"]).toBeDefined();
    expect(outcomes["sqlite store"]).toEqual(outcomes["sqlite sync"]);
  });
});

describePg("rollback branches and pilot requests on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  const dataDir = tempDirForSuite("rl-pilot-rollback-pg-");
  behaviourCases("pg store", () => pgStore(pg.a()), "store", dataDir);

  it("gives the same rows, refusals, launches and ledger rows (payloads, seq, chain hashes) as SQLite", () => {
    expect(outcomes["sqlite sync"]).toBeDefined();
    expect(outcomes["pg store"]).toEqual(outcomes["sqlite sync"]);
  });

  it("two servers at once: a rollback applied at the same boundary by both creates one branch", async () => {
    const servers = pg.stores();
    const { runs, checkpoints, auditEvents } = servers[0].tables;
    const read = reader(servers[0]);
    const [source] = await read.select().from(runs).where(eq(runs.name, "new-running")).limit(1);
    const [ck] = await read.select().from(checkpoints).where(eq(checkpoints.runId, source!.id)).orderBy(checkpoints.epoch).limit(1);
    const artifacts = fileArtifactStore(dataDir());
    for (let round = 0; round < 6; round++) {
      const req = await requestInterventionOn(
        { db: servers[0], actor: engineer },
        { runId: source!.id, kind: "rollback", fromCheckpointId: ck!.id, rationale: `round ${round}` },
      );
      const branchesBefore = (await read.select({ id: runs.id }).from(runs).where(eq(runs.origin, "branch"))).length;
      const input = { interventionId: req.id, epoch: ck!.epoch, step: ck!.epoch * 7, checkpointId: ck!.id };
      const both = await Promise.allSettled(servers.map((db) => applyPendingAtBoundaryOn({ db, artifacts }, input)));
      const fulfilled = both.filter((p) => p.status === "fulfilled");
      expect(fulfilled).toHaveLength(1);
      expect(String((both.find((p) => p.status === "rejected") as PromiseRejectedResult).reason)).toMatch(/is already applied/);
      const branches = await read.select({ id: runs.id }).from(runs).where(eq(runs.origin, "branch")).orderBy(runs.id);
      expect(branches).toHaveLength(branchesBefore + 1);
      expect(branches.at(-1)!.id).toBe(fulfilled[0]!.value);
    }
    const seqs = (await read.select({ seq: auditEvents.seq }).from(auditEvents).orderBy(auditEvents.seq)).map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });
});
