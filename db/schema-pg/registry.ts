/**
 * PostgreSQL form of db/schema/registry.ts: the same tables, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, text, uniqueIndex, index, bigint } from "drizzle-orm/pg-core";
import { PROMOTION_STATUSES, SIGNATURE_MEANINGS } from "../schema/registry";
import { users } from "./users";
import { runs, checkpoints, evaluations } from "./runs";

export const models = pgTable("models", {
  id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
  name: text("name").notNull().unique(),
  description: text("description").notNull().default(""),
  approvalsRequired: bigint("approvals_required", { mode: "number" }).notNull().default(1),
  createdBy: bigint("created_by", { mode: "number" })
    .notNull()
    .references(() => users.id),
  createdAt: text("created_at").notNull(),
});

export const modelVersions = pgTable(
  "model_versions",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    modelId: bigint("model_id", { mode: "number" })
      .notNull()
      .references(() => models.id),
    version: bigint("version", { mode: "number" }).notNull(),
    runId: bigint("run_id", { mode: "number" })
      .notNull()
      .references(() => runs.id),
    checkpointId: bigint("checkpoint_id", { mode: "number" })
      .notNull()
      .references(() => checkpoints.id),
    weightsSha256: text("weights_sha256").notNull(),
    createdBy: bigint("created_by", { mode: "number" })
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("model_versions_model_version").on(t.modelId, t.version)],
);

export const modelAliasEvents = pgTable(
  "model_alias_events",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    modelId: bigint("model_id", { mode: "number" })
      .notNull()
      .references(() => models.id),
    alias: text("alias").notNull(),
    modelVersionId: bigint("model_version_id", { mode: "number" }).references(() => modelVersions.id),
    promotionRequestId: bigint("promotion_request_id", { mode: "number" }),
    movedBy: bigint("moved_by", { mode: "number" })
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("model_alias_events_model_alias").on(t.modelId, t.alias, t.createdAt)],
);

export const promotionRequests = pgTable("promotion_requests", {
  id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
  modelVersionId: bigint("model_version_id", { mode: "number" })
    .notNull()
    .references(() => modelVersions.id),
  alias: text("alias").notNull(),
  evaluationId: bigint("evaluation_id", { mode: "number" })
    .notNull()
    .references(() => evaluations.id),
  rationale: text("rationale").notNull(),
  recordSha256: text("record_sha256").notNull(),
  approvalsRequired: bigint("approvals_required", { mode: "number" }).notNull().default(1),
  status: text("status", { enum: PROMOTION_STATUSES }).notNull(),
  requestedBy: bigint("requested_by", { mode: "number" })
    .notNull()
    .references(() => users.id),
  createdAt: text("created_at").notNull(),
  decidedAt: text("decided_at"),
});

export const signatures = pgTable("signatures", {
  id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
  userId: bigint("user_id", { mode: "number" })
    .notNull()
    .references(() => users.id),
  printedName: text("printed_name").notNull(),
  meaning: text("meaning", { enum: SIGNATURE_MEANINGS }).notNull(),
  recordType: text("record_type").notNull(),
  recordId: bigint("record_id", { mode: "number" }).notNull(),
  recordSha256: text("record_sha256").notNull(),
  comment: text("comment").notNull().default(""),
  createdAt: text("created_at").notNull(),
});
