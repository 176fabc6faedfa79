/**
 * Content check of metric series. Each run's end event (run.complete, run.cancel, run.fail) recorded the digest of
 * all its points (metricsSha256 over key/step/value, metricEpochsSha256 over key/step/epoch, metricPoints) and the
 * final values (finalMetrics). The points are streamed once per run and compared; on the live database the
 * per-key summaries (metric_summaries) and the chart rollups (metric_rollups) are re-derived from the same stream.
 *
 * Invariants: a run that has not ended has no digest yet (stated in notCovered, not a failure); point counts in
 * summaries/rollups are not compared (a replayed step is legitimately counted twice, see persist-events.ts).
 */
import type Database from "better-sqlite3";
import type { ContentChecker } from "./checker";
import type { MetricDigest } from "./records";
import type { RunLedger } from "./check-runs";
import type { Tables } from "./tables";

export type MetricSource = {
  /** The run's points digested, or null when this source does not hold them. */
  digest(runId: number): MetricDigest | null;
  /** Live database only: what metric_summaries and metric_rollups hold for the run. */
  stored?(runId: number): { summaries: Map<string, { last: number; lastStep: number; min: number; max: number }>; rollups: Map<string, { firstStep: number; lastStep: number; minStep: number; minValue: number; maxStep: number; maxValue: number }> };
};

export function sqliteStoredMetrics(sqlite: Database.Database): NonNullable<MetricSource["stored"]> {
  const summaries = sqlite.prepare("SELECT key, last, last_step, min, max FROM metric_summaries WHERE run_id = ?").raw(true);
  const rollups = sqlite.prepare("SELECT key, block, first_step, last_step, min_step, min_value, max_step, max_value FROM metric_rollups WHERE run_id = ?").raw(true);
  return (runId) => ({
    summaries: new Map((summaries.all(runId) as [string, number, number, number, number][]).map(([k, last, lastStep, min, max]) => [k, { last, lastStep, min, max }])),
    rollups: new Map((rollups.all(runId) as [string, number, number, number, number, number, number, number][]).map(([k, block, firstStep, lastStep, minStep, minValue, maxStep, maxValue]) => [`${k}\u0000${block}`, { firstStep, lastStep, minStep, minValue, maxStep, maxValue }])),
  });
}

export function checkMetrics(c: ContentChecker, t: Tables, runs: RunLedger, source: MetricSource): void {
  let unfinished = 0;
  for (const run of t.runs.values()) {
    const end = runs.ends.get(run.id);
    if (!end) {
      if (runs.created.has(run.id)) unfinished++;
      continue;
    }
    const { ev, payload: p } = end;
    if (!("metricsSha256" in p)) {
      c.gap(ev.action, "metric points (training curves)", ev.seq, "run", run.id);
      continue;
    }
    const d = source.digest(run.id);
    if (!d) continue;
    const summaries = d.summaries;
    const { sha256, epochsSha256, points } = d.digest();
    c.cover("run", run.id, ev.seq);
    c.compare("run", run.id, "metric points (key, step, value)", p.metricsSha256, sha256, ev.seq);
    if ("metricPoints" in p) c.compare("run", run.id, "number of metric points", p.metricPoints, points, ev.seq);
    if ("metricEpochsSha256" in p) c.compare("run", run.id, "epoch of each metric point", p.metricEpochsSha256, epochsSha256, ev.seq);
    else c.gap(ev.action, "epoch of each metric point (x axis of the curves)", ev.seq, "run", run.id);
    if ("finalMetrics" in p) {
      const finals = Object.fromEntries([...summaries].map(([k, s]) => [k, s.last]));
      c.compare("run", run.id, "final metrics", p.finalMetrics, finals, ev.seq);
    }
    const stored = source.stored?.(run.id);
    if (!stored) continue;
    for (const [key, s] of summaries) {
      const row = stored.summaries.get(key);
      stored.summaries.delete(key);
      c.derived("run", run.id, `metric summary ${key} (latest, min, max)`, "the metric points give", { last: s.last, lastStep: s.lastStep, min: s.min, max: s.max }, row ?? null, ev.seq);
      for (const [block, b] of s.blocks) {
        const k = `${key}\u0000${block}`;
        const r = stored.rollups.get(k);
        stored.rollups.delete(k);
        c.derived("run", run.id, `chart rollup ${key} block ${block}`, "the metric points give", b, r ?? null, ev.seq);
      }
    }
    for (const [key, row] of stored.summaries) c.derived("run", run.id, `metric summary ${key} (latest, min, max)`, "the metric points give", null, row, ev.seq);
    for (const [k, r] of stored.rollups) c.derived("run", run.id, `chart rollup ${k.replace("\u0000", " block ")}`, "the metric points give", null, r, ev.seq);
  }
  if (unfinished > 0) c.notCovered(`metric points of ${unfinished} run(s) that have not ended are not covered yet: a run's end event records their digest`);
}
