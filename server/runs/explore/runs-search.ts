/**
 * The runs table's search: filter + sort + page (searchRuns), and the pieces the column chooser (columns.ts) and
 * group-by summaries (group-runs.ts) share with it. Takes the store first and only reads.
 *
 * Invariants:
 * - Filtering is done in SQL (filter-sql.ts), once per request (the total is a window count on the page
 *   query); only the requested page of run ids crosses into JS, then
 *   its details are fetched with `IN (page ids)` lookups, so cost tracks the page, not the table.
 * - Sorting on params/metrics LEFT JOINs the (run, key) row on its primary key; runs missing the value
 *   sort last in both directions (NULLS LAST); ties break on run id (newest first) so paging is stable.
 * - Sort fields, column names and group fields go through the same whitelist as the filter (fields.ts).
 * - searchRuns runs on SQLite or PostgreSQL (store.ts): its queries are written once over the store's tables, text
 *   sorts in byte order on both, duration in whole milliseconds.
 */
import { aliasedTable, and, count, eq, inArray, sql, type SQL } from "drizzle-orm";
import type { RunStatus } from "@/db/schema";
import { parseFilter } from "./filter-parser";
import { filterToSql } from "./filter-sql";
import { resolveFieldName, type FieldRef } from "./fields";
import { RunsQueryError } from "./errors";
import { asStore, SQLITE_SQL, type ExploreStore, type StoreOrDb } from "./store";

export type SortSpec = { field: string; dir: "asc" | "desc" };
export type ParamValue = number | string | boolean | null;

export type SearchRunsInput = {
  experimentId?: number;
  /** Filter expression (see filter-parser.ts); blank or missing means all runs. */
  filter?: string;
  /** Sort keys in priority order. Default: newest first. Extra sort field: "duration". */
  sort?: SortSpec[];
  /**
   * Param and metric columns to return, as fields: "params.training.learningRate", "lr", "metrics.val_loss".
   * Missing: DEFAULT_PARAM_COLUMNS and every metric. Given: exactly those params, and those metrics (or every
   * metric when the list names none).
   */
  columns?: string[];
  offset?: number;
  limit?: number;
};

export type RunRow = {
  id: number;
  name: string;
  /** Free text added after launch (runs.annotate); "" when none. */
  description: string;
  status: RunStatus;
  experimentId: number;
  experimentName: string;
  author: string;
  createdAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  tags: string[];
  params: Record<string, ParamValue>;
  /** "key" → last value, "key.min", "key.max". */
  metrics: Record<string, number>;
};

export const DEFAULT_PARAM_COLUMNS = ["training.optimizer.name", "training.learningRate", "training.batchSize", "training.epochs"];
export const MAX_PAGE = 1000;

/** A run param's stored pair as the value it was in the config (booleans are stored as text + 0/1). */
export function paramValueOf(valueText: string | null, valueNum: number | null): ParamValue {
  if (valueNum !== null && (valueText === "true" || valueText === "false")) return valueText === "true";
  if (valueNum !== null) return valueNum;
  return valueText;
}

/** The WHERE clause shared by search and group: experiment scope AND the parsed filter. Throws FilterSyntaxError. */
export function runsWhere(
  experimentId: number | undefined,
  filter: string | undefined,
  store: Pick<ExploreStore, "t" | "f"> = SQLITE_SQL,
): SQL | undefined {
  const tree = filter ? parseFilter(filter) : null;
  return and(
    experimentId !== undefined ? eq(store.t.runs.experimentId, experimentId) : undefined,
    tree ? filterToSql(tree, store) : undefined,
  );
}

export function resolveOrThrow(text: string, what: string): FieldRef {
  const r = resolveFieldName(text);
  if (!r.ok) throw new RunsQueryError(`${what}: ${r.message}${r.hint ? `; ${r.hint}` : ""}`);
  return r.field;
}

export async function searchRuns(storeOrDb: StoreOrDb, input: SearchRunsInput): Promise<{ total: number; rows: RunRow[] }> {
  const store = asStore(storeOrDb);
  const { db, f } = store;
  const { runs, runParams, metricSummaries, users, experiments } = store.t;
  const limit = Math.min(Math.max(Math.trunc(input.limit ?? 50), 1), MAX_PAGE);
  const offset = Math.max(Math.trunc(input.offset ?? 0), 0);
  const where = runsWhere(input.experimentId, input.filter, store);

  // The total rides along as a window count, so the filter is evaluated once for count and page.
  let page = db.select({ id: runs.id, total: f.windowCount() }).from(runs).$dynamic();
  const orderBy: SQL[] = [];
  (input.sort ?? [{ field: "created", dir: "desc" }]).forEach((s, i) => {
    const dir = s.dir === "asc" ? sql`ASC` : sql`DESC`;
    const nullsLast = (e: unknown) => sql`${e} ${dir} NULLS LAST`;
    if (s.field.toLowerCase() === "duration") {
      orderBy.push(nullsLast(f.durationMs(runs.finishedAt, sql`coalesce(${runs.startedAt}, ${runs.createdAt})`)));
      return;
    }
    const field = resolveOrThrow(s.field, "sort");
    if (field.kind === "param") {
      const p = aliasedTable(runParams, `sort_p${i}`);
      page = page.leftJoin(p, and(eq(p.runId, runs.id), eq(p.key, field.path)));
      orderBy.push(nullsLast(p.valueNum), nullsLast(f.textKey(p.valueText)));
    } else if (field.kind === "metric") {
      const m = aliasedTable(metricSummaries, `sort_m${i}`);
      page = page.leftJoin(m, and(eq(m.runId, runs.id), eq(m.key, field.key)));
      orderBy.push(nullsLast(m[field.stat]));
    } else if (field.kind === "experiment")
      orderBy.push(
        nullsLast(f.textKey(sql`(SELECT ${experiments.name} FROM ${experiments} WHERE ${experiments.id} = ${runs.experimentId})`)),
      );
    else if (field.kind === "author")
      orderBy.push(nullsLast(f.textKey(sql`(SELECT ${users.name} FROM ${users} WHERE ${users.id} = ${runs.createdBy})`)));
    else if (field.kind === "tag") throw new RunsQueryError("sort: runs cannot be sorted by tag (a run has several)");
    else if (field.kind === "id") orderBy.push(nullsLast(runs.id));
    else
      orderBy.push(
        nullsLast(f.textKey({ name: runs.name, status: runs.status, created: runs.createdAt, finished: runs.finishedAt }[field.kind])),
      );
  });
  orderBy.push(sql`${runs.id} DESC`);
  const found = await page
    .where(where)
    .orderBy(...orderBy)
    .limit(limit)
    .offset(offset);
  // A page past the end has no rows to carry the total: count separately.
  const total = found[0]?.total ?? (offset > 0 ? ((await db.select({ n: count() }).from(runs).where(where))[0]?.n ?? 0) : 0);
  return {
    total,
    rows: await loadRows(
      store,
      found.map((r) => r.id),
      input.columns,
    ),
  };
}

/** Details of the given runs, in the given order. */
async function loadRows(store: ExploreStore, ids: number[], columns: string[] | undefined): Promise<RunRow[]> {
  if (ids.length === 0) return [];
  const { db, f } = store;
  const { runs, runParams, metricSummaries, runTags, users, experiments } = store.t;
  const fields = (columns ?? []).map((c) => resolveOrThrow(c, "column"));
  const paramPaths = columns ? [...new Set(fields.flatMap((f) => (f.kind === "param" ? [f.path] : [])))] : DEFAULT_PARAM_COLUMNS;
  const metricKeys = [...new Set(fields.flatMap((f) => (f.kind === "metric" ? [f.key] : [])))];

  const base = await db
    .select({
      id: runs.id,
      name: runs.name,
      description: runs.description,
      status: runs.status,
      experimentId: runs.experimentId,
      experimentName: experiments.name,
      author: users.name,
      createdAt: runs.createdAt,
      startedAt: runs.startedAt,
      finishedAt: runs.finishedAt,
    })
    .from(runs)
    .innerJoin(experiments, eq(experiments.id, runs.experimentId))
    .innerJoin(users, eq(users.id, runs.createdBy))
    .where(inArray(runs.id, ids));
  const tags = await db
    .select({ runId: runTags.runId, tag: runTags.tag })
    .from(runTags)
    .where(inArray(runTags.runId, ids))
    .orderBy(f.textKey(runTags.tag));
  const params = paramPaths.length
    ? await db
        .select({ runId: runParams.runId, key: runParams.key, valueText: runParams.valueText, valueNum: runParams.valueNum })
        .from(runParams)
        .where(and(inArray(runParams.runId, ids), inArray(runParams.key, paramPaths)))
    : [];
  const summaries = await db
    .select({
      runId: metricSummaries.runId,
      key: metricSummaries.key,
      last: metricSummaries.last,
      min: metricSummaries.min,
      max: metricSummaries.max,
    })
    .from(metricSummaries)
    .where(and(inArray(metricSummaries.runId, ids), metricKeys.length ? inArray(metricSummaries.key, metricKeys) : undefined));

  const byId = new Map<number, RunRow>();
  for (const r of base) {
    const started = r.startedAt ?? r.createdAt;
    byId.set(r.id, {
      id: r.id,
      name: r.name,
      description: r.description,
      status: r.status,
      experimentId: r.experimentId,
      experimentName: r.experimentName,
      author: r.author,
      createdAt: r.createdAt,
      finishedAt: r.finishedAt,
      durationMs: r.finishedAt ? Date.parse(r.finishedAt) - Date.parse(started) : null,
      tags: [],
      params: {},
      metrics: {},
    });
  }
  for (const t of tags) byId.get(t.runId)?.tags.push(t.tag);
  for (const p of params) {
    const row = byId.get(p.runId);
    if (row) row.params[p.key] = paramValueOf(p.valueText, p.valueNum);
  }
  for (const s of summaries) {
    const row = byId.get(s.runId);
    if (!row) continue;
    row.metrics[s.key] = s.last;
    row.metrics[`${s.key}.min`] = s.min;
    row.metrics[`${s.key}.max`] = s.max;
  }
  return ids.flatMap((id) => byId.get(id) ?? []);
}
