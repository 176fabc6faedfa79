/**
 * PostgreSQL form of db/schema/api.ts: the same tables, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, text, primaryKey, index, uniqueIndex, bigint } from "drizzle-orm/pg-core";
import { users } from "./users";
import { experiments } from "./projects";
import { runs } from "./runs";

export const apiTokens = pgTable(
  "api_tokens",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    userId: bigint("user_id", { mode: "number" })
      .notNull()
      .references(() => users.id),
    name: text("name").notNull(),
    tokenSha256: text("token_sha256").notNull().unique(),
    prefix: text("prefix").notNull(),
    createdAt: text("created_at").notNull(),
    lastUsedAt: text("last_used_at"),
    revokedAt: text("revoked_at"),
  },
  (t) => [index("api_tokens_user").on(t.userId)],
);

export const experimentTags = pgTable(
  "experiment_tags",
  {
    experimentId: bigint("experiment_id", { mode: "number" })
      .notNull()
      .references(() => experiments.id),
    key: text("key").notNull(),
    value: text("value").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.experimentId, t.key] })],
);

export const runTagValues = pgTable(
  "run_tag_values",
  {
    runId: bigint("run_id", { mode: "number" })
      .notNull()
      .references(() => runs.id),
    key: text("key").notNull(),
    value: text("value").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.key] })],
);

export const runInputs = pgTable(
  "run_inputs",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    runId: bigint("run_id", { mode: "number" })
      .notNull()
      .references(() => runs.id),
    name: text("name").notNull(),
    digest: text("digest").notNull(),
    sourceType: text("source_type").notNull(),
    source: text("source").notNull(),
    schemaText: text("schema_text"),
    profile: text("profile"),
    context: text("context"),
    tagsJson: text("tags_json").notNull(),
    createdBy: bigint("created_by", { mode: "number" })
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("run_inputs_run_dataset").on(t.runId, t.name, t.digest)],
);

export const runArtifacts = pgTable(
  "run_artifacts",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    runId: bigint("run_id", { mode: "number" })
      .notNull()
      .references(() => runs.id),
    path: text("path").notNull(),
    sha256: text("sha256").notNull(),
    bytes: bigint("bytes", { mode: "number" }).notNull(),
    createdBy: bigint("created_by", { mode: "number" })
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("run_artifacts_run_path").on(t.runId, t.path)],
);
