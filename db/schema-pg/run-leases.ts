/**
 * PostgreSQL form of db/schema/run-leases.ts: the same tables, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, text, bigint } from "drizzle-orm/pg-core";
import { runs } from "./runs";

export const runLeases = pgTable("run_leases", {
  runId: bigint("run_id", { mode: "number" })
    .primaryKey()
    .references(() => runs.id),
  owner: text("owner").notNull(),
  host: text("host").notNull(),
  pid: bigint("pid", { mode: "number" }).notNull(),
  acquiredAt: text("acquired_at").notNull(),
  heartbeatAt: bigint("heartbeat_at", { mode: "number" }).notNull(),
});
