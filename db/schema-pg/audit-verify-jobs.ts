/**
 * PostgreSQL only (issue 16): the audit page's "Verify now" jobs (server/audit/verify-jobs-pg.ts), so that every web
 * server sharing the store sees the running job and its progress, and one job runs at a time across all of them. On
 * SQLite the web server is one process and keeps its jobs in memory (server/audit/verify-jobs.ts), so this table has
 * no SQLite twin and is NOT exported by ./index.ts (db/tests/schema-dialects.test.ts compares the tables of both
 * dialects one to one); drizzle.pg.config.ts lists it beside ./index.ts so its migration is generated.
 *
 * Operational state, not part of the record: the outcome of a job is its "audit.verify" ledger event (`seq`), which is
 * what a store copy or a backup keeps; these rows are neither copied nor verified.
 *
 * Invariants:
 * - At most one row is "running" (the partial unique index): a second start finds it instead of starting another.
 * - A running row's `heartbeat_at` (the database's clock, epoch ms) is renewed by the server running the job while it
 *   runs; a running row whose heartbeat is older than the stale limit is a job whose server stopped, reported failed.
 */
import { sql } from "drizzle-orm";
import { bigint, pgTable, text, uniqueIndex } from "drizzle-orm/pg-core";

export const auditVerifyJobs = pgTable(
  "audit_verify_jobs",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    status: text("status", { enum: ["running", "finished", "failed"] }).notNull(),
    startedAt: text("started_at").notNull(),
    startedBy: text("started_by").notNull(),
    startedById: bigint("started_by_id", { mode: "number" }),
    /** The web server running the job: "host:pid". */
    owner: text("owner").notNull(),
    heartbeatAt: bigint("heartbeat_at", { mode: "number" }).notNull(),
    finishedAt: text("finished_at"),
    checked: bigint("checked", { mode: "number" }).notNull(),
    total: bigint("total", { mode: "number" }).notNull(),
    /** The recorded summary (verify-summary.ts) as JSON, once finished. */
    summary: text("summary"),
    /** Seq of the "audit.verify" event that recorded the outcome. */
    seq: bigint("seq", { mode: "number" }),
    error: text("error"),
  },
  (t) => [
    uniqueIndex("audit_verify_jobs_one_running")
      .on(t.status)
      .where(sql`status = 'running'`),
  ],
);
