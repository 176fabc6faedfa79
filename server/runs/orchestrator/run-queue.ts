/**
 * The queue of runs for the training workers (`npm run worker`, server/worker/main.ts): enqueue, claim, wake.
 *
 * When the web server runs with RUNLEDGER_TRAINING=workers (or `cli train --enqueue`), its orchestrator does not train:
 * launching a run enqueues it here, and a worker process claims it, trains it through the same orchestrator code and
 * services, and heartbeats its owner lease (leases.ts). One implementation, `StoreRunQueue`, on either store:
 *
 * - The queue is the runs' status plus their owner leases. A queued run holds a lease whose owner is
 *   `queue:<ledger seq at enqueue>` (host "", pid 0, heartbeat_at = enqueue time in ms), which no in-process
 *   orchestrator takes (leases.ts ownerAlive). `claim` picks the oldest entries in ONE transaction (SQLite's IMMEDIATE,
 *   PostgreSQL's ledger advisory lock) and rewrites each lease to the worker's owner id: a run is taken exactly once.
 * - **SQLite**: wake-up is short polling (RUNLEDGER_WORKER_POLL_MS, default 200 ms), plus an in-process signal when this
 *   process enqueues or frees a slot. SQLite is one file: every worker runs on the machine of the data directory.
 * - **PostgreSQL** (ARCHITECTURE.md "Job queue: graphile-worker"): every body that writes a queue entry (enqueue,
 *   give-back, a dead worker's run put back) also adds a graphile-worker job in the SAME transaction (`addTrainJobTx`:
 *   `graphile_worker.add_job('train_run', {runId}, job_key := 'run:<id>')`), so a queued run and its job commit together
 *   and a rollback leaves neither. A worker (server/worker/pg-worker.ts) takes the jobs (pg-job-consumer.ts: LISTEN/
 *   NOTIFY wake-up, SKIP LOCKED fetch, concurrency = its slots); the `train_run` handler claims THAT run with the claim
 *   body below (`claimQueuedRunOn`): the lease compare-and-set, not the job, decides who trains, so a job whose run is
 *   already claimed, ended or cancelled completes as a no-op.
 *
 * Every step is a store part (`…Tx`) with an awaited form (`enqueueRunOn`, `claimQueuedRunsOn`, `claimQueuedRunOn`,
 * `takeOutQueuedOn`, `giveBackRunOn`, `recoverDeadWorkersOn`, `isQueuedOn`); StoreRunQueue's verbs are those forms.
 *
 * Runs of a worker that died (its lease owner `worker:…` is dead) go back to the queue (`recoverDeadWorkers`): a
 * running one is first recorded "interrupted" (event run.interrupted), so the next worker resumes it from its last
 * checkpoint's exact-resume state. Entries of runs that ended meanwhile (cancelled, or trained by hand with `cli
 * resume`) are dropped at the next claim. Leases are operational state: nothing here writes an audit event except
 * the run.interrupted of recordInterruptedTx.
 */
import { EventEmitter } from "node:events";
import { and, asc, eq, like, max, sql } from "drizzle-orm";
import type { Db, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, exec, native, reader, row, rows, transact, type Store, type TxBody } from "@/db/store";
import { recordInterruptedTx } from "./persist-events";
import {
  QUEUE_OWNER_PREFIX,
  WORKER_OWNER_PREFIX,
  dbClockMs,
  isQueueEntry,
  leaseClockMs,
  ownerAlive,
  replaceLeaseTx,
  type LeaseHolder,
  type LeaseOwner,
  type LeaseRow,
} from "./leases";

/** A run a worker has claimed: its lease is the worker's; `enqueuedSeq` is the ledger seq when it was queued. */
export type ClaimedRun = { runId: number; enqueuedAt: number; enqueuedSeq: number };

export interface RunQueue {
  readonly store: "sqlite" | "postgresql";
  /**
   * Queues a run for the workers. Returns false when another live process holds it (it trains there). Idempotent: a
   * run already queued keeps its place.
   */
  enqueue(runId: number): Promise<boolean>;
  /** Takes up to `max` queued runs for `holder` (each exactly once across processes), oldest first. */
  claim(holder: LeaseHolder, max: number): Promise<ClaimedRun[]>;
  /** Takes a queued run out of the queue for `holder` (a cancel of a run no worker has taken yet). */
  takeOut(holder: LeaseHolder, runId: number): Promise<boolean>;
  /** Gives a run back to the queue (a worker that stops); `cancelWatermark` is kept for the next claimer. */
  giveBack(holder: LeaseHolder, runId: number, cancelWatermark: number): Promise<void>;
  /** Runs of dead workers go back to the queue (running ones recorded interrupted first). Returns how many. */
  recoverDeadWorkers(): Promise<number>;
  /** Whether the run waits in the queue (no worker holds it yet). */
  isQueued(runId: number): Promise<boolean>;
  /** Wakes this process's waiters now (a run enqueued here, a slot freed). */
  wake(): void;
  /** Resolves at the next wake-up or after `ms` (the poll interval), whichever comes first. */
  waitForWork(ms: number): Promise<void>;
}

const queueOwner = (seq: number) => `${QUEUE_OWNER_PREFIX}${seq}`;
const seqOfQueueOwner = (owner: string) => Number(owner.slice(QUEUE_OWNER_PREFIX.length)) || 0;

export function pollIntervalMs(): number {
  return Number(process.env.RUNLEDGER_WORKER_POLL_MS ?? 200);
}

/** `queuedAt` orders the claims: a run handed back or left by a dead worker keeps the place of its last claim. */
function queueRow(runId: number, seq: number, queuedAt: number): LeaseRow {
  return { runId, owner: queueOwner(seq), host: "", pid: 0, acquiredAt: new Date(queuedAt).toISOString(), heartbeatAt: queuedAt };
}

function ownedRow(runId: number, who: LeaseOwner, now: number): LeaseRow {
  return { runId, owner: who.owner, host: who.host, pid: who.pid, acquiredAt: new Date(now).toISOString(), heartbeatAt: now };
}

function* leaseTx(tx: Tx, { tables }: Store, runId: number): TxBody<LeaseRow | undefined> {
  return yield* row(tx.select().from(tables.runLeases).where(eq(tables.runLeases.runId, runId)));
}

/** Whether a paused run has a pending resume intervention (it may be trained again). */
function* resumeAskedTx(tx: Tx, { tables }: Store, runId: number): TxBody<boolean> {
  const { runInterventions } = tables;
  const pending = yield* row(
    tx
      .select({ id: runInterventions.id })
      .from(runInterventions)
      .where(and(eq(runInterventions.runId, runId), eq(runInterventions.status, "pending"), eq(runInterventions.kind, "resume")))
      .limit(1),
  );
  return pending !== undefined;
}

/** The graphile-worker task that trains a queued run (pg-job-consumer.ts handles it). */
export const TRAIN_RUN_TASK = "train_run";
export const trainJobKey = (runId: number) => `run:${runId}`;

/**
 * PostgreSQL: adds the run's `train_run` job in this transaction (SQLite: nothing; its workers poll). One job key per
 * run: an unlocked job of the run is replaced (no duplicate); a job locked by a consumer (its handler runs, or its
 * worker died holding it) loses its key and stops being retried, and a new job is created, so the new queue entry
 * always has a job nobody holds. A job that finds its run not queued is a no-op (pg-job-consumer.ts).
 */
export function* addTrainJobTx(runId: number): TxBody<void> {
  yield* native({
    sqlite: () => undefined,
    pg: async (tx) => {
      await tx.execute(
        sql`SELECT graphile_worker.add_job(${TRAIN_RUN_TASK}, json_build_object('runId', ${runId}::bigint), job_key := ${trainJobKey(runId)})`,
      );
    },
  });
}

export function* enqueueRunTx(tx: Tx, store: Store, runId: number): TxBody<boolean> {
  const queued = yield* enqueueEntryTx(tx, store, runId);
  // Also when it was queued already: the job is re-added (same key, so no duplicate of an unlocked one).
  if (queued) yield* addTrainJobTx(runId);
  return queued;
}

function* enqueueEntryTx(tx: Tx, store: Store, runId: number): TxBody<boolean> {
  const { auditEvents } = store.tables;
  const now = yield* dbClockMs();
  const current = yield* leaseTx(tx, store, runId);
  if (current && isQueueEntry(current)) return true;
  if (current && ownerAlive(current, now, store.dialect)) return false;
  const seq = (yield* row(tx.select({ m: max(auditEvents.seq) }).from(auditEvents)))?.m ?? 0;
  // A lost compare-and-set: another process took or queued the run meanwhile; queued counts as queued.
  if (yield* replaceLeaseTx(tx, store, current, queueRow(runId, Number(seq), now))) return true;
  const now2 = yield* leaseTx(tx, store, runId);
  return now2 !== undefined && isQueueEntry(now2);
}

/** `onlyRunId`: claim that run only (a graphile-worker job's handler, pg-job-consumer.ts), else the oldest entries. */
export function* claimQueuedRunsTx(tx: Tx, store: Store, who: LeaseOwner, maxRuns: number, onlyRunId?: number): TxBody<ClaimedRun[]> {
  const { runLeases, runs } = store.tables;
  const now = yield* dbClockMs();
  const queueEntry = like(runLeases.owner, `${QUEUE_OWNER_PREFIX}%`);
  const entries = yield* rows(
    tx
      .select({ lease: runLeases, status: runs.status, origin: runs.origin })
      .from(runLeases)
      .innerJoin(runs, eq(runs.id, runLeases.runId))
      .where(onlyRunId === undefined ? queueEntry : and(queueEntry, eq(runLeases.runId, onlyRunId)))
      .orderBy(asc(runLeases.heartbeatAt), asc(runLeases.runId)),
  );
  const out: ClaimedRun[] = [];
  for (const { lease, status, origin } of entries) {
    if (out.length >= maxRuns) break;
    const claimable =
      origin !== "api" &&
      (status === "queued" || status === "interrupted" || (status === "paused" && (yield* resumeAskedTx(tx, store, lease.runId))));
    if (!claimable) {
      // Ended meanwhile (cancelled, trained by hand) or parked without a resume: nothing to train.
      if (status !== "running")
        yield* exec(tx.delete(runLeases).where(and(eq(runLeases.runId, lease.runId), eq(runLeases.owner, lease.owner))));
      continue;
    }
    // Another worker's claim committed first (PostgreSQL: it re-read the entry after waiting on its row lock): skipped.
    if (!(yield* replaceLeaseTx(tx, store, lease, ownedRow(lease.runId, who, now)))) continue;
    out.push({ runId: lease.runId, enqueuedAt: lease.heartbeatAt, enqueuedSeq: seqOfQueueOwner(lease.owner) });
  }
  return out;
}

export function* takeOutQueuedTx(tx: Tx, store: Store, who: LeaseOwner, runId: number): TxBody<boolean> {
  const now = yield* dbClockMs();
  const current = yield* leaseTx(tx, store, runId);
  if (!current || !isQueueEntry(current)) return false;
  return yield* replaceLeaseTx(tx, store, current, ownedRow(runId, who, now));
}

export function* giveBackRunTx(tx: Tx, store: Store, who: LeaseOwner, runId: number, cancelWatermark: number): TxBody<void> {
  const { runLeases } = store.tables;
  const lease = yield* leaseTx(tx, store, runId);
  if (!lease || lease.owner !== who.owner) return;
  const queuedAt = Date.parse(lease.acquiredAt) || lease.heartbeatAt;
  yield* exec(
    tx
      .update(runLeases)
      .set(queueRow(runId, cancelWatermark, queuedAt))
      .where(and(eq(runLeases.runId, runId), eq(runLeases.owner, who.owner))),
  );
  // The job this worker's handler holds for the run stays locked until the handler ends: a new one is added.
  yield* addTrainJobTx(runId);
}

/** The leases of workers, with their runs' status, for recoverDeadWorkers (judged dead outside, re-checked inside). */
function workerLeasesQuery(db: Db, { tables }: Store) {
  const { runLeases, runs } = tables;
  return db
    .select({ lease: runLeases, status: runs.status })
    .from(runLeases)
    .innerJoin(runs, eq(runs.id, runLeases.runId))
    .where(like(runLeases.owner, `${WORKER_OWNER_PREFIX}%`));
}

/**
 * A dead worker's run goes back to the queue, in one transaction: its lease is replaced by a queue entry only if it is
 * still the one judged dead (same holder, same heartbeat: a worker that was only slow and beat meanwhile keeps it), and
 * a running run is recorded interrupted with it (so the next worker resumes it from its last checkpoint). Runs that
 * ended meanwhile lose the lease. True when the run was queued again.
 */
export function* requeueDeadWorkerRunTx(tx: Tx, store: Store, dead: LeaseRow): TxBody<boolean> {
  const { runLeases, runs } = store.tables;
  const run = yield* row(tx.select({ status: runs.status }).from(runs).where(eq(runs.id, dead.runId)));
  const status = run?.status;
  if (status !== "running" && status !== "queued" && status !== "interrupted" && status !== "paused") {
    yield* exec(
      tx
        .delete(runLeases)
        .where(and(eq(runLeases.runId, dead.runId), eq(runLeases.owner, dead.owner), eq(runLeases.heartbeatAt, dead.heartbeatAt))),
    );
    return false;
  }
  // The dead worker's cancel watermark is not known: 0, so any run.cancelRequest of this run counts. A run that is
  // not final and has one is a cancel nobody carried out yet (a cancel of a queued, paused or interrupted run ends it
  // at once, in the process that records it).
  const queuedAt = Date.parse(dead.acquiredAt) || dead.heartbeatAt;
  if (!(yield* replaceLeaseTx(tx, store, dead, queueRow(dead.runId, 0, queuedAt)))) return false;
  // PostgreSQL: the dead worker's job of this run is still locked by it, so add_job creates a new one (addTrainJobTx).
  // When graphile-worker's 4 h lock expiry frees that old job, it is no longer retried (add_job spent its attempts);
  // had recovery not run before then, its handler's claim would find the run held by the dead worker's lease, and
  // the job would complete as a no-op: only this recovery puts the run back.
  yield* addTrainJobTx(dead.runId);
  if (status === "running")
    yield* recordInterruptedTx(tx, store, dead.runId, {
      owner: dead.owner,
      lastHeartbeatAt: new Date(dead.heartbeatAt).toISOString(),
      autoResume: true,
    });
  return true;
}

// The awaited forms, on either store (the PostgreSQL queue and remote workers build on these).

export function enqueueRunOn(store: Store | Db, runId: number): Promise<boolean> {
  const s = asStore(store);
  return transact(s, (tx) => enqueueRunTx(tx, s, runId));
}

export function claimQueuedRunsOn(store: Store | Db, who: LeaseOwner, maxRuns: number): Promise<ClaimedRun[]> {
  const s = asStore(store);
  if (maxRuns <= 0) return Promise.resolve([]);
  return transact(s, (tx) => claimQueuedRunsTx(tx, s, who, maxRuns));
}

/** Claims the queued run `runId` for `who` (a train_run job's handler); null when it is not queued (taken, ended). */
export async function claimQueuedRunOn(store: Store | Db, who: LeaseOwner, runId: number): Promise<ClaimedRun | null> {
  const s = asStore(store);
  const [claimed] = await transact(s, (tx) => claimQueuedRunsTx(tx, s, who, 1, runId));
  return claimed ?? null;
}

export function takeOutQueuedOn(store: Store | Db, who: LeaseOwner, runId: number): Promise<boolean> {
  const s = asStore(store);
  return transact(s, (tx) => takeOutQueuedTx(tx, s, who, runId));
}

export function giveBackRunOn(store: Store | Db, who: LeaseOwner, runId: number, cancelWatermark: number): Promise<void> {
  const s = asStore(store);
  return transact(s, (tx) => giveBackRunTx(tx, s, who, runId, cancelWatermark));
}

export async function recoverDeadWorkersOn(store: Store | Db): Promise<number> {
  const s = asStore(store);
  const now = await leaseClockMs(s);
  const dead = (await workerLeasesQuery(reader(s), s)).filter(({ lease }) => !ownerAlive(lease, now, s.dialect));
  let moved = 0;
  for (const { lease } of dead)
    if (await transact(s, (tx) => requeueDeadWorkerRunTx(tx, s, lease), { pgLock: PG_LOCK_KEYS.ledger })) moved++;
  return moved;
}

export async function isQueuedOn(store: Store | Db, runId: number): Promise<boolean> {
  const s = asStore(store);
  const { runLeases } = s.tables;
  const [lease] = await reader(s).select({ owner: runLeases.owner }).from(runLeases).where(eq(runLeases.runId, runId));
  return lease !== undefined && isQueueEntry(lease);
}

/**
 * The queue on either store: each verb is one transaction of the parts above. On SQLite a worker polls `claim`; on
 * PostgreSQL a worker takes graphile-worker's jobs (pg-job-consumer.ts) and the web server only enqueues.
 */
export class StoreRunQueue implements RunQueue {
  readonly store: "sqlite" | "postgresql";
  private readonly onStore: Store;
  private wakeups = new EventEmitter();

  constructor(db: Store | Db) {
    this.onStore = asStore(db);
    this.store = this.onStore.dialect === "pg" ? "postgresql" : "sqlite";
    this.wakeups.setMaxListeners(0);
  }

  async enqueue(runId: number): Promise<boolean> {
    const ok = await enqueueRunOn(this.onStore, runId);
    if (ok) this.wake();
    return ok;
  }

  async claim(holder: LeaseHolder, maxRuns: number): Promise<ClaimedRun[]> {
    const claimed = await claimQueuedRunsOn(this.onStore, holder, maxRuns);
    for (const c of claimed) holder.adopt(c.runId);
    return claimed;
  }

  async takeOut(holder: LeaseHolder, runId: number): Promise<boolean> {
    const got = await takeOutQueuedOn(this.onStore, holder, runId);
    if (got) holder.adopt(runId);
    return got;
  }

  async giveBack(holder: LeaseHolder, runId: number, cancelWatermark: number): Promise<void> {
    await giveBackRunOn(this.onStore, holder, runId, cancelWatermark);
    holder.forget(runId);
  }

  async recoverDeadWorkers(): Promise<number> {
    const moved = await recoverDeadWorkersOn(this.onStore);
    if (moved > 0) this.wake();
    return moved;
  }

  isQueued(runId: number): Promise<boolean> {
    return isQueuedOn(this.onStore, runId);
  }

  wake(): void {
    this.wakeups.emit("wake");
  }

  waitForWork(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeups.off("wake", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeups.once("wake", done);
    });
  }
}
