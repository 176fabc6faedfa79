/**
 * Group-by summaries of the runs table (groupRuns): runs grouped by a param value, status, experiment or author, with
 * each group's run count and the count, mean, min and max of one metric.
 *
 * Invariants:
 * - Runs on SQLite or PostgreSQL (store.ts), written once over the store's tables, with the same filter as searchRuns.
 * - Groups are equal values (text compared byte for byte on both stores); runs without the param form the null group.
 * - The mean is the correctly rounded sum of the group's values divided by their count, computed here from the values
 *   (`f.numberList`), not by the database's avg(): SQLite sums with a compensated sum and PostgreSQL with a plain
 *   float sum in scan order, so their avg() differ in the last bit for about one group in four. Min and max are exact.
 * - Order: largest groups first, then by the value's text (localeCompare), then by type (null, boolean, number,
 *   text) and byte order, so values with equal text ("3" and 3, "null" and null) order the same on both stores.
 */
import { aliasedTable, and, count, eq, sql } from "drizzle-orm";
import { fieldLabel } from "./fields";
import { RunsQueryError } from "./errors";
import { paramValueOf, resolveOrThrow, runsWhere, type ParamValue } from "./runs-search";
import { asStore, type StoreOrDb } from "./store";

export type GroupRunsInput = {
  /** A param field ("params.optimizer", "lr") or status, experiment, author. */
  by: string;
  /** The metric to summarise per group: "metrics.val_accuracy" (last), "metrics.val_loss.min", ... */
  metric: string;
  filter?: string;
  experimentId?: number;
};
export type RunGroup = {
  value: ParamValue;
  count: number;
  metric: { runs: number; mean: number | null; min: number | null; max: number | null };
};

/** Runs grouped by a param value (null = runs without the param), with count and mean/min/max of one metric. Largest groups first. */
export async function groupRuns(storeOrDb: StoreOrDb, input: GroupRunsInput): Promise<{ by: string; metric: string; groups: RunGroup[] }> {
  const store = asStore(storeOrDb);
  const { db, f } = store;
  const { runs, runParams, metricSummaries, users, experiments } = store.t;
  const by = resolveOrThrow(input.by, "group by");
  const metric = resolveOrThrow(input.metric, "group metric");
  if (metric.kind !== "metric") throw new RunsQueryError(`group metric: '${input.metric}' is not a metric; use metrics.<key>`);
  const where = runsWhere(input.experimentId, input.filter, store);
  const m = aliasedTable(metricSummaries, "group_m");
  const value = m[metric.stat];
  const aggregates = {
    n: count(),
    runs: count(value),
    values: f.numberList(value),
    min: sql<number | null>`min(${value})`.mapWith(Number),
    max: sql<number | null>`max(${value})`.mapWith(Number),
  };
  const metricJoin = and(eq(m.runId, runs.id), eq(m.key, metric.key));

  let rows: {
    valueText: string | null;
    valueNum: number | null;
    n: number;
    runs: number;
    values: (number | null)[];
    min: number | null;
    max: number | null;
  }[];
  if (by.kind === "param") {
    const g = aliasedTable(runParams, "group_p");
    rows = await db
      .select({ valueText: g.valueText, valueNum: g.valueNum, ...aggregates })
      .from(runs)
      .leftJoin(g, and(eq(g.runId, runs.id), eq(g.key, by.path)))
      .leftJoin(m, metricJoin)
      .where(where)
      .groupBy(g.valueNum, g.valueText);
  } else if (by.kind === "status" || by.kind === "experiment" || by.kind === "author") {
    const key = by.kind === "status" ? runs.status : by.kind === "experiment" ? experiments.name : users.name;
    rows = await db
      .select({ valueText: sql<string | null>`${key}`, valueNum: sql<number | null>`NULL`, ...aggregates })
      .from(runs)
      .innerJoin(experiments, eq(experiments.id, runs.experimentId))
      .innerJoin(users, eq(users.id, runs.createdBy))
      .leftJoin(m, metricJoin)
      .where(where)
      .groupBy(key);
  } else throw new RunsQueryError(`group by: runs can be grouped by a param, status, experiment or author, not ${fieldLabel(by)}`);

  const groups = rows.map((r) => {
    const values = r.values.filter((v): v is number => v !== null);
    return {
      value: paramValueOf(r.valueText, r.valueNum),
      count: r.n,
      metric: { runs: r.runs, mean: values.length ? exactSum(values) / values.length : null, min: r.min, max: r.max },
    };
  });
  groups.sort((a, b) => b.count - a.count || compareValues(a.value, b.value));
  return { by: fieldLabel(by), metric: fieldLabel(metric), groups };
}

const TYPE_RANK = { object: 0, boolean: 1, number: 2, string: 3 } as Record<string, number>;

/** A total order on group values: their text (localeCompare), then type, then the text's bytes. */
function compareValues(a: ParamValue, b: ParamValue): number {
  const [x, y] = [String(a), String(b)];
  return x.localeCompare(y) || TYPE_RANK[typeof a]! - TYPE_RANK[typeof b]! || Buffer.compare(Buffer.from(x), Buffer.from(y));
}

/**
 * The sum of finite doubles correctly rounded, whatever their order (Shewchuk's exact partials, with the half-even
 * correction of Python's math.fsum). With an infinite value the plain sum is already order-independent.
 */
export function exactSum(values: readonly number[]): number {
  if (!values.every(Number.isFinite)) return values.reduce((s, v) => s + v, 0);
  const partials: number[] = [];
  for (let x of values) {
    let i = 0;
    for (let y of partials) {
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[i++] = lo;
      x = hi;
    }
    partials.length = i;
    partials.push(x);
  }
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n]!;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n]!;
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  // Half-way between two doubles: the partials below decide which way to round.
  if (n > 0 && ((lo < 0 && partials[n - 1]! < 0) || (lo > 0 && partials[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
}
