/**
 * Runs and everything they produce. A run's config never changes after creation; metrics,
 * checkpoints and evaluations are appended; decisions are immutable (a correction is a new row).
 */
import { sqliteTable, text, integer, real, primaryKey, index, uniqueIndex, type AnySQLiteColumn } from "drizzle-orm/sqlite-core";
import { users } from "./users";
import { experiments } from "./projects";
import { datasetVersions, splits } from "./datasets";

/**
 * "paused": stopped at an epoch boundary by a pilot's intervention (run_interventions), to be resumed.
 * "interrupted": the process training it died (kill -9, power loss; its run_leases owner is gone); a later start
 * resumes it from its last checkpoint (event run.interrupted, then a new run.start).
 */
export const RUN_STATUSES = ["queued", "running", "paused", "interrupted", "completed", "failed", "cancelled"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const runs = sqliteTable(
  "runs",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    experimentId: integer("experiment_id")
      .notNull()
      .references(() => experiments.id),
    /** Editable after launch (server/runs/annotate.ts, event run.annotate); the config never changes. */
    name: text("name").notNull(),
    /** Free text an engineer adds after launch (run.annotate); "" until then. */
    description: text("description").notNull().default(""),
    status: text("status", { enum: RUN_STATUSES }).notNull(),
    /** Canonical JSON of the parsed config (defaults filled in). Immutable. */
    configJson: text("config_json").notNull(),
    configSha256: text("config_sha256").notNull(),
    seed: integer("seed").notNull(),
    /**
     * How this run came to be: a first run, a fork of a run, a fine-tune from a checkpoint, a re-run, or a branch (a
     * pilot's rollback: another run's checkpoint continued with changed settings), or "api": logged by a script through
     * the tracking API (server/mlflow/; its config is API_RUN_CONFIG, its params are decisions of kind "param"), or "sweep":
     * a trial a sweep generated (server/sweeps/; linked by sweep_trials, its run.create names the sweep), or "compress":
     * a smaller model derived from its parent checkpoint (server/runs/compression.ts; the method and its parameters are
     * the config's `compression` section: quantization, pruning, or distillation with that checkpoint as teacher).
     * Text in SQLite: no migration.
     */
    origin: text("origin", { enum: ["new", "fork", "finetune", "rerun", "branch", "api", "sweep", "compress"] })
      .notNull()
      .default("new"),
    parentRunId: integer("parent_run_id").references((): AnySQLiteColumn => runs.id),
    parentCheckpointId: integer("parent_checkpoint_id"),
    datasetVersionId: integer("dataset_version_id").references(() => datasetVersions.id),
    splitId: integer("split_id").references(() => splits.id),
    backend: text("backend"),
    /** Why this backend (e.g. "wasm lacks Conv2DBackpropFilter: fell back to cpu"). */
    backendReason: text("backend_reason"),
    /** JSON: { tfjs, node, app commit, backend versions }. */
    environmentJson: text("environment_json"),
    paramCount: integer("param_count"),
    /** JSON: memory estimate for training vs inference. */
    memoryJson: text("memory_json"),
    /** JSON: { epoch, epochs, batch, batches, samplesPerSecond }. */
    progressJson: text("progress_json"),
    finalWeightsSha256: text("final_weights_sha256"),
    error: text("error"),
    createdBy: integer("created_by")
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
    startedAt: text("started_at"),
    finishedAt: text("finished_at"),
    /** MLflow lifecycle: set by run.delete, cleared by run.restore (the run and its records stay). */
    deletedAt: text("deleted_at"),
  },
  (t) => [index("runs_experiment").on(t.experimentId), index("runs_status").on(t.status)],
);

/** Flattened config values, written once at creation, for filtering and sorting runs by hyperparameter. */
export const runParams = sqliteTable(
  "run_params",
  {
    runId: integer("run_id")
      .notNull()
      .references(() => runs.id),
    key: text("key").notNull(),
    valueText: text("value_text"),
    valueNum: real("value_num"),
  },
  (t) => [
    primaryKey({ columns: [t.runId, t.key] }),
    index("run_params_key_num").on(t.key, t.valueNum),
    index("run_params_key_text").on(t.key, t.valueText),
  ],
);

/** Free labels on runs for search ("baseline", "candidate"). Adding or removing one is an audited mutation. */
export const runTags = sqliteTable(
  "run_tags",
  {
    runId: integer("run_id")
      .notNull()
      .references(() => runs.id),
    tag: text("tag").notNull(),
    createdBy: integer("created_by")
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.tag] }), index("run_tags_tag").on(t.tag)],
);

/**
 * "intervention": a change made while the run trained, written when its run_interventions row was applied.
 * "planned": an entry of the config's `schedule` (a change planned at a given epoch, or a replayed intervention of
 * the run this one re-runs), written with the run at its creation. "param": a parameter a script logged through the
 * tracking API (path = the param key, new value = its JSON string; written once, named by its run.log event).
 * No migration: SQLite stores the kind as text.
 */
export const DECISION_KINDS = ["initial", "change", "note", "correction", "intervention", "planned", "param"] as const;
export const decisions = sqliteTable(
  "decisions",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    runId: integer("run_id")
      .notNull()
      .references(() => runs.id),
    kind: text("kind", { enum: DECISION_KINDS }).notNull(),
    /** Config path, e.g. "training.learningRate"; "" for a whole-config initial decision or a note. */
    path: text("path").notNull(),
    oldValueJson: text("old_value_json"),
    newValueJson: text("new_value_json"),
    rationale: text("rationale").notNull(),
    /** A correction points at the decision it corrects; the old row is never edited. */
    correctsDecisionId: integer("corrects_decision_id").references((): AnySQLiteColumn => decisions.id),
    authorId: integer("author_id")
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("decisions_run").on(t.runId)],
);

/**
 * Metric points keyed by (run, key, step), as in MLflow. Written in bulk with raw prepared statements. The table is
 * WITHOUT ROWID (migration 0016, custom SQL: drizzle cannot declare it), clustered on this key, so one series reads
 * in step order as one range of the B-tree.
 */
export const metrics = sqliteTable(
  "metrics",
  {
    runId: integer("run_id").notNull(),
    key: text("key").notNull(),
    step: integer("step").notNull(),
    epoch: real("epoch").notNull(),
    value: real("value").notNull(),
    wallTimeMs: integer("wall_time_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.key, t.step] })],
);

/** Latest, min and max per (run, key): sorting and filtering runs by metric never scans points. */
export const metricSummaries = sqliteTable(
  "metric_summaries",
  {
    runId: integer("run_id").notNull(),
    key: text("key").notNull(),
    last: real("last").notNull(),
    lastStep: integer("last_step").notNull(),
    min: real("min").notNull(),
    max: real("max").notNull(),
    count: integer("count").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.key] }), index("metric_summaries_key_last").on(t.key, t.last)],
);

/**
 * Min/max per block of 1,024 steps of one series (block = floor(step / 1024)), with the steps where they
 * occur, written with the points in the same transaction. Charts of long series read ~1k rollup rows
 * instead of 1M points; the extremes stay real points. Points are append-only, so a block only grows.
 */
export const METRIC_ROLLUP_BLOCK = 1024;
export const metricRollups = sqliteTable(
  "metric_rollups",
  {
    runId: integer("run_id").notNull(),
    key: text("key").notNull(),
    block: integer("block").notNull(),
    firstStep: integer("first_step").notNull(),
    lastStep: integer("last_step").notNull(),
    minStep: integer("min_step").notNull(),
    minValue: real("min_value").notNull(),
    maxStep: integer("max_step").notNull(),
    maxValue: real("max_value").notNull(),
    count: integer("count").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.key, t.block] })],
);

export const checkpoints = sqliteTable(
  "checkpoints",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    runId: integer("run_id")
      .notNull()
      .references(() => runs.id),
    epoch: integer("epoch").notNull(),
    step: integer("step").notNull(),
    /** sha256 of the weights file in the artifact store. */
    sha256: text("sha256").notNull(),
    bytes: integer("bytes").notNull(),
    metricsJson: text("metrics_json").notNull(),
    isBest: integer("is_best", { mode: "boolean" }).notNull().default(false),
    createdAt: text("created_at").notNull(),
  },
  // By sha256: each weights file is found (and re-hashed by the content check) once, however many checkpoints share it.
  (t) => [uniqueIndex("checkpoints_run_epoch").on(t.runId, t.epoch), index("checkpoints_sha256").on(t.sha256)],
);

export const EVALUATION_SOURCES = ["training", "requested"] as const;

export const evaluations = sqliteTable("evaluations", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  runId: integer("run_id")
    .notNull()
    .references(() => runs.id),
  checkpointId: integer("checkpoint_id")
    .notNull()
    .references(() => checkpoints.id),
  splitId: integer("split_id").references(() => splits.id),
  partition: text("partition").notNull(),
  /** sha256 of exactly the data the numbers were computed on: the partition's float32 feature bytes then target bytes. */
  dataSha256: text("data_sha256").notNull(),
  /** JSON: accuracy, per-class precision/recall/F1, macro averages; or MSE/MAE/R². */
  metricsJson: text("metrics_json").notNull(),
  /** JSON: { labels: string[], matrix: number[][] } (rows = true class). */
  confusionJson: text("confusion_json"),
  /** "training": the trainer's own, at the end of a run (createdBy is the run's author); "requested": asked for later by createdBy. */
  source: text("source", { enum: EVALUATION_SOURCES }).notNull().default("training"),
  createdBy: integer("created_by")
    .notNull()
    .references(() => users.id),
  createdAt: text("created_at").notNull(),
});
