/**
 * One metric series of one run for charts, downsampled on the server.
 *
 * Invariants:
 * - A range holding <= maxPoints points comes back raw (every point, step order, downsampled: false).
 * - Otherwise the step range is cut into equal buckets and, per bucket, SQL finds the point with the
 *   lowest and the one with the highest value (`ORDER BY value LIMIT 1` on the (run_id, key, step) primary
 *   key range: the database reads the points, JS only receives the winners). The first and last points of
 *   the range are always kept. So spikes survive, every returned point is a real point (true step, epoch,
 *   wall time) and at most maxPoints points are returned.
 * - Per-bucket range queries rather than one `GROUP BY step / width`: SQLite cannot see that the bucket
 *   expression follows the index order and sorts every point into a temp b-tree (measured 2.6 s vs 0.27 s
 *   for 1M points).
 * - x = step, epoch or wall time (ms). Epoch and wall time never decrease as steps grow (the trainer
 *   writes points in step order), so a range on them is turned into a step range by binary search.
 */
import { and, asc, count, desc, eq, gte, lte, lt, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db/client";
import { metrics } from "@/db/schema";
import { RunsQueryError } from "./errors";

export type XAxis = "step" | "epoch" | "wall";
export type SeriesPoint = { x: number; y: number; step: number };
export type Series = { points: SeriesPoint[]; total: number; downsampled: boolean };
export type FetchSeriesInput = { runId: number; key: string; xAxis?: XAxis; from?: number; to?: number; maxPoints?: number };

export const MIN_POINTS = 4;
export const MAX_POINTS = 20_000;

type Row = { step: number; epoch: number; value: number; wallTimeMs: number };
const columns = { step: metrics.step, epoch: metrics.epoch, value: metrics.value, wallTimeMs: metrics.wallTimeMs };
const p = {
  runId: sql.placeholder("runId"),
  key: sql.placeholder("key"),
  lo: sql.placeholder("lo"),
  hi: sql.placeholder("hi"),
};

/** Prepared once per connection: a chart asks for ~1,000 bucket extremes per call. */
function statements(db: DbOrTx) {
  const series = and(eq(metrics.runId, p.runId), eq(metrics.key, p.key));
  const inRange = and(series, gte(metrics.step, p.lo), lte(metrics.step, p.hi));
  const inBucket = and(series, gte(metrics.step, p.lo), lt(metrics.step, p.hi));
  return {
    atOrAfter: db.select(columns).from(metrics).where(and(series, gte(metrics.step, p.lo))).orderBy(asc(metrics.step)).limit(1).prepare(),
    atOrBefore: db.select(columns).from(metrics).where(and(series, lte(metrics.step, p.hi))).orderBy(desc(metrics.step)).limit(1).prepare(),
    count: db.select({ n: count() }).from(metrics).where(inRange).prepare(),
    all: db.select(columns).from(metrics).where(inRange).orderBy(asc(metrics.step)).prepare(),
    lowest: db.select(columns).from(metrics).where(inBucket).orderBy(asc(metrics.value), asc(metrics.step)).limit(1).prepare(),
    highest: db.select(columns).from(metrics).where(inBucket).orderBy(desc(metrics.value), asc(metrics.step)).limit(1).prepare(),
  };
}
const cache = new WeakMap<object, ReturnType<typeof statements>>();
function prepared(db: DbOrTx) {
  let s = cache.get(db);
  if (!s) cache.set(db, (s = statements(db)));
  return s;
}

const xOf = (axis: XAxis) => (r: Row) => (axis === "step" ? r.step : axis === "epoch" ? r.epoch : r.wallTimeMs);

export function fetchSeries(db: DbOrTx, input: FetchSeriesInput): Series {
  const axis = input.xAxis ?? "step";
  const maxPoints = Math.trunc(input.maxPoints ?? 1000);
  if (!(maxPoints >= MIN_POINTS && maxPoints <= MAX_POINTS)) throw new RunsQueryError(`series: maxPoints must be between ${MIN_POINTS} and ${MAX_POINTS}`);
  if (input.from !== undefined && input.to !== undefined && input.from > input.to) throw new RunsQueryError("series: 'from' must not be after 'to'");
  const s = prepared(db);
  const x = xOf(axis);
  const args = { runId: input.runId, key: input.key };
  const empty: Series = { points: [], total: 0, downsampled: false };

  const first = s.atOrAfter.get({ ...args, lo: Number.MIN_SAFE_INTEGER }) as Row | undefined;
  const last = s.atOrBefore.get({ ...args, hi: Number.MAX_SAFE_INTEGER }) as Row | undefined;
  if (!first || !last) return empty;

  // The step range [lo, hi] holding the requested x range.
  let lo = first.step;
  let hi = last.step;
  if (input.from !== undefined) {
    if (x(last) < input.from) return empty;
    lo = axis === "step" ? Math.max(lo, Math.ceil(input.from)) : searchStep(lo, hi, (st) => x(s.atOrAfter.get({ ...args, lo: st }) as Row) >= input.from!, "first");
  }
  if (input.to !== undefined) {
    if (x(first) > input.to) return empty;
    hi = axis === "step" ? Math.min(hi, Math.floor(input.to)) : searchStep(first.step, hi, (st) => x(s.atOrBefore.get({ ...args, hi: st }) as Row) <= input.to!, "last");
  }
  if (lo > hi) return empty;

  const range = { ...args, lo, hi };
  const total = (s.count.get(range) as { n: number }).n;
  const point = (r: Row): SeriesPoint => ({ x: x(r), y: r.value, step: r.step });
  if (total <= maxPoints) return { points: (s.all.all(range) as Row[]).map(point), total, downsampled: false };

  // Real first and last points of the range, then the extremes of each bucket in step order.
  const head = s.atOrAfter.get({ ...args, lo }) as Row;
  const tail = s.atOrBefore.get({ ...args, hi }) as Row;
  const buckets = Math.floor((maxPoints - 2) / 2);
  const width = Math.ceil((tail.step - head.step + 1) / buckets);
  const kept = new Map<number, Row>([[head.step, head]]);
  for (let b = 0; b < buckets; b++) {
    const bucket = { ...args, lo: head.step + b * width, hi: Math.min(head.step + (b + 1) * width, tail.step + 1) };
    if (bucket.lo > tail.step) break;
    const low = s.lowest.get(bucket) as Row | undefined;
    if (!low) continue; // a gap in the steps
    const high = s.highest.get(bucket) as Row;
    for (const r of low.step <= high.step ? [low, high] : [high, low]) kept.set(r.step, r);
  }
  kept.set(tail.step, tail);
  const points = [...kept.values()].sort((a, b) => a.step - b.step).map(point);
  return { points, total, downsampled: true };
}

/**
 * Binary search over the step domain [lo, hi] for a monotone predicate: "first" finds the smallest step
 * where it holds (the predicate must hold at hi), "last" the largest (it must hold at lo or nothing does).
 */
function searchStep(lo: number, hi: number, holds: (step: number) => boolean, which: "first" | "last"): number {
  if (which === "first") {
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (holds(mid)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
  if (!holds(lo)) return lo - 1;
  while (lo < hi) {
    const mid = lo + Math.ceil((hi - lo) / 2);
    if (holds(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
