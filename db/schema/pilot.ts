/**
 * Live piloting of a run: interventions (pause, resume, stop, set, rollback) asked for while a run trains, each
 * queued as a row and applied at the next epoch boundary by the process that trains the run.
 *
 * Invariants: a row is never deleted and never edited except for its single transition out of "pending" (to
 * applied, cancelled or rejected), which fills the outcome columns and leaves the request columns as they were
 * (the trigger of migration run_interventions enforces both). changes_json is canonical JSON (RFC 8785) of
 * [{path, oldValue, newValue}], sorted by path; the old values are those of the run's effective config when the
 * request was recorded. An applied row names the decision it created and the checkpoint written at that boundary.
 */
import { sqliteTable, text, integer, index } from "drizzle-orm/sqlite-core";
import { users } from "./users";
import { runs, checkpoints, decisions } from "./runs";

export const INTERVENTION_KINDS = ["pause", "resume", "stop", "set", "rollback"] as const;
export type InterventionKind = (typeof INTERVENTION_KINDS)[number];
export const INTERVENTION_STATUSES = ["pending", "applied", "cancelled", "rejected"] as const;
export type InterventionStatus = (typeof INTERVENTION_STATUSES)[number];

export const runInterventions = sqliteTable(
  "run_interventions",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    runId: integer("run_id")
      .notNull()
      .references(() => runs.id),
    kind: text("kind", { enum: INTERVENTION_KINDS }).notNull(),
    /** Canonical JSON of [{path, oldValue, newValue}] sorted by path ("[]" for pause, resume, stop). */
    changesJson: text("changes_json").notNull(),
    /** Rollback only: the checkpoint of the same run to continue from. */
    fromCheckpointId: integer("from_checkpoint_id").references(() => checkpoints.id),
    rationale: text("rationale").notNull(),
    requestedBy: integer("requested_by")
      .notNull()
      .references(() => users.id),
    requestedAt: text("requested_at").notNull(),
    status: text("status", { enum: INTERVENTION_STATUSES }).notNull().default("pending"),
    // Outcome of an applied intervention: where it took effect.
    appliedAtEpoch: integer("applied_at_epoch"),
    appliedAtStep: integer("applied_at_step"),
    appliedAt: text("applied_at"),
    /** Canonical JSON: {last: {metric: value}, watched: {metric, trend: [{epoch, value}]}}. */
    metricsSnapshotJson: text("metrics_snapshot_json"),
    /** The training checkpoint written at the boundary where it took effect. */
    checkpointId: integer("checkpoint_id").references(() => checkpoints.id),
    /** The decision recorded when it took effect. */
    decisionId: integer("decision_id").references(() => decisions.id),
    // Outcome of a cancelled (by closedBy) or rejected (by the server: closedBy null) intervention.
    closedBy: integer("closed_by").references(() => users.id),
    closedAt: text("closed_at"),
    closeReason: text("close_reason"),
  },
  (t) => [index("run_interventions_run").on(t.runId, t.status)],
);
