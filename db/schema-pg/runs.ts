/**
 * PostgreSQL form of db/schema/runs.ts: the same tables, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, text, primaryKey, index, uniqueIndex, type AnyPgColumn, bigint, boolean, doublePrecision } from "drizzle-orm/pg-core";
import { RUN_STATUSES, DECISION_KINDS, EVALUATION_SOURCES } from "../schema/runs";
import { users } from "./users";
import { experiments } from "./projects";
import { datasetVersions, splits } from "./datasets";

export const runs = pgTable(
  "runs",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    experimentId: bigint("experiment_id", { mode: "number" })
      .notNull()
      .references(() => experiments.id),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    status: text("status", { enum: RUN_STATUSES }).notNull(),
    configJson: text("config_json").notNull(),
    configSha256: text("config_sha256").notNull(),
    seed: bigint("seed", { mode: "number" }).notNull(),
    origin: text("origin", { enum: ["new", "fork", "finetune", "rerun", "branch", "api", "sweep", "compress"] })
      .notNull()
      .default("new"),
    parentRunId: bigint("parent_run_id", { mode: "number" }).references((): AnyPgColumn => runs.id),
    parentCheckpointId: bigint("parent_checkpoint_id", { mode: "number" }),
    datasetVersionId: bigint("dataset_version_id", { mode: "number" }).references(() => datasetVersions.id),
    splitId: bigint("split_id", { mode: "number" }).references(() => splits.id),
    backend: text("backend"),
    backendReason: text("backend_reason"),
    environmentJson: text("environment_json"),
    paramCount: bigint("param_count", { mode: "number" }),
    memoryJson: text("memory_json"),
    progressJson: text("progress_json"),
    finalWeightsSha256: text("final_weights_sha256"),
    error: text("error"),
    createdBy: bigint("created_by", { mode: "number" })
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
    startedAt: text("started_at"),
    finishedAt: text("finished_at"),
    deletedAt: text("deleted_at"),
  },
  (t) => [index("runs_experiment").on(t.experimentId), index("runs_status").on(t.status)],
);

export const runParams = pgTable(
  "run_params",
  {
    runId: bigint("run_id", { mode: "number" })
      .notNull()
      .references(() => runs.id),
    key: text("key").notNull(),
    valueText: text("value_text"),
    valueNum: doublePrecision("value_num"),
  },
  (t) => [
    primaryKey({ columns: [t.runId, t.key] }),
    index("run_params_key_num").on(t.key, t.valueNum),
    index("run_params_key_text").on(t.key, t.valueText),
  ],
);

export const runTags = pgTable(
  "run_tags",
  {
    runId: bigint("run_id", { mode: "number" })
      .notNull()
      .references(() => runs.id),
    tag: text("tag").notNull(),
    createdBy: bigint("created_by", { mode: "number" })
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.tag] }), index("run_tags_tag").on(t.tag)],
);

export const decisions = pgTable(
  "decisions",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    runId: bigint("run_id", { mode: "number" })
      .notNull()
      .references(() => runs.id),
    kind: text("kind", { enum: DECISION_KINDS }).notNull(),
    path: text("path").notNull(),
    oldValueJson: text("old_value_json"),
    newValueJson: text("new_value_json"),
    rationale: text("rationale").notNull(),
    correctsDecisionId: bigint("corrects_decision_id", { mode: "number" }).references((): AnyPgColumn => decisions.id),
    authorId: bigint("author_id", { mode: "number" })
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("decisions_run").on(t.runId)],
);

export const metrics = pgTable(
  "metrics",
  {
    runId: bigint("run_id", { mode: "number" }).notNull(),
    key: text("key").notNull(),
    step: bigint("step", { mode: "number" }).notNull(),
    epoch: doublePrecision("epoch").notNull(),
    value: doublePrecision("value").notNull(),
    wallTimeMs: bigint("wall_time_ms", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.key, t.step] })],
);

export const metricSummaries = pgTable(
  "metric_summaries",
  {
    runId: bigint("run_id", { mode: "number" }).notNull(),
    key: text("key").notNull(),
    last: doublePrecision("last").notNull(),
    lastStep: bigint("last_step", { mode: "number" }).notNull(),
    min: doublePrecision("min").notNull(),
    max: doublePrecision("max").notNull(),
    count: bigint("count", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.key] }), index("metric_summaries_key_last").on(t.key, t.last)],
);

export const metricRollups = pgTable(
  "metric_rollups",
  {
    runId: bigint("run_id", { mode: "number" }).notNull(),
    key: text("key").notNull(),
    block: bigint("block", { mode: "number" }).notNull(),
    firstStep: bigint("first_step", { mode: "number" }).notNull(),
    lastStep: bigint("last_step", { mode: "number" }).notNull(),
    minStep: bigint("min_step", { mode: "number" }).notNull(),
    minValue: doublePrecision("min_value").notNull(),
    maxStep: bigint("max_step", { mode: "number" }).notNull(),
    maxValue: doublePrecision("max_value").notNull(),
    count: bigint("count", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.key, t.block] })],
);

export const checkpoints = pgTable(
  "checkpoints",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    runId: bigint("run_id", { mode: "number" })
      .notNull()
      .references(() => runs.id),
    epoch: bigint("epoch", { mode: "number" }).notNull(),
    step: bigint("step", { mode: "number" }).notNull(),
    sha256: text("sha256").notNull(),
    bytes: bigint("bytes", { mode: "number" }).notNull(),
    metricsJson: text("metrics_json").notNull(),
    isBest: boolean("is_best").notNull().default(false),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("checkpoints_run_epoch").on(t.runId, t.epoch), index("checkpoints_sha256").on(t.sha256)],
);

export const evaluations = pgTable("evaluations", {
  id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
  runId: bigint("run_id", { mode: "number" })
    .notNull()
    .references(() => runs.id),
  checkpointId: bigint("checkpoint_id", { mode: "number" })
    .notNull()
    .references(() => checkpoints.id),
  splitId: bigint("split_id", { mode: "number" }).references(() => splits.id),
  partition: text("partition").notNull(),
  dataSha256: text("data_sha256").notNull(),
  metricsJson: text("metrics_json").notNull(),
  confusionJson: text("confusion_json"),
  source: text("source", { enum: EVALUATION_SOURCES }).notNull().default("training"),
  createdBy: bigint("created_by", { mode: "number" })
    .notNull()
    .references(() => users.id),
  createdAt: text("created_at").notNull(),
});
