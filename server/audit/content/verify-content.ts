/**
 * Content verification of a live database: every table row and artifact file the UI or the auditor's report shows,
 * re-derived and compared with what the audit ledger recorded (see check-*.ts for each entity). Called by
 * server/audit/verify.ts INSIDE the read transaction of the chain pass, so the payloads read here are the ones
 * the chain pass verified (events with seq <= uptoSeq).
 *
 * Usage: verifyContent(sqlite, { artifactsDir: path.join(dataDir, "artifacts"), uptoSeq }) → ContentLevel.
 * checkContent additionally returns which event covers each entity (for the report's per-fact labels).
 *
 * Invariants: reads only; one raw `.iterate()` pass per table, events read by action (index audit_events_action)
 * after the rows (the bulk ones are matched to their rows as they are read: bulk-events.ts), each artifact file
 * hashed once; an unexpected error (e.g. a table that is not there) is a failed check saying why, never a pass.
 */
import type Database from "better-sqlite3";
import { type CheckerState, ContentChecker, couldNotFinish, type Coverage } from "./checker";
import { ArtifactHasher, storeArtifactPath } from "./artifact-files";
import { type EventSource, sqliteEventSource, streamEvents } from "./ledger-events";
import { bulkEventCompactor } from "./bulk-events";
import { RunDerivedEvents, type RecordedRunEvents } from "./run-events-feed";
import { loadRunConfigs, loadTables, type RunConfigRow, type Tables } from "./tables";
import { checkPeople } from "./check-people";
import { checkData } from "./check-data";
import { CHECKED_END_FIELDS, checkRuns, decisionsCreatedWithRunsOnDemand, DerivedRunLedgerBuilder, type RunLedger } from "./check-runs";
import { checkDecisions } from "./check-decisions";
import { decisionSqlReads, decisionsProvenInSql, NOTE_ACTIONS } from "./check-decisions-sql";
import { checkRunDerivedValues, sqliteRunParams } from "./check-run-params";
import { checkRunDerivedValuesInDatabase } from "./check-run-params-json";
import { checkMetrics, sqliteMetricSource } from "./check-metrics";
import { checkCheckpoints } from "./check-checkpoints";
import { checkCheckpointsInSql, checkpointSqlReads } from "./check-checkpoints-sql";
import { checkEvaluations } from "./check-evaluations";
import { checkEvaluationsInSql, evaluationSqlReads } from "./check-evaluations-sql";
import { liveReads, type SqlRead, type SqlReads } from "./sql-reads";
import { checkDocuments } from "./check-documents";
import { checkRegistry } from "./check-registry";
import { checkApprovals } from "./check-approvals";
import { checkInterventions, loadInterventions } from "./check-interventions";
import { checkApiRecords } from "./check-api";
import { checkSweeps } from "./check-sweeps";
import type { ContentLevel } from "./types";
import { loadAuditNative } from "../native-range";

export type ContentCheckResult = {
  level: ContentLevel;
  coverage: Map<string, Coverage>;
  filesHashed: number;
  durationMs: number;
  /** the rows compared (null when they could not be read, or were read with lazy texts: lazy-texts.ts) */ tables: Tables | null;
  /** whether the decisions were proven clean inside SQLite (check-decisions-sql.ts) rather than judged in JavaScript */
  decisionsProvenInSql: boolean;
};

export type VerifyContentOptions = {
  artifactsDir: string | null;
  uptoSeq: number;
  /** keep which event covers each entity (the report's labels need it; default false) */ coverage?: boolean;
  /**
   * Check evaluations inside SQLite, reading only the rows that differ (check-evaluations-sql.ts; default: when
   * coverage is off, as checkpoints). The result is the same either way; content-tamper.test.ts compares the two.
   */
  evaluationsInSql?: boolean;
  /**
   * Compare the bulk events (run.create, run.start, run ends, decision.create) with their rows while the log is read,
   * keeping those that match without their text (bulk-events.ts; default true: less kept, less garbage collection).
   * The result is the same either way; bulk-events.test.ts compares the two.
   */
  matchWhileReading?: boolean;
  /**
   * With matchWhileReading, let SQLite compare run.create, run.start and decision.create with their rows' texts
   * (bulk-events-sql.ts; default: when the native extension loads), and, without coverage, read the rows' long
   * texts only when asked for (lazy-texts.ts). The result is the same either way (bulk-events.test.ts compares the
   * three ways).
   */
  rowsInSql?: boolean;
  /**
   * With rowsInSql and no coverage, first try to prove the decisions clean inside SQLite (check-decisions-sql.ts),
   * reading the decisions table and the note events into JavaScript only when that fails (default true). The result
   * is the same either way (content-tamper.test.ts compares the two).
   */
  decisionsInSql?: boolean;
  /**
   * With the run-derived part elsewhere: called once with the run.create and end events as the log scan read them
   * (run-events-feed.ts), or null when the scan did not read every content event in seq order (the part then reads
   * them itself). Not called when the check stops before its scan.
   */
  onRunEvents?: (events: RecordedRunEvents | null) => void;
};

export function checkContent(sqlite: Database.Database, opts: VerifyContentOptions): ContentCheckResult {
  const phases = runPhases(sqlite, opts, "here");
  return phases.finish(null);
}

/**
 * The content check with its run-derived part (run_params and metric series: checkRunDerivedPart) left to someone
 * else, e.g. a worker thread reading the same snapshot (verify-content-parts.ts). `finish(part)` takes that part's
 * findings and returns what checkContent would have returned: the part's findings are placed where checkContent
 * finds them (after decisions, before checkpoints), and a check that could not finish stops what follows it, as
 * in checkContent. Verification only (no coverage).
 */
export function checkContentExceptRunDerived(
  sqlite: Database.Database,
  opts: Omit<VerifyContentOptions, "coverage"> & { reads?: SqlReads },
): { finish: (part: RunDerivedPartResult) => ContentCheckResult } {
  const phases = runPhases(sqlite, { ...opts, coverage: false }, "elsewhere", opts.reads);
  return { finish: (part) => phases.finish(part) };
}

/** What checkRunDerivedPart found; `aborted`: it could not finish (what follows it in checkContent is dropped). */
export type RunDerivedPartResult = { state: CheckerState; aborted: boolean };

/** Actions the run-derived part reads (the rest of the content check reads the others too). */
const RUN_DERIVED_ACTIONS: readonly string[] = ["run.create", "run.complete", "run.cancel", "run.fail"];

/**
 * The run-derived part of the content check on its own connection (which must read the same snapshot as the rest):
 * the run_params rows and the seed against each run's config, and the metric series against the end events.
 */
export function checkRunDerivedPart(sqlite: Database.Database, uptoSeq: number): RunDerivedPartResult {
  const c = new ContentChecker(false);
  try {
    const t = { runs: loadRunConfigs(sqlite) };
    // The events streamed, not kept (runLedgerForDerivedChecks' result, built one event at a time).
    const b = new DerivedRunLedgerBuilder(t.runs);
    streamEvents(sqlite, uptoSeq, RUN_DERIVED_ACTIONS, (ev) => b.add(ev));
    const runs = b.ledger();
    runDerivedChecks(c, sqlite, t, runs);
  } catch (err) {
    couldNotFinish(c, err);
    return { state: c.exportState(), aborted: true };
  }
  return { state: c.exportState(), aborted: false };
}

function runDerivedChecks(
  c: ContentChecker,
  sqlite: Database.Database,
  t: { runs: ReadonlyMap<number, RunConfigRow> },
  runs: RunLedger,
  via: "rows" | "json" = "rows",
): void {
  // "json": one JSON text per run (check-run-params-json.ts, as the content worker does: the same findings and facts,
  // run-derived-part.test.ts); "rows": every row compared as a value, as the report's export (coverage) needs.
  if (via === "json") checkRunDerivedValuesInDatabase(c, sqlite, runs.created);
  else checkRunDerivedValues(c, t, runs.created, sqliteRunParams(sqlite));
  checkMetrics(c, t, runs, sqliteMetricSource(sqlite, via === "json" && loadAuditNative(sqlite)));
}

/**
 * The heavy reads of the decision, checkpoint and evaluation phases, in the order the check makes them (the content
 * worker may make them first: sql-reads.ts).
 */
export function laterPhaseReads(sqlite: Database.Database, uptoSeq: number): SqlRead[] {
  return [...decisionSqlReads(sqlite, uptoSeq), ...checkpointSqlReads(sqlite, uptoSeq), ...evaluationSqlReads(sqlite, uptoSeq)];
}

/**
 * The checks in checkContent's order. With the run-derived part "elsewhere", the checks after it report into a
 * second checker, joined behind that part's findings in finish(). `reads`: where the heavy reads of the checkpoint
 * and evaluation phases come from (default: `sqlite`).
 */
function runPhases(sqlite: Database.Database, opts: VerifyContentOptions, runDerived: "here" | "elsewhere", reads = liveReads(sqlite)) {
  const started = performance.now();
  const c = new ContentChecker(opts.coverage ?? false);
  const after = runDerived === "here" ? c : new ContentChecker(false);
  const files = opts.artifactsDir === null ? null : new ArtifactHasher(storeArtifactPath(opts.artifactsDir));
  let t: Tables | null = null;
  let lazyTexts = false;
  let decisionsProven = false;
  let stopped = false;
  let filesBeforeLater = 0;
  try {
    // Without coverage (plain verification), checkpoints and evaluations are checked inside SQLite; the report's export keeps them in memory.
    const checkpointsInSql = !(opts.coverage ?? false);
    const evaluationsInSql = opts.evaluationsInSql ?? checkpointsInSql;
    const inSql = [...(checkpointsInSql ? ["checkpoint.create"] : []), ...(evaluationsInSql ? ["evaluation.create"] : [])];
    // The bulk events are matched to their rows as they are read and kept without their text (bulk-events.ts),
    // with the native extension inside SQLite (bulk-events-sql.ts); then, in plain verification, the rows' long
    // texts are read only if a check asks for them (lazy-texts.ts).
    const matchWhileReading = opts.matchWhileReading ?? true;
    const rowsInSql = matchWhileReading && (opts.rowsInSql ?? true) && loadAuditNative(sqlite);
    lazyTexts = rowsInSql && checkpointsInSql;
    // The decisions are then first judged inside SQLite: their rows and note events are read only if that fails.
    const decisionsInSql = lazyTexts && (opts.decisionsInSql ?? true);
    if (decisionsInSql) inSql.push(...NOTE_ACTIONS);
    const tables = loadTables(sqlite, {
      checkpoints: checkpointsInSql ? "referenced" : "all",
      evaluations: evaluationsInSql ? "cited" : "all",
      texts: lazyTexts ? "lazy" : "eager",
      decisions: decisionsInSql ? "onDemand" : "now",
    });
    t = tables;
    const withRun = decisionsCreatedWithRunsOnDemand(t);
    // With the run-derived checks elsewhere, an end event keeps only the members the checks here read.
    const endFields = runDerived === "elsewhere" ? CHECKED_END_FIELDS : null;
    // The events the run-derived part reads, recorded as the log is read, for the content worker (run-events-feed.ts).
    const derived = runDerived === "elsewhere" && matchWhileReading && opts.onRunEvents ? new RunDerivedEvents() : null;
    const compactor = matchWhileReading
      ? (source: EventSource) => bulkEventCompactor(tables, withRun, source, endFields, derived)
      : undefined;
    const events = sqliteEventSource(sqlite, opts.uptoSeq, inSql, compactor, rowsInSql);
    if (derived) {
      // Without the sequential pass, the events are read later, each action apart: the worker reads them itself.
      const recorded = derived.take();
      opts.onRunEvents?.(events.scannedUpFront ? recorded : null);
    }
    checkPeople(c, events, t);
    checkData(c, events, t, files);
    const runs = checkRuns(c, events, t, withRun);
    decisionsProven = decisionsInSql && decisionsProvenInSql(c, reads, opts.uptoSeq, t, runs);
    if (!decisionsProven) checkDecisions(c, events, t, runs.createEvents, withRun);
    if (runDerived === "here") runDerivedChecks(c, sqlite, t, runs, opts.coverage ? "rows" : "json");
    // From here on into `after` (= c when everything runs here); the files hashed so far are what one pass reports
    // when the run-derived part could not finish, which stops what follows it.
    filesBeforeLater = files?.files ?? 0;
    try {
      if (checkpointsInSql) checkCheckpointsInSql(after, sqlite, events, t, runs, files, opts.uptoSeq, reads);
      else checkCheckpoints(after, events, t, runs, files);
      if (evaluationsInSql) checkEvaluationsInSql(after, sqlite, events, t, opts.uptoSeq, reads);
      else checkEvaluations(after, events, t);
      checkDocuments(after, events, t);
      checkRegistry(after, events, t, files);
      checkApprovals(after, events, t);
      // A view, not the table: with decisions "onDemand", the getter reads the table only when an intervention asks.
      checkInterventions(after, events, loadInterventions(sqlite), t.complete, { get: (id) => tables.decisions.get(id) });
      checkApiRecords(after, events, sqlite, files);
      checkSweeps(after, events, sqlite);
    } catch (err) {
      couldNotFinish(after, err);
    }
  } catch (err) {
    couldNotFinish(c, err);
    stopped = true;
  }
  return {
    finish(part: RunDerivedPartResult | null): ContentCheckResult {
      let filesHashed = files?.files ?? 0;
      if (runDerived === "elsewhere" && !stopped) {
        if (!part) throw new Error("checkContentExceptRunDerived: the run-derived part's result is needed");
        c.mergeState(part.state);
        if (!part.aborted) c.mergeState(after.exportState());
        else filesHashed = filesBeforeLater;
      }
      if (!files) c.notCovered("artifact files (checkpoint weights, dataset bytes) were not re-hashed: no artifact directory was given");
      return {
        level: c.level(),
        coverage: c.coverage,
        filesHashed,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        tables: lazyTexts ? null : t, // (lazy rows read their texts only within this read transaction)
        decisionsProvenInSql: decisionsProven,
      };
    },
  };
}

export function verifyContent(sqlite: Database.Database, opts: VerifyContentOptions): ContentLevel {
  return checkContent(sqlite, opts).level;
}
