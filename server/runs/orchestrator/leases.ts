/**
 * Owner leases of runs (table run_leases): which process holds each queued or running run, and whether that process
 * is still alive. Several processes share one data directory (the web server, `npm run cli -- train`, `cli resume`),
 * so a run this process does not track may well be training next door; only a run whose owner is dead is orphaned.
 *
 * Invariants:
 * - A lease is taken in one transaction that re-reads the current holder: it is granted only when the run has no
 *   lease, the lease is this owner's, or its owner is dead. Two processes racing for a run: exactly one wins.
 * - An owner is alive when it runs on this host and its pid exists (a kill -9 is seen at once; the pid of this very
 *   process is alive only for owners registered in this process, so an abandoned orchestrator of a test counts as
 *   dead), or on another host when its heartbeat is younger than the timeout (RUNLEDGER_LEASE_TIMEOUT_S, default 30).
 *   On the same host the heartbeat age is not used: a main thread busy for a minute must not lose its runs.
 * - The heartbeat is written from the owner's main thread (a dead process's workers die with it), every
 *   RUNLEDGER_LEASE_HEARTBEAT_MS (default 2000), by a timer that does not keep the process alive.
 * - Leases are operational state, outside the ledger: nothing here writes an audit event.
 * - The training workers' queue (run-queue.ts) lives in the same rows. A run queued for the workers holds a lease whose
 *   owner is `queue:<ledger seq at enqueue>` (host "", pid 0, heartbeat_at = enqueue time): it counts as alive, so no
 *   in-process orchestrator takes it (acquire refuses it); a worker takes it with the queue's claim. A worker's own
 *   owner id starts with `worker:`; when that worker dies, its runs stay the workers' (another worker takes them over).
 */
import os from "node:os";
import { randomBytes } from "node:crypto";
import { and, eq, inArray } from "drizzle-orm";
import { runLeases } from "@/db/schema";
import type { Db } from "@/db/client";

export type LeaseRow = typeof runLeases.$inferSelect;

/** The owner of a run queued for the training workers: `queue:<ledger seq at enqueue>` (run-queue.ts). */
export const QUEUE_OWNER_PREFIX = "queue:";
/** The owner ids of training worker processes (`npm run worker`) start with this. */
export const WORKER_OWNER_PREFIX = "worker:";

export function isQueueEntry(lease: Pick<LeaseRow, "owner">): boolean {
  return lease.owner.startsWith(QUEUE_OWNER_PREFIX);
}

export function isWorkerLease(lease: Pick<LeaseRow, "owner">): boolean {
  return lease.owner.startsWith(WORKER_OWNER_PREFIX);
}

/** Owners registered by this process (an orchestrator's owner id), so a same-pid lease can be told alive or dead. */
const liveOwnersHere = new Set<string>();

export function leaseTimeoutMs(): number {
  return Number(process.env.RUNLEDGER_LEASE_TIMEOUT_S ?? 30) * 1000;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether the process holding this lease is alive (see the header for the rules). */
export function ownerAlive(lease: Pick<LeaseRow, "owner" | "host" | "pid" | "heartbeatAt">, now = Date.now()): boolean {
  // A queued run waits for a worker's claim: held by the queue, never orphaned.
  if (isQueueEntry(lease)) return true;
  if (lease.host !== os.hostname()) return now - lease.heartbeatAt < leaseTimeoutMs();
  if (lease.pid === process.pid) return liveOwnersHere.has(lease.owner);
  return pidAlive(lease.pid);
}

/** The leases one owner (one orchestrator) holds, with its heartbeat. */
export class LeaseHolder {
  readonly owner: string;
  readonly host = os.hostname();
  readonly pid = process.pid;
  private held = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  /** Called after each heartbeat while leases are held (the orchestrator looks for cancels asked elsewhere). */
  onBeat: (() => void) | undefined;

  constructor(
    private db: Db,
    /** "worker": a training worker process (owner id `worker:host:pid:nonce`), whose runs stay the workers' when it dies. */
    kind: "process" | "worker" = "process",
  ) {
    this.owner = `${kind === "worker" ? WORKER_OWNER_PREFIX : ""}${this.host}:${this.pid}:${randomBytes(6).toString("hex")}`;
    liveOwnersHere.add(this.owner);
  }

  /** Takes the run's lease unless a live other owner holds it. */
  acquire(runId: number): boolean {
    const now = Date.now();
    const got = this.db.transaction((tx) => {
      const current = tx.select().from(runLeases).where(eq(runLeases.runId, runId)).get();
      if (current && current.owner !== this.owner && ownerAlive(current, now)) return false;
      const row = { owner: this.owner, host: this.host, pid: this.pid, acquiredAt: new Date(now).toISOString(), heartbeatAt: now };
      if (current) tx.update(runLeases).set(row).where(eq(runLeases.runId, runId)).run();
      else
        tx.insert(runLeases)
          .values({ runId, ...row })
          .run();
      return true;
    });
    if (got) {
      this.held.add(runId);
      this.startHeartbeat();
    }
    return got;
  }

  /**
   * Registers a lease this owner wrote in a claim transaction (run-queue.ts) so the heartbeat refreshes it. The queue
   * writes the row itself, in the transaction that picks the run, so two workers never take the same run.
   */
  adopt(runId: number): void {
    this.held.add(runId);
    this.startHeartbeat();
  }

  /** Runs this owner holds now. */
  heldRuns(): number[] {
    return [...this.held];
  }

  /** Stops heartbeating a run whose lease row another step rewrote (run-queue.ts giveBack). */
  forget(runId: number): void {
    this.held.delete(runId);
    if (this.held.size === 0) this.stopHeartbeat();
  }

  release(runId: number): void {
    this.held.delete(runId);
    this.db
      .delete(runLeases)
      .where(and(eq(runLeases.runId, runId), eq(runLeases.owner, this.owner)))
      .run();
    if (this.held.size === 0) this.stopHeartbeat();
  }

  /** Forget this owner as if its process had died (tests of recovery inside one process); its rows stay. */
  abandon(): void {
    this.stopHeartbeat();
    this.held.clear();
    liveOwnersHere.delete(this.owner);
  }

  private startHeartbeat() {
    if (this.timer) return;
    const every = Number(process.env.RUNLEDGER_LEASE_HEARTBEAT_MS ?? 2000);
    this.timer = setInterval(() => {
      try {
        if (this.held.size > 0)
          this.db
            .update(runLeases)
            .set({ heartbeatAt: Date.now() })
            .where(and(eq(runLeases.owner, this.owner), inArray(runLeases.runId, [...this.held])))
            .run();
        this.onBeat?.();
      } catch {
        // A busy or closed database: the next beat tries again (same-host liveness does not depend on it).
      }
    }, every);
    this.timer.unref();
  }

  private stopHeartbeat() {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The lease of a run, or undefined. */
export function leaseOf(db: Db, runId: number): LeaseRow | undefined {
  return db.select().from(runLeases).where(eq(runLeases.runId, runId)).get();
}

/**
 * Who holds a run now, for its page: a training worker (`npm run worker`) or another process (the web server, `cli
 * train`) with its host and pid and last heartbeat, or the workers' queue (waiting for a worker); null when no
 * process holds it (it ended, is paused, or its owner died and nobody has taken it over yet: `alive` false).
 */
export type RunHolder = {
  kind: "worker" | "process" | "queue";
  host: string | null;
  pid: number | null;
  heartbeatAt: string;
  alive: boolean;
};

export function runHolder(db: Db, runId: number): RunHolder | null {
  const lease = leaseOf(db, runId);
  if (!lease) return null;
  if (isQueueEntry(lease))
    return { kind: "queue", host: null, pid: null, heartbeatAt: new Date(lease.heartbeatAt).toISOString(), alive: true };
  return {
    kind: isWorkerLease(lease) ? "worker" : "process",
    host: lease.host,
    pid: lease.pid,
    heartbeatAt: new Date(lease.heartbeatAt).toISOString(),
    alive: ownerAlive(lease),
  };
}

/**
 * The training workers (`npm run worker`) seen holding runs now, from their leases: one entry per live worker owner,
 * with the runs it holds. An idle worker holds no lease and so is not listed (it claims a queued run within its poll
 * interval, RUNLEDGER_WORKER_POLL_MS): a run left in the queue for seconds with no worker listed here means that no
 * worker runs on this data directory. Reads only.
 */
export function busyWorkers(db: Db, now = Date.now()): { owner: string; host: string; pid: number; runIds: number[] }[] {
  const byOwner = new Map<string, { owner: string; host: string; pid: number; runIds: number[] }>();
  for (const lease of db.select().from(runLeases).all()) {
    if (!isWorkerLease(lease) || !ownerAlive(lease, now)) continue;
    const entry = byOwner.get(lease.owner) ?? { owner: lease.owner, host: lease.host, pid: lease.pid, runIds: [] };
    entry.runIds.push(lease.runId);
    byOwner.set(lease.owner, entry);
  }
  return [...byOwner.values()];
}
