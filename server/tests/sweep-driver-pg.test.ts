/**
 * The sweep driver on the store (issue 16, server/sweeps/driver.ts), for real: sweeps trained by the run orchestrator
 * on Iris (cpu backend), driven to completion by driveSweep.
 *
 * 1. The same ASHA sweep (two grid trials, the second with a learning rate too small to learn; maxParallel 1, so the
 *    decisions do not depend on timing) driven on SQLite and on PostgreSQL (the PostgreSQL artifact store): the same
 *    trials (params, config hashes), the same early stop of the poor trial at its rung, the same best trial and value
 *    in sweep.complete, each trial's run.create once; the engineer then chooses the winner, and the run page's read of
 *    its sweep (sweepOfRunOn) is the same on both stores and equals the synchronous SQLite form.
 * 2. Two web servers (two pools, two orchestrators) both driving one sweep on PostgreSQL, their first trial creations
 *    held at a barrier so that both take trial 1 at the same moment, then polling every 20 ms: each trial is created
 *    and launched once (by the driver that created it), no run is left over from a lost race, the sweep completes
 *    once, and the ledger's seq has no gap. The loser's conflict is taken as "look again": with the driver rethrowing
 *    conflicts instead (changed by hand) this test fails, its losing driver ending with "already has trial 1".
 */
import { describe, expect, it, vi } from "vitest";
import { and, count, eq, inArray } from "drizzle-orm";
import { pgStore, reader, type Store } from "@/db/store";
import type { SweepSpecInput } from "@/contracts/sweep-spec";
import type { SignedInActor } from "@/server/app-context/service-context";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { pgArtifactStore } from "@/server/artifacts/pg-store";
import { fileArtifactStore } from "@/server/artifacts/store";
import { DomainError } from "@/server/errors";
import { createExperiment, createProject } from "@/server/projects/service";
import { RunOrchestrator } from "@/server/runs/orchestrator/orchestrator";
import { driveSweep, type SweepOrchestrator } from "@/server/sweeps/driver";
import { sweepOfRun, sweepOfRunOn, sweepOnStore } from "@/server/sweeps/queries";
import { chooseSweepWinner, createSweep } from "@/server/sweeps/service";
import { describePg } from "./pg-test-env";
import { seedPeople, sqliteForSuite, TEST_PEOPLE, tempDirForSuite, twoPgServersForSuite } from "./store-test-env";
import { irisConfig } from "./test-app";

/** Holds trial creations after their dataset check until `expected` have arrived (the race test's first round). */
const datasetBarrier = await vi.hoisted(async () => (await import("./release-together")).releaseTogether());
vi.mock("@/server/datasets/service", async (importOriginal) => {
  const real = await importOriginal<typeof import("@/server/datasets/service")>();
  return {
    ...real,
    resolveDatasetRow: async (...args: Parameters<typeof real.resolveDatasetRow>) => {
      const found = await real.resolveDatasetRow(...args);
      await datasetBarrier.arrive();
      return found;
    },
  };
});

/** Every trial creation the drivers attempt, and how it ended (the race test reads the conflicts). */
const trialAttempts = vi.hoisted(() => [] as { db: unknown; sweepId: number; index: number; outcome: string }[]);
vi.mock("@/server/sweeps/service", async (importOriginal) => {
  const real = await importOriginal<typeof import("@/server/sweeps/service")>();
  return {
    ...real,
    createTrialRun: async (...args: Parameters<typeof real.createTrialRun>) => {
      const [{ db }, sweepId, index] = args;
      try {
        const run = await real.createTrialRun(...args);
        trialAttempts.push({ db, sweepId, index, outcome: `created run ${run.id}` });
        return run;
      } catch (err) {
        trialAttempts.push({ db, sweepId, index, outcome: err instanceof DomainError ? `${err.kind}: ${err.message}` : String(err) });
        throw err;
      }
    },
  };
});

const { engineer } = TEST_PEOPLE;
const AT = "2026-12-05T07:00:00.000Z";

/** As sweeps.test.ts's ASHA sweep: 40 epochs of batch 8, so the poor trial is judged at epoch 2 long before its end. */
function ashaSpec(): SweepSpecInput {
  const base = irisConfig({ epochs: 40 });
  (base.training as { batchSize: number }).batchSize = 8;
  return {
    name: "asha-lr",
    base,
    space: { "training.learningRate": { type: "choice", values: [0.05, 0.00001] } },
    method: "grid",
    budget: { maxTrials: 2, maxParallel: 1 },
    metric: { name: "val_loss", direction: "minimize" },
    earlyTermination: { type: "asha", rungs: [2], eta: 2 },
    seed: 11,
    rationale: "does a tiny learning rate keep up? stop it early if not",
  };
}

/** Three short grid trials, two at a time: the race test's sweep. */
function raceSpec(): SweepSpecInput {
  return {
    name: "raced",
    base: irisConfig({ epochs: 2 }),
    space: { "training.learningRate": { type: "choice", values: [0.05, 0.03, 0.02] } },
    method: "grid",
    budget: { maxTrials: 3, maxParallel: 2 },
    metric: { name: "val_loss", direction: "minimize" },
    seed: 3,
    rationale: "two servers drive the same sweep",
  };
}

async function experimentOn(store: Store, name: string): Promise<number> {
  await seedPeople(store, { at: AT, passwordHash: "x" });
  const as = { db: store, actor: engineer as SignedInActor };
  const project = await createProject(as, { name });
  return (await createExperiment(as, { projectId: project.id, name: "iris" })).id;
}

async function eventsOf(store: Store, action: string) {
  const { auditEvents } = store.tables;
  return (await reader(store).select().from(auditEvents).where(eq(auditEvents.action, action)).orderBy(auditEvents.seq)).map((e) => ({
    entityId: e.entityId,
    role: e.role,
    payload: JSON.parse(e.payload) as Record<string, unknown>,
  }));
}

/** Drives the ASHA sweep to its end on `store`, chooses its best trial as the winner, and reads what it left. */
async function ashaScenario(store: Store, artifacts: AnyArtifactStore, dataDir: string) {
  const experimentId = await experimentOn(store, "Driven sweeps");
  const orchestrator = new RunOrchestrator({ db: store, artifacts, dataDir }, { backend: "cpu" });
  const as = { db: store, actor: engineer as SignedInActor };
  const sweep = await createSweep(as, { experimentId, spec: ashaSpec() });
  await driveSweep({ db: store, artifacts }, orchestrator, sweep.id);
  const done = await sweepOnStore(store, sweep.id);
  for (const t of done.trials) await orchestrator.waitFor(t.runId);
  const winner = await chooseSweepWinner(as, {
    sweepId: sweep.id,
    runId: done.best!.runId,
    rationale: "lowest val loss; the tiny rate was stopped at its rung",
  });
  const { runs } = store.tables;
  const trialRuns = await reader(store)
    .select({ id: runs.id, status: runs.status, configSha256: runs.configSha256, origin: runs.origin })
    .from(runs)
    .where(
      inArray(
        runs.id,
        done.trials.map((t) => t.runId),
      ),
    )
    .orderBy(runs.id);
  return {
    sweep: done,
    trialRuns,
    winner,
    runCreates: (await eventsOf(store, "run.create")).filter((e) => e.payload.sweepId === sweep.id),
    stops: await eventsOf(store, "sweep.stopTrial"),
    completes: await eventsOf(store, "sweep.complete"),
    chosen: await eventsOf(store, "sweep.chooseWinner"),
    ofWinner: await sweepOfRunOn(store, winner.runId),
    ofPoor: await sweepOfRunOn(store, done.trials[1]!.runId),
  };
}

type AshaOutcome = Awaited<ReturnType<typeof ashaScenario>>;
const outcomes: Partial<Record<Store["dialect"], AshaOutcome>> = {};

/** What both stores must agree on (the stopped trial's own value and epochs depend on when its cancel landed). */
function comparable(o: AshaOutcome) {
  return {
    status: o.sweep.status,
    trials: o.sweep.trials.map((t) => ({
      index: t.trialIndex,
      runId: t.runId,
      params: t.params,
      status: t.status,
      stoppedAtRung: t.stoppedAtRung,
    })),
    trialRuns: o.trialRuns,
    best: o.sweep.best,
    runCreates: o.runCreates.map((e) => [e.entityId, e.role, e.payload.trialIndex]),
    stops: o.stops.map((e) => {
      const { value, threshold, reason, ...rest } = e.payload;
      return {
        ...rest,
        value: typeof value,
        threshold: typeof threshold,
        reason: typeof reason === "string" && reason.startsWith("asha:"),
      };
    }),
    completes: o.completes.map((e) => e.payload),
    winner: o.winner,
    chosen: o.chosen.map((e) => {
      const { chosenAt, ...rest } = e.payload;
      return { ...rest, chosenAt: typeof chosenAt };
    }),
    ofWinner: { ...o.ofWinner, chosen: o.ofWinner?.chosen ? { ...o.ofWinner.chosen, at: typeof o.ofWinner.chosen.at } : null },
    ofPoor: o.ofPoor,
  };
}

function checkAsha(o: AshaOutcome) {
  const [good, poor] = o.sweep.trials;
  expect(o.sweep.status).toBe("completed");
  expect(o.sweep.trials).toHaveLength(2);
  expect(good).toMatchObject({ trialIndex: 0, params: { "training.learningRate": 0.05 }, status: "completed", stoppedAtRung: null });
  expect(poor).toMatchObject({ trialIndex: 1, params: { "training.learningRate": 0.00001 }, status: "cancelled", stoppedAtRung: 2 });
  expect(poor!.epochsRun!).toBeLessThan(40);
  // Each trial recorded once: one run.create each, by the sweep's system actor, and one trial row each.
  expect(o.runCreates.map((e) => [Number(e.entityId), e.role, e.payload.trialIndex])).toEqual([
    [good!.runId, "system", 0],
    [poor!.runId, "system", 1],
  ]);
  expect(o.trialRuns.map((r) => r.origin)).toEqual(["sweep", "sweep"]);
  expect(o.stops.map((e) => e.payload)).toEqual([expect.objectContaining({ runId: poor!.runId, rung: 2, eta: 2, trialsAtRung: 2 })]);
  expect(o.completes.map((e) => e.payload)).toEqual([
    { from: "running", to: "completed", trials: 2, best: { runId: good!.runId, value: good!.value, metric: "val_loss" } },
  ]);
  expect(o.winner).toEqual({ sweepId: o.sweep.id, runId: good!.runId, value: good!.value, trials: 2 });
  expect(o.ofWinner).toMatchObject({
    sweepId: o.sweep.id,
    sweepName: "asha-lr",
    trialIndex: 0,
    trials: 2,
    chosen: { by: engineer.name, rationale: "lowest val loss; the tiny rate was stopped at its rung" },
  });
  expect(o.ofPoor).toMatchObject({ sweepId: o.sweep.id, trialIndex: 1, chosen: null });
}

describe("the sweep driver on SQLite (the reference)", () => {
  const sqlite = sqliteForSuite("rl-sweep-driver-");

  it("drives an ASHA sweep to completion: the poor trial stopped at its rung, each trial once, the winner chosen", async () => {
    const o = await ashaScenario(sqlite.store(), fileArtifactStore(sqlite.dir()), sqlite.dir());
    checkAsha(o);
    outcomes.sqlite = o;
    // The awaited read of a run's sweep equals the synchronous SQLite form.
    for (const t of o.sweep.trials) expect(await sweepOfRunOn(sqlite.db(), t.runId)).toEqual(sweepOfRun(sqlite.db(), t.runId));
    expect(await sweepOfRunOn(sqlite.db(), 999)).toBeNull();
  }, 300_000);
});

describePg("the sweep driver on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  const dir = tempDirForSuite("rl-sweep-driver-pg-");

  it("drives the same ASHA sweep to the same trials, early stop, best trial and winner as SQLite", async () => {
    const store = pgStore(pg.a());
    const o = await ashaScenario(store, pgArtifactStore(pg.a().$client), dir());
    checkAsha(o);
    outcomes.pg = o;
    expect(outcomes.sqlite, "the SQLite reference ran first").toBeDefined();
    expect(comparable(o)).toEqual(comparable(outcomes.sqlite!));
    // The winner's objective is its whole training's: the same weights, the same value on both stores.
    expect(o.sweep.best!.value).toBe(outcomes.sqlite!.sweep.best!.value);
    expect(await sweepOfRunOn(store, 999)).toBeNull();
  }, 300_000);

  it("two servers drive one sweep at once: each trial created and launched once, one completion, seq gapless", async () => {
    const [a, b] = pg.stores();
    const experimentId = await experimentOn(a, "Raced sweeps");
    const sweep = await createSweep({ db: b, actor: engineer }, { experimentId, spec: raceSpec() });
    const launched: { server: string; runId: number }[] = [];
    const server = (
      name: string,
      store: Store,
      artifacts: AnyArtifactStore,
    ): { orchestrator: SweepOrchestrator; real: RunOrchestrator } => {
      const real = new RunOrchestrator({ db: store, artifacts, dataDir: `${dir()}/${name}` }, { backend: "cpu", maxConcurrent: 2 });
      return {
        real,
        orchestrator: {
          launch: (runId) => (launched.push({ server: name, runId }), real.launch(runId)),
          cancel: (runId) => real.cancel(runId),
        },
      };
    };
    const servers = [server("A", a, pgArtifactStore(pg.a().$client)), server("B", b, pgArtifactStore(pg.b().$client))];
    trialAttempts.length = 0;
    datasetBarrier.arm(2);
    try {
      await Promise.all([
        driveSweep({ db: a, artifacts: pgArtifactStore(pg.a().$client) }, servers[0]!.orchestrator, sweep.id, { pollMs: 20 }),
        driveSweep({ db: b, artifacts: pgArtifactStore(pg.b().$client) }, servers[1]!.orchestrator, sweep.id, { pollMs: 20 }),
      ]);
    } finally {
      datasetBarrier.arm(0);
    }
    const done = await sweepOnStore(a, sweep.id);
    for (const t of done.trials) for (const s of servers) await s.real.waitFor(t.runId);

    // The first trial was taken by both at once: one created it, the other was told and looked again.
    const mine = trialAttempts.filter((t) => t.sweepId === sweep.id);
    expect(
      mine
        .filter((t) => t.index === 0)
        .map((t) => t.outcome.split(" ")[0])
        .sort(),
    ).toEqual(["conflict:", "created"]);
    for (const t of mine.filter((x) => !x.outcome.startsWith("created")))
      expect(t.outcome).toMatch(
        new RegExp(`^conflict: sweep ${sweep.id} (already has trial ${t.index + 1} \\(run \\d+\\)|has reached its budget of 3 trials)$`),
      );
    const created = mine.filter((t) => t.outcome.startsWith("created"));

    expect(done.status).toBe("completed");
    expect(done.trials.map((t) => [t.trialIndex, t.status, t.params])).toEqual([
      [0, "completed", { "training.learningRate": 0.05 }],
      [1, "completed", { "training.learningRate": 0.03 }],
      [2, "completed", { "training.learningRate": 0.02 }],
    ]);
    const trialRunIds = done.trials.map((t) => t.runId);
    expect(created.map((t) => [t.index, Number(t.outcome.split(" ")[2])])).toEqual(done.trials.map((t) => [t.trialIndex, t.runId]));
    // Launched once each, by the server whose driver created it; nothing else was launched.
    const creator = (db: unknown) => (db === a ? "A" : db === b ? "B" : "?");
    expect(launched.sort((x, y) => x.runId - y.runId)).toEqual(
      created.map((t) => ({ server: creator(t.db), runId: Number(t.outcome.split(" ")[2]) })).sort((x, y) => x.runId - y.runId),
    );
    // A lost race leaves no run behind (its transaction rolled back whole): the experiment has the three trials only.
    const { runs, auditEvents } = a.tables;
    const [inExperiment] = await reader(a).select({ n: count() }).from(runs).where(eq(runs.experimentId, experimentId));
    expect(inExperiment!.n).toBe(3);
    const perRun = async (action: string) =>
      (
        await reader(b)
          .select({ entityId: auditEvents.entityId })
          .from(auditEvents)
          .where(and(eq(auditEvents.action, action), inArray(auditEvents.entityId, trialRunIds.map(String))))
      )
        .map((e) => Number(e.entityId))
        .sort((x, y) => x - y);
    expect(await perRun("run.create")).toEqual(trialRunIds);
    expect(await perRun("run.start")).toEqual(trialRunIds);
    expect(await perRun("run.complete")).toEqual(trialRunIds);
    expect((await eventsOf(a, "sweep.complete")).filter((e) => e.entityId === String(sweep.id))).toHaveLength(1);
    const seqs = (await reader(b).select({ seq: auditEvents.seq }).from(auditEvents).orderBy(auditEvents.seq)).map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  }, 300_000);
});
