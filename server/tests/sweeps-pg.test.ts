/**
 * Sweeps on the store (issue 16): creating a sweep (and its refusals: a bad search space, budget or objective, a
 * reviewer, an unknown experiment), its trials' runs with their sweep_trials links and decisions (and the trials
 * refused: over the budget, an index already taken, a paused sweep), an early stop, the winner, pause, resume, stop,
 * extend, completion, and the reads (list, detail with the best trial) give the same rows, refusals and ledger rows
 * (payloads, seq, chain hashes, under one fixed clock) on SQLite and PostgreSQL. The driver is not here (it is in
 * sweep-driver-pg.test.ts, training for real); its decisions are the service's functions this suite calls.
 *
 * On PostgreSQL, through two pools (two servers whose drivers both take the budget's last slot at once): the slot's
 * check (free, within the budget, sweep running) precedes its write inside the trial's transaction, under the ledger
 * lock, so one trial is created and the other driver gets a conflict (which a driver takes as "look again"). Without
 * the lock (createRunOnStore's pgLock removed) both checks pass and the loser's sweep_trials insert hits the primary
 * key instead: not a DomainError, so its driver would end (driver.ts rethrows any other error); the race test then fails
 * in its first round (checked by removing the pgLock argument by hand and running it with -t). A stop and a trial
 * created at once: the stop reads the active trials before it writes the status, the trial reads the status before it
 * writes its link; under the lock one goes first, so the trial is refused or is in the stop's cancel list. With
 * changeSweepStatus's pgLock removed by hand (createRunOnStore's kept, or both removed) the test failed twice out of
 * two runs: a trial created in the stopped sweep that its stop did not list, so nobody cancels it.
 */
import { describe, expect, it, vi } from "vitest";
import { eq } from "drizzle-orm";
import { exec, pgStore, reader, transact, type Store } from "@/db/store";
import { suggestTrial, type SweepSpec, type SweepSpecInput } from "@/contracts/sweep-spec";
import type { SignedInActor } from "@/server/app-context/service-context";
import { fileArtifactStore, type ArtifactStore } from "@/server/artifacts/store";
import { resolveDatasetRow } from "@/server/datasets/service";
import { createExperiment, createProject } from "@/server/projects/service";
import { getSweep, sweepOnStore, sweepsOnStore } from "@/server/sweeps/queries";
import {
  changeSweepStatus,
  chooseSweepWinner,
  completeSweep,
  createSweep,
  createTrialRun,
  extendSweep,
  recordTrialStop,
} from "@/server/sweeps/service";
import { DomainError } from "@/server/errors";
import { describePg } from "./pg-test-env";
import { fixedDateForEachTest, refusal, sqliteForSuite, TEST_PEOPLE, twoPgServersForSuite, tempDirForSuite } from "./store-test-env";
import { irisConfig } from "./test-app";

/** Holds each trial's run creation after its dataset check until `expected` have reached it (the race test). */
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

const AT = "2026-12-05T02:30:00.000Z";
const { engineer, reviewer, auditor } = TEST_PEOPLE;

async function seedPeople(store: Store): Promise<void> {
  const { users } = store.tables;
  await transact(store, function* (tx) {
    for (const a of Object.values(TEST_PEOPLE))
      yield* exec(
        tx
          .insert(users)
          .values({ id: a.id, email: a.email, name: a.name, role: a.role, passwordHash: "x", createdAt: AT })
          .onConflictDoNothing(),
      );
  });
}

const gridSpec = (over: Partial<SweepSpecInput> = {}): SweepSpecInput => ({
  base: irisConfig({ epochs: 3 }),
  space: {
    "training.learningRate": { type: "choice", values: [0.01, 0.05] },
    "model.layers.0.units": { type: "choice", values: [8, 16] },
  },
  method: "grid",
  budget: { maxTrials: 3, maxParallel: 2 },
  metric: { name: "val_loss", direction: "minimize" },
  seed: 5,
  rationale: "the rate and the width of the Iris MLP",
  ...over,
});

/** What the orchestrator (not ported) and the trainer would leave: a trial's status and its objective's summary. */
async function trialTrained(store: Store, runId: number, status: "running" | "completed" | "failed" | "cancelled", valLoss: number | null) {
  const { runs, metricSummaries } = store.tables;
  await transact(store, function* (tx) {
    yield* exec(tx.update(runs).set({ status }).where(eq(runs.id, runId)));
    if (valLoss !== null)
      yield* exec(
        tx
          .insert(metricSummaries)
          .values({ runId, key: "val_loss", last: valLoss, lastStep: 9, min: valLoss, max: valLoss + 0.5, count: 3 }),
      );
  });
}

async function scenario(store: Store, artifacts: ArtifactStore) {
  await seedPeople(store);
  const as = (actor: SignedInActor) => ({ db: store, actor, artifacts });
  const project = await createProject(as(engineer), { name: "Sweeps" });
  const experiment = await createExperiment(as(engineer), { projectId: project.id, name: "iris" });
  const machine = { db: store, artifacts };

  const first = await createSweep(as(engineer), { experimentId: experiment.id, spec: gridSpec() });
  const second = await createSweep(as(engineer), {
    experimentId: experiment.id,
    spec: gridSpec({ name: "wide", method: "random", budget: { maxTrials: 4, maxParallel: 1 }, seed: 9 }),
  });
  const createRefusals = [
    await refusal(
      createSweep(as(engineer), {
        experimentId: experiment.id,
        spec: gridSpec({ space: { "training.learningRate": { type: "logUniform", min: 0, max: 0.1 } } }),
      }),
    ),
    await refusal(createSweep(as(engineer), { experimentId: experiment.id, spec: gridSpec({ budget: { maxTrials: 0, maxParallel: 1 } }) })),
    await refusal(
      createSweep(as(engineer), { experimentId: experiment.id, spec: gridSpec({ metric: { name: " ", direction: "minimize" } }) }),
    ),
    await refusal(createSweep(as(engineer), { experimentId: experiment.id, spec: gridSpec({ budget: { maxTrials: 5, maxParallel: 1 } }) })),
    await refusal(createSweep(as(reviewer), { experimentId: experiment.id, spec: gridSpec() })),
    await refusal(createSweep(as(engineer), { experimentId: 999, spec: gridSpec() })),
  ];

  // The first sweep's three trials, as its driver would create them (grid: the index decides the params).
  const spec1 = JSON.parse(first.specJson) as SweepSpec;
  const trials = [];
  for (let i = 0; i < 3; i++) trials.push(await createTrialRun(machine, first.id, i, suggestTrial(spec1, i)));
  const trialRefusals = [
    await refusal(createTrialRun(machine, first.id, 3, suggestTrial(spec1, 3))),
    await refusal(createTrialRun(machine, first.id, 1, suggestTrial(spec1, 1))),
    await refusal(createTrialRun(machine, 999, 0, {})),
  ];

  await trialTrained(store, trials[0]!.id, "completed", 0.4);
  await trialTrained(store, trials[1]!.id, "running", 0.9);
  await trialTrained(store, trials[2]!.id, "completed", 0.3);
  const stops = [
    await recordTrialStop(machine, { sweepId: first.id, runId: trials[1]!.id, rung: 2, value: 0.9, threshold: 0.5, eta: 2, atRung: 3 }),
    await recordTrialStop(machine, { sweepId: first.id, runId: trials[1]!.id, rung: 2, value: 0.9, threshold: 0.5, eta: 2, atRung: 3 }),
    await recordTrialStop(machine, { sweepId: first.id, runId: trials[0]!.id, rung: 2, value: 0.4, threshold: 0.5, eta: 2, atRung: 3 }),
  ];
  await trialTrained(store, trials[1]!.id, "cancelled", null);

  const winnerRefusals = [
    await refusal(chooseSweepWinner(as(engineer), { sweepId: first.id, runId: trials[1]!.id, rationale: "stopped early" })),
    await refusal(chooseSweepWinner(as(engineer), { sweepId: first.id, runId: 999, rationale: "not a trial" })),
    await refusal(chooseSweepWinner(as(auditor), { sweepId: first.id, runId: trials[2]!.id, rationale: "not mine" })),
    await refusal(chooseSweepWinner(as(engineer), { sweepId: 999, runId: trials[2]!.id, rationale: "no sweep" })),
  ];
  const completedBefore = await completeSweep(machine, second.id);
  const completed = await completeSweep(machine, first.id);
  const winner = await chooseSweepWinner(as(engineer), { sweepId: first.id, runId: trials[0]!.id, rationale: "simpler, nearly as good" });
  const winnerAgain = await refusal(chooseSweepWinner(as(engineer), { sweepId: first.id, runId: trials[0]!.id, rationale: "again" }));
  const extended = await extendSweep(as(engineer), { sweepId: first.id, addTrials: 1, rationale: "the last grid point" });
  const extendRefusals = [
    await refusal(extendSweep(as(engineer), { sweepId: first.id, addTrials: 1, rationale: "past the grid" })),
    await refusal(extendSweep(as(engineer), { sweepId: first.id, addTrials: 0, rationale: "none" })),
  ];

  // The second sweep: paused (no new trials), resumed, a trial, then stopped with that trial active.
  const spec2 = JSON.parse(second.specJson) as SweepSpec;
  const paused = await changeSweepStatus(as(engineer), "pause", { sweepId: second.id, rationale: "the GPU is busy" });
  const pausedTrial = await refusal(createTrialRun(machine, second.id, 0, suggestTrial(spec2, 0)));
  const resumed = await changeSweepStatus(as(engineer), "resume", { sweepId: second.id, rationale: "free again" });
  const secondTrials = [
    await createTrialRun(machine, second.id, 0, suggestTrial(spec2, 0)),
    await createTrialRun(machine, second.id, 1, suggestTrial(spec2, 1)),
  ];
  await trialTrained(store, secondTrials[0]!.id, "failed", null);
  const stopped = await changeSweepStatus(as(engineer), "stop", { sweepId: second.id, rationale: "enough" });
  const statusRefusals = [
    await refusal(changeSweepStatus(as(engineer), "resume", { sweepId: second.id, rationale: "again" })),
    await refusal(changeSweepStatus(as(engineer), "pause", { sweepId: 999, rationale: "x" })),
    await refusal(changeSweepStatus(as(reviewer), "pause", { sweepId: first.id, rationale: "x" })),
    await refusal(changeSweepStatus(as(engineer), "stop", { sweepId: first.id, rationale: " " })),
    await refusal(extendSweep(as(engineer), { sweepId: second.id, addTrials: 1, rationale: "stopped" })),
    await refusal(createTrialRun(machine, second.id, 2, suggestTrial(spec2, 2))),
  ];

  const reads = {
    list: await sweepsOnStore(store, experiment.id),
    all: await sweepsOnStore(store),
    detail: await sweepOnStore(store, first.id),
    stoppedDetail: await sweepOnStore(store, second.id),
    unknown: await refusal(sweepOnStore(store, 999)),
  };
  const { sweeps, sweepTrials, runs, decisions, auditEvents } = store.tables;
  const read = reader(store);
  return {
    sweeps: { first, second },
    createRefusals,
    trials,
    trialRefusals,
    stops,
    winnerRefusals,
    completedBefore,
    completed,
    winner,
    winnerAgain,
    extended,
    extendRefusals,
    paused,
    pausedTrial,
    resumed,
    secondTrials,
    stopped,
    statusRefusals,
    reads,
    sweepRows: await read.select().from(sweeps).orderBy(sweeps.id),
    trialRows: await read.select().from(sweepTrials).orderBy(sweepTrials.sweepId, sweepTrials.trialIndex),
    runs: await read.select().from(runs).orderBy(runs.id),
    decisions: await read.select().from(decisions).orderBy(decisions.id),
    ledger: await read.select().from(auditEvents).orderBy(auditEvents.seq),
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function behaviourCases(storeOf: () => Store, dataDirOf: () => string): void {
  fixedDateForEachTest(AT);

  it("creates sweeps and their trials, stops, chooses, extends, completes, refuses what it must, and writes the ledger", async () => {
    const store = storeOf();
    const o = await scenario(store, fileArtifactStore(dataDirOf()));
    outcomes[store.dialect] = o;
    const { first, second } = o.sweeps;
    const [t0, t1, t2] = o.trials;
    expect([first.name, second.name, first.status, first.maxTrials]).toEqual(["sweep 1", "wide", "running", 3]);
    expect(o.createRefusals.map((r) => r.kind)).toEqual([
      "invalid_input",
      "invalid_input",
      "invalid_input",
      "invalid_input",
      "forbidden",
      "not_found",
    ]);
    expect(o.createRefusals[0]!.message).toMatch(/^invalid sweep: space\.training\.learningRate/);
    expect(o.createRefusals[1]!.message).toMatch(/maxTrials must be at least 1/);
    expect(o.createRefusals[2]!.message).toMatch(/metric\.name is required/);
    expect(o.createRefusals[5]!.message).toBe("experiment 999 was not found");
    expect(o.trialRefusals).toEqual([
      { kind: "conflict", message: `sweep ${first.id} has reached its budget of 3 trials` },
      { kind: "conflict", message: `sweep ${first.id} already has trial 2 (run ${t1!.id})` },
      { kind: "not_found", message: "sweep 999 was not found" },
    ]);
    expect(o.stops).toEqual([true, false, false]);
    expect(o.winnerRefusals.map((r) => r.kind)).toEqual(["wrong_state", "invalid_input", "forbidden", "not_found"]);
    expect([o.completedBefore, o.completed]).toEqual([false, true]);
    expect(o.winner).toEqual({ sweepId: first.id, runId: t0!.id, value: 0.4, trials: 3 });
    expect(o.winnerAgain.kind).toBe("conflict");
    expect(o.extended).toEqual({ id: first.id, maxTrials: 4, status: "running" });
    expect(o.extendRefusals.map((r) => r.kind)).toEqual(["invalid_input", "invalid_input"]);
    expect(o.pausedTrial).toEqual({ kind: "conflict", message: `sweep ${second.id} is paused: no new trials` });
    expect(o.stopped).toEqual({ id: second.id, status: "stopped", cancelRunIds: [o.secondTrials[1]!.id] });
    expect(o.statusRefusals.map((r) => r.kind)).toEqual([
      "wrong_state",
      "not_found",
      "forbidden",
      "invalid_input",
      "wrong_state",
      "conflict",
    ]);
    expect(o.runs.map((r) => [r.id, r.origin, r.status, r.createdBy])).toEqual([
      [t0!.id, "sweep", "completed", engineer.id],
      [t1!.id, "sweep", "cancelled", engineer.id],
      [t2!.id, "sweep", "completed", engineer.id],
      [o.secondTrials[0]!.id, "sweep", "failed", engineer.id],
      [o.secondTrials[1]!.id, "sweep", "queued", engineer.id],
    ]);
    expect(o.trialRows.map((t) => [t.sweepId, t.trialIndex, t.runId, t.stoppedAtRung])).toEqual([
      [first.id, 0, t0!.id, null],
      [first.id, 1, t1!.id, 2],
      [first.id, 2, t2!.id, null],
      [second.id, 0, o.secondTrials[0]!.id, null],
      [second.id, 1, o.secondTrials[1]!.id, null],
    ]);
    expect(o.decisions.filter((d) => d.kind === "initial").map((d) => d.runId)).toEqual(o.runs.map((r) => r.id));
    expect(o.sweepRows.map((s) => [s.id, s.status, s.maxTrials, s.winnerRunId])).toEqual([
      [first.id, "running", 4, t0!.id],
      [second.id, "stopped", 4, null],
    ]);
    expect(o.reads.list.map((s) => [s.id, s.status])).toEqual([
      [second.id, "stopped"],
      [first.id, "running"],
    ]);
    expect(o.reads.all).toEqual(o.reads.list);
    // The best completed trial by the objective (val_loss minimised), not the winner the engineer chose.
    expect(o.reads.detail.best).toEqual({ runId: t2!.id, metric: "val_loss", value: 0.3 });
    expect(o.reads.detail.counts).toEqual({ total: 3, active: 0, completed: 2, stoppedEarly: 1 });
    expect(o.reads.detail.winnerChosenByName).toBe(engineer.name);
    expect(o.reads.stoppedDetail.best).toBeNull();
    expect(o.reads.unknown).toEqual({ kind: "not_found", message: "sweep 999 was not found" });
    // The sweep's machine decisions are written by the system acting for the engineer (sweepActor), named so.
    expect(o.ledger.map((e) => [e.seq, e.action, e.actorName.includes("(sweep #") ? "system" : "engineer"])).toEqual([
      [1, "project.create", "engineer"],
      [2, "experiment.create", "engineer"],
      [3, "sweep.create", "engineer"],
      [4, "sweep.create", "engineer"],
      [5, "dataset.create", "engineer"],
      [6, "run.create", "system"],
      [7, "run.create", "system"],
      [8, "run.create", "system"],
      [9, "sweep.stopTrial", "system"],
      [10, "sweep.complete", "system"],
      [11, "sweep.chooseWinner", "engineer"],
      [12, "sweep.extend", "engineer"],
      [13, "sweep.pause", "engineer"],
      [14, "sweep.resume", "engineer"],
      [15, "run.create", "system"],
      [16, "run.create", "system"],
      [17, "sweep.stop", "engineer"],
    ]);
    expect(JSON.parse(o.ledger[9]!.payload)).toEqual({
      from: "running",
      to: "completed",
      trials: 3,
      best: { runId: t2!.id, value: 0.3, metric: "val_loss" },
    });
    expect(JSON.parse(o.ledger[7]!.payload)).toMatchObject({ origin: "sweep", sweepId: first.id, trialIndex: 2, generatedBy: "sweep" });
  });
}

describe("sweeps on SQLite", () => {
  const sqlite = sqliteForSuite("rl-sweeps-store-");
  behaviourCases(
    () => sqlite.store(),
    () => sqlite.dir(),
  );

  it("the store's detail read equals queries.ts's getSweep (its SQLite form)", async () => {
    const sweepIds = outcomes.sqlite!.reads.list.map((s) => s.id);
    for (const id of sweepIds) expect(await sweepOnStore(sqlite.store(), id)).toEqual(getSweep(sqlite.db(), id));
  });
});

describePg("sweeps on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  const dir = tempDirForSuite("rl-sweeps-pg-");

  behaviourCases(() => pgStore(pg.a()), dir);

  it("gives the same rows, refusals, reads and ledger rows (payloads, seq, chain hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg).toEqual(outcomes.sqlite);
  });

  it("two servers' drivers take the budget's last slot at once: one trial and a conflict, 6 times over; seq gapless", async () => {
    const servers = pg.stores();
    const artifacts = fileArtifactStore(dir());
    await seedPeople(servers[0]);
    await resolveDatasetRow(servers[0], artifacts, engineer, { builtin: "iris" });
    const project = await createProject({ db: servers[0], actor: engineer }, { name: "Racing drivers" });
    const experiment = await createExperiment({ db: servers[1], actor: engineer }, { projectId: project.id, name: "race" });
    const { sweepTrials, auditEvents } = servers[0].tables;
    for (let round = 0; round < 6; round++) {
      const s = await createSweep(
        { db: servers[round % 2]!, actor: engineer },
        { experimentId: experiment.id, spec: gridSpec({ budget: { maxTrials: 2, maxParallel: 2 } }) },
      );
      const spec = JSON.parse(s.specJson) as SweepSpec;
      await createTrialRun({ db: servers[0], artifacts }, s.id, 0, suggestTrial(spec, 0));
      datasetBarrier.arm(2);
      const raced = await Promise.allSettled(
        servers.map((server) => createTrialRun({ db: server, artifacts }, s.id, 1, suggestTrial(spec, 1))),
      );
      datasetBarrier.arm(0);
      const refused = raced.flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
      expect(raced.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      expect(refused.map((e) => [e instanceof DomainError ? e.kind : "other", e.message])).toEqual([
        ["conflict", expect.stringMatching(new RegExp(`^sweep ${s.id} already has trial 2 \\(run \\d+\\)$`))],
      ]);
      const linked = await reader(servers[1]).select().from(sweepTrials).where(eq(sweepTrials.sweepId, s.id));
      expect(linked.map((t) => t.trialIndex).sort()).toEqual([0, 1]);
    }
    const seqs = (await reader(servers[1]).select({ seq: auditEvents.seq }).from(auditEvents).orderBy(auditEvents.seq)).map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  });

  it("a stop and a trial at once on two servers: the trial is refused, or created and in the stop's cancel list, 8 times over", async () => {
    const servers = pg.stores();
    const artifacts = fileArtifactStore(dir());
    await seedPeople(servers[0]);
    await resolveDatasetRow(servers[0], artifacts, engineer, { builtin: "iris" });
    const project = await createProject({ db: servers[0], actor: engineer }, { name: "Stops" });
    const experiment = await createExperiment({ db: servers[1], actor: engineer }, { projectId: project.id, name: "stop race" });
    const { sweepTrials } = servers[0].tables;
    const outcomes: string[] = [];
    for (let round = 0; round < 8; round++) {
      const s = await createSweep({ db: servers[0], actor: engineer }, { experimentId: experiment.id, spec: gridSpec() });
      const spec = JSON.parse(s.specJson) as SweepSpec;
      datasetBarrier.arm(2);
      const [trial, stop] = await Promise.allSettled([
        createTrialRun({ db: servers[round % 2]!, artifacts }, s.id, 0, suggestTrial(spec, 0)),
        (async () => {
          await datasetBarrier.arrive();
          return changeSweepStatus({ db: servers[(round + 1) % 2]!, actor: engineer }, "stop", { sweepId: s.id, rationale: "race" });
        })(),
      ]);
      datasetBarrier.arm(0);
      if (stop.status === "rejected") throw stop.reason;
      const linked = await reader(servers[1]).select().from(sweepTrials).where(eq(sweepTrials.sweepId, s.id));
      if (trial.status === "fulfilled") {
        // The stop came second: it saw the trial and lists it for cancelling.
        expect(stop.value.cancelRunIds).toEqual([trial.value.id]);
        expect(linked.map((t) => t.runId)).toEqual([trial.value.id]);
        outcomes.push("created, then stopped");
      } else {
        expect(trial.reason).toBeInstanceOf(DomainError);
        expect((trial.reason as Error).message).toBe(`sweep ${s.id} is stopped: no new trials`);
        expect(stop.value.cancelRunIds).toEqual([]);
        expect(linked).toEqual([]);
        outcomes.push("stopped, then refused");
      }
    }
    expect(outcomes).toHaveLength(8);
  });
});
