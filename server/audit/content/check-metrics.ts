/**
 * Content check of metric series. Each run's end event (run.complete, run.cancel, run.fail) recorded the digest of
 * all its points (metricPointsSha256 over epoch/key/step/value; older events only metricsSha256 over key/step/value),
 * their number and the final values (finalMetrics). The points of all runs are streamed once, in (run, key, step)
 * order, and each run's digest compared; on the live database the per-key summaries (metric_summaries) and chart
 * rollups (metric_rollups) are then streamed once each and compared with what the points give.
 *
 * Invariants: a run that has not ended has no digest yet (stated in notCovered, not a failure); point counts in
 * summaries/rollups are not compared (databases written before points were stored idempotently may count a re-sent
 * step twice; see persist-events.ts insertMetricPoints); a
 * digest is computed only for runs whose end event recorded one, and only the digest that event recorded.
 */
import type Database from "better-sqlite3";
import type { ContentChecker } from "./checker";
import { MetricDigest, type MetricBlock, type MetricKeySummary } from "./records";
import type { RunLedger } from "./check-runs";
import { countOf } from "@/contracts/count-text";

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
};

export function sqliteMetricSource(sqlite: Database.Database): MetricSource {
  return {
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

type Expect = { seq: number; action: string; values: unknown; points: unknown; count: unknown; finals: unknown; hasFinals: boolean };

export function checkMetrics(
  c: ContentChecker,
  t: { runs: ReadonlyMap<number, { id: number }> },
  runs: RunLedger,
  source: MetricSource,
): void {
  // What each ended run's event recorded.
  const expected = new Map<number, Expect>();
  let unfinished = 0;
  for (const run of t.runs.values()) {
    const end = runs.ends.get(run.id);
    if (!end) {
      if (runs.created.has(run.id)) unfinished++;
      continue;
    }
    const { ev, payload: p } = end;
    if (!("metricsSha256" in p) && !("metricPointsSha256" in p)) {
      c.gap(ev.action, "metric points (training curves)", ev.seq, "run", run.id);
      continue;
    }
    if (source.holds && !source.holds(run.id)) continue;
    if (!("metricPointsSha256" in p)) c.gap(ev.action, "epoch of each metric point (x axis of the curves)", ev.seq, "run", run.id);
    expected.set(run.id, {
      seq: ev.seq,
      action: ev.action,
      values: p.metricsSha256,
      points: p.metricPointsSha256,
      count: p.metricPoints,
      finals: p.finalMetrics,
      hasFinals: "finalMetrics" in p,
    });
  }
  if (unfinished > 0)
    c.notCovered(
      `metric points of ${countOf(unfinished, "run")} that ${unfinished === 1 ? "has" : "have"} not ended are not covered yet: a run's end event records their digest`,
    );
  const stream = source.points();
  if (stream === null) return;

  const derived = new Map<number, Map<string, MetricKeySummary>>();
  const finish = (runId: number, d: MetricDigest) => {
    const e = expected.get(runId)!;
    const got = d.digest();
    c.cover("run", runId, e.seq);
    if (e.points !== undefined) c.compare("run", runId, "metric points (epoch, key, step, value)", e.points, got.pointsSha256, e.seq);
    else c.compare("run", runId, "metric points (key, step, value)", e.values, got.sha256, e.seq);
    if (e.count !== undefined) c.compare("run", runId, "number of metric points", e.count, got.points, e.seq);
    if (e.hasFinals) {
      if (sameFinals(e.finals, d.summaries)) c.checked++;
      else c.compare("run", runId, "final metrics", e.finals, Object.fromEntries([...d.summaries].map(([k, s]) => [k, s.last])), e.seq);
    }
    derived.set(runId, d.summaries);
    expected.delete(runId);
  };
  let runId = -1;
  let d: MetricDigest | null = null;
  for (const [r, key, step, value, epoch] of stream) {
    if (r !== runId) {
      if (d) finish(runId, d);
      runId = r;
      const e = expected.get(r);
      d = e ? new MetricDigest({ values: e.points === undefined, points: e.points !== undefined }) : null;
    }
    d?.add(key, step, value, epoch);
  }
  if (d) finish(runId, d);
  for (const id of [...expected.keys()])
    finish(id, new MetricDigest({ values: expected.get(id)!.points === undefined, points: expected.get(id)!.points !== undefined })); // runs whose points are all gone

  if (source.summaries) compareSummaries(c, derived, source.summaries(), runs);
  if (source.rollups) compareRollups(c, derived, source.rollups(), runs);
}

/**
 * True when the recorded final metrics have exactly the canonical text of {key: latest value} of the summaries (what
 * c.compare would find equal), checked without writing either text: the same own keys, each a number equal to the
 * latest value (=== treats -0 and 0 alike, as their canonical text does). Anything else goes to c.compare, which decides.
 */
function sameFinals(recorded: unknown, summaries: ReadonlyMap<string, MetricKeySummary>): boolean {
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
