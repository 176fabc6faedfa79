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
 * - On PostgreSQL (issue 16: workers on several machines share one store) no pid is ever consulted: an owner
 *   registered in this process is alive until it is abandoned, any other owner is alive while its heartbeat is younger
 *   than the timeout, and heartbeats are written and judged on the database's clock (clock_timestamp()), so hosts whose
 *   clocks disagree still agree on a lease's age.
 * - Taking a lease is a compare-and-set on both stores: the UPDATE names the holder and heartbeat it read, and the
 *   INSERT of a run without a lease does nothing on a conflict; the statement returns the row only when it changed it.
 *   On PostgreSQL (READ COMMITTED) an UPDATE waits for the row lock of a concurrent taker and re-checks its WHERE
 *   against the committed row, so two takers racing for one run never both win (SQLite's IMMEDIATE gives the same).
 * - The training workers' queue (run-queue.ts) lives in the same rows. A run queued for the workers holds a lease whose
 *   owner is `queue:<ledger seq at enqueue>` (host "", pid 0, heartbeat_at = enqueue time): it counts as alive, so no
 *   in-process orchestrator takes it (acquire refuses it); a worker takes it with the queue's claim. A worker's own
 *   owner id starts with `worker:`; when that worker dies, its runs stay the workers' (another worker takes them over).
 */
import os from "node:os";
import { randomBytes } from "node:crypto";
import { and, eq, inArray, sql } from "drizzle-orm";
import type { runLeases } from "@/db/schema";
import type { Db, Tx } from "@/db/client";
import { asStore, exec, native, reader, row, rows, transact, type Dialect, type Store, type TxBody } from "@/db/store";

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

/**
 * The owner registries of this process, kept on globalThis: Next.js bundles this module into more than one chunk (the
 * start-up hook that creates the orchestrator, the tRPC route that answers runs.holder), each with its own module
 * scope, and a registry per copy made the route call the web server's own live runs "gone".
 */
const registries = globalThis as unknown as { [k: symbol]: Set<string> | undefined };
const sharedSet = (name: string) => (registries[Symbol.for(name)] ??= new Set<string>());
/** Owners registered by this process (an orchestrator's owner id), so a same-pid lease can be told alive or dead. */
const liveOwnersHere = sharedSet("runledger.leases.liveOwnersHere");
/** Owners this process abandoned (tests of recovery in one process): dead at once, on either store. */
const abandonedOwnersHere = sharedSet("runledger.leases.abandonedOwnersHere");

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

/**
 * Whether the process holding this lease is alive (see the header for the rules). `now`: milliseconds on the clock
 * the heartbeats were written with (this host's on SQLite, the database's on PostgreSQL: dbClockMs).
 */
export function ownerAlive(
  lease: Pick<LeaseRow, "owner" | "host" | "pid" | "heartbeatAt">,
  now = Date.now(),
  dialect: Dialect = "sqlite",
): boolean {
  // A queued run waits for a worker's claim: held by the queue, never orphaned.
  if (isQueueEntry(lease)) return true;
  if (dialect === "pg") {
    if (abandonedOwnersHere.has(lease.owner)) return false;
    if (liveOwnersHere.has(lease.owner)) return true;
    return now - lease.heartbeatAt < leaseTimeoutMs();
  }
  if (lease.host !== os.hostname()) return now - lease.heartbeatAt < leaseTimeoutMs();
  if (lease.pid === process.pid) return liveOwnersHere.has(lease.owner);
  return pidAlive(lease.pid);
}

const PG_CLOCK_MS = sql`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/** The lease clock in a transaction body: this host's on SQLite, the database's on PostgreSQL (see the header). */
export function* dbClockMs(): TxBody<number> {
  return yield* native({
    sqlite: () => Date.now(),
    pg: async (tx) => Number((await tx.execute<{ ms: string }>(sql`SELECT ${PG_CLOCK_MS} AS ms`)).rows[0]!.ms),
  });
}

/** The lease clock outside a transaction. */
export async function leaseClockMs(store: Store | Db): Promise<number> {
  const s = asStore(store);
  if (s.dialect === "sqlite") return Date.now();
  return Number((await s.db.execute<{ ms: string }>(sql`SELECT ${PG_CLOCK_MS} AS ms`)).rows[0]!.ms);
}

/** Who writes a lease: an owner id with its host and pid (a LeaseHolder). */
export type LeaseOwner = { readonly owner: string; readonly host: string; readonly pid: number };

/**
 * Replaces the lease `seen` (read in this transaction) by `next`, or inserts `next` when `seen` is undefined (no
 * lease): true when this statement changed the row (see the header: a compare-and-set on holder and heartbeat).
 */
export function* replaceLeaseTx(tx: Tx, { tables }: Store, seen: LeaseRow | undefined, next: LeaseRow): TxBody<boolean> {
  const { runLeases } = tables;
  if (!seen) {
    const inserted = yield* rows(tx.insert(runLeases).values(next).onConflictDoNothing().returning({ runId: runLeases.runId }));
    return inserted.length === 1;
  }
  const updated = yield* rows(
    tx
      .update(runLeases)
      .set(next)
      .where(and(eq(runLeases.runId, seen.runId), eq(runLeases.owner, seen.owner), eq(runLeases.heartbeatAt, seen.heartbeatAt)))
      .returning({ runId: runLeases.runId }),
  );
  return updated.length === 1;
}

/** Takes the run's lease for `who` unless a live other owner holds it (the take, and the takeover of a dead owner). */
export function* takeLeaseTx(tx: Tx, store: Store, who: LeaseOwner, runId: number): TxBody<boolean> {
  const { runLeases } = store.tables;
  const now = yield* dbClockMs();
  const current = yield* row(tx.select().from(runLeases).where(eq(runLeases.runId, runId)));
  if (current && current.owner !== who.owner && ownerAlive(current, now, store.dialect)) return false;
  const next = { runId, owner: who.owner, host: who.host, pid: who.pid, acquiredAt: new Date(now).toISOString(), heartbeatAt: now };
  return yield* replaceLeaseTx(tx, store, current, next);
}

function* releaseLeaseTx(tx: Tx, { tables }: Store, who: LeaseOwner, runId: number): TxBody<void> {
  const { runLeases } = tables;
  yield* exec(tx.delete(runLeases).where(and(eq(runLeases.runId, runId), eq(runLeases.owner, who.owner))));
}

/**
 * The leases one owner (one orchestrator) holds, with its heartbeat, on either store.
 */
export class LeaseHolder implements LeaseOwner {
  readonly owner: string;
  readonly host = os.hostname();
  readonly pid = process.pid;
  private held = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private beating = false;
  private readonly store: Store;
  /** Called after each heartbeat while leases are held (the orchestrator looks for cancels asked elsewhere). */
  onBeat: (() => void) | undefined;

  constructor(
    db: Store | Db,
    /** "worker": a training worker process (owner id `worker:host:pid:nonce`), whose runs stay the workers' when it dies. */
    kind: "process" | "worker" = "process",
  ) {
    this.store = asStore(db);
    this.owner = `${kind === "worker" ? WORKER_OWNER_PREFIX : ""}${this.host}:${this.pid}:${randomBytes(6).toString("hex")}`;
    liveOwnersHere.add(this.owner);
  }

  /** Takes the run's lease unless a live other owner holds it. */
  async acquireOn(runId: number): Promise<boolean> {
    const got = await transact(this.store, (tx) => takeLeaseTx(tx, this.store, this, runId));
    if (got) this.adopt(runId);
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

  async releaseOn(runId: number): Promise<void> {
    await transact(this.store, (tx) => releaseLeaseTx(tx, this.store, this, runId));
    this.forget(runId);
  }

  /** Forget this owner as if its process had died (tests of recovery inside one process); its rows stay. */
  abandon(): void {
    this.stopHeartbeat();
    this.held.clear();
    liveOwnersHere.delete(this.owner);
    abandonedOwnersHere.add(this.owner);
  }

  /** One heartbeat: this owner's held leases get the lease clock's now (the database's on PostgreSQL). */
  async beatOn(): Promise<void> {
    if (this.held.size === 0) return;
    const { runLeases } = this.store.tables;
    const heartbeatAt = this.store.dialect === "pg" ? PG_CLOCK_MS : Date.now();
    await reader(this.store)
      .update(runLeases)
      .set({ heartbeatAt })
      .where(and(eq(runLeases.owner, this.owner), inArray(runLeases.runId, [...this.held])));
  }

  private startHeartbeat() {
    if (this.timer) return;
    const every = Number(process.env.RUNLEDGER_LEASE_HEARTBEAT_MS ?? 2000);
    this.timer = setInterval(() => {
      if (this.store.dialect === "sqlite") {
        try {
          const { runLeases } = this.store.tables;
          if (this.held.size > 0)
            this.store.db
              .update(runLeases)
              .set({ heartbeatAt: Date.now() })
              .where(and(eq(runLeases.owner, this.owner), inArray(runLeases.runId, [...this.held])))
              .run();
          this.onBeat?.();
        } catch {
          // A busy or closed database: the next beat tries again (same-host liveness does not depend on it).
        }
        return;
      }
      // PostgreSQL: one beat at a time; a failed beat is retried by the next (the timeout spans several beats).
      if (this.beating) return;
      this.beating = true;
      this.beatOn()
        .then(() => this.onBeat?.())
        .catch(() => undefined)
        .finally(() => (this.beating = false));
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
  const { runLeases } = asStore(db).tables;
  return db.select().from(runLeases).where(eq(runLeases.runId, runId)).get();
}

export async function leaseOfOn(store: Store | Db, runId: number): Promise<LeaseRow | undefined> {
  const s = asStore(store);
  const { runLeases } = s.tables;
  return (await reader(s).select().from(runLeases).where(eq(runLeases.runId, runId)))[0];
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

function holderOf(lease: LeaseRow | undefined, now: number, dialect: Dialect): RunHolder | null {
  if (!lease) return null;
  if (isQueueEntry(lease))
    return { kind: "queue", host: null, pid: null, heartbeatAt: new Date(lease.heartbeatAt).toISOString(), alive: true };
  return {
    kind: isWorkerLease(lease) ? "worker" : "process",
    host: lease.host,
    pid: lease.pid,
    heartbeatAt: new Date(lease.heartbeatAt).toISOString(),
    alive: ownerAlive(lease, now, dialect),
  };
}

export function runHolder(db: Db, runId: number): RunHolder | null {
  return holderOf(leaseOf(db, runId), Date.now(), "sqlite");
}

export async function runHolderOn(store: Store | Db, runId: number): Promise<RunHolder | null> {
  const s = asStore(store);
  const [lease, now] = [await leaseOfOn(s, runId), await leaseClockMs(s)];
  return holderOf(lease, now, s.dialect);
}

type BusyWorker = { owner: string; host: string; pid: number; runIds: number[] };

function busyOf(leases: LeaseRow[], now: number, dialect: Dialect): BusyWorker[] {
  const byOwner = new Map<string, BusyWorker>();
  for (const lease of leases) {
    if (!isWorkerLease(lease) || !ownerAlive(lease, now, dialect)) continue;
    const entry = byOwner.get(lease.owner) ?? { owner: lease.owner, host: lease.host, pid: lease.pid, runIds: [] };
    entry.runIds.push(lease.runId);
    byOwner.set(lease.owner, entry);
  }
  return [...byOwner.values()];
}

/**
 * The training workers (`npm run worker`) seen holding runs now, from their leases: one entry per live worker owner,
 * with the runs it holds. An idle worker holds no lease and so is not listed (it claims a queued run within its poll
 * interval, RUNLEDGER_WORKER_POLL_MS): a run left in the queue for seconds with no worker listed here means that no
 * worker runs on this data directory. Reads only.
 */
export function busyWorkers(db: Db, now = Date.now()): BusyWorker[] {
  return busyOf(db.select().from(asStore(db).tables.runLeases).all(), now, "sqlite");
}

export async function busyWorkersOn(store: Store | Db): Promise<BusyWorker[]> {
  const s = asStore(store);
  const now = await leaseClockMs(s);
  return busyOf(await reader(s).select().from(s.tables.runLeases), now, s.dialect);
}
