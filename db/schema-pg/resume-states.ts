/**
 * PostgreSQL form of db/schema/resume-states.ts: the same table, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, text, bigint, primaryKey } from "drizzle-orm/pg-core";
import { runs } from "./runs";

export const resumeStates = pgTable(
  "resume_states",
  {
    runId: bigint("run_id", { mode: "number" })
      .notNull()
      .references(() => runs.id),
    epoch: bigint("epoch", { mode: "number" }).notNull(),
    stateSha256: text("state_sha256").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.epoch] })],
);
