/**
 * The orchestrator's persistence on the store (issue 16): a run's whole event sequence (prepared, started, epochs of
 * metric points with a re-sent partial epoch, progress, checkpoint, evaluation, end), a failed run and an interrupted
 * run give the same rows (runs, data versions, splits, checkpoints, evaluations, metric points, summaries, rollups)
 * and the same ledger rows (seq, action, payload, chain hash) on SQLite and PostgreSQL under one fixed clock.
 * On PostgreSQL, leases are judged by heartbeat age on the database's clock (never by pid), and taking one is exact
 * under concurrency: workers on two pools claiming the same queued runs, or taking over the same dead lease, held at a
 * barrier between their read and their write so that every one of them reads the same state: exactly one wins each.
 */
import { describe, expect, it } from "vitest";
import os from "node:os";
import { createHash } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { byteOrder, exec, pgStore, rows, transact, type Store, type TxBody, type TxStep } from "@/db/store";
import type { TrainerEvent } from "@/trainer/types";
import type { TrainingConfig } from "@/contracts/training-config";
import {
  insertMetricPointsOn,
  recordCheckpointOn,
  recordEvaluationOn,
  recordFailedOn,
  recordFinishedOn,
  recordInterruptedOn,
  recordPreparedOn,
  recordProgressOn,
  recordStartedOn,
  trainerActor,
  type MetricPoint,
} from "@/server/runs/orchestrator/persist-events";
import { LeaseHolder, leaseClockMs, leaseOfOn, takeLeaseTx, type LeaseOwner } from "@/server/runs/orchestrator/leases";
import {
  claimQueuedRunsOn,
  claimQueuedRunsTx,
  enqueueRunOn,
  giveBackRunOn,
  isQueuedOn,
  recoverDeadWorkersOn,
  takeOutQueuedOn,
} from "@/server/runs/orchestrator/run-queue";
import { describePg } from "./pg-test-env";
import { releaseTogether } from "./release-together";
import { fixedDateForEachTest, seedPeopleAndDataset, sqliteForSuite, TEST_PEOPLE, twoPgServersForSuite } from "./store-test-env";

const AT = "2026-12-04T12:00:00.000Z";
const DATASET_ID = 1;
const { engineer } = TEST_PEOPLE;
const actor = trainerActor(engineer);

type Of<K extends TrainerEvent["type"]> = Extract<TrainerEvent, { type: K }>;

const prepared = {
  type: "prepared",
  datasetSha256: "d".repeat(64),
  version: { recipe: { steps: ["dedupe"] }, report: { rowsIn: 150, rowsOut: 149 }, sha256: "a".repeat(64), rowCount: 149 },
  split: {
    spec: { seed: 7, fractions: [0.7, 0.15, 0.15] },
    manifest: {
      partitions: {
        train: { count: 104, indicesSha256: "1".repeat(64) },
        validation: { count: 22, indicesSha256: "2".repeat(64) },
        test: { count: 23, indicesSha256: "3".repeat(64) },
      },
    },
    sha256: "b".repeat(64),
  },
} as unknown as Of<"prepared">;

const started = {
  type: "started",
  backend: "cpu",
  backendReason: "forced by the test",
  environment: { tfjs: "4.22.0", node: "22.0.0" },
  memory: { paramCount: 1234, trainingBytes: 99, inferenceBytes: 11 },
  epochs: 3,
  batchesPerEpoch: 700,
} as unknown as Of<"started">;

const config = { training: { epochs: 3, bestMetric: { metric: "val_loss", mode: "min" } } } as unknown as TrainingConfig;

/** An epoch's points: batch losses (two keys, steps crossing rollup blocks, ties on min/max) and the epoch's val_loss. */
function epochPoints(epoch: number, batches = 700): MetricPoint[] {
  const points: MetricPoint[] = [];
  for (let b = 1; b <= batches; b++) {
    const step = (epoch - 1) * batches + b;
    const loss = Math.round((1 / (1 + step / 200) + ((step * 7919) % 13) / 1000) * 1e6) / 1e6;
    points.push({ key: "loss", step, epoch: epoch - 1 + b / batches, value: loss, wallTimeMs: 1_000 + step });
    points.push({ key: "acc", step, epoch: epoch - 1 + b / batches, value: (step % 5) / 4, wallTimeMs: 1_000 + step });
  }
  points.push({ key: "val_loss", step: epoch * batches, epoch, value: 1 / (epoch + 1), wallTimeMs: 1_000 + epoch * batches });
  return points;
}

const weightsOf = (text: string) => new TextEncoder().encode(text);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** An artifact store that keeps nothing: the suite tests the rows, not the bytes (those are artifacts' tests). */
const artifacts = { put: (bytes: Uint8Array) => ({ sha256: sha256(bytes), bytes: bytes.length }) };

function checkpointOf(epoch: number, metrics: Record<string, number>): Of<"checkpoint"> {
  const weights = weightsOf(`weights of epoch ${epoch}`);
  return { type: "checkpoint", epoch, step: epoch * 700, sha256: sha256(weights), weights, metrics, isBest: false };
}

async function seedRuns(store: Store, count: number): Promise<void> {
  await seedPeopleAndDataset(store, { at: AT, passwordHash: "x", datasetId: DATASET_ID });
  const { projects, experiments, runs } = store.tables;
  await transact(store, function* (tx) {
    yield* exec(tx.insert(projects).values({ id: 1, name: "Flowers", createdBy: engineer.id, createdAt: AT }).onConflictDoNothing());
    yield* exec(
      tx.insert(experiments).values({ id: 1, projectId: 1, name: "Iris", createdBy: engineer.id, createdAt: AT }).onConflictDoNothing(),
    );
    for (let id = 1; id <= count; id++)
      yield* exec(
        tx
          .insert(runs)
          .values({
            id,
            experimentId: 1,
            name: `run ${id}`,
            status: "queued",
            configJson: "{}",
            configSha256: "c".repeat(64),
            seed: id,
            createdBy: engineer.id,
            createdAt: AT,
          })
          .onConflictDoNothing(),
      );
  });
}

/** Every row the persistence writes, in a store-independent order, and the ledger. */
async function snapshot(store: Store) {
  const t = store.tables;
  return transact(store, function* (tx) {
    return {
      runs: yield* rows(tx.select().from(t.runs).orderBy(t.runs.id)),
      datasetVersions: yield* rows(tx.select().from(t.datasetVersions).orderBy(t.datasetVersions.id)),
      splits: yield* rows(tx.select().from(t.splits).orderBy(t.splits.id)),
      checkpoints: yield* rows(tx.select().from(t.checkpoints).orderBy(t.checkpoints.id)),
      evaluations: yield* rows(tx.select().from(t.evaluations).orderBy(t.evaluations.id)),
      metrics: yield* rows(tx.select().from(t.metrics).orderBy(t.metrics.runId, byteOrder(store, t.metrics.key), t.metrics.step)),
      summaries: yield* rows(tx.select().from(t.metricSummaries).orderBy(t.metricSummaries.runId, byteOrder(store, t.metricSummaries.key))),
      rollups: yield* rows(
        tx.select().from(t.metricRollups).orderBy(t.metricRollups.runId, byteOrder(store, t.metricRollups.key), t.metricRollups.block),
      ),
      ledger: yield* rows(tx.select().from(t.auditEvents).orderBy(t.auditEvents.seq)),
    };
  });
}

async function scenario(store: Store) {
  await seedRuns(store, 3);
  const deps = { db: store, artifacts };
  // Run 1: the whole sequence.
  await recordPreparedOn(deps, 1, actor, prepared, DATASET_ID);
  await recordStartedOn(deps, 1, actor, started, { appVersion: "0.1.0", appCommit: "commit-abc" });
  const storedBefore: MetricPoint[] = [];
  for (let epoch = 1; epoch <= 3; epoch++) {
    const points = epochPoints(epoch);
    // Flushed in uneven batches, as the orchestrator's timer does; a NaN is not stored.
    for (let i = 0; i < points.length; i += 333) await insertMetricPointsOn(store, 1, points.slice(i, i + 333));
    if (epoch === 2) {
      // A resumed run re-sends its partial epoch: stored once, reported to onStoredBefore, counted once.
      await insertMetricPointsOn(store, 1, [...points.slice(0, 50), { ...points[0]!, step: 99_999, value: Number.NaN }], (p) =>
        storedBefore.push(p),
      );
    }
    await recordProgressOn(store, 1, { epoch, epochs: 3, batch: 0, batches: 0, samplesPerSecond: 1234 });
    await recordCheckpointOn(deps, 1, actor, checkpointOf(epoch, { val_loss: 1 / (epoch + 1), loss: 0.5 / epoch }));
  }
  await recordEvaluationOn(deps, 1, actor, {
    type: "evaluation",
    epoch: 3,
    checkpointSha256: checkpointOf(3, {}).sha256,
    partition: "test",
    dataSha256: "e".repeat(64),
    result: {
      accuracy: 0.96,
      loss: 0.11,
      confusion: [
        [1, 0],
        [0, 1],
      ],
    },
  } as unknown as Of<"evaluation">);
  await recordFinishedOn(
    deps,
    1,
    actor,
    {
      type: "finished",
      status: "completed",
      weightsSha256: checkpointOf(3, {}).sha256,
      epochsRun: 3,
      stoppedEarly: false,
      samplesPerSecond: 1234.4,
    },
    config,
  );
  // Run 2: started, one epoch and its checkpoint, then its process died.
  await recordPreparedOn(deps, 2, actor, prepared, DATASET_ID);
  await recordStartedOn(deps, 2, actor, started, { appVersion: "0.1.0", appCommit: "commit-abc" });
  await insertMetricPointsOn(store, 2, epochPoints(1, 40));
  await recordCheckpointOn(deps, 2, actor, checkpointOf(1, { val_loss: 0.5 }));
  const interruption = { owner: "worker:elsewhere:1:abc", lastHeartbeatAt: AT, autoResume: true };
  const interrupted = [await recordInterruptedOn(deps, 2, interruption), await recordInterruptedOn(deps, 2, interruption)];
  // Run 3: fails after a few points; a second failure is not recorded again.
  await recordStartedOn(deps, 3, actor, started, { appVersion: "0.1.0", appCommit: "commit-abc" });
  await insertMetricPointsOn(store, 3, epochPoints(1, 5));
  // One point object twice in a call: stored once, its second place reported as stored before.
  const twice: MetricPoint = { key: "lr", step: 1, epoch: 0, value: 0.1, wallTimeMs: 1 };
  await insertMetricPointsOn(store, 3, [twice, twice], (p) => storedBefore.push(p));
  await recordFailedOn(deps, 3, actor, "the training worker crashed: out of memory");
  await recordFailedOn(deps, 3, actor, "a second failure");
  return { storedBefore: storedBefore.map((p) => `${p.key}@${p.step}`), interrupted, ...(await snapshot(store)) };
}

/** The workers' queue through its store forms: enqueue, claims, a give-back, a take-out, a dead worker's runs. */
async function queueScenario(store: Store) {
  await seedRuns(store, 6);
  const { runs, runLeases } = store.tables;
  const w1: LeaseOwner = { owner: "worker:host1:11:w1", host: "host1", pid: 11 };
  const w2: LeaseOwner = { owner: "worker:host2:22:w2", host: "host2", pid: 22 };
  const cli: LeaseOwner = { owner: "host3:33:cli", host: "host3", pid: 33 };
  await transact(store, (tx) =>
    exec(
      tx
        .update(runs)
        .set({ status: "queued" })
        .where(sql`${runs.id} BETWEEN 4 AND 6`),
    ),
  );
  const enqueued = [];
  for (const runId of [4, 5, 6, 4]) enqueued.push(await enqueueRunOn(store, runId));
  const claims = [await claimQueuedRunsOn(store, w1, 2), await claimQueuedRunsOn(store, w2, 5), await claimQueuedRunsOn(store, w2, 5)];
  await giveBackRunOn(store, w1, 5, 7);
  const takenOut = [await takeOutQueuedOn(store, cli, 5), await takeOutQueuedOn(store, cli, 6)];
  const requeuedWhileHeld = await enqueueRunOn(store, 6);
  // w1 dies while training run 4; w2 dies holding run 6, still queued.
  await transact(store, function* (tx) {
    yield* exec(tx.update(runs).set({ status: "running" }).where(eq(runs.id, 4)));
    yield* exec(
      tx
        .update(runLeases)
        .set({ heartbeatAt: 0 })
        .where(sql`${runLeases.runId} IN (4, 6)`),
    );
  });
  const recovered = await recoverDeadWorkersOn(store);
  const leases = (await transact(store, (tx) => rows(tx.select().from(runLeases).orderBy(runLeases.runId)))).map(
    ({ runId, owner, host, pid }) => ({ runId, owner, host, pid }),
  );
  const queued = [await isQueuedOn(store, 4), await isQueuedOn(store, 5), await isQueuedOn(store, 6)];
  return {
    enqueued,
    claims: claims.map((c) => c.map(({ runId, enqueuedSeq }) => ({ runId, enqueuedSeq }))),
    takenOut,
    requeuedWhileHeld,
    recovered,
    leases,
    queued,
    ...(await snapshot(store)),
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};
const queueOutcomes: Partial<Record<Store["dialect"], Awaited<ReturnType<typeof queueScenario>>>> = {};

function behaviourCases(storeOf: () => Store): void {
  fixedDateForEachTest(AT);

  it("records a run's whole event sequence, a failed run and an interrupted run, with their ledger events", async () => {
    const store = storeOf();
    const outcome = await scenario(store);
    outcomes[store.dialect] = outcome;
    const resent = epochPoints(2).slice(0, 50);
    expect(outcome.storedBefore).toEqual([...resent.map((p) => `${p.key}@${p.step}`), "lr@1"]);
    expect(outcome.metrics.filter((m) => m.runId === 3 && m.key === "lr")).toHaveLength(1);
    expect(outcome.interrupted).toEqual([true, false]);
    expect(outcome.runs.map((r) => r.status)).toEqual(["completed", "interrupted", "failed"]);
    expect(outcome.metrics.filter((m) => m.runId === 1)).toHaveLength(3 * (2 * 700 + 1));
    const loss = outcome.summaries.find((s) => s.runId === 1 && s.key === "loss")!;
    expect(loss).toMatchObject({ count: 2100, lastStep: 2100 });
    // 2,100 steps: blocks 0, 1 and 2 of 1,024 steps for each batch key.
    expect(outcome.rollups.filter((r) => r.runId === 1 && r.key === "loss").map((r) => [r.block, r.count])).toEqual([
      [0, 1023],
      [1, 1024],
      [2, 53],
    ]);
    expect(outcome.checkpoints.filter((c) => c.isBest).map((c) => [c.runId, c.epoch])).toEqual([[1, 3]]);
    expect(outcome.ledger.map((e) => e.action)).toEqual([
      "datasetVersion.create",
      "split.create",
      "run.start",
      "checkpoint.create",
      "checkpoint.create",
      "checkpoint.create",
      "evaluation.create",
      "run.complete",
      "run.start",
      "checkpoint.create",
      "run.interrupted",
      "run.start",
      "run.fail",
    ]);
    const complete = JSON.parse(outcome.ledger[7]!.payload) as Record<string, unknown>;
    expect(complete).toMatchObject({ metricPoints: 3 * 1401, bestCheckpointId: 3, finalMetrics: { val_loss: 0.25 } });
    expect(JSON.parse(outcome.ledger[10]!.payload)).toMatchObject({ lastCheckpointEpoch: 1, resumeFrom: "checkpoint of epoch 1" });
  });

  it("queues, claims, gives back, takes out and recovers runs of dead workers", async () => {
    const store = storeOf();
    const q = await queueScenario(store);
    queueOutcomes[store.dialect] = q;
    expect(q.enqueued).toEqual([true, true, true, true]);
    expect(q.claims.map((c) => c.map((r) => r.runId))).toEqual([[4, 5], [6], []]);
    expect(q.takenOut).toEqual([true, false]);
    expect(q.requeuedWhileHeld).toBe(false);
    expect(q.recovered).toBe(2);
    expect(q.queued).toEqual([true, false, true]);
    expect(q.leases.filter((l) => l.runId >= 4)).toEqual([
      { runId: 4, owner: "queue:0", host: "", pid: 0 },
      { runId: 5, owner: "host3:33:cli", host: "host3", pid: 33 },
      { runId: 6, owner: "queue:0", host: "", pid: 0 },
    ]);
    expect(q.ledger.at(-1)).toMatchObject({ action: "run.interrupted", entityId: "4" });
  });
}

describe("orchestrator persistence on SQLite", () => {
  const sqlite = sqliteForSuite("rl-orchestrator-store-");
  behaviourCases(() => sqlite.store());
});

/**
 * Forwards a body's steps and, after the first step `isRead` picks, waits at `barrier` (PostgreSQL only: a native
 * step), so that concurrent bodies all read before any of them writes.
 */
function* holdAfterRead<T>(body: TxBody<T>, isRead: (step: TxStep) => boolean, barrier: ReturnType<typeof releaseTogether>): TxBody<T> {
  let held = false;
  let next = body.next();
  while (!next.done) {
    const step = next.value;
    let result: unknown;
    try {
      result = yield step;
    } catch (err) {
      next = body.throw(err);
      continue;
    }
    if (!held && isRead(step)) {
      held = true;
      yield { kind: "native", sqlite: () => undefined, pg: () => barrier.arrive() };
    }
    next = body.next(result);
  }
  return next.value;
}

const isLeaseRead = (step: TxStep) =>
  step.kind !== "native" && /from "run_leases"/.test((step.query as { toSQL(): { sql: string } }).toSQL().sql);

describePg("orchestrator persistence and leases on PostgreSQL", () => {
  const pg = twoPgServersForSuite();

  behaviourCases(() => pgStore(pg.a()));

  it("gives the same rows and ledger rows (seq, action, payload, chain hash) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg).toEqual(outcomes.sqlite);
  });

  it("gives the same queue answers, lease holders, rows and ledger rows as SQLite", () => {
    expect(queueOutcomes.sqlite).toBeDefined();
    expect(queueOutcomes.pg).toEqual(queueOutcomes.sqlite);
  });

  it("judges a lease by its heartbeat age on the database's clock, never by this host's pids", async () => {
    const store = pgStore(pg.a());
    await seedRuns(store, 8);
    const { runLeases } = store.tables;
    const now = await leaseClockMs(store);
    const timeout = Number(process.env.RUNLEDGER_LEASE_TIMEOUT_S ?? 30) * 1000;
    const lease = (runId: number, heartbeatAt: number, pid: number) => ({
      runId,
      owner: `worker:${os.hostname()}:${pid}:x${runId}`,
      host: os.hostname(),
      pid,
      acquiredAt: AT,
      heartbeatAt,
    });
    await transact(store, function* (tx) {
      // This very process's pid (alive on this host), heartbeat too old: dead on PostgreSQL.
      yield* exec(tx.insert(runLeases).values(lease(7, now - timeout - 5_000, process.pid)));
      // A pid that exists nowhere, heartbeat fresh: alive (its worker may run on another machine with that pid).
      yield* exec(tx.insert(runLeases).values(lease(8, now - 1_000, 2 ** 22 + 17)));
    });
    const holder = new LeaseHolder(store, "worker");
    expect(await holder.acquireOn(7)).toBe(true);
    expect(await holder.acquireOn(8)).toBe(false);
    expect((await leaseOfOn(store, 7))?.owner).toBe(holder.owner);
    // The new heartbeat is the database's clock, not this host's (the fixed Date is hours away from it), and so is a beat.
    const taken = (await leaseOfOn(store, 7))!.heartbeatAt;
    expect(Math.abs(taken - now)).toBeLessThan(60_000);
    await holder.beatOn();
    expect((await leaseOfOn(store, 7))!.heartbeatAt).toBeGreaterThanOrEqual(taken);
    expect(Math.abs((await leaseOfOn(store, 7))!.heartbeatAt - Date.now())).toBeGreaterThan(3_600_000);
    await holder.releaseOn(7);
    expect(await leaseOfOn(store, 7)).toBeUndefined();
  });

  it("two pools, 16 workers claiming 10 queued runs at once, all reading the queue first: each run claimed exactly once", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())] as const;
    const store = servers[0];
    const { runs, runLeases } = store.tables;
    await seedRuns(store, 20);
    await transact(store, function* (tx) {
      yield* exec(tx.delete(runLeases));
      yield* exec(tx.update(runs).set({ status: "queued" }));
    });
    const queued = Array.from({ length: 10 }, (_, i) => 11 + i);
    for (const runId of queued) expect(await enqueueRunOn(store, runId)).toBe(true);
    expect(await isQueuedOn(store, 11)).toBe(true);
    const workers: LeaseOwner[] = Array.from({ length: 16 }, (_, i) => ({ owner: `worker:host${i}:1:w${i}`, host: `host${i}`, pid: 1 }));
    const barrier = releaseTogether();
    barrier.arm(workers.length);
    const claims = await Promise.all(
      workers.map((w, i) => {
        const s = servers[i % 2]!;
        return transact(s, (tx) => holdAfterRead(claimQueuedRunsTx(tx, s, w, 3), isLeaseRead, barrier));
      }),
    );
    const claimed = claims.flat().map((c) => c.runId);
    expect([...claimed].sort((a, b) => a - b)).toEqual(queued);
    const leases = await transact(store, (tx) => rows(tx.select().from(runLeases).orderBy(runLeases.runId)));
    for (const [i, claim] of claims.entries())
      for (const c of claim) expect(leases.find((l) => l.runId === c.runId)?.owner).toBe(workers[i]!.owner);
    // A queued run is taken out once (a cancel) and is then no longer anyone's to claim.
    expect(await takeOutQueuedOn(store, workers[0]!, 11)).toBe(false);
  });

  it("two pools, 16 holders taking over one dead lease (and one run without a lease) at once: one wins each", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())] as const;
    const store = servers[0];
    const { runLeases } = store.tables;
    await seedRuns(store, 20);
    await transact(store, function* (tx) {
      yield* exec(tx.delete(runLeases).where(sql`${runLeases.runId} IN (1, 2)`));
      yield* exec(
        tx.insert(runLeases).values({ runId: 1, owner: "worker:gone:1:dead", host: "gone", pid: 1, acquiredAt: AT, heartbeatAt: 0 }),
      );
    });
    for (const runId of [1, 2]) {
      const takers: LeaseOwner[] = Array.from({ length: 16 }, (_, i) => ({
        owner: `worker:h${i}:1:t${runId}-${i}`,
        host: `h${i}`,
        pid: 1,
      }));
      const barrier = releaseTogether();
      barrier.arm(takers.length);
      const won = await Promise.all(
        takers.map((w, i) => {
          const s = servers[i % 2]!;
          return transact(s, (tx) => holdAfterRead(takeLeaseTx(tx, s, w, runId), isLeaseRead, barrier));
        }),
      );
      expect(won.filter(Boolean)).toHaveLength(1);
      expect((await leaseOfOn(store, runId))?.owner).toBe(takers[won.indexOf(true)]!.owner);
    }
  });

  it("recovers a dead worker's running run once from two pools: one run.interrupted, the run queued again", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())] as const;
    const store = servers[0];
    const { runs, runLeases, auditEvents } = store.tables;
    await seedRuns(store, 20);
    await transact(store, function* (tx) {
      yield* exec(tx.update(runs).set({ status: "running" }).where(eq(runs.id, 15)));
      yield* exec(tx.delete(runLeases).where(eq(runLeases.runId, 15)));
      yield* exec(
        tx.insert(runLeases).values({ runId: 15, owner: "worker:gone:2:dead", host: "gone", pid: 2, acquiredAt: AT, heartbeatAt: 0 }),
      );
    });
    const moved = await Promise.all([recoverDeadWorkersOn(servers[0]), recoverDeadWorkersOn(servers[1])]);
    expect(moved[0] + moved[1]).toBe(1);
    expect(await isQueuedOn(store, 15)).toBe(true);
    const events = await transact(store, (tx) =>
      rows(tx.select().from(auditEvents).where(eq(auditEvents.entityId, "15")).orderBy(auditEvents.seq)),
    );
    expect(events.map((e) => e.action)).toEqual(["run.interrupted"]);
    expect(JSON.parse(events[0]!.payload)).toMatchObject({ owner: "worker:gone:2:dead", autoResume: true });
    const seqs = (await transact(store, (tx) => rows(tx.select({ seq: auditEvents.seq }).from(auditEvents).orderBy(auditEvents.seq)))).map(
      (e) => e.seq,
    );
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  });
});
