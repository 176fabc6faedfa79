/**
 * A report export from the PostgreSQL store (issue 16) reads a SQLite copy of it, made by the export worker: phase 1
 * (the content check over the whole ledger, the facts, PROV) and phase 3 (events.jsonl, proofs, facts.json and its
 * artifacts) are SQLite-only reads (better-sqlite3, synchronous), as audit verify's are, so they run unchanged on a copy of one snapshot, as
 * `audit verify --database` does (server/backup/pg-snapshot.ts, ARCHITECTURE.md "audit verify and backup on
 * PostgreSQL"). The one write, phase 2, is the main thread's, on the store itself (export-record.ts).
 *
 * 1. openPgExportCopy: one REPEATABLE READ, READ ONLY snapshot, every table and every artifact copied into a new data
 *    directory under the temporary directory. Phase 1 reads it: the facts, the content check and the payload the
 *    ledger records are those of that snapshot, as on SQLite they are those of phase 1's read transaction.
 * 2. catchUpLedger, after phase 2: the ledger's append-only tables (audit_events, audit_checkpoints,
 *    witness_cosignatures: UPDATE and DELETE are refused by triggers on both stores) gain the rows appended since,
 *    read in a second snapshot, so phase 3 sees the export event, the checkpoint signed over it and its cosignatures,
 *    as on SQLite it reads a later snapshot. Other tables stay as phase 1 read them (phase 3 reads none of them).
 *
 * Invariants: nothing is written to PostgreSQL; the copy is not trusted for anything the bundle's verifier does not
 * check again (the chain, the signatures, the roots, facts.json against the ledger's hashes); the directory is removed
 * by dispose(). Cost: one copy of the store per export (rows and artifacts), the price audit verify pays too.
 */
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import Database from "better-sqlite3";
import { pgCursorRows } from "@/db/pg-cursor";
import { snapshotPgIntoDataDir, toSqliteValue } from "@/server/backup/pg-snapshot";
import { quoteIdent, storeTables } from "@/server/backup/store-tables";

/** The append-only tables phase 3 reads, and the key their rows are appended in. */
const LEDGER_TABLES = ["audit_events", "audit_checkpoints", "witness_cosignatures"] as const;

export type PgExportCopy = {
  /** The copy's data directory (runledger.sqlite and artifacts/). */
  dataDir: string;
  /** Appends the ledger rows written to PostgreSQL since the copy (or the last catch-up); returns how many. */
  catchUpLedger(): Promise<number>;
  /** Closes the connection and removes the copy. */
  dispose(): Promise<void>;
};

async function inSnapshot<T>(pool: pg.Pool, read: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const result = await read(client);
    await client.query("COMMIT");
    return result;
  } finally {
    await client.query("ROLLBACK").catch(() => undefined);
    client.release();
  }
}

/** Copies the store at `url` into `dataDir`, a new empty directory (step 1 of the header); dispose() removes it. */
export async function openPgExportCopy(url: string, dataDir: string): Promise<PgExportCopy> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const dispose = async () => {
    await pool.end().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await inSnapshot(pool, async (client) => {
      const ours = await client.query<{ t: string | null }>("SELECT to_regclass('audit_events')::text AS t");
      if (ours.rows[0]!.t === null) throw new Error("the database holds no Runledger store (no audit_events table)");
      await snapshotPgIntoDataDir({ client, dataDir, artifacts: true });
    });
  } catch (err) {
    await dispose();
    throw err;
  }
  return {
    dataDir,
    catchUpLedger: () => inSnapshot(pool, (client) => appendNewLedgerRows(client, path.join(dataDir, "runledger.sqlite"))),
    dispose,
  };
}

/** Step 2 of the header: each ledger table's rows past the copy's largest key, in key order, in one SQLite transaction. */
async function appendNewLedgerRows(client: pg.ClientBase, sqliteFile: string): Promise<number> {
  const sqlite = new Database(sqliteFile, { fileMustExist: true });
  let appended = 0;
  try {
    sqlite.prepare("BEGIN IMMEDIATE").run();
    for (const name of LEDGER_TABLES) {
      const t = storeTables().find((x) => x.name === name);
      if (!t || t.orderBy.length !== 1) throw new Error(`report export: ${name} is not a table with a single key`);
      const key = t.orderBy[0]!.name;
      const last =
        (
          sqlite
            .prepare(`SELECT max(${quoteIdent(key)}) FROM ${quoteIdent(name)}`)
            .raw(true)
            .get() as [number | null]
        )[0] ?? 0;
      const columns = t.columns.map((c) => quoteIdent(c.name)).join(", ");
      const insert = sqlite.prepare(`INSERT INTO ${quoteIdent(name)} (${columns}) VALUES (${t.columns.map(() => "?").join(", ")})`);
      // `last` is an integer read from the copy, so it is safe in the cursor's text.
      const select = `SELECT ${columns} FROM ${quoteIdent(name)} WHERE ${quoteIdent(key)} > ${Math.trunc(Number(last))} ORDER BY ${quoteIdent(key)}`;
      for await (const row of pgCursorRows(client, select)) {
        insert.run(t.columns.map((c, i) => toSqliteValue(c.storage, row[i])));
        appended++;
      }
    }
    sqlite.prepare("COMMIT").run();
  } finally {
    if (sqlite.inTransaction) sqlite.prepare("ROLLBACK").run();
    sqlite.close();
  }
  return appended;
}
