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

/**
 * The better-sqlite3 connection under a database or a transaction handle (a transaction runs on its database's one
 * connection), for hot paths that keep prepared statements per connection instead of building a query per call.
 * Drizzle keeps the connection of a transaction on its session (`session.client`, not in its public types).
 */
export function sqliteClientOf(db: DbOrTx): Database.Database {
  if ("$client" in db) return db.$client;
  const client = (db as unknown as { session?: { client?: unknown } }).session?.client;
  if (!(client instanceof Database)) throw new Error("sqliteClientOf: no better-sqlite3 connection under this transaction");
  return client;
}

/**
 * `sql` prepared once per connection (preparing costs more than running a short query), in one result mode for good:
 * "rows" (objects), "raw" (arrays) or "pluck" (the first column). Never change a cached statement's mode.
 */
const statementCache = new WeakMap<Database.Database, Map<string, Database.Statement>>();
export function cachedStatement(sqlite: Database.Database, sql: string, mode: "rows" | "raw" | "pluck" = "rows"): Database.Statement {
  let byText = statementCache.get(sqlite);
  if (!byText) statementCache.set(sqlite, (byText = new Map()));
  const key = `${mode}:${sql}`;
  let st = byText.get(key);
  if (!st) {
    st = sqlite.prepare(sql);
    if (mode === "raw") st.raw(true);
    else if (mode === "pluck") st.pluck(true);
    byText.set(key, st);
  }
  return st;
}

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
