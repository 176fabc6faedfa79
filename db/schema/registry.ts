/**
 * The model registry. A model version points at one checkpoint; aliases (staging, production, any name)
 * move by appending events, so the alias history answers "what was in production at time T".
 * Production moves need a promotion request and signatures by people outside the model's lineage.
 */
import { sqliteTable, text, integer, uniqueIndex, index } from "drizzle-orm/sqlite-core";
import { users } from "./users";
import { runs, checkpoints, evaluations } from "./runs";

export const models = sqliteTable("models", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  description: text("description").notNull().default(""),
  approvalsRequired: integer("approvals_required").notNull().default(1),
  createdBy: integer("created_by")
    .notNull()
    .references(() => users.id),
  createdAt: text("created_at").notNull(),
});

export const modelVersions = sqliteTable(
  "model_versions",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    modelId: integer("model_id")
      .notNull()
      .references(() => models.id),
    version: integer("version").notNull(),
    runId: integer("run_id")
      .notNull()
      .references(() => runs.id),
    checkpointId: integer("checkpoint_id")
      .notNull()
      .references(() => checkpoints.id),
    weightsSha256: text("weights_sha256").notNull(),
    createdBy: integer("created_by")
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("model_versions_model_version").on(t.modelId, t.version)],
);

export const modelAliasEvents = sqliteTable(
  "model_alias_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    modelId: integer("model_id")
      .notNull()
      .references(() => models.id),
    alias: text("alias").notNull(),
    /** null: the alias was removed. */
    modelVersionId: integer("model_version_id").references(() => modelVersions.id),
    promotionRequestId: integer("promotion_request_id"),
    movedBy: integer("moved_by")
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("model_alias_events_model_alias").on(t.modelId, t.alias, t.createdAt)],
);

export const PROMOTION_STATUSES = ["pending", "approved", "rejected", "withdrawn"] as const;
export const promotionRequests = sqliteTable("promotion_requests", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  modelVersionId: integer("model_version_id")
    .notNull()
    .references(() => modelVersions.id),
  alias: text("alias").notNull(),
  evaluationId: integer("evaluation_id")
    .notNull()
    .references(() => evaluations.id),
  rationale: text("rationale").notNull(),
  /** sha256 of the canonical record under review (model version + evaluation); signatures bind to it. */
  recordSha256: text("record_sha256").notNull(),
  /**
   * models.approvals_required when the request was made (also in its promotion.request event): the rule it is judged
   * by, unless the model's rule has been raised since (server/registry/approval-rule.ts). Migration 0010 backfilled it
   * from that event.
   */
  approvalsRequired: integer("approvals_required").notNull().default(1),
  status: text("status", { enum: PROMOTION_STATUSES }).notNull(),
  requestedBy: integer("requested_by")
    .notNull()
    .references(() => users.id),
  createdAt: text("created_at").notNull(),
  decidedAt: text("decided_at"),
});

export const SIGNATURE_MEANINGS = ["authorship", "review", "approval", "rejection"] as const;
export const signatures = sqliteTable("signatures", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  userId: integer("user_id")
    .notNull()
    .references(() => users.id),
  printedName: text("printed_name").notNull(),
  meaning: text("meaning", { enum: SIGNATURE_MEANINGS }).notNull(),
  /** What was signed: e.g. "promotion_request", "model_card". */
  recordType: text("record_type").notNull(),
  recordId: integer("record_id").notNull(),
  recordSha256: text("record_sha256").notNull(),
  comment: text("comment").notNull().default(""),
  createdAt: text("created_at").notNull(),
});
