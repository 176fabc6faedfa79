/**
 * The queue of runs for the training workers (`npm run worker`, server/worker/main.ts): enqueue, claim, wake.
 *
 * When the web server runs with RUNLEDGER_TRAINING=workers (or `cli train --enqueue`), its orchestrator does not train:
 * launching a run enqueues it here, and a worker process claims it, trains it through the same orchestrator code and
 * services, and heartbeats its owner lease (leases.ts). The interface is store-independent; two implementations:
 *
 * - **SQLite** (this file, `SqliteRunQueue`): the queue is the runs' status plus their owner leases. A queued run holds
 *   a lease whose owner is `queue:<ledger seq at enqueue>` (host "", pid 0, heartbeat_at = enqueue time in ms), which
 *   no in-process orchestrator takes (leases.ts ownerAlive). `claim` picks the oldest entries in ONE transaction
 *   (BEGIN IMMEDIATE, so claims of several processes queue behind each other) and rewrites each lease to the worker's
 *   owner id: a run is taken exactly once. Wake-up is short polling (RUNLEDGER_WORKER_POLL_MS, default 200 ms), plus an
 *   in-process signal when this process enqueues or frees a slot. SQLite is one file: every worker runs on the machine
 *   of the data directory.
 * - **PostgreSQL** (slot, not built: it comes with the store port of issue 16, ARCHITECTURE.md "Job queue:
 *   graphile-worker"): `enqueue` adds a graphile-worker job (`graphile_worker.add_job('train_run', {runId})`) in the
 *   transaction of the caller, `claim` is graphile-worker's SKIP LOCKED job fetch followed by the same lease write,
 *   and `waitForWork` resolves on its LISTEN/NOTIFY wake-up instead of a poll. The leases (heartbeat, takeover of a dead
 *   worker's runs, exact resume from the last checkpoint) stay as they are.
 *
 * Runs of a worker that died (its lease owner `worker:…` is dead) go back to the queue (`recoverDeadWorkers`): a
 * running one is first recorded "interrupted" (event run.interrupted), so the next worker resumes it from its last
 * checkpoint's exact-resume state. Entries of runs that ended meanwhile (cancelled, or trained by hand with `cli
 * resume`) are dropped at the next claim. Leases are operational state: nothing here writes an audit event except
 * the run.interrupted of recordInterrupted.
 */
import { EventEmitter } from "node:events";
import { and, eq, like, max } from "drizzle-orm";
import { auditEvents, runLeases, runs } from "@/db/schema";
import type { Db } from "@/db/client";
import { pendingInterventions } from "@/server/runs/pilot-queries";
import type { ServiceDeps } from "@/server/app-context/service-context";
import { recordInterrupted } from "./persist-events";
import { QUEUE_OWNER_PREFIX, WORKER_OWNER_PREFIX, isQueueEntry, ownerAlive, type LeaseHolder, type LeaseRow } from "./leases";

/** A run a worker has claimed: its lease is the worker's; `enqueuedSeq` is the ledger seq when it was queued. */
export type ClaimedRun = { runId: number; enqueuedAt: number; enqueuedSeq: number };

export interface RunQueue {
  readonly store: "sqlite" | "postgresql";
  /**
   * Queues a run for the workers. Returns false when another live process holds it (it trains there). Idempotent: a
   * run already queued keeps its place.
   */
  enqueue(runId: number): boolean;
  /** Takes up to `max` queued runs for `holder` (each exactly once across processes), oldest first. */
  claim(holder: LeaseHolder, max: number): ClaimedRun[];
  /** Takes a queued run out of the queue for `holder` (a cancel of a run no worker has taken yet). */
  takeOut(holder: LeaseHolder, runId: number): boolean;
  /** Gives a run back to the queue (a worker that stops); `cancelWatermark` is kept for the next claimer. */
  giveBack(holder: LeaseHolder, runId: number, cancelWatermark: number): void;
  /** Runs of dead workers go back to the queue (running ones recorded interrupted first). Returns how many. */
  recoverDeadWorkers(): number;
  /** Whether the run waits in the queue (no worker holds it yet). */
  isQueued(runId: number): boolean;
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

export class SqliteRunQueue implements RunQueue {
  readonly store = "sqlite" as const;
  private wakeups = new EventEmitter();

  constructor(private deps: ServiceDeps) {
    this.wakeups.setMaxListeners(0);
  }

  private get db(): Db {
    return this.deps.db;
  }

  /** `queuedAt` orders the claims: a run handed back or left by a dead worker keeps the place of its last claim. */
  private queueRow(runId: number, seq: number, queuedAt: number) {
    return { runId, owner: queueOwner(seq), host: "", pid: 0, acquiredAt: new Date(queuedAt).toISOString(), heartbeatAt: queuedAt };
  }

  enqueue(runId: number): boolean {
    const now = Date.now();
    const ok = this.db.transaction((tx) => {
      const current = tx.select().from(runLeases).where(eq(runLeases.runId, runId)).get();
      if (current && isQueueEntry(current)) return true;
      if (current && ownerAlive(current, now)) return false;
      const seq =
        tx
          .select({ m: max(auditEvents.seq) })
          .from(auditEvents)
          .get()?.m ?? 0;
      const row = this.queueRow(runId, seq, now);
      if (current) tx.update(runLeases).set(row).where(eq(runLeases.runId, runId)).run();
      else tx.insert(runLeases).values(row).run();
      return true;
    });
    if (ok) this.wake();
    return ok;
  }

  claim(holder: LeaseHolder, maxRuns: number): ClaimedRun[] {
    if (maxRuns <= 0) return [];
    const now = Date.now();
    const claimed = this.db.transaction((tx) => {
      const entries = tx
        .select({ lease: runLeases, status: runs.status, origin: runs.origin })
        .from(runLeases)
        .innerJoin(runs, eq(runs.id, runLeases.runId))
        .where(like(runLeases.owner, `${QUEUE_OWNER_PREFIX}%`))
        .orderBy(runLeases.heartbeatAt, runLeases.runId)
        .all();
      const out: ClaimedRun[] = [];
      for (const { lease, status, origin } of entries) {
        if (out.length >= maxRuns) break;
        const claimable =
          origin !== "api" &&
          (status === "queued" ||
            status === "interrupted" ||
            (status === "paused" && pendingInterventions(tx, lease.runId).some((i) => i.kind === "resume")));
        if (!claimable) {
          // Ended meanwhile (cancelled, trained by hand) or parked without a resume: nothing to train.
          if (status !== "running") tx.delete(runLeases).where(eq(runLeases.runId, lease.runId)).run();
          continue;
        }
        tx.update(runLeases)
          .set({ owner: holder.owner, host: holder.host, pid: holder.pid, acquiredAt: new Date(now).toISOString(), heartbeatAt: now })
          .where(and(eq(runLeases.runId, lease.runId), eq(runLeases.owner, lease.owner)))
          .run();
        out.push({ runId: lease.runId, enqueuedAt: lease.heartbeatAt, enqueuedSeq: seqOfQueueOwner(lease.owner) });
      }
      return out;
    });
    for (const c of claimed) holder.adopt(c.runId);
    return claimed;
  }

  takeOut(holder: LeaseHolder, runId: number): boolean {
    const now = Date.now();
    const got = this.db.transaction((tx) => {
      const current = tx.select().from(runLeases).where(eq(runLeases.runId, runId)).get();
      if (!current || !isQueueEntry(current)) return false;
      tx.update(runLeases)
        .set({ owner: holder.owner, host: holder.host, pid: holder.pid, acquiredAt: new Date(now).toISOString(), heartbeatAt: now })
        .where(eq(runLeases.runId, runId))
        .run();
      return true;
    });
    if (got) holder.adopt(runId);
    return got;
  }

  giveBack(holder: LeaseHolder, runId: number, cancelWatermark: number): void {
    const lease = this.db.select().from(runLeases).where(eq(runLeases.runId, runId)).get();
    const queuedAt = lease ? Date.parse(lease.acquiredAt) || Date.now() : Date.now();
    this.db
      .update(runLeases)
      .set(this.queueRow(runId, cancelWatermark, queuedAt))
      .where(and(eq(runLeases.runId, runId), eq(runLeases.owner, holder.owner)))
      .run();
    holder.forget(runId);
  }

  recoverDeadWorkers(): number {
    const now = Date.now();
    const dead = this.db
      .select({ lease: runLeases, status: runs.status })
      .from(runLeases)
      .innerJoin(runs, eq(runs.id, runLeases.runId))
      .where(like(runLeases.owner, `${WORKER_OWNER_PREFIX}%`))
      .all()
      .filter(({ lease }) => !ownerAlive(lease, now));
    let moved = 0;
    for (const { lease, status } of dead) {
      // Its own transaction, re-checking the status: two workers recovering at once record one run.interrupted.
      if (status === "running")
        recordInterrupted(this.deps, lease.runId, {
          owner: lease.owner,
          lastHeartbeatAt: new Date(lease.heartbeatAt).toISOString(),
          autoResume: true,
        });
      if (this.requeueIfStill(lease)) moved++;
    }
    if (moved > 0) this.wake();
    return moved;
  }

  /** Replaces a dead worker's lease by a queue entry, unless someone took it meanwhile. */
  private requeueIfStill(dead: LeaseRow): boolean {
    const queuedAt = Date.parse(dead.acquiredAt) || Date.now();
    return this.db.transaction((tx) => {
      const current = tx.select().from(runLeases).where(eq(runLeases.runId, dead.runId)).get();
      if (!current || current.owner !== dead.owner) return false;
      const run = tx.select({ status: runs.status }).from(runs).where(eq(runs.id, dead.runId)).get();
      if (!run || run.status === "running") return false;
      if (run.status !== "queued" && run.status !== "interrupted" && run.status !== "paused") {
        tx.delete(runLeases).where(eq(runLeases.runId, dead.runId)).run();
        return false;
      }
      // The dead worker's cancel watermark is not known: 0, so any run.cancelRequest of this run counts. A run that is
      // not final and has one is a cancel nobody carried out yet (a cancel of a queued, paused or interrupted run ends it
      // at once, in the process that records it).
      tx.update(runLeases)
        .set(this.queueRow(dead.runId, 0, queuedAt))
        .where(eq(runLeases.runId, dead.runId))
        .run();
      return true;
    });
  }

  isQueued(runId: number): boolean {
    const lease = this.db.select({ owner: runLeases.owner }).from(runLeases).where(eq(runLeases.runId, runId)).get();
    return lease !== undefined && isQueueEntry(lease);
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
