/**
 * The database connection: one SQLite file under the data directory, WAL mode, migrations applied on open (one process
 * at a time: see applyMigrations).
 * `openDatabase` is the only place that creates a connection; tests pass a temporary directory.
 */
import Database from "better-sqlite3";
import { drizzle, type BetterSQLite3Database } from "drizzle-orm/better-sqlite3";
import { readMigrationFiles } from "drizzle-orm/migrator";
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

/**
 * The data directory of the embedded store: `--data-dir`, else RUNLEDGER_DATA_DIR, else ./data. Every process that
 * serves or changes the record on SQLite resolves its store here, so this is where a request for the PostgreSQL
 * store is refused by a command that works on a data directory only (refusePostgresForDataDirCommand). The processes
 * that run on PostgreSQL (the web server, `npm run worker`, every CLI command that reads or changes the record) read
 * DATABASE_URL first (server/app-context/pg-store-services.ts postgresUrlFromEnv) and never resolve a data directory
 * with it.
 */
export function resolveDataDir(explicit?: string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  refusePostgresForDataDirCommand(env);
  return path.resolve(explicit ?? env.RUNLEDGER_DATA_DIR ?? "./data");
}

/**
 * `DATABASE_URL=postgres://…` is how an installation chooses the PostgreSQL store (issue 16). What reaches this works
 * on a SQLite data directory only (`audit move-key`, the SQLite services of createAppServices), so such a process
 * refuses to start instead of quietly working on a SQLite file while the operator believes it works on PostgreSQL.
 * Other DATABASE_URL values (another tool's) are left alone.
 */
export function refusePostgresForDataDirCommand(env: Readonly<Record<string, string | undefined>> = process.env): void {
  const url = env.DATABASE_URL?.trim();
  if (!url || !/^postgres(ql)?:\/\//i.test(url)) return;
  throw new Error(
    "DATABASE_URL names a PostgreSQL database, but this command works on a SQLite data directory only. " +
      "`audit verify` and `backup` read the PostgreSQL store DATABASE_URL (or --database URL) names when given no " +
      "--data-dir (`audit verify` with a trusted key: --public-key or --trusted-checkpoint); `audit move-key` concerns " +
      "a data directory. Unset DATABASE_URL to work on the SQLite file in the data directory (--data-dir or RUNLEDGER_DATA_DIR); " +
      "`npm run cli -- migrate-store --from DATA_DIR --to postgres://…` copies an installation into PostgreSQL and checks the copy.",
  );
}

// Resolved from the project root (every entry point runs there), not __dirname: Next.js bundles this file.
const MIGRATIONS_DIR = path.join(process.cwd(), "db", "migrations");

/** How long a process opening the database waits for another one's migrations (or any write) before it gives up. */
export const MIGRATION_LOCK_TIMEOUT_MS = 60_000;
const BUSY_TIMEOUT_MS = 5000;

export function openDatabase(dataDir: string, opts: { migrationLockTimeoutMs?: number } = {}): Db {
  fs.mkdirSync(dataDir, { recursive: true });
  const lockTimeoutMs = opts.migrationLockTimeoutMs ?? MIGRATION_LOCK_TIMEOUT_MS;
  const sqlite = new Database(path.join(dataDir, "runledger.sqlite"), { timeout: BUSY_TIMEOUT_MS });
  try {
    switchToWal(sqlite, dataDir, lockTimeoutMs);
  } catch (e) {
    sqlite.close();
    throw e;
  }
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  const db = drizzle(sqlite, { schema }) as Db;
  // Several processes write one file (web server, `cli train`, `cli pilot`, `cli resume`). A deferred transaction
  // that reads and then writes fails at once with SQLITE_BUSY when another process wrote in between (its snapshot is
  // stale, and the busy timeout does not apply to that upgrade). IMMEDIATE takes the write lock at BEGIN and waits for
  // it up to busy_timeout, so service transactions (read, check, write) just queue behind each other.
  const deferredTransaction = db.transaction.bind(db);
  db.transaction = ((fn, config) => deferredTransaction(fn, { behavior: "immediate", ...config })) as Db["transaction"];
  try {
    applyMigrations(sqlite, dataDir, lockTimeoutMs);
  } catch (e) {
    sqlite.close();
    throw e;
  }
  return db;
}

const sleepBuffer = new Int32Array(new SharedArrayBuffer(4));

/**
 * `journal_mode = WAL`, retried: on a new file, the switch needs a lock that another process opening the same file at
 * the same moment may hold, and SQLite then answers SQLITE_BUSY at once, without its busy handler (seen in
 * db/tests/open-race.test.ts). Once the file is in WAL mode the pragma is a no-op.
 */
function switchToWal(sqlite: Database.Database, dataDir: string, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      sqlite.pragma("journal_mode = WAL");
      return;
    } catch (e) {
      if (!(e instanceof Database.SqliteError && e.code.startsWith("SQLITE_BUSY"))) throw e;
      if (Date.now() >= deadline) {
        throw new Error(
          `cannot open the database of data directory ${dataDir} in WAL mode: another process kept it locked for more than ${Math.round(timeoutMs / 1000)} s`,
          { cause: e },
        );
      }
      Atomics.wait(sleepBuffer, 0, 0, Math.min(5 * (attempt + 1), 50));
    }
  }
}

const MIGRATIONS_TABLE = "__drizzle_migrations";

/** created_at of the last applied migration (drizzle's record: the journal's `when`), undefined when none is. */
function lastAppliedMigration(sqlite: Database.Database): number | undefined {
  const table = sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(MIGRATIONS_TABLE);
  if (!table) return undefined;
  const last = sqlite.prepare(`SELECT created_at FROM "${MIGRATIONS_TABLE}" ORDER BY created_at DESC LIMIT 1`).pluck().get();
  return last === undefined || last === null ? undefined : Number(last);
}

/**
 * Applies the committed migrations the file lacks, with drizzle's rule and records (a migration is applied when its
 * journal `when` is later than the last applied one's; one row per migration in __drizzle_migrations), but safe when
 * several processes open a new data directory at once. drizzle's own migrator reads the last applied migration
 * before its (deferred) BEGIN, so two processes could both see none and the second fail with "table already
 * exists". Here the read that decides is made under the write lock: BEGIN IMMEDIATE (waiting for it up to
 * `lockTimeoutMs`), then read, apply, record, COMMIT. Up-to-date files (every open but the first) skip the lock.
 */
function applyMigrations(sqlite: Database.Database, dataDir: string, lockTimeoutMs: number): void {
  const migrations = readMigrationFiles({ migrationsFolder: MIGRATIONS_DIR });
  const latest = Math.max(...migrations.map((m) => m.folderMillis));
  const appliedBefore = lastAppliedMigration(sqlite);
  if (appliedBefore !== undefined && appliedBefore >= latest) return;

  sqlite.pragma(`busy_timeout = ${lockTimeoutMs}`);
  try {
    sqlite.exec("BEGIN IMMEDIATE");
  } catch (e) {
    if (e instanceof Database.SqliteError && e.code.startsWith("SQLITE_BUSY")) {
      throw new Error(
        `cannot apply the database migrations of data directory ${dataDir}: another process held the write lock of ` +
          `${path.join(dataDir, "runledger.sqlite")} for more than ${Math.round(lockTimeoutMs / 1000)} s`,
        { cause: e },
      );
    }
    throw e;
  } finally {
    sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  }
  try {
    sqlite.exec(`CREATE TABLE IF NOT EXISTS "${MIGRATIONS_TABLE}" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)`);
    const applied = lastAppliedMigration(sqlite);
    const record = sqlite.prepare(`INSERT INTO "${MIGRATIONS_TABLE}" ("hash", "created_at") VALUES (?, ?)`);
    for (const migration of migrations) {
      if (applied !== undefined && applied >= migration.folderMillis) continue;
      for (const statement of migration.sql) if (statement.trim()) sqlite.exec(statement);
      record.run(migration.hash, migration.folderMillis);
    }
    sqlite.exec("COMMIT");
  } catch (e) {
    if (sqlite.inTransaction) sqlite.exec("ROLLBACK");
    throw e;
  }
}

export { schema };
