/**
 * The definitions of the hashes that bind table rows to the audit ledger, shared by the services that write the
 * events (so the hash is computed when the row is created) and by the content verifier (which recomputes them).
 * One definition per fact, so writer and checker cannot drift apart.
 *
 * Invariants:
 * - metricSeriesDigest(run).sha256 = sha256Canonical(SELECT key, step, value FROM metrics WHERE run_id = ? ORDER BY key, step)
 *   (an array of {key, step, value} objects); .pointsSha256 the same over {epoch, key, step, value}; computed streaming.
 * - decisionRecordSha256 covers every column of a decision row.
 * - evaluationResultSha256 = sha256Canonical(result) where result = metrics plus `confusion` when there is one: the
 *   value the trainer produced, which the evaluation.create event records as metricsSha256.
 */
import type Database from "better-sqlite3";
import crypto, { createHash, type Hash } from "node:crypto";
import { sql } from "drizzle-orm";
import { sha256Canonical } from "@/contracts/canonical";
import { sqliteClientOf } from "@/db/client";
import { native, type TxBody } from "@/db/store";

/** sha256 hex of a string; one-shot crypto.hash where Node has it (several times cheaper than createHash for short input). */
export const sha256Hex: (s: string) => string =
  typeof crypto.hash === "function" ? (s) => crypto.hash("sha256", s, "hex") : (s) => createHash("sha256").update(s).digest("hex");

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

/** sha256Canonical(decisionRecord(d)), with the canonical text written directly (keys in RFC 8785 order; tested equal). */
export function decisionRecordSha256(d: DecisionRecordRow): string {
  const j = JSON.stringify;
  return sha256Hex(
    `{"authorId":${d.authorId},"correctsDecisionId":${d.correctsDecisionId},"createdAt":${j(d.createdAt)},"id":${d.id},"kind":${j(d.kind)},` +
      `"newValueJson":${j(d.newValueJson)},"oldValueJson":${j(d.oldValueJson)},"path":${j(d.path)},"rationale":${j(d.rationale)},"runId":${d.runId}}`,
  );
}

/** The columns of a run_inputs row (a dataset a script declared as input of its run, server/mlflow/inputs.ts). */
export type RunInputRecordRow = {
  id: number;
  runId: number;
  name: string;
  digest: string;
  sourceType: string;
  source: string;
  schemaText: string | null;
  profile: string | null;
  context: string | null;
  tagsJson: string;
  createdBy: number;
  createdAt: string;
};

/** sha256 of a run_inputs row's canonical record: every column (its run.logInputs event carries it). */
export function runInputRecordSha256(r: RunInputRecordRow): string {
  return sha256Canonical({ ...r });
}

/**
 * The canonical text of a canonical object `objectText` with one more top-level member `key: valueText` inserted in
 * RFC 8785 key order (a key already present is not expected). Used to rebuild an evaluation's result from its two
 * canonical columns without parsing them.
 */
export function insertCanonicalMember(objectText: string, key: string, valueText: string): string {
  const member = `${JSON.stringify(key)}:${valueText}`;
  if (objectText === "{}") return `{${member}}`;
  let depth = 0;
  let inString = false;
  let keyStart = 1; // index of the next top-level key's opening quote
  for (let i = 0; i < objectText.length; i++) {
    const ch = objectText.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++;
      else if (ch === 0x22) inString = false;
      continue;
    }
    if (ch === 0x22) {
      if (depth === 1 && i === keyStart) {
        let end = i + 1;
        while (objectText.charCodeAt(end) !== 0x22) end += objectText.charCodeAt(end) === 0x5c ? 2 : 1;
        const raw = objectText.slice(i, end + 1);
        const existing = raw.includes("\\") ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (key < existing) return `${objectText.slice(0, i)}${member},${objectText.slice(i)}`;
        i = end;
        continue;
      }
      inString = true;
    } else if (ch === 0x7b || ch === 0x5b) depth++;
    else if (ch === 0x7d || ch === 0x5d) depth--;
    else if (ch === 0x2c && depth === 1) keyStart = i + 1;
  }
  return `${objectText.slice(0, -1)},${member}}`;
}

/** sha256 of the canonical result text, when both columns are canonical (else a different hash: callers fall back). */
export function evaluationResultTextSha256(metricsJson: string, confusionJson: string | null): string {
  return sha256Hex(confusionJson === null ? metricsJson : insertCanonicalMember(metricsJson, "confusion", confusionJson));
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
export type MetricBlock = { firstStep: number; lastStep: number; minStep: number; minValue: number; maxStep: number; maxValue: number };
export type MetricKeySummary = { last: number; lastStep: number; min: number; max: number; blocks: Map<number, MetricBlock> };

/**
 * Digests of a run's metric points, fed in key, step order:
 * - sha256 = sha256Canonical([{key, step, value}, …]) (the run's recorded metricsSha256),
 * - pointsSha256 = sha256Canonical([{epoch, key, step, value}, …]) (metricPointsSha256: also where each point sits
 *   on the epoch axis of a chart),
 * - points = how many; summaries = per key latest/min/max and per-block extremes (ties keep the earliest step).
 * Each digest is computed only when asked for. Equal to sha256Canonical of the full arrays (tested), without
 * building them.
 */
export class MetricDigest {
  private v = "[";
  private f = "[";
  points = 0;
  private lastKey: string | null = null;
  private keyText = "";
  private current: MetricKeySummary | null = null;
  readonly summaries = new Map<string, MetricKeySummary>();

  private readonly want: { values: boolean; points: boolean };
  /** Incremental hashes, created only when the text outgrows one chunk (most runs hash in one shot). */
  private values: Hash | null = null;
  private full: Hash | null = null;

  constructor(
    want: { values: boolean; points: boolean } = { values: true, points: true },
    private readonly rollupBlock = 1024,
  ) {
    this.want = want;
  }

  add(key: string, step: number, value: number, epoch: number): void {
    if (key !== this.lastKey) {
      this.lastKey = key;
      this.keyText = jcsString(key);
      this.current = null;
    }
    if (!Number.isFinite(value) || !Number.isFinite(step) || !Number.isFinite(epoch))
      throw new Error(`metric ${key} step ${step} is not a finite number: it cannot be hashed canonically`);
    const sep = this.points === 0 ? "" : ",";
    // For finite numbers String(n) is exactly what RFC 8785 (and JSON.stringify) prints.
    const tail = `"step":${step},"value":${value}}`;
    if (this.want.values) this.v += `${sep}{"key":${this.keyText},${tail}`;
    if (this.want.points) this.f += `${sep}{"epoch":${epoch},"key":${this.keyText},${tail}`;
    this.points++;
    if (this.v.length >= CHUNK_CHARS || this.f.length >= CHUNK_CHARS) this.flush();
    let s = this.current;
    if (s === null) {
      s = this.summaries.get(key) ?? null;
      if (s === null) {
        s = { last: value, lastStep: step, min: value, max: value, blocks: new Map() };
        this.summaries.set(key, s);
      }
      this.current = s;
    }
    if (step >= s.lastStep) {
      s.last = value;
      s.lastStep = step;
    }
    if (value < s.min) s.min = value;
    if (value > s.max) s.max = value;
    const index = Math.floor(step / this.rollupBlock);
    const b = s.blocks.get(index);
    if (b === undefined)
      s.blocks.set(index, { firstStep: step, lastStep: step, minStep: step, minValue: value, maxStep: step, maxValue: value });
    else {
      if (step < b.firstStep) b.firstStep = step;
      if (step > b.lastStep) b.lastStep = step;
      if (value < b.minValue || (value === b.minValue && step < b.minStep)) {
        b.minValue = value;
        b.minStep = step;
      }
      if (value > b.maxValue || (value === b.maxValue && step < b.maxStep)) {
        b.maxValue = value;
        b.maxStep = step;
      }
    }
  }

  private flush(): void {
    if (this.want.values) (this.values ??= createHash("sha256")).update(this.v);
    if (this.want.points) (this.full ??= createHash("sha256")).update(this.f);
    this.v = "";
    this.f = "";
  }

  digest(): { sha256: string | null; pointsSha256: string | null; points: number } {
    const one = (h: Hash | null, text: string) => (h ? h.update(text).digest("hex") : sha256Hex(text));
    return {
      sha256: this.want.values ? one(this.values, this.v + "]") : null,
      pointsSha256: this.want.points ? one(this.full, this.f + "]") : null,
      points: this.points,
    };
  }
}

/** Streams a run's metric points (raw prepared statement, key, step order) into a MetricDigest. */
export function digestRunMetrics(sqlite: Database.Database, runId: number, want?: { values: boolean; points: boolean }): MetricDigest {
  const d = new MetricDigest(want);
  const rows = sqlite
    .prepare("SELECT key, step, value, epoch FROM metrics WHERE run_id = ? ORDER BY key, step")
    .raw(true)
    .iterate(runId) as IterableIterator<[string, number, number, number]>;
  for (const [key, step, value, epoch] of rows) d.add(key, step, value, epoch);
  return d;
}

/** The digests a run's end event records (see MetricDigest). */
export function metricSeriesDigest(sqlite: Database.Database, runId: number): { sha256: string; pointsSha256: string; points: number } {
  const d = digestRunMetrics(sqlite, runId).digest();
  return { sha256: d.sha256!, pointsSha256: d.pointsSha256!, points: d.points };
}

/**
 * metricSeriesDigest as a part of a transaction body (db/store.ts), on either store: the same digests of the points
 * the body's transaction sees, in key (byte order), step order (SQLite's BINARY order is UTF-8 byte order, as
 * PostgreSQL's "C" collation).
 */
export function* metricSeriesDigestTx(runId: number): TxBody<{ sha256: string; pointsSha256: string; points: number }> {
  return yield* native({
    sqlite: (tx) => metricSeriesDigest(sqliteClientOf(tx), runId),
    pg: async (tx) => {
      const result = await tx.execute<{ key: string; step: string; value: number; epoch: number }>(
        sql`SELECT key, step, value, epoch FROM metrics WHERE run_id = ${runId} ORDER BY key COLLATE "C", step`,
      );
      const d = new MetricDigest();
      for (const r of result.rows) d.add(r.key, Number(r.step), r.value, r.epoch);
      const out = d.digest();
      return { sha256: out.sha256!, pointsSha256: out.pointsSha256!, points: out.points };
    },
  });
}

/** sha256 of a JSON column's value in canonical form (for columns written with canonicalJson, the text's own sha256). */
export function canonicalTextSha256(text: string): string {
  return sha256Canonical(JSON.parse(text) as unknown);
}
