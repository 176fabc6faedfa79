/**
 * Run and decision rows whose long JSON texts (a run's config, environment and memory estimate; a decision's old
 * and new values: ~140 MB of a million-event ledger) are read only when a check asks for them. On a live database
 * with the native extension, SQLite compares the events that carry those texts with their rows
 * (bulk-events-sql.ts), so a ledger that matches never asks, and the main thread neither reads nor keeps them
 * (~0.6 s of reading and garbage collection for a million events). The worker's run_params check reads configs on
 * its own connection.
 *
 * Invariant: a text is read through the connection the rows were loaded from, by primary key, so it is the one the
 * row held as long as that connection's read transaction is open: the content check reads them only while it runs
 * (verify-content.ts loads lazy rows for plain verification only; the report keeps eager rows, which outlive it).
 */
import type Database from "better-sqlite3";
import type { DecisionRow, RunRow } from "./tables";

type RunTexts = [configJson: string, environmentJson: string | null, memoryJson: string | null];
type DecisionTexts = [oldValueJson: string | null, newValueJson: string | null];

/** Reads the texts of one row at a time (the checks ask for a row's texts together), keeping the last one read. */
class TextReader<T extends unknown[]> {
  private id: number | null = null;
  private row: T | null = null;
  private readonly byId: Database.Statement;

  constructor(sqlite: Database.Database, sql: string) {
    this.byId = sqlite.prepare(sql).raw(true);
  }

  of(id: number): T {
    if (id !== this.id || this.row === null) {
      const row = this.byId.get(id) as T | undefined;
      if (!row) throw new Error(`row ${id} is no longer there to read its texts: read them while the check's read transaction is open`);
      this.row = row;
      this.id = id;
    }
    return this.row;
  }
}

export const LAZY_RUN_COLUMNS =
  "id, experiment_id, name, status, config_sha256, seed, origin, parent_run_id, parent_checkpoint_id, dataset_version_id, split_id, backend, backend_reason, param_count, final_weights_sha256, error, created_by, created_at, started_at, finished_at";

/** A runs row (LAZY_RUN_COLUMNS, then the description) whose config, environment and memory texts are read when asked for. */
class LazyRunRow implements RunRow {
  readonly id: number;
  readonly experimentId: number;
  readonly name: string;
  readonly status: string;
  readonly configSha256: string;
  readonly seed: number;
  readonly origin: string;
  readonly parentRunId: number | null;
  readonly parentCheckpointId: number | null;
  readonly datasetVersionId: number | null;
  readonly splitId: number | null;
  readonly backend: string | null;
  readonly backendReason: string | null;
  readonly paramCount: number | null;
  readonly finalWeightsSha256: string | null;
  readonly error: string | null;
  readonly createdBy: number;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly description: string;

  constructor(
    private readonly texts: TextReader<RunTexts>,
    r: unknown[],
  ) {
    // The values as better-sqlite3 read them, unconverted (as tables.ts loadRuns keeps them).
    this.id = r[0] as this["id"];
    this.experimentId = r[1] as this["experimentId"];
    this.name = r[2] as this["name"];
    this.status = r[3] as this["status"];
    this.configSha256 = r[4] as this["configSha256"];
    this.seed = r[5] as this["seed"];
    this.origin = r[6] as this["origin"];
    this.parentRunId = r[7] as this["parentRunId"];
    this.parentCheckpointId = r[8] as this["parentCheckpointId"];
    this.datasetVersionId = r[9] as this["datasetVersionId"];
    this.splitId = r[10] as this["splitId"];
    this.backend = r[11] as this["backend"];
    this.backendReason = r[12] as this["backendReason"];
    this.paramCount = r[13] as this["paramCount"];
    this.finalWeightsSha256 = r[14] as this["finalWeightsSha256"];
    this.error = r[15] as this["error"];
    this.createdBy = r[16] as this["createdBy"];
    this.createdAt = r[17] as this["createdAt"];
    this.startedAt = r[18] as this["startedAt"];
    this.finishedAt = r[19] as this["finishedAt"];
    this.description = r[20] as this["description"];
  }

  get configJson(): string {
    return this.texts.of(this.id)[0];
  }
  get environmentJson(): string | null {
    return this.texts.of(this.id)[1];
  }
  get memoryJson(): string | null {
    return this.texts.of(this.id)[2];
  }
}

export const LAZY_DECISION_COLUMNS = "id, run_id, kind, path, rationale, corrects_decision_id, author_id, created_at";

/** A decisions row (LAZY_DECISION_COLUMNS) whose old and new value texts are read when asked for. */
class LazyDecisionRow implements DecisionRow {
  readonly id: number;
  readonly runId: number;
  readonly kind: string;
  readonly path: string;
  readonly rationale: string;
  readonly correctsDecisionId: number | null;
  readonly authorId: number;
  readonly createdAt: string;

  constructor(
    private readonly texts: TextReader<DecisionTexts>,
    r: unknown[],
  ) {
    this.id = r[0] as this["id"];
    this.runId = r[1] as this["runId"];
    this.kind = r[2] as this["kind"];
    this.path = r[3] as this["path"];
    this.rationale = r[4] as this["rationale"];
    this.correctsDecisionId = r[5] as this["correctsDecisionId"];
    this.authorId = r[6] as this["authorId"];
    this.createdAt = r[7] as this["createdAt"];
  }

  get oldValueJson(): string | null {
    return this.texts.of(this.id)[0];
  }
  get newValueJson(): string | null {
    return this.texts.of(this.id)[1];
  }
}

/** Makes lazy runs rows from rows of LAZY_RUN_COLUMNS plus the description. */
export function lazyRunRows(sqlite: Database.Database): (r: unknown[]) => RunRow {
  const texts = new TextReader<RunTexts>(sqlite, "SELECT config_json, environment_json, memory_json FROM runs WHERE id = ?");
  return (r) => new LazyRunRow(texts, r);
}

/** Makes lazy decisions rows from rows of LAZY_DECISION_COLUMNS. */
export function lazyDecisionRows(sqlite: Database.Database): (r: unknown[]) => DecisionRow {
  const texts = new TextReader<DecisionTexts>(sqlite, "SELECT old_value_json, new_value_json FROM decisions WHERE id = ?");
  return (r) => new LazyDecisionRow(texts, r);
}
