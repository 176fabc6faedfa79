/**
 * PostgreSQL only: downsample.ts's series statements sent in batches. The calls of one statement made in the same turn
 * of the event loop (the runs of a chart, read together by fetchSeriesOfRuns; the buckets of a zoomed-in series) go
 * out as one statement: the single statement, unchanged, correlated to each call's parameters, its rows as one JSON
 * text per call holding one array per field (columns, not rows)
 *
 *   SELECT b.i, (SELECT json_build_array(array_agg(q.c1), …, array_agg(q.cn))::text FROM (<the statement>) q(c1, …, cn))
 *   FROM unnest($1::bigint[], …, $6::bigint[]) WITH ORDINALITY AS b(run_id, key, lo, hi, start, width, i)
 *
 * so PostgreSQL runs the same index lookups for each call, and a chart of 20 runs costs a few round trips instead of
 * ~140 (each ~1 ms on a loaded loopback). Why JSON, by columns: a chart's series are ~40,000 rows, and node-postgres
 * spends ~2.5 µs per row and field parsing rows. One JSON array per row (json_agg(json_build_array(…)), the form
 * before) cost PostgreSQL more: json_build_array looks up its arguments' types on every row, array_agg converts each
 * field's array once. Measured on the bench's 20 long runs (backend CPU time over 30 executions, /proc utime+stime,
 * load 18-19): the 19,500 rollup rows of a chart 17-22 ms per statement by rows, 11-18 ms by columns; 20,000 raw
 * points 14-17 ms by rows, 10-11 ms by columns. On the client, JSON.parse of the columns with the row objects built from
 * them: 11-13 ms per 20,000 rows, as by rows (9-16 ms); the same columns as comma-separated text split in JS cost
 * 16-23 ms.
 *
 * Invariants:
 * - Each call gets exactly the rows the statement alone returns, in its order: a statement returning several rows
 *   names `orderedBy`, the field its ORDER BY sorts on (unique within a call), and each call's rows are sorted on it
 *   here. Not an outer ORDER BY: the join's output order is not guaranteed, and a sort there (with a row number to
 *   keep the statement's order) cost more than the round trips it saved (80-120 ms vs 63 ms for 20,000 rows).
 *   The fields' arrays of one call stay aligned: their array_agg are aggregates of one node over the same rows, each
 *   row fed to every one of them in turn.
 * - The statements select numbers only (steps, values, times, counts): every non-null field is read with Number(),
 *   as drizzle's bigint mode "number" and `mapWith(Number)` read them. JSON writes float8 with the same shortest
 *   exact text as the row protocol (float8out), and non-finite values as strings ("NaN"), which Number() reads back.
 *   A call without rows gets [null, …] (array_agg of no rows is NULL). A call's parameters are the placeholders runId, key, lo,
 *   hi, start and width (bucket edges; null where the statement has none); other parameters of the statement (LIMIT 1) are sent once.
 * - A batch is sent once the event loop has run every callback ready now (setImmediate), and is a named prepared
 *   statement (planned once per pooled connection).
 */
import type pg from "pg";
import { is, Placeholder } from "drizzle-orm";

export type SeriesParams = { runId: number; key: string; lo?: number; hi?: number; start?: number; width?: number };
type Row = Record<string, number | null>;
type Pending = { params: SeriesParams; resolve: (rows: Row[]) => void; reject: (e: unknown) => void };

/** A built pg-core select (its SQL with placeholders, and its fields in select order). */
export type BatchableQuery = { toSQL(): { sql: string; params: unknown[] }; getSelectedFields(): Record<string, unknown> };

const CALL_COLUMNS = { runId: "run_id", key: "key", lo: "lo", hi: "hi", start: "start", width: "width" } as const;

/** The statement's text inside the batch: each placeholder becomes the call's column, other parameters follow $6. */
function batchedText(query: BatchableQuery, fieldCount: number): { text: string; constants: unknown[] } {
  const { sql, params } = query.toSQL();
  const constants: unknown[] = [];
  const inner = sql.replace(/\$(\d+)/g, (_, n: string) => {
    const param = params[Number(n) - 1];
    if (is(param, Placeholder)) {
      const column = CALL_COLUMNS[param.name as keyof typeof CALL_COLUMNS];
      if (!column) throw new Error(`series batch: unknown placeholder ${param.name}`);
      return `b.${column}`;
    }
    constants.push(param);
    return `$${6 + constants.length}`;
  });
  const columns = Array.from({ length: fieldCount }, (_, k) => `c${k + 1}`);
  const text =
    `SELECT b.i, (SELECT json_build_array(${columns.map((c) => `array_agg(q.${c})`).join(", ")})::text FROM (${inner}) q(${columns.join(", ")})) ` +
    "FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) WITH ORDINALITY AS b(run_id, key, lo, hi, start, width, i)";
  return { text, constants };
}

/** A field's value as JSON gave it: a number, null, or a non-finite float8 as a string ("NaN", "Infinity"). */
const numberOf = (v: number | string | null): number | null => (v === null || typeof v === "number" ? v : Number(v));

/** One call's rows from its JSON text: one array per field, in select order (null: no rows). */
function rowsOf(fields: readonly string[], json: string | null): Row[] {
  if (json === null) return [];
  const columns = JSON.parse(json) as ((number | string | null)[] | null)[];
  if (columns[0] === null) return []; // no rows: array_agg gave NULL for each field
  const rows: Row[] = new Array(columns[0]!.length);
  for (let r = 0; r < rows.length; r++) {
    const row: Row = {};
    for (let k = 0; k < fields.length; k++) row[fields[k]!] = numberOf(columns[k]![r] as number | string | null);
    rows[r] = row;
  }
  return rows;
}

/**
 * One series statement whose calls are batched: `all(params)` resolves with that call's rows. `orderedBy`: the field
 * the statement's ORDER BY sorts on, for a statement that returns several rows per call.
 */
export function batchedStatement<R>(
  pool: pg.Pool,
  name: string,
  query: BatchableQuery,
  orderedBy?: string,
): { all(params: SeriesParams): Promise<R[]> } {
  const fields = Object.keys(query.getSelectedFields());
  const { text, constants } = batchedText(query, fields.length);
  let pending: Pending[] = [];

  async function flush(): Promise<void> {
    const calls = pending;
    pending = [];
    try {
      const result = await pool.query<[string, string | null]>({
        name: `runledger_series_batch_${name}`,
        text,
        values: [
          calls.map((c) => c.params.runId),
          calls.map((c) => c.params.key),
          calls.map((c) => c.params.lo ?? null),
          calls.map((c) => c.params.hi ?? null),
          calls.map((c) => c.params.start ?? null),
          calls.map((c) => c.params.width ?? null),
          ...constants,
        ],
        rowMode: "array",
      });
      const perCall: Row[][] = calls.map(() => []);
      for (const [i, text] of result.rows) perCall[Number(i) - 1] = rowsOf(fields, text);
      if (orderedBy) for (const rows of perCall) rows.sort((a, b) => a[orderedBy]! - b[orderedBy]!);
      calls.forEach((c, k) => c.resolve(perCall[k]!));
    } catch (e) {
      for (const c of calls) c.reject(e);
    }
  }

  return {
    all: (params) =>
      new Promise<R[]>((resolve, reject) => {
        if (pending.length === 0) setImmediate(() => void flush());
        pending.push({ params, resolve: resolve as (rows: Row[]) => void, reject });
      }),
  };
}
