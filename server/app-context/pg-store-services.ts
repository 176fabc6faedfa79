/**
 * The PostgreSQL store of a process that runs on `DATABASE_URL` (issue 16): the store, with its migrations applied
 * (migratePg: one process at a time under an advisory lock, so workers and web servers may start together), and the
 * artifact store in PostgreSQL itself (pg-store.ts: chunked, hash-checked on every read), so a cluster needs nothing
 * but PostgreSQL. The URL (it may hold a password) is never printed; messages name host, port and database.
 */
import { describePgUrl, isPostgresUrl, migratePg, openPgDatabase } from "@/db/pg-client";
import { pgStore, type Store } from "@/db/store";
import { pgArtifactStore } from "@/server/artifacts/pg-store";
import type { AsyncArtifactStore } from "@/server/artifacts/async-store";

export type PgStoreServices = { store: Store; artifacts: AsyncArtifactStore; where: string; close(): Promise<void> };

/** The PostgreSQL URL in the environment, or undefined when the process runs on the embedded SQLite store. */
export function postgresUrlFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  const url = env.DATABASE_URL?.trim();
  return url && isPostgresUrl(url) ? url : undefined;
}

export async function openPgStoreServices(url: string, opts: { poolSize?: number } = {}): Promise<PgStoreServices> {
  const db = openPgDatabase(url, { max: opts.poolSize ?? 10 });
  const where = describePgUrl(url);
  try {
    await migratePg(db);
  } catch (err) {
    await db.$client.end().catch(() => undefined);
    throw new Error(`cannot open the PostgreSQL store ${where}: ${(err as Error).message}`);
  }
  return { store: pgStore(db), artifacts: pgArtifactStore(db.$client), where, close: () => db.$client.end() };
}
