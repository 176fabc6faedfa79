/**
 * The refusal, with DATABASE_URL=postgres://…, of the options that name a SQLite installation (--data-dir, --key-dir),
 * for the commands that open cli-train-store.ts's TrainStore (train, sweep, compress, resume, rerun, pilot --rollback): on PostgreSQL the record and the
 * artifacts are in the database and the signing key stays with the web servers. Exit 2 with this text.
 */
import { postgresUrlFromEnv } from "@/server/app-context/pg-store-services";

/** The refusal's text when DATABASE_URL names PostgreSQL and --data-dir or --key-dir is given; else null. */
export function sqliteOptionsOnPostgresRefusal(command: string, opts: { dataDir?: string; keyDir?: string }): string | null {
  if (!postgresUrlFromEnv() || (opts.dataDir === undefined && opts.keyDir === undefined)) return null;
  return (
    `${command}: DATABASE_URL selects the PostgreSQL store; --data-dir and --key-dir name a SQLite installation and its signing key ` +
    "(on PostgreSQL the signing key stays with the web servers). Unset DATABASE_URL to use a data directory, or drop them.\n"
  );
}
