/**
 * PostgreSQL only: downsample.ts's series statements sent in batches. The calls of one statement made in the same turn
 * of the event loop (the runs of a chart, read together by fetchSeriesOfRuns; the buckets of a zoomed-in series) go
 * out as one statement: the single statement, unchanged, correlated to each call's parameters, its rows as one text
 * per call holding each field's values as one array (columns, not rows)
 *
 *   SELECT b.i, (SELECT concat_ws('|', array_to_string(array_agg(q.c1), ',', 'N'), …)
 *                FROM (<the statement>) q(c1, …, cn))
 *   FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS b(run_id, key, lo, hi, i)
 *
 * so PostgreSQL runs the same index lookups for each call, and a chart of 20 runs costs a few round trips instead of
 * ~140 (each ~1 ms on a loaded loopback). Why columns of text: a chart's series are ~40,000 rows. node-postgres spends
 * ~2.5 µs per row and field parsing rows; one JSON array per row (json_agg(json_build_array(…)), the form before) cost
 * PostgreSQL 4 to 5 µs per row to build (json_build_array looks up its arguments' types on every row) and the
 * client an array per row; array_agg per field and array_to_string took 4 to 5 times less time in PostgreSQL for the
 * 20,000 rollup rows of a chart (EXPLAIN ANALYZE: ~20-25 ms against ~80-110 ms, count(*) alone ~15-25 ms, load 10+),
 * and the client splits each field's text once.
 *
 * Invariants:
 * - Each call gets exactly the rows the statement alone returns, in its order: a statement returning several rows
 *   names `orderedBy`, the field its ORDER BY sorts on (unique within a call), and each call's rows are sorted on it
 *   here. Not an outer ORDER BY: the join's output order is not guaranteed, and a sort there (with a row number to
 *   keep the statement's order) cost more than the round trips it saved (80-120 ms vs 63 ms for 20,000 rows).
 *   The fields' arrays of one call stay aligned: their array_agg are one aggregate over the same rows, each row fed to
 *   every one of them in turn.
 * - The statements select numbers only (steps, values, times, counts): every non-null field is read with Number(),
 *   as drizzle's bigint mode "number" and `mapWith(Number)` read them. array_to_string writes float8 with the same
 *   shortest exact text as the row protocol (float8out), integers and numeric as their digits, non-finite values as
 *   NaN / Infinity / -Infinity (which Number() reads back) and a null as N (read as null). None of these texts holds a
 *   comma or a bar. A call without rows gets '' (concat_ws skips the NULL arrays). A call's parameters are the
 *   placeholders runId, key, lo and hi; other parameters of the statement (LIMIT 1) are sent once.
 * - A batch is sent once the event loop has run every callback ready now (setImmediate), and is a named prepared
 *   statement (planned once per pooled connection).
 */
import type pg from "pg";
import { is, Placeholder } from "drizzle-orm";

export type SeriesParams = { runId: number; key: string; lo?: number; hi?: number };
type Row = Record<string, number | null>;
type Pending = { params: SeriesParams; resolve: (rows: Row[]) => void; reject: (e: unknown) => void };

/** A built pg-core select (its SQL with placeholders, and its fields in select order). */
export type BatchableQuery = { toSQL(): { sql: string; params: unknown[] }; getSelectedFields(): Record<string, unknown> };

const CALL_COLUMNS = { runId: "run_id", key: "key", lo: "lo", hi: "hi" } as const;

/** The statement's text inside the batch: each placeholder becomes the call's column, other parameters follow $4. */
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
    return `$${4 + constants.length}`;
  });
  const columns = Array.from({ length: fieldCount }, (_, k) => `c${k + 1}`);
  const fieldTexts = columns.map((c) => `array_to_string(array_agg(q.${c}), ',', 'N')`).join(", ");
  const text =
    `SELECT b.i, (SELECT concat_ws('|', ${fieldTexts}) FROM (${inner}) q(${columns.join(", ")})) ` +
    "FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS b(run_id, key, lo, hi, i)";
  return { text, constants };
}

const cell = (text: string): number | null => (text === "N" ? null : Number(text));

/** One call's rows from its text: the fields' values, each field's comma-separated, fields separated by bars. */
function rowsOf(fields: readonly string[], text: string | null): Row[] {
  if (!text) return [];
  const columns = text.split("|").map((values) => values.split(","));
  const rows: Row[] = new Array(columns[0]!.length);
  for (let r = 0; r < rows.length; r++) {
    const row: Row = {};
    for (let k = 0; k < fields.length; k++) row[fields[k]!] = cell(columns[k]![r]!);
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
