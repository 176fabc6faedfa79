/**
 * The definitions of the hashes that bind table rows to the audit ledger, shared by the services that write the
 * events (so the hash is computed when the row is created) and by the content verifier (which recomputes them).
 * One definition per fact, so writer and checker cannot drift apart.
 *
 * Invariants:
 * - metricSeriesDigest(run).sha256 = sha256Canonical(SELECT key, step, value FROM metrics WHERE run_id = ? ORDER BY key, step)
 *   (an array of {key, step, value} objects); .epochsSha256 the same over {epoch, key, step}; computed streaming.
 * - decisionRecordSha256 covers every column of a decision row.
 * - evaluationResultSha256 = sha256Canonical(result) where result = metrics plus `confusion` when there is one: the
 *   value the trainer produced, which the evaluation.create event records as metricsSha256.
 */
import type Database from "better-sqlite3";
import { createHash } from "node:crypto";
import { sha256Canonical } from "@/server/audit/canonical";

export type DecisionRecordRow = {
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

/** The content a decision's sha256 covers: all its columns. */
export function decisionRecord(d: DecisionRecordRow) {
  return {
    id: d.id,
    runId: d.runId,
    kind: d.kind,
    path: d.path,
    oldValueJson: d.oldValueJson,
    newValueJson: d.newValueJson,
    rationale: d.rationale,
    correctsDecisionId: d.correctsDecisionId,
    authorId: d.authorId,
    createdAt: d.createdAt,
  };
}

export function decisionRecordSha256(d: DecisionRecordRow): string {
  return sha256Canonical(decisionRecord(d));
}

/** How a flattened config value is stored in run_params (the content check derives the rows from the config). */
export function runParamValue(v: unknown): { valueText: string | null; valueNum: number | null } {
  if (typeof v === "number") return { valueText: null, valueNum: v };
  if (typeof v === "boolean") return { valueText: String(v), valueNum: v ? 1 : 0 };
  if (v === null || v === undefined) return { valueText: null, valueNum: null };
  return { valueText: typeof v === "string" ? v : JSON.stringify(v), valueNum: null };
}

/** The evaluation result as the trainer produced it, rebuilt from the row's two JSON columns. */
export function evaluationResult(metricsJson: string, confusionJson: string | null): Record<string, unknown> {
  const metrics = JSON.parse(metricsJson) as Record<string, unknown>;
  return confusionJson === null ? metrics : { ...metrics, confusion: JSON.parse(confusionJson) as unknown };
}

export function evaluationResultSha256(metricsJson: string, confusionJson: string | null): string {
  return sha256Canonical(evaluationResult(metricsJson, confusionJson));
}

const CHUNK_CHARS = 1 << 16;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function jcsString(s: string): string {
  if (LONE_SURROGATE.test(s)) throw new Error(`metric key ${JSON.stringify(s)} contains a lone surrogate: it cannot be hashed canonically`);
  return JSON.stringify(s);
}

/** Latest, min and max of one metric key, and the per-block (METRIC_ROLLUP_BLOCK steps) extremes, as the writer keeps them. */
export type MetricKeySummary = { last: number; lastStep: number; min: number; max: number; blocks: Map<number, { firstStep: number; lastStep: number; minStep: number; minValue: number; maxStep: number; maxValue: number }> };

/**
 * Digests of a run's metric points, fed in key, step order:
 * - sha256 = sha256Canonical([{key, step, value}, …]) (the run's recorded metricsSha256),
 * - epochsSha256 = sha256Canonical([{epoch, key, step}, …]) (where each point sits on the epoch axis of a chart),
 * - points = how many; summaries = per key latest/min/max and per-block extremes (ties keep the earliest step).
 * Equal to sha256Canonical of the full arrays (tested), without building them.
 */
export class MetricDigest {
  private readonly values = createHash("sha256");
  private readonly epochs = createHash("sha256");
  private v = "[";
  private e = "[";
  points = 0;
  private lastKey: string | null = null;
  private keyText = "";
  private current: MetricKeySummary | null = null;
  readonly summaries = new Map<string, MetricKeySummary>();

  constructor(private readonly rollupBlock = 1024) {}

  add(key: string, step: number, value: number, epoch: number): void {
    if (key !== this.lastKey) {
      this.lastKey = key;
      this.keyText = jcsString(key);
      this.current = null;
    }
    if (!Number.isFinite(value) || !Number.isFinite(step) || !Number.isFinite(epoch)) throw new Error(`metric ${key} step ${step} is not a finite number: it cannot be hashed canonically`);
    const sep = this.points === 0 ? "" : ",";
    const stepText = JSON.stringify(step);
    this.v += `${sep}{"key":${this.keyText},"step":${stepText},"value":${JSON.stringify(value)}}`;
    this.e += `${sep}{"epoch":${JSON.stringify(epoch)},"key":${this.keyText},"step":${stepText}}`;
    this.points++;
    if (this.v.length >= CHUNK_CHARS) {
      this.values.update(this.v);
      this.epochs.update(this.e);
      this.v = "";
      this.e = "";
    }
    let s = this.current;
    if (!s) {
      s = this.summaries.get(key) ?? null;
      if (!s) this.summaries.set(key, (s = { last: value, lastStep: step, min: value, max: value, blocks: new Map() }));
      this.current = s;
    }
    if (step >= s.lastStep) [s.last, s.lastStep] = [value, step];
    if (value < s.min) s.min = value;
    if (value > s.max) s.max = value;
    const index = Math.floor(step / this.rollupBlock);
    const b = s.blocks.get(index);
    if (!b) s.blocks.set(index, { firstStep: step, lastStep: step, minStep: step, minValue: value, maxStep: step, maxValue: value });
    else {
      if (step < b.firstStep) b.firstStep = step;
      if (step > b.lastStep) b.lastStep = step;
      if (value < b.minValue || (value === b.minValue && step < b.minStep)) [b.minValue, b.minStep] = [value, step];
      if (value > b.maxValue || (value === b.maxValue && step < b.maxStep)) [b.maxValue, b.maxStep] = [value, step];
    }
  }

  digest(): { sha256: string; epochsSha256: string; points: number } {
    this.values.update(this.v + "]");
    this.epochs.update(this.e + "]");
    this.v = this.e = "";
    return { sha256: this.values.digest("hex"), epochsSha256: this.epochs.digest("hex"), points: this.points };
  }
}

/** Streams a run's metric points (raw prepared statement, key, step order) into a MetricDigest. */
export function digestRunMetrics(sqlite: Database.Database, runId: number, rollupBlock?: number): MetricDigest {
  const d = new MetricDigest(rollupBlock);
  const rows = sqlite.prepare("SELECT key, step, value, epoch FROM metrics WHERE run_id = ? ORDER BY key, step").raw(true).iterate(runId) as IterableIterator<[string, number, number, number]>;
  for (const [key, step, value, epoch] of rows) d.add(key, step, value, epoch);
  return d;
}

/** The digests a run's end event records (see MetricDigest). */
export function metricSeriesDigest(sqlite: Database.Database, runId: number): { sha256: string; epochsSha256: string; points: number } {
  return digestRunMetrics(sqlite, runId).digest();
}

/** sha256 of a JSON column's value in canonical form (for columns written with canonicalJson, the text's own sha256). */
export function canonicalTextSha256(text: string): string {
  return sha256Canonical(JSON.parse(text) as unknown);
}

