/**
 * The rows the content check compares with the ledger, as plain records keyed by id. Loaded from the live
 * database (one raw `.iterate()` pass per table) or taken from a bundle's facts.json (same record shapes: the
 * facts.json format IS these types, documented in facts-file.ts).
 *
 * Invariants: read only; `complete` is true only when every row of every table is present (live database), which
 * is what allows "this event has no row" and "this row has no event" to be failures.
 */
import type Database from "better-sqlite3";
import { LAZY_DECISION_COLUMNS, LAZY_RUN_COLUMNS, lazyDecisionRows, lazyRunRows } from "./lazy-texts";

export type RunRow = {
  id: number;
  experimentId: number;
  name: string;
  /** "" in databases from before the column existed (migration 0011). */
  description: string;
  status: string;
  configJson: string;
  configSha256: string;
  seed: number;
  origin: string;
  parentRunId: number | null;
  parentCheckpointId: number | null;
  datasetVersionId: number | null;
  splitId: number | null;
  backend: string | null;
  backendReason: string | null;
  environmentJson: string | null;
  paramCount: number | null;
  memoryJson: string | null;
  finalWeightsSha256: string | null;
  error: string | null;
  createdBy: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
};
export type DecisionRow = {
  id: number;
  runId: number;
  kind: string;
  path: string;
  oldValueJson: string | null;
  newValueJson: string | null;
  rationale: string;
  correctsDecisionId: number | null;
  authorId: number;
  createdAt: string;
};
export type CheckpointRow = {
  id: number;
  runId: number;
  epoch: number;
  step: number;
  sha256: string;
  bytes: number;
  metricsJson: string;
  isBest: boolean;
  createdAt: string;
};
export type EvaluationRow = {
  id: number;
  runId: number;
  checkpointId: number;
  splitId: number | null;
  partition: string;
  dataSha256: string;
  metricsJson: string;
  confusionJson: string | null;
  source: string;
  createdBy: number;
  createdAt: string;
};
export type DatasetRow = {
  id: number;
  name: string;
  source: string;
  builtinName: string | null;
  origin: string;
  licence: string;
  sha256: string;
  byteSize: number;
  schemaJson: string;
  rowCount: number;
  createdBy: number;
  createdAt: string;
};
export type DatasetVersionRow = {
  id: number;
  datasetId: number;
  recipeJson: string;
  recipeSha256: string;
  reportJson: string;
  sha256: string;
  rowCount: number;
  createdAt: string;
};
export type SplitRow = { id: number; datasetVersionId: number; specJson: string; manifestJson: string; sha256: string; createdAt: string };
export type DocumentRow = {
  id: number;
  subjectType: string;
  subjectId: number;
  section: string;
  version: number;
  body: string;
  supersedesId: number | null;
  authorId: number;
  createdAt: string;
  sha256: string;
};
export type ModelRow = { id: number; name: string; description: string; approvalsRequired: number; createdBy: number; createdAt: string };
export type ModelVersionRow = {
  id: number;
  modelId: number;
  version: number;
  runId: number;
  checkpointId: number;
  weightsSha256: string;
  createdBy: number;
  createdAt: string;
};
export type AliasMoveRow = {
  id: number;
  modelId: number;
  alias: string;
  modelVersionId: number | null;
  promotionRequestId: number | null;
  movedBy: number;
  createdAt: string;
};
export type PromotionRequestRow = {
  id: number;
  modelVersionId: number;
  alias: string;
  evaluationId: number;
  rationale: string;
  recordSha256: string;
  status: string;
  requestedBy: number;
  createdAt: string;
  decidedAt: string | null;
  /** The approval rule in force when the request was made (absent in facts of bundles exported before it existed). */
  approvalsRequired?: number;
};
export type SignatureRow = {
  id: number;
  userId: number;
  printedName: string;
  meaning: string;
  recordType: string;
  recordId: number;
  recordSha256: string;
  comment: string;
  createdAt: string;
};
export type UserRow = { id: number; email: string; name: string; role: string };
export type ProjectRow = { id: number; name: string; description: string };
export type ExperimentRow = { id: number; projectId: number; name: string; description: string };
export type RunTagRow = { runId: number; tag: string };

export type Tables = {
  complete: boolean;
  runs: Map<number, RunRow>;
  decisions: Map<number, DecisionRow>;
  checkpoints: Map<number, CheckpointRow>;
  evaluations: Map<number, EvaluationRow>;
  datasets: Map<number, DatasetRow>;
  datasetVersions: Map<number, DatasetVersionRow>;
  splits: Map<number, SplitRow>;
  documents: Map<number, DocumentRow>;
  models: Map<number, ModelRow>;
  modelVersions: Map<number, ModelVersionRow>;
  aliasMoves: Map<number, AliasMoveRow>;
  promotionRequests: Map<number, PromotionRequestRow>;
  signatures: Map<number, SignatureRow>;
  users: Map<number, UserRow>;
  projects: Map<number, ProjectRow>;
  experiments: Map<number, ExperimentRow>;
  /** Live database only: run id → its tags. */
  runTags: Map<number, string[]>;
};

/**
 * `t` with its evaluations replaced. Not a spread: a spread reads every getter, and `decisions` may be one that reads
 * the whole table when first read (loadTables' "onDemand"; 0.8 s of the main thread for a million-event ledger).
 */
export function withEvaluations(t: Tables, evaluations: Tables["evaluations"]): Tables {
  return Object.defineProperties({} as Tables, {
    ...Object.getOwnPropertyDescriptors(t),
    evaluations: { value: evaluations, enumerable: true, writable: true, configurable: true },
  });
}

export function emptyTables(complete: boolean): Tables {
  return {
    complete,
    runs: new Map(),
    decisions: new Map(),
    checkpoints: new Map(),
    evaluations: new Map(),
    datasets: new Map(),
    datasetVersions: new Map(),
    splits: new Map(),
    documents: new Map(),
    models: new Map(),
    modelVersions: new Map(),
    aliasMoves: new Map(),
    promotionRequests: new Map(),
    signatures: new Map(),
    users: new Map(),
    projects: new Map(),
    experiments: new Map(),
    runTags: new Map(),
  };
}

/** Loads `table` into `into`, building each record from the raw row with `make` (columns in `columns` order). */
function load<T extends { id: number }>(
  sqlite: Database.Database,
  table: string,
  columns: string,
  make: (r: unknown[]) => T,
  into: Map<number, T>,
): void {
  for (const r of sqlite.prepare(`SELECT ${columns} FROM ${table}`).raw(true).iterate() as IterableIterator<unknown[]>) {
    const row = make(r);
    into.set(row.id, row);
  }
}

const n = (v: unknown) => v as number;
const s = (v: unknown) => v as string;
const ns = (v: unknown) => v as number | null;
const ss = (v: unknown) => v as string | null;

export const CHECKPOINT_COLUMNS = "id, run_id, epoch, step, sha256, bytes, metrics_json, is_best, created_at";
export function checkpointRow(r: unknown[]): CheckpointRow {
  return {
    id: n(r[0]),
    runId: n(r[1]),
    epoch: n(r[2]),
    step: n(r[3]),
    sha256: s(r[4]),
    bytes: n(r[5]),
    metricsJson: s(r[6]),
    isBest: r[7] === 1,
    createdAt: s(r[8]),
  };
}

export const EVALUATION_COLUMNS =
  "id, run_id, checkpoint_id, split_id, partition, data_sha256, metrics_json, confusion_json, source, created_by, created_at";
export function evaluationRow(r: unknown[]): EvaluationRow {
  return {
    id: n(r[0]),
    runId: n(r[1]),
    checkpointId: n(r[2]),
    splitId: ns(r[3]),
    partition: s(r[4]),
    dataSha256: s(r[5]),
    metricsJson: s(r[6]),
    confusionJson: ss(r[7]),
    source: s(r[8]),
    createdBy: n(r[9]),
    createdAt: s(r[10]),
  };
}

/** What the run-derived checks read of a run (check-run-params.ts, check-metrics.ts). */
export type RunConfigRow = Pick<RunRow, "id" | "configJson" | "seed">;

/** Only the columns the run-derived checks read, in table order (as loadRuns): the content worker's load. */
export function loadRunConfigs(sqlite: Database.Database): Map<number, RunConfigRow> {
  const into = new Map<number, RunConfigRow>();
  load(sqlite, "runs", "id, config_json, seed", (r) => ({ id: n(r[0]), configJson: s(r[1]), seed: n(r[2]) }), into);
  return into;
}

/**
 * The runs table, in table order (the order the content check walks runs in, wherever it runs). `texts: "lazy"`:
 * the config, environment and memory texts are read when asked for (lazy-texts.ts).
 */
export function loadRuns(
  sqlite: Database.Database,
  into: Map<number, RunRow> = new Map(),
  texts: "eager" | "lazy" = "eager",
): Map<number, RunRow> {
  // A bundle or backup made before migration 0011 has no description column: read it as "".
  const hasDescription = sqlite.prepare("SELECT 1 FROM pragma_table_info('runs') WHERE name = 'description'").get() !== undefined;
  if (texts === "lazy") {
    load(sqlite, "runs", `${LAZY_RUN_COLUMNS}, ${hasDescription ? "description" : "''"}`, lazyRunRows(sqlite), into);
    return into;
  }
  load(
    sqlite,
    "runs",
    `id, experiment_id, name, status, config_json, config_sha256, seed, origin, parent_run_id, parent_checkpoint_id, dataset_version_id, split_id, backend, backend_reason, environment_json, param_count, memory_json, final_weights_sha256, error, created_by, created_at, started_at, finished_at, ${hasDescription ? "description" : "''"}`,
    (r) => ({
      id: n(r[0]),
      experimentId: n(r[1]),
      name: s(r[2]),
      status: s(r[3]),
      configJson: s(r[4]),
      configSha256: s(r[5]),
      seed: n(r[6]),
      origin: s(r[7]),
      parentRunId: ns(r[8]),
      parentCheckpointId: ns(r[9]),
      datasetVersionId: ns(r[10]),
      splitId: ns(r[11]),
      backend: ss(r[12]),
      backendReason: ss(r[13]),
      environmentJson: ss(r[14]),
      paramCount: ns(r[15]),
      memoryJson: ss(r[16]),
      finalWeightsSha256: ss(r[17]),
      error: ss(r[18]),
      createdBy: n(r[19]),
      createdAt: s(r[20]),
      startedAt: ss(r[21]),
      finishedAt: ss(r[22]),
      description: s(r[23]),
    }),
    into,
  );
  return into;
}

/** The decisions table (`texts: "lazy"`: the long texts read when asked for, lazy-texts.ts). */
function loadDecisions(
  sqlite: Database.Database,
  texts: "eager" | "lazy",
  into: Map<number, DecisionRow> = new Map(),
): Map<number, DecisionRow> {
  if (texts === "lazy") load(sqlite, "decisions", LAZY_DECISION_COLUMNS, lazyDecisionRows(sqlite), into);
  else
    load(
      sqlite,
      "decisions",
      "id, run_id, kind, path, old_value_json, new_value_json, rationale, corrects_decision_id, author_id, created_at",
      (r) => ({
        id: n(r[0]),
        runId: n(r[1]),
        kind: s(r[2]),
        path: s(r[3]),
        oldValueJson: ss(r[4]),
        newValueJson: ss(r[5]),
        rationale: s(r[6]),
        correctsDecisionId: ns(r[7]),
        authorId: n(r[8]),
        createdAt: s(r[9]),
      }),
      into,
    );
  return into;
}

/**
 * checkpoints: "all" rows, or only those other records point at ("referenced"); evaluations: "all", or only those
 * promotion requests cite ("cited"). The checkpoint and evaluation checks then read the rest in SQL.
 */
export function loadTables(
  sqlite: Database.Database,
  opts: {
    checkpoints: "all" | "referenced";
    evaluations?: "all" | "cited";
    texts?: "eager" | "lazy";
    /**
     * "onDemand" (lazy texts only): the decisions table is read when `decisions` is first read, through the same
     * connection (so within the check's read transaction), and never when the decisions are judged inside SQLite
     * (check-decisions-sql.ts). Default "now".
     */
    decisions?: "now" | "onDemand";
  } = { checkpoints: "all" },
): Tables {
  const evaluations = opts.evaluations ?? "all";
  const t = emptyTables(true);
  loadRuns(sqlite, t.runs, opts.texts);
  if (opts.texts === "lazy" && opts.decisions === "onDemand") {
    let decisions: Map<number, DecisionRow> | null = null;
    Object.defineProperty(t, "decisions", {
      enumerable: true,
      get: () => (decisions ??= loadDecisions(sqlite, "lazy")),
    });
  } else loadDecisions(sqlite, opts.texts ?? "eager", t.decisions);
  if (opts.checkpoints === "all") load(sqlite, "checkpoints", CHECKPOINT_COLUMNS, checkpointRow, t.checkpoints);
  else {
    // Only the checkpoints other records point at (the checkpoint check itself runs in SQL: check-checkpoints-sql.ts).
    const ofEvaluations = evaluations === "all" ? "evaluations" : "evaluations WHERE id IN (SELECT evaluation_id FROM promotion_requests)";
    const referenced = `(SELECT checkpoint_id FROM ${ofEvaluations} UNION SELECT checkpoint_id FROM model_versions UNION SELECT parent_checkpoint_id FROM runs WHERE parent_checkpoint_id IS NOT NULL)`;
    for (const r of sqlite
      .prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints WHERE id IN ${referenced}`)
      .raw(true)
      .iterate() as IterableIterator<unknown[]>) {
      const row = checkpointRow(r);
      t.checkpoints.set(row.id, row);
    }
  }
  if (evaluations === "all") load(sqlite, "evaluations", EVALUATION_COLUMNS, evaluationRow, t.evaluations);
  else {
    // Only the evaluations promotion requests cite (the evaluation check itself runs in SQL: check-evaluations-sql.ts).
    const cited = sqlite.prepare(
      `SELECT ${EVALUATION_COLUMNS} FROM evaluations WHERE id IN (SELECT evaluation_id FROM promotion_requests)`,
    );
    for (const r of cited.raw(true).iterate() as IterableIterator<unknown[]>) {
      const row = evaluationRow(r);
      t.evaluations.set(row.id, row);
    }
  }
  load(
    sqlite,
    "datasets",
    "id, name, source, builtin_name, origin, licence, sha256, byte_size, schema_json, row_count, created_by, created_at",
    (r) => ({
      id: n(r[0]),
      name: s(r[1]),
      source: s(r[2]),
      builtinName: ss(r[3]),
      origin: s(r[4]),
      licence: s(r[5]),
      sha256: s(r[6]),
      byteSize: n(r[7]),
      schemaJson: s(r[8]),
      rowCount: n(r[9]),
      createdBy: n(r[10]),
      createdAt: s(r[11]),
    }),
    t.datasets,
  );
  load(
    sqlite,
    "dataset_versions",
    "id, dataset_id, recipe_json, recipe_sha256, report_json, sha256, row_count, created_at",
    (r) => ({
      id: n(r[0]),
      datasetId: n(r[1]),
      recipeJson: s(r[2]),
      recipeSha256: s(r[3]),
      reportJson: s(r[4]),
      sha256: s(r[5]),
      rowCount: n(r[6]),
      createdAt: s(r[7]),
    }),
    t.datasetVersions,
  );
  load(
    sqlite,
    "splits",
    "id, dataset_version_id, spec_json, manifest_json, sha256, created_at",
    (r) => ({ id: n(r[0]), datasetVersionId: n(r[1]), specJson: s(r[2]), manifestJson: s(r[3]), sha256: s(r[4]), createdAt: s(r[5]) }),
    t.splits,
  );
  load(
    sqlite,
    "documents",
    "id, subject_type, subject_id, section, version, body, supersedes_id, author_id, created_at, sha256",
    (r) => ({
      id: n(r[0]),
      subjectType: s(r[1]),
      subjectId: n(r[2]),
      section: s(r[3]),
      version: n(r[4]),
      body: s(r[5]),
      supersedesId: ns(r[6]),
      authorId: n(r[7]),
      createdAt: s(r[8]),
      sha256: s(r[9]),
    }),
    t.documents,
  );
  load(
    sqlite,
    "models",
    "id, name, description, approvals_required, created_by, created_at",
    (r) => ({ id: n(r[0]), name: s(r[1]), description: s(r[2]), approvalsRequired: n(r[3]), createdBy: n(r[4]), createdAt: s(r[5]) }),
    t.models,
  );
  load(
    sqlite,
    "model_versions",
    "id, model_id, version, run_id, checkpoint_id, weights_sha256, created_by, created_at",
    (r) => ({
      id: n(r[0]),
      modelId: n(r[1]),
      version: n(r[2]),
      runId: n(r[3]),
      checkpointId: n(r[4]),
      weightsSha256: s(r[5]),
      createdBy: n(r[6]),
      createdAt: s(r[7]),
    }),
    t.modelVersions,
  );
  load(
    sqlite,
    "model_alias_events",
    "id, model_id, alias, model_version_id, promotion_request_id, moved_by, created_at",
    (r) => ({
      id: n(r[0]),
      modelId: n(r[1]),
      alias: s(r[2]),
      modelVersionId: ns(r[3]),
      promotionRequestId: ns(r[4]),
      movedBy: n(r[5]),
      createdAt: s(r[6]),
    }),
    t.aliasMoves,
  );
  load(
    sqlite,
    "promotion_requests",
    "id, model_version_id, alias, evaluation_id, rationale, record_sha256, status, requested_by, created_at, decided_at, approvals_required",
    (r) => ({
      id: n(r[0]),
      modelVersionId: n(r[1]),
      alias: s(r[2]),
      evaluationId: n(r[3]),
      rationale: s(r[4]),
      recordSha256: s(r[5]),
      status: s(r[6]),
      requestedBy: n(r[7]),
      createdAt: s(r[8]),
      decidedAt: ss(r[9]),
      approvalsRequired: n(r[10]),
    }),
    t.promotionRequests,
  );
  load(
    sqlite,
    "signatures",
    "id, user_id, printed_name, meaning, record_type, record_id, record_sha256, comment, created_at",
    (r) => ({
      id: n(r[0]),
      userId: n(r[1]),
      printedName: s(r[2]),
      meaning: s(r[3]),
      recordType: s(r[4]),
      recordId: n(r[5]),
      recordSha256: s(r[6]),
      comment: s(r[7]),
      createdAt: s(r[8]),
    }),
    t.signatures,
  );
  load(sqlite, "users", "id, email, name, role", (r) => ({ id: n(r[0]), email: s(r[1]), name: s(r[2]), role: s(r[3]) }), t.users);
  load(sqlite, "projects", "id, name, description", (r) => ({ id: n(r[0]), name: s(r[1]), description: s(r[2]) }), t.projects);
  load(
    sqlite,
    "experiments",
    "id, project_id, name, description",
    (r) => ({ id: n(r[0]), projectId: n(r[1]), name: s(r[2]), description: s(r[3]) }),
    t.experiments,
  );
  for (const r of sqlite.prepare("SELECT run_id, tag FROM run_tags").raw(true).iterate() as IterableIterator<[number, string]>) {
    let list = t.runTags.get(r[0]);
    if (!list) t.runTags.set(r[0], (list = []));
    list.push(r[1]);
  }
  return t;
}
