/**
 * One metric series of one run for charts, downsampled on the server.
 *
 * Invariants:
 * - A range holding <= maxPoints points comes back raw (every point, step order, downsampled: false).
 * - Otherwise the step range is cut into buckets and each bucket keeps its lowest and its highest point
 *   (ties: the earliest step); the first and last points of the range are always kept. So spikes survive,
 *   every returned point is a real point (true step, epoch, wall time) and at most maxPoints come back.
 * - Long ranges (a bucket spans >= one rollup block of 1,024 steps) read metric_rollups: bucket edges are
 *   aligned to blocks, whole blocks give their stored min/max (with the steps where they occur) and the partial
 *   blocks at the two ends of the range give their lowest and highest raw point. The result is exactly what
 *   reading every point with the same buckets gives (tests/compare-and-series.test.ts proves it), at the cost
 *   of ~1 row per block instead of 1,024 points. `total` is also summed from rollups.
 *   This relies on insertMetricPoints writing rollups with the points in one transaction (the only writer).
 * - Short ranges (zoomed in: buckets narrower than a block) run one `ORDER BY value LIMIT 1` range query
 *   per bucket and side on the (run_id, key, step) primary key. Not one `GROUP BY step / width`: SQLite
 *   cannot see that the bucket expression follows the index order and sorts every point (2.6 s vs 0.27 s
 *   for 1M points).
 * - x = step, epoch or wall time (ms). Epoch and wall time never decrease as steps grow (the trainer
 *   writes points in step order), so a range on them is turned into a step range by binary search.
 * - Runs on SQLite or PostgreSQL (store.ts): each statement built once over the store's tables. Statements that do not
 *   need each other's rows go out together (together.ts: concurrent on PostgreSQL, in turn on SQLite), and
 *   on PostgreSQL the calls of one statement made together are sent as one (series-batch-pg.ts): the buckets of the
 *   per-bucket reader, and the runs of fetchSeriesOfRuns. A chart of 20 runs then costs a few round trips there.
 * - Less crosses the wire than the readers' rows (issue 16, compare_20_runs_ms_pg): a raw range is read as the chart's
 *   points ({ x, y, step }: the axis' column, value, step; nothing else), and on PostgreSQL the rollup blocks come
 *   reduced in SQL to each bucket's extremes (bucketBlocksPg), then merged with the partial blocks' as on SQLite.
 */
import { and, asc, count, desc, eq, gte, inArray, lte, lt, sql, type SQL } from "drizzle-orm";
import { METRIC_ROLLUP_BLOCK } from "@/db/schema";
import { RunsQueryError } from "./errors";
import type { PgDb } from "@/db/pg-client";
import { asStore, type ExploreStore, type StoreOrDb } from "./store";
import { eachTogether, together } from "./together";
import { batchedStatement, type BatchableQuery } from "./series-batch-pg";

export type XAxis = "step" | "epoch" | "wall";
export type SeriesPoint = { x: number; y: number; step: number };
export type Series = { points: SeriesPoint[]; total: number; downsampled: boolean };
export type FetchSeriesInput = { runId: number; key: string; xAxis?: XAxis; from?: number; to?: number; maxPoints?: number };

export const MIN_POINTS = 4;
export const MAX_POINTS = 20_000;
const BLOCK = METRIC_ROLLUP_BLOCK;

type Row = { step: number; epoch: number; value: number; wallTimeMs: number };
type Candidate = { step: number; value: number; row?: Row };
type Params = { runId: number; key: string; lo?: number; hi?: number; start?: number; width?: number };
const p = {
  runId: sql.placeholder("runId"),
  key: sql.placeholder("key"),
  lo: sql.placeholder("lo"),
  hi: sql.placeholder("hi"),
  start: sql.placeholder("start"),
  width: sql.placeholder("width"),
};

/** A prepared statement awaited the same way on both stores. */
type Prepared<R> = { get(params: Params): Promise<R | undefined>; all(params: Params): Promise<R[]> };

/**
 * Prepares a built query: better-sqlite3's statement (synchronous underneath), or on PostgreSQL the same statement
 * batched (series-batch-pg.ts: the calls made in one turn of the event loop go out as one statement).
 */
function prepare<R>(store: ExploreStore, name: string, query: unknown, orderedBy?: keyof R & string): Prepared<R> {
  if (store.dialect === "sqlite") {
    const st = (query as { prepare(): { get(p: Params): unknown; all(p: Params): unknown } }).prepare();
    return { get: async (params) => st.get(params) as R | undefined, all: async (params) => st.all(params) as R[] };
  }
  const st = batchedStatement<R>((store.db as unknown as PgDb).$client, name, query as BatchableQuery, orderedBy);
  return { get: async (params) => (await st.all(params))[0], all: (params) => st.all(params) };
}

/** Prepared once per connection (pool): a chart asks for up to ~1,000 bucket extremes per call. */
function statements(store: ExploreStore) {
  const { db } = store;
  const { metrics, metricRollups } = store.t;
  const columns = { step: metrics.step, epoch: metrics.epoch, value: metrics.value, wallTimeMs: metrics.wallTimeMs };
  // A raw range's points as the chart gets them ({ x, y, step }, x the axis' column): no other field is read or built.
  const pointsOn = (axis: XAxis) =>
    prepare<SeriesPoint>(
      store,
      `points_${axis}`,
      db
        .select({
          x: axis === "step" ? metrics.step : axis === "epoch" ? metrics.epoch : metrics.wallTimeMs,
          y: metrics.value,
          step: metrics.step,
        })
        .from(metrics)
        .where(inRange)
        .orderBy(asc(metrics.step)),
      "step",
    );
  const series = and(eq(metrics.runId, p.runId), eq(metrics.key, p.key));
  const inRange = and(series, gte(metrics.step, p.lo), lte(metrics.step, p.hi));
  const inBucket = and(series, gte(metrics.step, p.lo), lt(metrics.step, p.hi));
  const blocks = and(
    eq(metricRollups.runId, p.runId),
    eq(metricRollups.key, p.key),
    gte(metricRollups.block, p.lo),
    lte(metricRollups.block, p.hi),
  );
  return {
    columns,
    atOrAfter: prepare<Row>(
      store,
      "at_or_after",
      db
        .select(columns)
        .from(metrics)
        .where(and(series, gte(metrics.step, p.lo)))
        .orderBy(asc(metrics.step))
        .limit(1),
    ),
    atOrBefore: prepare<Row>(
      store,
      "at_or_before",
      db
        .select(columns)
        .from(metrics)
        .where(and(series, lte(metrics.step, p.hi)))
        .orderBy(desc(metrics.step))
        .limit(1),
    ),
    count: prepare<{ n: number }>(store, "count", db.select({ n: count() }).from(metrics).where(inRange)),
    points: { step: pointsOn("step"), epoch: pointsOn("epoch"), wall: pointsOn("wall") } satisfies Record<XAxis, unknown>,
    lowest: prepare<Row>(
      store,
      "lowest",
      db.select(columns).from(metrics).where(inBucket).orderBy(asc(metrics.value), asc(metrics.step)).limit(1),
    ),
    highest: prepare<Row>(
      store,
      "highest",
      db.select(columns).from(metrics).where(inBucket).orderBy(desc(metrics.value), asc(metrics.step)).limit(1),
    ),
    blockCount: prepare<{ n: number | null }>(
      store,
      "block_count",
      db
        .select({ n: sql<number | null>`sum(${metricRollups.count})`.mapWith(Number) })
        .from(metricRollups)
        .where(blocks),
    ),
    // Ordered by block, which is minStep's order too (each block's min_step lies inside its own step range).
    blocks: prepare<{ minStep: number; minValue: number; maxStep: number; maxValue: number }>(
      store,
      "blocks",
      db
        .select({
          minStep: metricRollups.minStep,
          minValue: metricRollups.minValue,
          maxStep: metricRollups.maxStep,
          maxValue: metricRollups.maxValue,
        })
        .from(metricRollups)
        .where(blocks)
        .orderBy(asc(metricRollups.block)),
      "minStep",
    ),
    bucketBlocks: store.dialect === "pg" ? bucketBlocksPg(store, blocks) : null,
  };
}

/**
 * PostgreSQL only: the rollup blocks of [lo, hi] reduced to each bucket's lowest and highest point (buckets of `width`
 * steps from `start`, both multiples of the block size, so a block lies in one bucket). The same choice as
 * extremesFromRollups makes over the blocks (lowest value, ties the earliest step; highest value, ties the earliest
 * step), as array comparisons: [value, step] in order, and [value, -step] for the highest (steps are exact in float8
 * below 2^53). Half the rows and bytes of the blocks themselves cross the wire (a chart of 20 runs of 1M points:
 * ~0.5 MB instead of ~1 MB), and the client builds no object per block. Order of the rows: none (one per bucket).
 */
function bucketBlocksPg(store: ExploreStore, blocks: SQL | undefined) {
  const { metricRollups: r } = store.t;
  const low = sql`min(array[${r.minValue}, ${r.minStep}::float8])`;
  const high = sql`max(array[${r.maxValue}, -${r.maxStep}::float8])`;
  // Named as the blocks' fields: each row is a bucket's lowest (min…) and highest (max…) point, read as a block is.
  return prepare<{ minStep: number; minValue: number; maxStep: number; maxValue: number }>(
    store,
    "bucket_blocks",
    store.db
      .select({
        minStep: sql<number>`((${low})[2])::bigint`,
        minValue: sql<number>`(${low})[1]`,
        maxStep: sql<number>`(-(${high})[2])::bigint`,
        maxValue: sql<number>`(${high})[1]`,
      })
      .from(r)
      .where(blocks)
      .groupBy(sql`(${r.minStep} - ${p.start}) / ${p.width}`),
  );
}
type Statements = ReturnType<typeof statements>;
const cache = new WeakMap<object, Statements>();
function prepared(store: ExploreStore): Statements {
  let s = cache.get(store.db);
  if (!s) cache.set(store.db, (s = statements(store)));
  return s;
}

const xOf = (axis: XAxis) => (r: Row) => (axis === "step" ? r.step : axis === "epoch" ? r.epoch : r.wallTimeMs);
type SeriesArgs = { runId: number; key: string };

/** Whole blocks inside [lo, hi] and the partial step ranges left at each end (null when empty). */
function splitByBlocks(lo: number, hi: number) {
  const firstBlock = Math.ceil(lo / BLOCK);
  const lastBlock = Math.floor((hi + 1) / BLOCK) - 1;
  if (firstBlock > lastBlock) return { blocks: null, head: [lo, hi] as const, tail: null };
  return {
    blocks: [firstBlock, lastBlock] as const,
    head: lo < firstBlock * BLOCK ? ([lo, firstBlock * BLOCK - 1] as const) : null,
    tail: (lastBlock + 1) * BLOCK <= hi ? ([(lastBlock + 1) * BLOCK, hi] as const) : null,
  };
}

/** Points in [lo, hi]: rollup counts for whole blocks, a raw count only for the partial ends. */
async function countPoints(store: ExploreStore, s: Statements, args: SeriesArgs, lo: number, hi: number): Promise<number> {
  const parts = splitByBlocks(lo, hi);
  const [blocks, head, tail] = await together<[number, number, number]>(
    store,
    async () => (parts.blocks ? ((await s.blockCount.get({ ...args, lo: parts.blocks[0], hi: parts.blocks[1] }))?.n ?? 0) : 0),
    async () => (parts.head ? (await s.count.get({ ...args, lo: parts.head[0], hi: parts.head[1] }))!.n : 0),
    async () => (parts.tail ? (await s.count.get({ ...args, lo: parts.tail[0], hi: parts.tail[1] }))!.n : 0),
  );
  return blocks + head + tail;
}

/** The buckets: [start + i*width, start + (i+1)*width) for i < buckets, clipped to [lo, hi] by the readers. */
export type BucketPlan = { start: number; width: number; buckets: number };

/** The steps [from, to] cut at block edges: each piece lies inside one block. */
function blockPieces(from: number, to: number): [number, number][] {
  const pieces: [number, number][] = [];
  for (let at = from; at <= to; at = (Math.floor(at / BLOCK) + 1) * BLOCK)
    pieces.push([at, Math.min(to, (Math.floor(at / BLOCK) + 1) * BLOCK - 1)]);
  return pieces;
}

/** The lowest and highest point of steps [lo, hi) (ties: the earliest step); none for a gap in the steps. */
async function bucketExtremes(store: ExploreStore, s: Statements, bucket: Params): Promise<Row[]> {
  const [low, high] = await together(
    store,
    () => s.lowest.get(bucket),
    () => s.highest.get(bucket),
  );
  return low ? [low, high!] : [];
}

/** Per bucket, its lowest and highest point, from raw points (one range query per bucket and side). */
async function extremesFromPoints(s: Statements, args: SeriesArgs, lo: number, hi: number, plan: BucketPlan): Promise<Row[]> {
  // All buckets' statements are issued before one await: SQLite runs each as it is issued (no await per bucket),
  // PostgreSQL sends them as two batched statements (series-batch-pg.ts).
  const reads: Promise<Row | undefined>[] = [];
  for (let b = 0; b < plan.buckets; b++) {
    const bucket = { ...args, lo: Math.max(lo, plan.start + b * plan.width), hi: Math.min(plan.start + (b + 1) * plan.width, hi + 1) };
    if (bucket.lo >= bucket.hi) continue;
    reads.push(s.lowest.get(bucket), s.highest.get(bucket));
  }
  const rows = await Promise.all(reads);
  const out: Row[] = [];
  for (let i = 0; i < rows.length; i += 2) {
    const low = rows[i];
    if (!low) continue; // a gap in the steps (no highest either)
    out.push(low, rows[i + 1]!);
  }
  return out;
}

/**
 * Per bucket, its lowest and highest point, from rollups of whole blocks plus the lowest and highest raw point of each
 * partial end block. Needs bucket edges on block edges (plan.start and plan.width multiples of BLOCK) to be exact.
 * Rollups hold step and value only: `withRows` looks up the winners' epoch and wall time (x on those axes);
 * on the step axis they are not needed and come back as NaN.
 */
async function extremesFromRollups(
  store: ExploreStore,
  s: Statements,
  args: SeriesArgs,
  lo: number,
  hi: number,
  plan: BucketPlan,
  withRows: boolean,
): Promise<Row[]> {
  const parts = splitByBlocks(lo, hi);
  // A partial block lies inside one bucket (bucket edges are block edges), so only its lowest and highest points can
  // win there: two index reads per partial block instead of all of its points.
  const partials = [parts.head, parts.tail].flatMap((edge) => (edge ? blockPieces(edge[0], edge[1]) : []));
  const blockRange = parts.blocks && { ...args, lo: parts.blocks[0], hi: parts.blocks[1] };
  const [partialExtremes, blocks] = await together(
    store,
    () => eachTogether(store, partials, ([from, to]) => bucketExtremes(store, s, { ...args, lo: from, hi: to + 1 })),
    // On PostgreSQL the blocks come reduced to their buckets' extremes (bucketBlocksPg): the same winners below.
    async () =>
      !blockRange
        ? []
        : s.bucketBlocks
          ? s.bucketBlocks.all({ ...blockRange, start: plan.start, width: plan.width })
          : s.blocks.all(blockRange),
  );
  const candidates: Candidate[] = [];
  for (const r of partialExtremes.flat()) candidates.push({ step: r.step, value: r.value, row: r });
  for (const b of blocks) candidates.push({ step: b.minStep, value: b.minValue }, { step: b.maxStep, value: b.maxValue });
  const low = new Map<number, Candidate>();
  const high = new Map<number, Candidate>();
  for (const c of candidates) {
    const b = Math.floor((c.step - plan.start) / plan.width);
    const l = low.get(b);
    if (!l || c.value < l.value || (c.value === l.value && c.step < l.step)) low.set(b, c);
    const h = high.get(b);
    if (!h || c.value > h.value || (c.value === h.value && c.step < h.step)) high.set(b, c);
  }
  const winners = [...low.values(), ...high.values()];
  if (!withRows) return winners.map((c) => c.row ?? { step: c.step, value: c.value, epoch: Number.NaN, wallTimeMs: Number.NaN });
  // Epoch / wall time of rollup winners: their points, looked up by primary key in a few IN lists.
  const missing = [...new Set(winners.filter((c) => !c.row).map((c) => c.step))];
  const rows = new Map<number, Row>();
  const { metrics } = store.t;
  const chunks: number[][] = [];
  for (let i = 0; i < missing.length; i += 500) chunks.push(missing.slice(i, i + 500));
  const found = await eachTogether(store, chunks, (chunk) =>
    store.db
      .select(s.columns)
      .from(metrics)
      .where(and(eq(metrics.runId, args.runId), eq(metrics.key, args.key), inArray(metrics.step, chunk))),
  );
  for (const r of found.flat()) rows.set(r.step, r);
  return winners.flatMap((c) => c.row ?? rows.get(c.step) ?? []);
}

export function fetchSeries(store: StoreOrDb, input: FetchSeriesInput): Promise<Series> {
  return fetchSeriesFrom(store, input, "auto");
}

/**
 * One metric of several runs (a chart of the compare view), in the order of `runIds`: the runs' series are read
 * concurrently on PostgreSQL (over the pool's connections), one after another on SQLite. Same series as fetchSeries.
 */
export function fetchSeriesOfRuns(
  storeOrDb: StoreOrDb,
  runIds: readonly number[],
  input: Omit<FetchSeriesInput, "runId">,
): Promise<(Series & { runId: number })[]> {
  const store = asStore(storeOrDb);
  return eachTogether(store, runIds, async (runId) => ({ runId, ...(await fetchSeries(store, { ...input, runId })) }));
}

/**
 * fetchSeries with the bucket reader chosen: "auto" (rollups when a bucket spans a block), or forced
 * "points" / "rollups" with block-aligned buckets (for tests that compare the two readers).
 */
export async function fetchSeriesFrom(
  storeOrDb: StoreOrDb,
  input: FetchSeriesInput,
  source: "auto" | "points" | "rollups",
): Promise<Series> {
  const store = asStore(storeOrDb);
  const axis = input.xAxis ?? "step";
  const maxPoints = Math.trunc(input.maxPoints ?? 1000);
  if (!(maxPoints >= MIN_POINTS && maxPoints <= MAX_POINTS))
    throw new RunsQueryError(`series: maxPoints must be between ${MIN_POINTS} and ${MAX_POINTS}`);
  if (input.from !== undefined && input.to !== undefined && input.from > input.to)
    throw new RunsQueryError("series: 'from' must not be after 'to'");
  const s = prepared(store);
  const x = xOf(axis);
  const args = { runId: input.runId, key: input.key };
  const empty: Series = { points: [], total: 0, downsampled: false };

  const [first, last] = await together(
    store,
    () => s.atOrAfter.get({ ...args, lo: Number.MIN_SAFE_INTEGER }),
    () => s.atOrBefore.get({ ...args, hi: Number.MAX_SAFE_INTEGER }),
  );
  if (!first || !last) return empty;

  // The step range [lo, hi] holding the requested x range.
  if (input.from !== undefined && x(last) < input.from) return empty;
  if (input.to !== undefined && x(first) > input.to) return empty;
  // Both ends searched together (independent binary searches over the same steps).
  const [lo, hi] = await together(
    store,
    async () =>
      input.from === undefined
        ? first.step
        : axis === "step"
          ? Math.max(first.step, Math.ceil(input.from))
          : await searchStep(first.step, last.step, async (st) => x((await s.atOrAfter.get({ ...args, lo: st }))!) >= input.from!, "first"),
    async () =>
      input.to === undefined
        ? last.step
        : axis === "step"
          ? Math.min(last.step, Math.floor(input.to))
          : await searchStep(first.step, last.step, async (st) => x((await s.atOrBefore.get({ ...args, hi: st }))!) <= input.to!, "last"),
  );
  if (lo > hi) return empty;

  const range = { ...args, lo, hi };
  const total = await countPoints(store, s, args, lo, hi);
  const point = (r: Row): SeriesPoint => ({ x: x(r), y: r.value, step: r.step });
  if (total <= maxPoints) return { points: await s.points[axis].all(range), total, downsampled: false };

  // Real first and last points of the range (the series' own ends when the range is whole), then each bucket's extremes.
  const [head, tail] = await together(
    store,
    async () => (lo === first.step ? first : (await s.atOrAfter.get({ ...args, lo }))!),
    async () => (hi === last.step ? last : (await s.atOrBefore.get({ ...args, hi }))!),
  );
  const buckets = Math.floor((maxPoints - 2) / 2);
  const span = tail.step - head.step + 1;
  const width = Math.ceil(span / buckets);
  let extremes: Row[];
  if (source === "auto" && width < BLOCK) {
    extremes = await extremesFromPoints(s, args, head.step, tail.step, { start: head.step, width, buckets });
  } else {
    // Block-aligned buckets: each holds whole blocks (the partial end blocks sit in the first/last bucket).
    const start = Math.floor(head.step / BLOCK) * BLOCK;
    const alignedWidth = Math.ceil((tail.step - start + 1) / buckets / BLOCK) * BLOCK;
    const plan = { start, width: alignedWidth, buckets: Math.ceil((tail.step - start + 1) / alignedWidth) };
    extremes =
      source === "points"
        ? await extremesFromPoints(s, args, head.step, tail.step, plan)
        : await extremesFromRollups(store, s, args, head.step, tail.step, plan, axis !== "step");
  }
  const kept = new Map<number, Row>([[head.step, head]]);
  for (const r of extremes) kept.set(r.step, r);
  kept.set(tail.step, tail);
  const points = [...kept.values()].sort((a, b) => a.step - b.step).map(point);
  return { points, total, downsampled: true };
}

/**
 * Binary search over the step domain [lo, hi] for a monotone predicate: "first" finds the smallest step
 * where it holds (the predicate must hold at hi), "last" the largest (it must hold at lo or nothing does).
 */
async function searchStep(lo: number, hi: number, holds: (step: number) => Promise<boolean>, which: "first" | "last"): Promise<number> {
  if (which === "first") {
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (await holds(mid)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
  if (!(await holds(lo))) return lo - 1;
  while (lo < hi) {
    const mid = lo + Math.ceil((hi - lo) / 2);
    if (await holds(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
