/**
 * The store the explorer's queries run on (issue 16): the embedded SQLite file or PostgreSQL. Each query of
 * searchRuns, compareRuns, fetchSeries, listColumns and groupRuns is written once, over `store.t` (the store's own
 * tables), and awaited; what differs between the dialects is the handful of SQL fragments in `store.f`
 * (ARCHITECTURE.md, "The runs explorer on PostgreSQL").
 *
 * Invariants:
 * - `store.db` is typed as the SQLite builder (the builders and tables have the same keys and columns: the
 *   schema-dialects test), but on PostgreSQL it is node-postgres drizzle: code here only awaits queries, never
 *   `.all()` / `.get()` / `.run()`, and prepares statements only through downsample.ts's `prepare`.
 * - Text is ordered and range-compared in byte order on both stores (SQLite's BINARY; PostgreSQL `COLLATE "C"`,
 *   whatever the database's collation), and `~` / author equality fold ASCII case only (SQLite's lower()).
 * - Aggregates that node-postgres returns as text (bigint, numeric) are mapped to numbers.
 * - A run's duration sorts by whole milliseconds on both stores, so equal durations tie (then newest id first).
 */
import { sql, type SQL } from "drizzle-orm";
import type { DbOrTx } from "@/db/client";
import * as schema from "@/db/schema";
import { pgSchema, type PgDb } from "@/db/pg-client";
import type { Store as AppStore } from "@/db/store";

export type Dialect = "sqlite" | "pg";

function tablesOf(s: typeof schema) {
  return {
    runs: s.runs,
    runParams: s.runParams,
    metricSummaries: s.metricSummaries,
    runTags: s.runTags,
    runTagValues: s.runTagValues,
    users: s.users,
    experiments: s.experiments,
    decisions: s.decisions,
    datasetVersions: s.datasetVersions,
    datasets: s.datasets,
    splits: s.splits,
    metrics: s.metrics,
    metricRollups: s.metricRollups,
    runInterventions: s.runInterventions,
    checkpoints: s.checkpoints,
    evaluations: s.evaluations,
  };
}
export type ExploreTables = ReturnType<typeof tablesOf>;

/** The SQL that differs between the stores. Everything else is the same text on both. */
export type SqlFragments = {
  /** finished − started in whole milliseconds (ISO-8601 UTC text on both stores). */
  durationMs: (finished: unknown, started: unknown) => SQL;
  /** A text expression as a sort / range-comparison key in byte order. */
  textKey: (e: unknown) => SQL;
  /** lower() folding ASCII letters only. */
  lowerAscii: (e: unknown) => SQL;
  /** `count(*) OVER ()` as a number. */
  windowCount: () => SQL<number>;
  /** Aggregate: every value of a numeric expression over the group's rows (nulls included, in no set order), as numbers. */
  numberList: (e: unknown) => SQL<(number | null)[]>;
};

const SQLITE_FRAGMENTS: SqlFragments = {
  // julianday() differences carry float noise (~1e-10 day); rounding to ms makes equal durations equal.
  durationMs: (finished, started) => sql`round((julianday(${finished}) - julianday(${started})) * 86400000.0)`,
  textKey: (e) => sql`${e}`,
  lowerAscii: (e) => sql`lower(${e})`,
  windowCount: () => sql<number>`count(*) OVER ()`,
  // JSON renders each REAL with the digits that read back to the same double.
  numberList: (e) => sql`json_group_array(${e})`.mapWith((json: string) => JSON.parse(json) as (number | null)[]),
};

const PG_FRAGMENTS: SqlFragments = {
  // extract(epoch …) is numeric (exact) on PostgreSQL 14+.
  durationMs: (finished, started) =>
    sql`round((extract(epoch from (${finished})::timestamptz) - extract(epoch from (${started})::timestamptz)) * 1000)`,
  textKey: (e) => sql`(${e}) COLLATE "C"`,
  lowerAscii: (e) => sql`lower((${e}) COLLATE "C")`,
  windowCount: () => sql<number>`count(*) OVER ()`.mapWith(Number),
  // float8[] arrives as numbers (shortest round-trip text); bigint or numeric elements would arrive as text.
  numberList: (e) => sql`array_agg(${e})`.mapWith((list: unknown[]) => list.map((v) => (v === null ? null : Number(v)))),
};

export type ExploreStore = {
  dialect: Dialect;
  /** The query builder (see the invariants: awaited only). */
  db: DbOrTx;
  t: ExploreTables;
  f: SqlFragments;
};

const SQLITE_TABLES = tablesOf(schema);
const PG_TABLES = tablesOf(pgSchema as unknown as typeof schema);

/** The tables and fragments of SQLite, for SQL built without a handle (filterToSql's default). */
export const SQLITE_SQL: Pick<ExploreStore, "t" | "f"> = { t: SQLITE_TABLES, f: SQLITE_FRAGMENTS };

export function sqliteStore(db: DbOrTx): ExploreStore {
  return { dialect: "sqlite", db, t: SQLITE_TABLES, f: SQLITE_FRAGMENTS };
}

export function pgStore(db: PgDb): ExploreStore {
  return { dialect: "pg", db: db as unknown as DbOrTx, t: PG_TABLES, f: PG_FRAGMENTS };
}

/**
 * Callers holding a SQLite handle (the services, the tests) pass it as is; the app passes its store (db/store.ts,
 * either dialect), whose handle the explorer's store is made of.
 */
export type StoreOrDb = ExploreStore | AppStore | DbOrTx;

export function asStore(s: StoreOrDb): ExploreStore {
  if ("dialect" in s && "f" in s) return s;
  if ("dialect" in s && "tables" in s) return s.dialect === "pg" ? pgStore(s.db) : sqliteStore(s.db);
  return sqliteStore(s);
}
