/**
 * PostgreSQL form of db/schema/pilot.ts: the same tables, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, text, index, bigint } from "drizzle-orm/pg-core";
import { INTERVENTION_KINDS, INTERVENTION_STATUSES } from "../schema/pilot";
import { users } from "./users";
import { runs, checkpoints, decisions } from "./runs";

export const runInterventions = pgTable(
  "run_interventions",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    runId: bigint("run_id", { mode: "number" })
      .notNull()
      .references(() => runs.id),
    kind: text("kind", { enum: INTERVENTION_KINDS }).notNull(),
    changesJson: text("changes_json").notNull(),
    fromCheckpointId: bigint("from_checkpoint_id", { mode: "number" }).references(() => checkpoints.id),
    rationale: text("rationale").notNull(),
    requestedBy: bigint("requested_by", { mode: "number" })
      .notNull()
      .references(() => users.id),
    requestedAt: text("requested_at").notNull(),
    status: text("status", { enum: INTERVENTION_STATUSES }).notNull().default("pending"),
    appliedAtEpoch: bigint("applied_at_epoch", { mode: "number" }),
    appliedAtStep: bigint("applied_at_step", { mode: "number" }),
    appliedAt: text("applied_at"),
    metricsSnapshotJson: text("metrics_snapshot_json"),
    checkpointId: bigint("checkpoint_id", { mode: "number" }).references(() => checkpoints.id),
    decisionId: bigint("decision_id", { mode: "number" }).references(() => decisions.id),
    closedBy: bigint("closed_by", { mode: "number" }).references(() => users.id),
    closedAt: text("closed_at"),
    closeReason: text("close_reason"),
  },
  (t) => [index("run_interventions_run").on(t.runId, t.status)],
);
