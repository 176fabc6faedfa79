/**
 * Which process trains (or holds queued) each run: an owner lease with a heartbeat. Several processes share one data
 * directory (the web server, `npm run cli -- train`, `cli resume`), so "not tracked by me" no longer means "orphaned".
 *
 * Invariants: at most one lease per run (primary key); a process takes it before it queues or trains a run and drops
 * it when the run settles; the owner refreshes heartbeat_at every few seconds from its main thread. A lease whose
 * owner is dead (its pid gone on the same host, or no heartbeat within the timeout from another host) may be taken
 * over. Leases are operational state, not recorded facts: they are outside the ledger and no content check hashes
 * them (server/runs/orchestrator/leases.ts owns the table).
 */
import { sqliteTable, text, integer } from "drizzle-orm/sqlite-core";
import { runs } from "./runs";

export const runLeases = sqliteTable("run_leases", {
  runId: integer("run_id")
    .primaryKey()
    .references(() => runs.id),
  /** hostname:pid:nonce of the owning process (the nonce tells a restarted process with a reused pid apart). */
  owner: text("owner").notNull(),
  host: text("host").notNull(),
  pid: integer("pid").notNull(),
  acquiredAt: text("acquired_at").notNull(),
  /** Milliseconds since the epoch of the owner's last heartbeat. */
  heartbeatAt: integer("heartbeat_at").notNull(),
});
