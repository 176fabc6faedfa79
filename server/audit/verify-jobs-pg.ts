/**
 * "Verify now" on the PostgreSQL store (issue 16): the job is a row of audit_verify_jobs (db/schema-pg/
 * audit-verify-jobs.ts), so every web server sharing the store sees the running job, its progress and its end, and a
 * second "Verify now" on any server returns the job already running instead of starting another.
 *
 * The server that started the job runs it: a worker thread (verify-jobs.ts runVerifyWorker) verifies the store as
 * `audit verify --database` does (verify-pg.ts: one REPEATABLE READ snapshot copied into a temporary SQLite file, the
 * copy proved equal to the snapshot, the protective triggers checked on PostgreSQL itself, then the one verifier), so
 * neither the copy nor the verification runs on the request thread. Meanwhile this thread writes the worker's
 * progress and a heartbeat to the row; at the end it records the outcome as an "audit.verify" event and marks the row
 * finished with that event's seq, in one transaction (the row and the event commit together).
 *
 * Invariants:
 * - At most one running row (the table's partial unique index): the start inserts with ON CONFLICT DO NOTHING and,
 *   when another start won, returns the row that won. No advisory lock is needed.
 * - A running row whose heartbeat (the database's clock, so servers' clocks do not matter) is older than
 *   STALE_AFTER_MS belongs to a server that stopped (killed, or lost its database): it is reported failed, and the
 *   next start marks it failed in the row before inserting its own. Nothing was recorded for it.
 * - A job whose worker could not run ends failed with the error and records nothing, as on SQLite.
 * - The trusted key is the caller's (the server's current public key), never one read from the store.
 * - Ended jobs do not pile up: each start, in its transaction, deletes the ended rows that are neither among the
 *   KEEP_ENDED_JOBS latest ended ones nor younger than KEEP_ENDED_JOBS_FOR_MS (by heartbeat_at, the database's clock
 *   at the row's last write, i.e. its end). The page reads only the latest row; the outcome of every job is its
 *   "audit.verify" event, which stays in the ledger.
 */
import os from "node:os";
import { and, desc, eq, lt, ne, notInArray, sql } from "drizzle-orm";
import type { PgDb } from "@/db/pg-client";
import type { Store } from "@/db/store";
import { auditEvents } from "@/db/schema-pg";
import { auditVerifyJobs } from "@/db/schema-pg/audit-verify-jobs";
import { canonicalJson } from "@/contracts/canonical";
import type { Actor } from "./ledger";
import { appendAuditEventPg } from "./ledger-pg";
import { runVerifyWorker, type VerifyJob, type VerifyJobOptions } from "./verify-jobs";
import { summarizeVerifyResult, type VerifySummary } from "./verify-summary";

/** How often the running server renews the row's heartbeat (progress is written as the worker reports it). */
export const HEARTBEAT_MS = 2_000;
/** A running row not renewed for this long belongs to a server that stopped. */
export const STALE_AFTER_MS = 30_000;
/** Ended jobs kept at each start: the latest this many, and any that ended less than KEEP_ENDED_JOBS_FOR_MS ago. */
export const KEEP_ENDED_JOBS = 20;
export const KEEP_ENDED_JOBS_FOR_MS = 7 * 24 * 3600_000;

const DB_CLOCK_MS = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`.mapWith(Number);

type JobRow = typeof auditVerifyJobs.$inferSelect;

/** Jobs this process runs, by id: resolves when the job has ended (tests and waitForPgVerifyJob). */
const g = globalThis as unknown as { __runledgerPgVerifyJobs?: Map<number, Promise<void>> };
const runningHere: Map<number, Promise<void>> = (g.__runledgerPgVerifyJobs ??= new Map());

function pgDb(store: Store): PgDb {
  if (store.dialect !== "pg") throw new Error("verify-jobs-pg: not a PostgreSQL store");
  return store.db;
}

/** The URL the store's pool was opened with: the worker opens its own connection for the snapshot. */
function urlOf(db: PgDb): string {
  const url = (db.$client.options as { connectionString?: string }).connectionString;
  if (!url) throw new Error("Verify now on PostgreSQL needs the store's URL (its pool was opened without a connection string)");
  return url;
}

function staleError(row: JobRow): string {
  return `the web server running this verification (${row.owner}) stopped reporting (no heartbeat for over ${STALE_AFTER_MS / 1000} s); nothing was recorded. Start it again.`;
}

/** The job as the page shows it; a running row whose server stopped is reported failed (see the header). */
function jobOf(row: JobRow, dbNowMs: number): VerifyJob {
  const stale = row.status === "running" && dbNowMs - row.heartbeatAt > STALE_AFTER_MS;
  return {
    id: row.id,
    status: stale ? "failed" : row.status,
    startedAt: row.startedAt,
    startedBy: row.startedBy,
    finishedAt: row.finishedAt,
    checked: row.checked,
    total: row.total,
    summary: row.summary === null ? null : (JSON.parse(row.summary) as VerifySummary),
    seq: row.seq,
    error: stale ? staleError(row) : row.error,
  };
}

/** The running job, or the last one that ended (null before the first), as any web server of the store sees it. */
export async function currentPgVerifyJob(store: Store): Promise<VerifyJob | null> {
  const [found] = await pgDb(store)
    .select({ row: auditVerifyJobs, now: DB_CLOCK_MS })
    .from(auditVerifyJobs)
    .orderBy(desc(auditVerifyJobs.id))
    .limit(1);
  return found ? jobOf(found.row, found.now) : null;
}

/** Resolves when the current job has ended (polling the row: the job may run on another server); for tests and tools. */
export async function waitForPgVerifyJob(store: Store, pollMs = 100): Promise<VerifyJob | null> {
  for (;;) {
    const job = await currentPgVerifyJob(store);
    if (!job || job.status !== "running") {
      if (job) await runningHere.get(job.id); // this process's bookkeeping after the row (nothing else awaits it)
      return job;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * Starts a job on this server, or returns the one running on any server. The row is inserted before the worker
 * starts, so a second start anywhere finds it at once.
 */
export async function startPgVerifyJob(
  store: Store,
  actor: Actor,
  options: VerifyJobOptions,
  trustedKey: string,
): Promise<{ job: VerifyJob; alreadyRunning: boolean }> {
  const db = pgDb(store);
  const url = urlOf(db);
  for (let attempt = 0; ; attempt++) {
    const started = await db.transaction(async (tx) => {
      // A running row whose server stopped no longer holds the one running place.
      await tx
        .update(auditVerifyJobs)
        .set({
          status: "failed",
          finishedAt: new Date().toISOString(),
          error: "the web server running it stopped reporting; nothing was recorded",
        })
        .where(and(eq(auditVerifyJobs.status, "running"), lt(auditVerifyJobs.heartbeatAt, sql`${DB_CLOCK_MS} - ${STALE_AFTER_MS}`)));
      const latestEnded = tx
        .select({ id: auditVerifyJobs.id })
        .from(auditVerifyJobs)
        .where(ne(auditVerifyJobs.status, "running"))
        .orderBy(desc(auditVerifyJobs.id))
        .limit(KEEP_ENDED_JOBS);
      await tx
        .delete(auditVerifyJobs)
        .where(
          and(
            ne(auditVerifyJobs.status, "running"),
            lt(auditVerifyJobs.heartbeatAt, sql`${DB_CLOCK_MS} - ${KEEP_ENDED_JOBS_FOR_MS}`),
            notInArray(auditVerifyJobs.id, latestEnded),
          ),
        );
      const [size] = await tx.select({ n: sql<number>`coalesce(max(${auditEvents.seq}), 0)`.mapWith(Number) }).from(auditEvents);
      const inserted = await tx
        .insert(auditVerifyJobs)
        .values({
          status: "running",
          startedAt: new Date().toISOString(),
          startedBy: actor.name,
          startedById: actor.id,
          owner: `${os.hostname()}:${process.pid}`,
          heartbeatAt: DB_CLOCK_MS,
          checked: 0,
          total: size?.n ?? 0,
        })
        .onConflictDoNothing({ target: auditVerifyJobs.status, where: sql`status = 'running'` })
        .returning();
      return inserted[0];
    });
    if (started) {
      runningHere.set(started.id, runJob(db, url, started, actor, options, trustedKey));
      return { job: jobOf(started, started.heartbeatAt), alreadyRunning: false };
    }
    // Another start won: its row is running (or already ended, when it was very quick: then try again).
    const current = await currentPgVerifyJob(store);
    if (current?.status === "running") return { job: current, alreadyRunning: true };
    if (attempt >= 5) throw new Error("Verify now: could not start a job (another start kept winning); try again");
  }
}

/** Runs the worker, keeps the row's progress and heartbeat, and records the outcome; never rejects. */
async function runJob(db: PgDb, url: string, row: JobRow, actor: Actor, options: VerifyJobOptions, trustedKey: string): Promise<void> {
  const progress = { checked: 0, total: row.total };
  // One write at a time: a progress message (at most every 200 ms from the worker) or a heartbeat tick while one is in
  // flight is folded into the next write. A failed write is retried at the next one (the job goes stale only after many).
  let writing: Promise<void> | null = null;
  let again = false;
  const write = async () => {
    do {
      again = false;
      await db
        .update(auditVerifyJobs)
        .set({ checked: progress.checked, total: progress.total, heartbeatAt: DB_CLOCK_MS })
        .where(and(eq(auditVerifyJobs.id, row.id), eq(auditVerifyJobs.status, "running")))
        .catch((err: Error) => console.error(`[runledger] Verify now job ${row.id}: progress not written: ${err.message}`));
    } while (again);
  };
  const beat = () => {
    if (writing) again = true;
    else writing = write().finally(() => (writing = null));
  };
  const timer = setInterval(beat, HEARTBEAT_MS);
  timer.unref();
  const stopBeating = async () => {
    clearInterval(timer);
    again = false;
    await writing;
  };
  try {
    const result = await runVerifyWorker({ databaseUrl: url, options }, (checked, total) => {
      Object.assign(progress, { checked, total });
      beat();
    });
    await stopBeating();
    const summary = summarizeVerifyResult(result, trustedKey);
    await db.transaction(async (tx) => {
      const event = await appendAuditEventPg(tx, {
        actor,
        action: "audit.verify",
        entityType: "auditLedger",
        entityId: "live",
        payload: summary,
      });
      // Even when another server meanwhile took the row for stale: the verification ran and its outcome is recorded.
      await tx
        .update(auditVerifyJobs)
        .set({
          status: "finished",
          finishedAt: new Date().toISOString(),
          summary: canonicalJson(summary),
          seq: event.seq,
          checked: result.eventsChecked,
          total: Math.max(progress.total, result.eventsChecked),
          error: null,
          heartbeatAt: DB_CLOCK_MS,
        })
        .where(eq(auditVerifyJobs.id, row.id));
    });
  } catch (err) {
    await stopBeating();
    const error = err instanceof Error ? err.message : String(err);
    await db
      .update(auditVerifyJobs)
      .set({ status: "failed", finishedAt: new Date().toISOString(), error, heartbeatAt: DB_CLOCK_MS })
      .where(eq(auditVerifyJobs.id, row.id))
      .catch((e: Error) =>
        console.error(`[runledger] Verify now job ${row.id} failed (${error}) and its row was not updated: ${e.message}`),
      );
  } finally {
    runningHere.delete(row.id);
  }
}
