/**
 * The few heavy SQL reads of the content check's later phases (check-checkpoints-sql.ts, check-evaluations-sql.ts:
 * each a pass over a table joined to its events), which the content worker makes first on its connection, pinned to
 * the main connection's snapshot (verify-content-parts.ts pinSameSnapshot), and posts on a port while the main
 * thread checks the earlier phases: reading them on the main thread was what kept the worker idle at the end.
 *
 * Invariants: a prefetched result is used only for exactly the SQL text and parameters it was read with, on a
 * connection reading the same database state, so it is the result the main connection would read; anything not
 * there yet (or that failed in the worker) is read on the main connection, so the outcome never depends on timing.
 * BLOB values come back as Buffers, as better-sqlite3 gives them (a structured clone makes them plain Uint8Arrays).
 */
import type Database from "better-sqlite3";
import { receiveMessageOnPort, type MessagePort } from "node:worker_threads";

/** One read, as both threads make it: raw rows (arrays) of `sql` with `params`. */
export type SqlRead = { sql: string; params: unknown[] };

/** What the worker posts per read: the rows, or why it could not read them. */
export type SqlReadReply = { index: number; rows: unknown[][] } | { index: number; error: string };

/** Raw rows of a statement (the reads the content check may have had made for it elsewhere). */
export type SqlReads = { all(sql: string, ...params: unknown[]): unknown[][] };

export const liveReads = (sqlite: Database.Database): SqlReads => ({
  all: (sql, ...params) =>
    sqlite
      .prepare(sql)
      .raw(true)
      .all(...params) as unknown[][],
});

/** A read's identity: its SQL text and parameters (non-finite numbers spelt out: JSON would print them all as null). */
const keyOf = (sql: string, params: unknown[]) =>
  `${sql}\u0000${JSON.stringify(params, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? `number:${v}` : v))}`;

/** Reads from `port` what the worker read for `reads` (by index) when it is there, else on `sqlite`. */
export class PrefetchedReads implements SqlReads {
  private readonly keys: string[];
  private readonly ready = new Map<string, unknown[][]>();
  /** How many reads were answered from the worker (tests). */
  used = 0;

  constructor(
    private readonly sqlite: Database.Database,
    reads: readonly SqlRead[],
    private readonly port: MessagePort,
  ) {
    this.keys = reads.map((r) => keyOf(r.sql, r.params));
  }

  all(sql: string, ...params: unknown[]): unknown[][] {
    for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) {
      const reply = m.message as SqlReadReply;
      const key = this.keys[reply.index];
      if (key !== undefined && "rows" in reply)
        this.ready.set(
          key,
          reply.rows.map((row) => row.map(blobAsBuffer)),
        );
    }
    const key = keyOf(sql, params);
    const rows = this.ready.get(key);
    if (!rows) return liveReads(this.sqlite).all(sql, ...params);
    this.ready.delete(key);
    this.used++;
    return rows;
  }
}

/** A value after a structured clone, a BLOB back as the Buffer better-sqlite3 gives (the clone makes it a plain Uint8Array). */
export function blobAsBuffer(v: unknown): unknown {
  return v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;
}

/** The worker's side: reads each of `reads` on `sqlite` and posts it on `port`, in order. */
export function readAndPost(sqlite: Database.Database, reads: readonly SqlRead[], port: MessagePort): void {
  reads.forEach(({ sql, params }, index) => {
    let reply: SqlReadReply;
    try {
      reply = {
        index,
        rows: sqlite
          .prepare(sql)
          .raw(true)
          .all(...params) as unknown[][],
      };
    } catch (err) {
      reply = { index, error: (err as Error).message };
    }
    port.postMessage(reply);
  });
}
