/**
 * The tracking API (MLflow REST 2.0, server/mlflow/): personal access tokens and the key/value metadata MLflow keeps
 * on experiments and runs. A token is stored only as the sha256 of its text (a high-entropy random string, so a
 * plain hash is enough; a leaked database does not leak live tokens); it acts as its user, with the user's role.
 * Creating and revoking a token are ledger events (token.create, token.revoke); last_used_at is operational state
 * (updated at most once a minute), outside the ledger, like a session's last_seen_at.
 */
import { sqliteTable, text, integer, primaryKey, index, uniqueIndex } from "drizzle-orm/sqlite-core";
import { users } from "./users";
import { experiments } from "./projects";
import { runs } from "./runs";

export const apiTokens = sqliteTable(
  "api_tokens",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    userId: integer("user_id")
      .notNull()
      .references(() => users.id),
    name: text("name").notNull(),
    /** sha256 (hex) of the token text; the text itself is shown once and never stored. */
    tokenSha256: text("token_sha256").notNull().unique(),
    /** The token's first characters ("rlt_ab12"), so people can tell their tokens apart; not enough to use it. */
    prefix: text("prefix").notNull(),
    createdAt: text("created_at").notNull(),
    lastUsedAt: text("last_used_at"),
    revokedAt: text("revoked_at"),
  },
  (t) => [index("api_tokens_user").on(t.userId)],
);

/** MLflow experiment tags (key → value). Each set is a ledger event (experiment.setTag, value by sha256). */
export const experimentTags = sqliteTable(
  "experiment_tags",
  {
    experimentId: integer("experiment_id")
      .notNull()
      .references(() => experiments.id),
    key: text("key").notNull(),
    value: text("value").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.experimentId, t.key] })],
);

/**
 * MLflow run tags (key → value; Runledger's own run_tags are value-less labels). Each set or delete is a ledger event
 * (run.log with the tag's sha256, run.deleteTag).
 */
export const runTagValues = sqliteTable(
  "run_tag_values",
  {
    runId: integer("run_id")
      .notNull()
      .references(() => runs.id),
    key: text("key").notNull(),
    value: text("value").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.key] })],
);

/**
 * Datasets a script declared as inputs of its run (MLflow log-inputs): a reference (name, digest, source), not the
 * bytes. Unique per (run, name, digest): logging the same dataset again changes nothing (as in MLflow). Each row is
 * named by its run.logInputs event (id and sha256 of the row's record, server/mlflow/inputs.ts).
 */
export const runInputs = sqliteTable(
  "run_inputs",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    runId: integer("run_id")
      .notNull()
      .references(() => runs.id),
    name: text("name").notNull(),
    digest: text("digest").notNull(),
    sourceType: text("source_type").notNull(),
    source: text("source").notNull(),
    schemaText: text("schema_text"),
    profile: text("profile"),
    /** The mlflow.data.context input tag ("training", "validation", "test", …), when given. */
    context: text("context"),
    /** Canonical JSON of the input's tags [{key, value}]. */
    tagsJson: text("tags_json").notNull(),
    createdBy: integer("created_by")
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("run_inputs_run_dataset").on(t.runId, t.name, t.digest)],
);

/**
 * Files a script logged as artifacts of its run (MLflow artifact upload through the artifact proxy): a path under the
 * run's artifact root and the sha256 of the bytes in the content-addressed store (server/artifacts/store.ts). One file
 * per (run, path): the same bytes again are a no-op, other bytes are refused (Runledger keeps what was logged). Each
 * row is named by the run.log event of its upload (path, sha256, bytes).
 */
export const runArtifacts = sqliteTable(
  "run_artifacts",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    runId: integer("run_id")
      .notNull()
      .references(() => runs.id),
    /** Relative to the run's artifact root, "/"-separated, no "." or ".." segments. */
    path: text("path").notNull(),
    sha256: text("sha256").notNull(),
    bytes: integer("bytes").notNull(),
    createdBy: integer("created_by")
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("run_artifacts_run_path").on(t.runId, t.path)],
);
