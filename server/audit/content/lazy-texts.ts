/**
 * Run and decision rows whose long JSON texts (a run's config, environment and memory estimate; a decision's old
 * and new values: ~140 MB of a million-event ledger), and the other columns only a slow path reads (a run's name,
 * origin, parents, experiment, seed, data, backend, parameter count, error and times; a decision's path, rationale
 * and time), are read only when a check asks for them. On a live database with the native extension, SQLite
 * compares the events that carry those values with their rows (bulk-events-sql.ts), so a ledger that matches never
 * asks, and the main thread neither reads nor keeps them (~0.6 s of reading and garbage collection for a million
 * events for the texts; the other columns halve what the tables keep, 136 → 70 MB, and their load, 0.90 → 0.57 s).
 * The worker's run_params check reads configs on its own connection.
 *
 * Invariants:
 * - A value is read through the connection the rows were loaded from, by primary key, so it is the one the row held
 *   as long as that connection's read transaction is open: the content check reads them only while it runs
 *   (verify-content.ts loads lazy rows for plain verification only; the report keeps eager rows, which outlive it).
 * - A column read for every row on the fast path stays in the first read (LAZY_RUN_COLUMNS, LAZY_DECISION_COLUMNS),
 *   or each row would cost a query of its own. The values behind getters are lost by an object spread: the checks
 *   never spread a row (check-runs.ts runCreateText takes the name at creation as an argument for that reason).
 */
import type Database from "better-sqlite3";
import type { DecisionRow, RunRow } from "./tables";

/** The runs columns a lazy row reads when first asked for one of them (in this order; LazyRunRow's getters). */
const RUN_READ_LATER =
  "config_json, environment_json, memory_json, name, config_sha256, origin, backend, backend_reason, error, created_at, started_at, " +
  "experiment_id, seed, parent_run_id, parent_checkpoint_id, dataset_version_id, split_id, param_count";
type RunLater = [
  configJson: string,
  environmentJson: string | null,
  memoryJson: string | null,
  name: string,
  configSha256: string,
  origin: string,
  backend: string | null,
  backendReason: string | null,
  error: string | null,
  createdAt: string,
  startedAt: string | null,
  experimentId: number,
  seed: number,
  parentRunId: number | null,
  parentCheckpointId: number | null,
  datasetVersionId: number | null,
  splitId: number | null,
  paramCount: number | null,
];
/** Likewise for decisions (LazyDecisionRow). */
const DECISION_READ_LATER = "old_value_json, new_value_json, path, rationale, created_at";
type DecisionLater = [oldValueJson: string | null, newValueJson: string | null, path: string, rationale: string, createdAt: string];

/** Reads the later columns of one row at a time (the checks ask for a row's together), keeping the last one read. */
class LaterColumns<T extends unknown[]> {
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

/**
 * The runs columns a lazy row holds from the start: those the fast path of the check reads for every run (counted
 * on the million-event ledger: checkRuns' status, end and actor comparisons; the others are read by no check of a
 * matching ledger, and leaving them to RUN_READ_LATER made the runs load ~745 -> ~600 ms, medians of 6 processes).
 */
export const LAZY_RUN_COLUMNS = "id, status, final_weights_sha256, created_by, finished_at";

/** A runs row (LAZY_RUN_COLUMNS, then the description) whose other columns (RUN_READ_LATER) are read when asked for. */
class LazyRunRow implements RunRow {
  readonly id: number;
  readonly status: string;
  readonly finalWeightsSha256: string | null;
  readonly createdBy: number;
  readonly finishedAt: string | null;
  readonly description: string;

  constructor(
    private readonly later: LaterColumns<RunLater>,
    r: unknown[],
  ) {
    // The values as better-sqlite3 read them, unconverted (as tables.ts loadRuns keeps them).
    this.id = r[0] as this["id"];
    this.status = r[1] as this["status"];
    this.finalWeightsSha256 = r[2] as this["finalWeightsSha256"];
    this.createdBy = r[3] as this["createdBy"];
    this.finishedAt = r[4] as this["finishedAt"];
    this.description = r[5] as this["description"];
  }

  get configJson(): string {
    return this.later.of(this.id)[0];
  }
  get environmentJson(): string | null {
    return this.later.of(this.id)[1];
  }
  get memoryJson(): string | null {
    return this.later.of(this.id)[2];
  }
  get name(): string {
    return this.later.of(this.id)[3];
  }
  get configSha256(): string {
    return this.later.of(this.id)[4];
  }
  get origin(): string {
    return this.later.of(this.id)[5];
  }
  get backend(): string | null {
    return this.later.of(this.id)[6];
  }
  get backendReason(): string | null {
    return this.later.of(this.id)[7];
  }
  get error(): string | null {
    return this.later.of(this.id)[8];
  }
  get createdAt(): string {
    return this.later.of(this.id)[9];
  }
  get startedAt(): string | null {
    return this.later.of(this.id)[10];
  }
  get experimentId(): number {
    return this.later.of(this.id)[11];
  }
  get seed(): number {
    return this.later.of(this.id)[12];
  }
  get parentRunId(): number | null {
    return this.later.of(this.id)[13];
  }
  get parentCheckpointId(): number | null {
    return this.later.of(this.id)[14];
  }
  get datasetVersionId(): number | null {
    return this.later.of(this.id)[15];
  }
  get splitId(): number | null {
    return this.later.of(this.id)[16];
  }
  get paramCount(): number | null {
    return this.later.of(this.id)[17];
  }
}

/** The decisions columns a lazy row holds from the start. */
export const LAZY_DECISION_COLUMNS = "id, run_id, kind, corrects_decision_id, author_id";

/** A decisions row (LAZY_DECISION_COLUMNS) whose other columns (DECISION_READ_LATER) are read when asked for. */
class LazyDecisionRow implements DecisionRow {
  readonly id: number;
  readonly runId: number;
  readonly kind: string;
  readonly correctsDecisionId: number | null;
  readonly authorId: number;

  constructor(
    private readonly later: LaterColumns<DecisionLater>,
    r: unknown[],
  ) {
    this.id = r[0] as this["id"];
    this.runId = r[1] as this["runId"];
    this.kind = r[2] as this["kind"];
    this.correctsDecisionId = r[3] as this["correctsDecisionId"];
    this.authorId = r[4] as this["authorId"];
  }

  get oldValueJson(): string | null {
    return this.later.of(this.id)[0];
  }
  get newValueJson(): string | null {
    return this.later.of(this.id)[1];
  }
  get path(): string {
    return this.later.of(this.id)[2];
  }
  get rationale(): string {
    return this.later.of(this.id)[3];
  }
  get createdAt(): string {
    return this.later.of(this.id)[4];
  }
}

/** Makes lazy runs rows from rows of LAZY_RUN_COLUMNS plus the description. */
export function lazyRunRows(sqlite: Database.Database): (r: unknown[]) => RunRow {
  const later = new LaterColumns<RunLater>(sqlite, `SELECT ${RUN_READ_LATER} FROM runs WHERE id = ?`);
  return (r) => new LazyRunRow(later, r);
}

/** Makes lazy decisions rows from rows of LAZY_DECISION_COLUMNS. */
export function lazyDecisionRows(sqlite: Database.Database): (r: unknown[]) => DecisionRow {
  const later = new LaterColumns<DecisionLater>(sqlite, `SELECT ${DECISION_READ_LATER} FROM decisions WHERE id = ?`);
  return (r) => new LazyDecisionRow(later, r);
}
