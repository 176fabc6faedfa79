/**
 * Streaming reads on PostgreSQL (issue 16): a server-side cursor (DECLARE … CURSOR / FETCH), so a million rows are
 * never in memory at once. PostgreSQL's counterpart of better-sqlite3's `.iterate()`.
 *
 * Invariants:
 * - Must run inside a transaction on `client` (a cursor without WITH HOLD lives until the transaction ends); all the
 *   rows come from that transaction's snapshot.
 * - Rows come back as arrays in the SELECT's column order, with node-postgres' default parsing: int8 (bigint) as
 *   strings, int4 and float8 as numbers, bytea as Buffer, boolean as boolean. Callers convert int8.
 * - `select` is SQL text without parameters (DECLARE takes none): build it from identifiers the code owns only.
 * - Stopping early (break/return) closes the cursor.
 */
import type pg from "pg";

let cursorCounter = 0;

export async function* pgCursorRows(client: pg.ClientBase, select: string, batchRows = 2000): AsyncGenerator<unknown[], void, undefined> {
  const name = `rl_cursor_${process.pid}_${++cursorCounter}`;
  await client.query(`DECLARE ${name} NO SCROLL CURSOR FOR ${select}`);
  let open = true;
  try {
    for (;;) {
      const r = await client.query<unknown[]>({ text: `FETCH ${batchRows} FROM ${name}`, rowMode: "array" });
      if (r.rows.length === 0) break;
      for (const row of r.rows) yield row;
    }
    await client.query(`CLOSE ${name}`);
    open = false;
  } finally {
    // Stopped early: close the cursor unless the transaction is already aborted (then it is gone anyway).
    if (open) await client.query(`CLOSE ${name}`).catch(() => undefined);
  }
}
