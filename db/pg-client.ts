/**
 * The PostgreSQL connection (issue 16, the team store): a node-postgres pool under drizzle's pg dialect, with the
 * schema of db/schema-pg and the committed migrations of db/migrations-pg. Not yet the store the services use (they
 * still take db/client.ts's synchronous SQLite handle; ARCHITECTURE.md, "The PostgreSQL store", says how they move).
 *
 * Invariants:
 * - Transactions run at READ COMMITTED (PostgreSQL's default): ledger-pg.ts relies on each statement seeing what
 *   committed before it, after it has taken the ledger's advisory lock.
 * - Migrations are applied by one process at a time (a session advisory lock around drizzle's migrator), so several
 *   web servers and workers may start together on one empty database. The training workers' job queue
 *   (graphile-worker, its own schema `graphile_worker`: server/runs/orchestrator/pg-job-consumer.ts) is installed by
 *   graphile-worker's own migrations, right after drizzle's, under the same lock.
 * - bigint columns are read as JS numbers (drizzle's mode "number"), like SQLite's 64-bit integers through
 *   better-sqlite3: values beyond 2^53 are out of range on both stores.
 */
import pg from "pg";
import crypto from "node:crypto";
import path from "node:path";
import { drizzle, type NodePgDatabase } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import { Logger, runMigrations as runJobQueueMigrations } from "graphile-worker";
import * as pgSchema from "./schema-pg";

export type PgDb = NodePgDatabase<typeof pgSchema> & { $client: pg.Pool };
/** A drizzle transaction handle on PostgreSQL: every call on it is awaited. */
export type PgTx = Parameters<Parameters<PgDb["transaction"]>[0]>[0];

// Resolved from the project root, like db/client.ts's MIGRATIONS_DIR.
export const PG_MIGRATIONS_DIR = path.join(process.cwd(), "db", "migrations-pg");

/** Advisory lock keys (bigint, one namespace per database). Distinct constants; never reuse one for another purpose. */
export const PG_LOCK_KEYS = {
  /** Held by the process applying migrations (session level). */
  migrate: 0x52_4c_4d_49_47_52_41n, // "RLMIGRA"
  /** Held by the transaction appending to audit_events (transaction level): serialises appends across processes. */
  ledger: 0x52_4c_4c_45_44_47_52n, // "RLLEDGR"
  /** Held by the transaction of a store copy (server/backup/migrate-store.ts): one copy into a database at a time. */
  migrateStore: 0x52_4c_4d_53_54_4f_52n, // "RLMSTOR"
  /** Held by a sign-in throttle transaction (server/auth/throttle.ts; transaction level): SQLite's IMMEDIATE. */
  throttle: 0x52_4c_54_48_52_4f_54n, // "RLTHROT"
} as const;

export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(ql)?:\/\//.test(url);
}

export function openPgDatabase(url: string, opts: { max?: number } = {}): PgDb {
  if (!isPostgresUrl(url)) throw new Error(`not a PostgreSQL URL (postgres://…): ${url}`);
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10 });
  return drizzle(pool, { schema: pgSchema }) as PgDb;
}

/** How long migratePg waits for another process's migrations before it gives up. */
export const PG_MIGRATION_LOCK_TIMEOUT_MS = 60_000;

/** The database a URL names, for messages: host, port and database, never the user or password. */
export function describePgUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname}`;
  } catch {
    return "(unparsable PostgreSQL URL)";
  }
}

/** graphile-worker logs its migrations at info level; they are part of migratePg, which reports nothing either. */
export const quietJobQueueLogger = new Logger((scope) => (level, message) => {
  if (level === "error") process.stderr.write(`graphile-worker ${JSON.stringify(scope)}: ${message}\n`);
});

/**
 * Applies the committed migrations of db/migrations-pg that the database lacks, then graphile-worker's (the workers'
 * job queue, schema graphile_worker), one process at a time: a session advisory lock around both migrators, which
 * read the applied migrations after it has the lock. The lock is polled (pg_try_advisory_lock) for at most
 * `lockTimeoutMs`, then the call fails naming the database.
 */
export async function migratePg(db: PgDb, migrationsFolder = PG_MIGRATIONS_DIR, opts: { lockTimeoutMs?: number } = {}): Promise<void> {
  const lockTimeoutMs = opts.lockTimeoutMs ?? PG_MIGRATION_LOCK_TIMEOUT_MS;
  const key = PG_LOCK_KEYS.migrate.toString();
  const lockHolder = await db.$client.connect();
  try {
    const deadline = Date.now() + lockTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const got = await lockHolder.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1) AS locked", [key]);
      if (got.rows[0]!.locked) break;
      if (Date.now() >= deadline) {
        const where = describePgUrl((db.$client.options as { connectionString?: string }).connectionString ?? "");
        throw new Error(
          `cannot apply the PostgreSQL migrations of ${where}: another session held the migration lock ` +
            `(advisory lock ${key}) for more than ${Math.round(lockTimeoutMs / 1000)} s`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(20 * (attempt + 1), 250)));
    }
    try {
      await migrate(db, { migrationsFolder });
      await runJobQueueMigrations({ pgPool: db.$client, logger: quietJobQueueLogger });
    } finally {
      await lockHolder.query("SELECT pg_advisory_unlock($1)", [key]);
    }
  } finally {
    lockHolder.release();
  }
}

export type ScratchPgDatabase = { url: string; name: string; drop: () => Promise<void> };

/**
 * A new empty database named `<prefix>_<random>` on the cluster `baseUrl` names (tests and benches); drop() removes
 * it, closing any connection left to it. `linguisticCollation` makes its default collation ICU en-US rather than the
 * cluster's, so that a query relying on the default for byte order, or on ILIKE for ASCII-only folding, shows.
 */
export async function createScratchPgDatabase(
  baseUrl: string,
  prefix: string,
  options: { linguisticCollation?: boolean } = {},
): Promise<ScratchPgDatabase> {
  const name = `${prefix}_${crypto.randomBytes(6).toString("hex")}`;
  const admin = async (q: string) => {
    const c = new pg.Client({ connectionString: baseUrl });
    await c.connect();
    try {
      await c.query(q);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE ${name}${options.linguisticCollation ? " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'" : ""}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  const drop = async () => {
    const c = new pg.Client({ connectionString: baseUrl });
    await c.connect();
    try {
      // A pool's end() resolves before its sockets have closed. FORCE would terminate those sessions, and each
      // closing client would report the termination as an uncaught error: wait for them to leave (at most ~5 s; a
      // loaded CI machine closes them slowly).
      for (let i = 0; i < 250; i++) {
        const left = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1", [name]);
        if (left.rows[0]!.n === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  };
  return { url: url.toString(), name, drop };
}

export { pgSchema };
