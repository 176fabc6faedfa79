/**
 * Content check of metric series. Each run's end event (run.complete, run.cancel, run.fail) recorded the digest of
 * all its points (metricPointsSha256 over epoch/key/step/value; older events only metricsSha256 over key/step/value),
 * their number and the final values (finalMetrics). The points of all runs are streamed once, in (run, key, step)
 * order, and each run's digest compared; on the live database the per-key summaries (metric_summaries) and chart
 * rollups (metric_rollups) are then streamed once each and compared with what the points give. With the native
 * extension, SQLite first digests and summarises each run's points and rows (check-metrics-native.ts): a run whose
 * every comparison passes there is counted without its points being read here; the others are judged here as above.
 *
 * Invariants: a run that has not ended has no digest yet (stated in notCovered, not a failure); point counts in
 * summaries/rollups are not compared (databases written before points were stored idempotently may count a re-sent
 * step twice; see persist-events.ts insertMetricPoints); a
 * digest is computed only for runs whose end event recorded one, and only the digest that event recorded.
 */
import type Database from "better-sqlite3";
import type { ContentChecker } from "./checker";
import { MetricDigest, type MetricBlock, type MetricKeySummary } from "./records";
import type { RunEnd, RunLedger } from "./check-runs";
import { countOf } from "@/contracts/count-text";
import { metricsInSqlite, type MetricsInSqlite, type PrefetchedRunMetrics, type RunMetricsInSqlite } from "./check-metrics-native";

export type MetricPoint = readonly [runId: number, key: string, step: number, value: number, epoch: number];

export type MetricSource = {
  /** Every point, ordered by run, key, step; or null when this source holds no points (then nothing is compared). */
  points(): Iterable<MetricPoint> | null;
  /** Whether the source holds the points of this run (default: all runs). */
  holds?(runId: number): boolean;
  /** Live database only: metric_summaries rows [runId, key, last, lastStep, min, max] and metric_rollups rows
   *  [runId, key, block, firstStep, lastStep, minStep, minValue, maxStep, maxValue]. */
  summaries?(): Iterable<[number, string, number, number, number, number]>;
  rollups?(): Iterable<[number, string, number, number, number, number, number, number, number]>;
  /** Live database with the native extension: each run's points digested and summarised by SQLite. */
  inSqlite?: MetricsInSqlite;
};

/**
 * `inSqlite` (the native extension must be loaded on `sqlite`): first let SQLite digest and summarise each run's
 * points (check-metrics-native.ts); a run that passes there is counted without reading its points here.
 */
export function sqliteMetricSource(
  sqlite: Database.Database,
  inSqlite = false,
  prefetched: PrefetchedRunMetrics | null = null,
): MetricSource {
  return {
    ...(inSqlite ? { inSqlite: metricsInSqlite(sqlite, prefetched) } : {}),
    points: () =>
      sqlite
        .prepare("SELECT run_id, key, step, value, epoch FROM metrics ORDER BY run_id, key, step")
        .raw(true)
        .iterate() as IterableIterator<MetricPoint>,
    summaries: () =>
      sqlite.prepare("SELECT run_id, key, last, last_step, min, max FROM metric_summaries").raw(true).iterate() as IterableIterator<
        [number, string, number, number, number, number]
      >,
    rollups: () =>
      sqlite
        .prepare("SELECT run_id, key, block, first_step, last_step, min_step, min_value, max_step, max_value FROM metric_rollups")
        .raw(true)
        .iterate() as IterableIterator<[number, string, number, number, number, number, number, number, number]>,
  };
}

/**
 * What a run's end event recorded of its metric series: the run's RunEnd itself (no object per run is made for it;
 * its payload keeps the members read here: metricsSha256, metricPointsSha256, metricPoints, finalMetrics).
 */
type Expect = RunEnd;

export function checkMetrics(c: ContentChecker, t: { runs: ReadonlyMap<number, unknown> }, runs: RunLedger, source: MetricSource): void {
  // What each ended run's event recorded.
  const expected = new Map<number, Expect>();
  let unfinished = 0;
  for (const runId of t.runs.keys()) {
    const end = runs.ends.get(runId);
    if (!end) {
      if (runs.created.has(runId)) unfinished++;
      continue;
    }
    const { ev, payload: p } = end;
    if (!("metricsSha256" in p) && !("metricPointsSha256" in p)) {
      c.gap(ev.action, "metric points (training curves)", ev.seq, "run", runId);
      continue;
    }
    if (source.holds && !source.holds(runId)) continue;
    if (!("metricPointsSha256" in p)) c.gap(ev.action, "epoch of each metric point (x axis of the curves)", ev.seq, "run", runId);
    expected.set(runId, end);
  }
  if (unfinished > 0)
    c.notCovered(
      `metric points of ${countOf(unfinished, "run")} that ${unfinished === 1 ? "has" : "have"} not ended are not covered yet: a run's end event records their digest`,
    );
  // (The full stream is opened only when read: an open iterator keeps the connection busy.)
  const passed = source.inSqlite ? runsPassedInSqlite(source.inSqlite, expected) : null;
  const stream = passed ? null : source.points();
  if (!passed && stream === null) return;

  const derived = new Map<number, Map<string, MetricKeySummary>>();
  const finish = (runId: number, d: MetricDigest) => {
    const e = expected.get(runId)!;
    const got = d.digest();
    const { ev, payload: p } = e;
    c.cover("run", runId, ev.seq);
    if (p.metricPointsSha256 !== undefined)
      c.compare("run", runId, "metric points (epoch, key, step, value)", p.metricPointsSha256, got.pointsSha256, ev.seq);
    else c.compare("run", runId, "metric points (key, step, value)", p.metricsSha256, got.sha256, ev.seq);
    if (p.metricPoints !== undefined) c.compare("run", runId, "number of metric points", p.metricPoints, got.points, ev.seq);
    if ("finalMetrics" in p) {
      if (sameFinals(p.finalMetrics, d.summaries)) c.checked++;
      else
        c.compare("run", runId, "final metrics", p.finalMetrics, Object.fromEntries([...d.summaries].map(([k, s]) => [k, s.last])), ev.seq);
    }
    derived.set(runId, d.summaries);
    expected.delete(runId);
  };
  // Summary and rollup rows of the runs that passed in SQLite, counted where compareSummaries and compareRollups count them.
  const passedSummaryRows = passed?.keys ?? 0,
    passedRollupRows = passed?.blocks ?? 0;
  let runId = -1;
  let d: MetricDigest | null = null;
  const add = ([r, key, step, value, epoch]: MetricPoint) => {
    if (r !== runId) {
      if (d) finish(runId, d);
      runId = r;
      const e = expected.get(r);
      d = e ? digestFor(e) : null;
    }
    d?.add(key, step, value, epoch);
  };
  if (passed && source.inSqlite) {
    // The same runs in the same (run id) order as the full stream: those SQLite passed counted as finish() counts
    // them, the others' points read run by run.
    for (const id of [...expected.keys()].sort((a, b) => a - b)) {
      if (passed.ids.has(id)) {
        const { ev, payload: p } = expected.get(id)!;
        c.cover("run", id, ev.seq);
        c.checked += 1 + (p.metricPoints !== undefined ? 1 : 0) + ("finalMetrics" in p ? 1 : 0); // as finish() counts a run that passes
        expected.delete(id);
      } else for (const point of source.inSqlite.pointsOf(id)) add(point);
    }
  } else if (stream) for (const point of stream) add(point);
  if (d) finish(runId, d);
  for (const [id, e] of [...expected]) finish(id, digestFor(e)); // runs whose points are all gone

  // (Rows of runs without derived summaries are neither compared nor counted: with none, the tables need no read.)
  if (source.summaries) {
    c.checked += passedSummaryRows;
    if (!passed || derived.size > 0) compareSummaries(c, derived, source.summaries(), runs);
  }
  if (source.rollups) {
    c.checked += passedRollupRows;
    if (!passed || derived.size > 0) compareRollups(c, derived, source.rollups(), runs);
  }
}

/** The digest a run's points are compared with: of all four fields, or of key, step and value for older events. */
function digestFor(e: Expect): MetricDigest {
  const points = e.payload.metricPointsSha256 !== undefined;
  return new MetricDigest({ values: !points, points });
}

/**
 * The expected runs whose every comparison in checkMetrics passes on what SQLite found (check-metrics-native.ts),
 * and how many summary and rollup rows they have together; null when SQLite could not read the tables (then every
 * run is judged here, and the same error, if any, stops the check where it would have).
 */
function runsPassedInSqlite(
  inSqlite: MetricsInSqlite,
  expected: ReadonlyMap<number, Expect>,
): { ids: Set<number>; keys: number; blocks: number } | null {
  const passed = { ids: new Set<number>(), keys: 0, blocks: 0 };
  try {
    inSqlite.eachRun((runId, found) => {
      const e = expected.get(runId);
      if (!e || !found || !runPassesInSqlite(e.payload, found)) return;
      passed.ids.add(runId);
      passed.keys += found.keys;
      passed.blocks += found.blocks;
    });
  } catch {
    return null;
  }
  return passed;
}

/**
 * finish()'s comparisons, all passing: the points digest, their number, the final values, and every summary and
 * rollup row (`p`: what the end event recorded).
 */
function runPassesInSqlite(p: Expect["payload"], found: RunMetricsInSqlite): boolean {
  if (p.metricPointsSha256 === undefined || p.metricPointsSha256 !== found.pointsSha256) return false;
  if (p.metricPoints !== undefined && p.metricPoints !== found.points) return false;
  if (!found.rowsMatch) return false;
  if (!("finalMetrics" in p)) return true;
  // The recorded object printing exactly as SQLite's {key: latest value} text (keys in the same order, each value a
  // number printed alike, so the same double) is what sameFinals would find: decided without parsing that text.
  if (JSON.stringify(p.finalMetrics) === found.finals) return true;
  const lasts = JSON.parse(found.finals) as Record<string, number>;
  return sameFinals(p.finalMetrics, new Map(Object.entries(lasts).map(([key, last]) => [key, { last }])));
}

/**
 * True when the recorded final metrics have exactly the canonical text of {key: latest value} of the summaries (what
 * c.compare would find equal), checked without writing either text: the same own keys, each a number equal to the
 * latest value (=== treats -0 and 0 alike, as their canonical text does). Anything else goes to c.compare, which decides.
 */
function sameFinals(recorded: unknown, summaries: ReadonlyMap<string, { last: number }>): boolean {
  if (recorded === null || typeof recorded !== "object" || Array.isArray(recorded)) return false;
  if (Object.keys(recorded).length !== summaries.size) return false;
  for (const [key, s] of summaries) {
    if (!Object.hasOwn(recorded, key)) return false;
    const v = (recorded as Record<string, unknown>)[key];
    if (typeof v !== "number" || v !== s.last) return false;
  }
  return true;
}

function seqOf(runs: RunLedger, runId: number): number | null {
  return runs.ends.get(runId)?.ev.seq ?? null;
}

function compareSummaries(
  c: ContentChecker,
  derived: Map<number, Map<string, MetricKeySummary>>,
  rows: Iterable<[number, string, number, number, number, number]>,
  runs: RunLedger,
): void {
  // The derived summaries a row was found for (by identity: no key string per row).
  const seen = new Set<MetricKeySummary>();
  for (const [runId, key, last, lastStep, min, max] of rows) {
    const ofRun = derived.get(runId);
    if (!ofRun) continue; // a run without a verified digest: its points are not covered (said above)
    const s = ofRun.get(key);
    if (s) seen.add(s);
    c.checked++;
    if (s && s.last === last && s.lastStep === lastStep && s.min === min && s.max === max) continue;
    c.derived(
      "run",
      runId,
      `metric summary ${key} (latest, min, max)`,
      "the metric points give",
      s ? { last: s.last, lastStep: s.lastStep, min: s.min, max: s.max } : null,
      { last, lastStep, min, max },
      seqOf(runs, runId),
    );
  }
  for (const [runId, ofRun] of derived) {
    for (const [key, s] of ofRun) {
      if (!seen.has(s))
        c.derived(
          "run",
          runId,
          `metric summary ${key} (latest, min, max)`,
          "the metric points give",
          { last: s.last, lastStep: s.lastStep, min: s.min, max: s.max },
          null,
          seqOf(runs, runId),
        );
    }
  }
}

function sameBlock(b: MetricBlock, r: [number, string, number, number, number, number, number, number, number]): boolean {
  return (
    b.firstStep === r[3] && b.lastStep === r[4] && b.minStep === r[5] && b.minValue === r[6] && b.maxStep === r[7] && b.maxValue === r[8]
  );
}

function compareRollups(
  c: ContentChecker,
  derived: Map<number, Map<string, MetricKeySummary>>,
  rows: Iterable<[number, string, number, number, number, number, number, number, number]>,
  runs: RunLedger,
): void {
  // The derived blocks a row was found for (by identity: no key string per row).
  const seen = new Set<MetricBlock>();
  for (const r of rows) {
    const [runId, key, block] = r;
    const ofRun = derived.get(runId);
    if (!ofRun) continue;
    const b = ofRun.get(key)?.blocks.get(block);
    if (b) seen.add(b);
    c.checked++;
    if (b && sameBlock(b, r)) continue;
    const [, , , firstStep, lastStep, minStep, minValue, maxStep, maxValue] = r;
    c.derived(
      "run",
      runId,
      `chart rollup ${key} block ${block}`,
      "the metric points give",
      b ?? null,
      { firstStep, lastStep, minStep, minValue, maxStep, maxValue },
      seqOf(runs, runId),
    );
  }
  for (const [runId, ofRun] of derived) {
    for (const [key, s] of ofRun) {
      for (const [block, b] of s.blocks)
        if (!seen.has(b))
          c.derived("run", runId, `chart rollup ${key} block ${block}`, "the metric points give", b, null, seqOf(runs, runId));
    }
  }
}
