/**
 * The reads the content worker makes for the main thread (sql-reads.ts): a read it posted is used only for exactly
 * its SQL and parameters, once, with the rows as better-sqlite3 gives them (BLOBs as Buffers, NULLs); anything
 * not posted yet, posted for other parameters, or failed in the worker is read on the main connection.
 */
import Database from "better-sqlite3";
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveReads, PrefetchedReads, readAndPost, type SqlRead } from "../sql-reads";

let db: Database.Database;

beforeAll(() => {
  db = new Database(":memory:");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB, r REAL, s TEXT)");
  const insert = db.prepare("INSERT INTO t VALUES (?, ?, ?, ?)");
  insert.run(1, Buffer.from([0, 1, 255]), 0.1, "a");
  insert.run(2, null, 1.5, null);
  insert.run(3, Buffer.from("x"), 2 ** 53 + 2, "é😀");
});
afterAll(() => db.close());

/** Runs `test` with the two ends of a fresh channel (the worker's end and the main thread's), closed after. */
function withPorts(test: (main: MessagePort, worker: MessagePort) => void): void {
  const { port1, port2 } = new MessageChannel();
  try {
    test(port1, port2);
  } finally {
    port1.close();
    port2.close();
  }
}

const READS: SqlRead[] = [
  { sql: "SELECT id, b, r, s FROM t WHERE id >= ? ORDER BY id", params: [1] },
  { sql: "SELECT count(*) FROM t WHERE id <= @upto", params: [{ upto: 2 }] },
  { sql: "SELECT no_such_function(id) FROM t", params: [] },
];

describe("reads made by the content worker", () => {
  it("are used for exactly their SQL and parameters, once, with the rows the main connection would read", () => {
    withPorts((port1, port2) => {
      readAndPost(db, READS, port2);
      const reads = new PrefetchedReads(db, READS, port1);
      const rows = reads.all(READS[0]!.sql, 1);
      expect(rows).toEqual(liveReads(db).all(READS[0]!.sql, 1));
      expect(Buffer.isBuffer(rows[0]![1])).toBe(true);
      expect(reads.used).toBe(1);
      expect(reads.all(READS[1]!.sql, { upto: 2 })).toEqual([[2]]);
      expect(reads.used).toBe(2);
      // Read again, or with other parameters: on the main connection.
      expect(reads.all(READS[0]!.sql, 1)).toEqual(rows);
      expect(reads.all(READS[1]!.sql, { upto: 3 })).toEqual([[3]]);
      expect(reads.used).toBe(2);
      // A read the worker could not make is tried on the main connection (and fails there the same way).
      expect(() => reads.all(READS[2]!.sql)).toThrow(/no_such_function/);
      expect(reads.used).toBe(2);
    });
  });

  it("parameters JSON would print alike (null, -Infinity) are told apart", () => {
    withPorts((port1, port2) => {
      const sql = "SELECT count(*) FROM t WHERE r > ?";
      const offered: SqlRead[] = [{ sql, params: [null] }];
      readAndPost(db, offered, port2);
      const reads = new PrefetchedReads(db, offered, port1);
      expect(reads.all(sql, -Infinity)).toEqual([[3]]);
      expect(reads.used).toBe(0);
      expect(reads.all(sql, null)).toEqual([[0]]);
      expect(reads.used).toBe(1);
    });
  });

  it("a read not posted yet is made on the main connection, and what is posted later is used", () => {
    withPorts((port1, port2) => {
      const reads = new PrefetchedReads(db, READS, port1);
      expect(reads.all(READS[1]!.sql, { upto: 2 })).toEqual([[2]]);
      expect(reads.used).toBe(0);
      readAndPost(db, READS.slice(0, 1), port2);
      expect(reads.all(READS[0]!.sql, 1)).toHaveLength(3);
      expect(reads.used).toBe(1);
    });
  });
});
