/**
 * The metric series of a live database digested and summarised inside SQLite (native extension, rl_audit.c
 * rl_metric_points, rl_metric_summary_rows, rl_metric_rollup_rows), so that checkMetrics (check-metrics.ts) can pass
 * a run without a JavaScript value per point: one text per run with what records.ts MetricDigest would compute from
 * its points (the points digest, their number, the final values), and whether the run's metric_summaries and
 * metric_rollups rows are exactly those the points call for (their digests compared inside SQLite:
 * rl_metric_rows_keep, rl_metric_points_checked; handing the 2 x 124k digests of the million-event ledger to
 * JavaScript cost ~0.2 s).
 *
 * Invariant: a run passes here only when every comparison checkMetrics makes for it would pass (runPassesInSqlite);
 * anything SQLite is not certain of (a value JavaScript would print or read differently, an unexpected order) makes
 * the run's text uncertain and the run goes to JavaScript, which decides as before.
 */
import type Database from "better-sqlite3";
import type { MetricPoint } from "./check-metrics";

/** What SQLite found for one run (null: uncertain, JavaScript decides). */
export type RunMetricsInSqlite = {
  pointsSha256: string;
  points: number;
  /** {key: final value} as JSON text (numbers exact) */ finals: string;
  /** the run's summary and rollup rows are exactly those the points call for (false: not certain, or not) */
  rowsMatch: boolean;
  /** how many summary and rollup rows the points call for */ keys: number;
  blocks: number;
};

export type MetricsInSqlite = {
  /** Each run with metric points, in run id order. */
  /** Each run with metric points, in run id order (a callback, not a generator: one resumption less per run). */
  eachRun(visit: (runId: number, found: RunMetricsInSqlite | null) => void): void;
  /** One run's points, in key, step order (as the full stream gives them). */
  pointsOf(runId: number): Iterable<MetricPoint>;
};

const POINTS =
  "SELECT run_id, rl_metric_points_checked(run_id, rl_metric_points(key, step, value, epoch)) FROM metrics GROUP BY run_id ORDER BY run_id";
/** Each run's summary and rollup rows digested and kept inside SQLite, in run id order, for POINTS to compare. */
const KEEP_SUMMARY_ROWS =
  "SELECT count(rl_metric_rows_keep(0, run_id, d)) FROM (SELECT run_id, rl_metric_summary_rows(key, last, last_step, min, max) AS d FROM metric_summaries GROUP BY run_id ORDER BY run_id)";
const KEEP_ROLLUP_ROWS =
  "SELECT count(rl_metric_rows_keep(1, run_id, d)) FROM (SELECT run_id, rl_metric_rollup_rows(key, block, first_step, last_step, min_step, min_value, max_step, max_value) AS d FROM metric_rollups GROUP BY run_id ORDER BY run_id)";

/** What eachRun visits, read ahead (prefetchRunMetrics). */
export type PrefetchedRunMetrics = [runId: number, found: RunMetricsInSqlite | null][];

/**
 * Reads now what eachRun would visit (the content worker does, while it waits for the run events from the main
 * thread: run-events-feed.ts). Null when that read fails: eachRun then reads as before, so a table that is not there
 * still stops the check where checkMetrics reads it. (Same connection, same read transaction: the same visits.)
 */
export function prefetchRunMetrics(sqlite: Database.Database): PrefetchedRunMetrics | null {
  const visits: PrefetchedRunMetrics = [];
  try {
    metricsInSqlite(sqlite).eachRun((runId, found) => visits.push([runId, found]));
    return visits;
  } catch {
    return null;
  }
}

/** `sqlite` must have the native extension loaded (loadAuditNative). `prefetched`: eachRun visits these instead. */
export function metricsInSqlite(sqlite: Database.Database, prefetched: PrefetchedRunMetrics | null = null): MetricsInSqlite {
  // Prepared when first used, as every read here: a table that is not there stops the check where checkMetrics reads it.
  let pointsOfRun: Database.Statement | null = null;
  return {
    eachRun(visit) {
      if (prefetched) {
        for (const [runId, found] of prefetched) visit(runId, found);
        return;
      }
      // (What is kept is forgotten however this ends; the points' read is closed by then: for-of returns it.)
      const release = sqlite.prepare("SELECT rl_metric_rows_release()");
      release.get();
      try {
        sqlite.prepare(KEEP_SUMMARY_ROWS).get();
        sqlite.prepare(KEEP_ROLLUP_ROWS).get();
        visitRuns(sqlite, visit);
      } finally {
        release.get();
      }
    },
    pointsOf: (runId) =>
      (pointsOfRun ??= sqlite
        .prepare("SELECT run_id, key, step, value, epoch FROM metrics WHERE run_id = ? ORDER BY key, step")
        .raw(true)).iterate(runId) as IterableIterator<MetricPoint>,
  };
}

function visitRuns(sqlite: Database.Database, visit: (runId: number, found: RunMetricsInSqlite | null) => void): void {
  // Rows under a run id that is not a number are never compared by checkMetrics either.
  for (const [runId, text] of sqlite.prepare(POINTS).raw(true).iterate() as IterableIterator<[unknown, unknown]>) {
    if (typeof runId !== "number") continue;
    if (typeof text !== "string") {
      visit(runId, null);
      continue;
    }
    const [pointsSha256, points, finals, rows, keys, blocks] = text.split("\n");
    visit(runId, {
      pointsSha256: pointsSha256!,
      points: Number(points),
      finals: finals!,
      rowsMatch: rows === "1",
      keys: Number(keys),
      blocks: Number(blocks),
    });
  }
}
