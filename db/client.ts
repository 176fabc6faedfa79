/**
 * The database connection: one SQLite file under the data directory, WAL mode, migrations applied on open.
 * `openDatabase` is the only place that creates a connection; tests pass a temporary directory.
 */
import Database from "better-sqlite3";
import { drizzle, type BetterSQLite3Database } from "drizzle-orm/better-sqlite3";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
import fs from "node:fs";
import path from "node:path";
import * as schema from "./schema";

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };
/** A drizzle transaction handle; services write through it synchronously. */
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
export type DbOrTx = Db | Tx;

export function resolveDataDir(explicit?: string): string {
  return path.resolve(explicit ?? process.env.RUNLEDGER_DATA_DIR ?? "./data");
}

// Resolved from the project root (every entry point runs there), not __dirname: Next.js bundles this file.
const MIGRATIONS_DIR = path.join(process.cwd(), "db", "migrations");

export function openDatabase(dataDir: string): Db {
  fs.mkdirSync(dataDir, { recursive: true });
  const sqlite = new Database(path.join(dataDir, "runledger.sqlite"));
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma("busy_timeout = 5000");
  const db = drizzle(sqlite, { schema }) as Db;
  // Several processes write one file (web server, `cli train`, `cli pilot`, `cli resume`). A deferred transaction
  // that reads and then writes fails at once with SQLITE_BUSY when another process wrote in between (its snapshot is
  // stale, and the busy timeout does not apply to that upgrade). IMMEDIATE takes the write lock at BEGIN and waits for
  // it up to busy_timeout, so service transactions (read, check, write) just queue behind each other.
  const deferredTransaction = db.transaction.bind(db);
  db.transaction = ((fn, config) => deferredTransaction(fn, { behavior: "immediate", ...config })) as Db["transaction"];
  migrate(db, { migrationsFolder: MIGRATIONS_DIR });
  return db;
}

export { schema };
