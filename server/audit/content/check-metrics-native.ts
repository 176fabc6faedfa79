/**
 * The metric series of a live database digested and summarised inside SQLite (native extension, rl_audit.c
 * rl_metric_points, rl_metric_summary_rows, rl_metric_rollup_rows), so that checkMetrics (check-metrics.ts) can pass
 * a run without a JavaScript value per point: one text per run with what records.ts MetricDigest would compute from
 * its points (the points digest, their number, the final values, and digests of the summary and rollup rows those
 * points call for), and the digests of the run's metric_summaries and metric_rollups rows as they are.
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
  /** digests of the summary and rollup rows the points call for, and of those the tables hold (null: none) */
  summaries: string;
  rollups: string;
  summaryRows: string | null;
  rollupRows: string | null;
  /** how many summary and rollup rows the points call for */ keys: number;
  blocks: number;
};

export type MetricsInSqlite = {
  /** Each run with metric points, in run id order. */
  runs(): Iterable<[runId: number, found: RunMetricsInSqlite | null]>;
  /** One run's points, in key, step order (as the full stream gives them). */
  pointsOf(runId: number): Iterable<MetricPoint>;
};

const POINTS = "SELECT run_id, rl_metric_points(key, step, value, epoch) FROM metrics GROUP BY run_id ORDER BY run_id";
const SUMMARY_ROWS =
  "SELECT run_id, rl_metric_summary_rows(key, last, last_step, min, max) FROM metric_summaries GROUP BY run_id ORDER BY run_id";
const ROLLUP_ROWS =
  "SELECT run_id, rl_metric_rollup_rows(key, block, first_step, last_step, min_step, min_value, max_step, max_value) FROM metric_rollups GROUP BY run_id ORDER BY run_id";

/** `sqlite` must have the native extension loaded (loadAuditNative). */
export function metricsInSqlite(sqlite: Database.Database): MetricsInSqlite {
  // Prepared when first used, as every read here: a table that is not there stops the check where checkMetrics reads it.
  let pointsOfRun: Database.Statement | null = null;
  return {
    *runs() {
      // The three grouped reads walk their tables in run id order; rows under a run id that is not a number are
      // never compared by checkMetrics either.
      // (Each read is closed however this ends: an open one keeps the connection busy.)
      let summaries: Digests | null = null;
      let rollups: Digests | null = null;
      try {
        summaries = groupedDigests(sqlite, SUMMARY_ROWS);
        rollups = groupedDigests(sqlite, ROLLUP_ROWS);
        yield* runsWith(sqlite, summaries, rollups);
      } finally {
        summaries?.close();
        rollups?.close();
      }
    },
    pointsOf: (runId) =>
      (pointsOfRun ??= sqlite
        .prepare("SELECT run_id, key, step, value, epoch FROM metrics WHERE run_id = ? ORDER BY key, step")
        .raw(true)).iterate(runId) as IterableIterator<MetricPoint>,
  };
}

type Digests = { at(runId: number): string | null; close(): void };

function* runsWith(sqlite: Database.Database, summaries: Digests, rollups: Digests): Generator<[number, RunMetricsInSqlite | null]> {
  for (const [runId, text] of sqlite.prepare(POINTS).raw(true).iterate() as IterableIterator<[unknown, unknown]>) {
    if (typeof runId !== "number") continue;
    const summaryRows = summaries.at(runId);
    const rollupRows = rollups.at(runId);
    if (typeof text !== "string") {
      yield [runId, null];
      continue;
    }
    const [pointsSha256, points, finals, summaryDigest, rollupDigest, keys, blocks] = text.split("\n");
    yield [
      runId,
      {
        pointsSha256: pointsSha256!,
        points: Number(points),
        finals: finals!,
        summaries: summaryDigest!,
        rollups: rollupDigest!,
        summaryRows,
        rollupRows,
        keys: Number(keys),
        blocks: Number(blocks),
      },
    ];
  }
}

/** A grouped read's digest per numeric run id, asked for in increasing run id order (null: no row, or uncertain). */
function groupedDigests(sqlite: Database.Database, sql: string): Digests {
  const rows = sqlite.prepare(sql).raw(true).iterate() as IterableIterator<[unknown, unknown]>;
  let current: [unknown, unknown] | undefined = rows.next().value;
  return {
    close: () => void rows.return?.(),
    at(runId) {
      while (current !== undefined && (typeof current[0] !== "number" || current[0] < runId)) current = rows.next().value;
      if (current === undefined || current[0] !== runId) return null;
      return typeof current[1] === "string" ? current[1] : null;
    },
  };
}
