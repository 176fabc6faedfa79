/**
 * `npm run cli -- backup --out FILE [--data-dir DIR] [--json]` and
 * `npm run cli -- restore --from FILE --data-dir DIR [--json]`: a whole data directory in one tar (database by
 * SQLite's online backup, artifacts, public key, and a manifest of SHA-256 per file), taken while the server runs,
 * and its restore into an empty directory after every hash checks out (server/backup/). The private signing key is
 * never in a backup: it stays in the key directory. `backup --database postgres://…` (or, with no --data-dir,
 * DATABASE_URL=postgres://…) archives one snapshot of a PostgreSQL store in the same format
 * (server/backup/backup-pg.ts); it restores to a SQLite data directory. --data-dir with DATABASE_URL=postgres://… set
 * is refused (exit 2), as every command refuses it there: backup's, and restore's (restorePostgresRefusal: a
 * directory every command would then pass over for the PostgreSQL store). Exit codes: 0 done, 1 failed (nothing left
 * behind), 2 usage.
 */
import fs from "node:fs";
import { parseArgs } from "node:util";
import { resolveDataDir } from "@/db/client";
import { createBackup } from "@/server/backup/backup";
import { createPgBackup } from "@/server/backup/backup-pg";
import { restoreBackup } from "@/server/backup/restore";
import { postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import { dataDirWithPostgresRefusal } from "./cli-store";

export type CliIo = { out: (text: string) => void; err: (text: string) => void };
const processIo: CliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

const BACKUP_USAGE =
  "usage: backup --out FILE [--data-dir DIR | --database postgres://… [--public-key FILE] [--artifacts-dir DIR]] [--json]\n" +
  "  (neither given: the PostgreSQL store DATABASE_URL names, else the data directory)";
const RESTORE_USAGE = "usage: restore --from FILE --data-dir DIR [--json]";

/**
 * restore writes a SQLite data directory; with DATABASE_URL naming PostgreSQL, the server and every command would use
 * the PostgreSQL store and never read it, so the restore is refused before anything is written (exit 2), saying what
 * to do instead: restore with DATABASE_URL unset, then copy into PostgreSQL with migrate-store if that is the aim.
 */
function restorePostgresRefusal(dataDir: string): string | null {
  if (!postgresUrlFromEnv()) return null;
  return (
    `restore: --data-dir ${dataDir} would restore into a SQLite data directory, but DATABASE_URL names a PostgreSQL ` +
    `store, which the server and every command use instead: nothing was restored. Run the restore with DATABASE_URL ` +
    `unset (DATABASE_URL= npm run cli -- restore --from FILE --data-dir ${dataDir}); to put the backup into ` +
    `PostgreSQL, then copy it there: npm run cli -- migrate-store --from ${dataDir} --to postgres://…`
  );
}

function usageError(err: unknown): boolean {
  return (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ?? false;
}

export async function backupCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  let values: { out?: string; "data-dir"?: string; database?: string; "public-key"?: string; "artifacts-dir"?: string; json?: boolean };
  try {
    values = parseArgs({
      args: argv,
      options: {
        out: { type: "string" },
        "data-dir": { type: "string" },
        database: { type: "string" },
        "public-key": { type: "string" },
        "artifacts-dir": { type: "string" },
        json: { type: "boolean", default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    if (!usageError(err)) throw err;
    io.err(`${(err as Error).message}\n${BACKUP_USAGE}\n`);
    return 2;
  }
  if (!values.out) {
    io.err(`backup needs --out FILE\n${BACKUP_USAGE}\n`);
    return 2;
  }
  const usage = (message: string) => {
    io.err(`${message}\n${BACKUP_USAGE}\n`);
    return 2;
  };
  if (values.database && values["data-dir"]) return usage("give either --data-dir or --database, not both");
  // A PostgreSQL store: --database URL, else DATABASE_URL=postgres://… (as every command takes it); a data directory
  // named with it set is refused like every command's --data-dir there.
  const refusal = dataDirWithPostgresRefusal("backup", values["data-dir"]);
  if (refusal) return usage(refusal.trimEnd());
  const databaseUrl = values.database ?? postgresUrlFromEnv();
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//i.test(databaseUrl))
    return usage(`--database takes a postgres:// URL, got "${databaseUrl}"`);
  if ((values["public-key"] || values["artifacts-dir"]) && databaseUrl === undefined)
    return usage("--public-key and --artifacts-dir apply to a PostgreSQL store (--database URL)");
  if (values["public-key"] && !fs.existsSync(values["public-key"])) return usage(`public key file not found: ${values["public-key"]}`);
  try {
    const onProgress = values.json ? undefined : (line: string) => io.out(`${line}\n`);
    const r =
      databaseUrl !== undefined
        ? await createPgBackup({
            url: databaseUrl,
            out: values.out,
            publicKeyPem: values["public-key"] ? fs.readFileSync(values["public-key"], "utf8") : undefined,
            artifactsDir: values["artifacts-dir"],
            onProgress,
          })
        : await createBackup({ dataDir: resolveDataDir(values["data-dir"]), out: values.out, onProgress });
    const m = r.manifest;
    if (values.json)
      io.out(
        `${JSON.stringify({ out: r.out, archiveBytes: r.archiveBytes, files: Object.keys(m.files).length, ledger: m.ledger, problems: m.problems })}\n`,
      );
    else {
      io.out(`backup written: ${r.out} (${r.archiveBytes} bytes, ${Object.keys(m.files).length} files with SHA-256 in MANIFEST.json)\n`);
      io.out(`ledger: ${m.ledger.events} events, head seq ${m.ledger.lastSeq ?? "–"} chain ${m.ledger.chainHead ?? "–"}\n`);
      for (const p of m.problems) io.out(`warning: ${p}\n`);
      io.out("The private signing key is not in the backup: back up the key directory separately.\n");
    }
    return 0;
  } catch (err) {
    io.err(`error: ${(err as Error).message}\n`);
    return 1;
  }
}

export async function restoreCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  let values: { from?: string; "data-dir"?: string; json?: boolean };
  try {
    values = parseArgs({
      args: argv,
      options: { from: { type: "string" }, "data-dir": { type: "string" }, json: { type: "boolean", default: false } },
      strict: true,
    }).values;
  } catch (err) {
    if (!usageError(err)) throw err;
    io.err(`${(err as Error).message}\n${RESTORE_USAGE}\n`);
    return 2;
  }
  if (!values.from || !values["data-dir"]) {
    io.err(`restore needs --from FILE and --data-dir DIR (an empty or new directory)\n${RESTORE_USAGE}\n`);
    return 2;
  }
  const refusal = restorePostgresRefusal(values["data-dir"]);
  if (refusal) {
    io.err(`${refusal}\n`);
    return 2;
  }
  try {
    const r = await restoreBackup({ from: values.from, dataDir: values["data-dir"] });
    if (values.json)
      io.out(
        `${JSON.stringify({ dataDir: r.dataDir, files: r.files, bytes: r.bytes, ledger: r.manifest.ledger, warnings: r.warnings })}\n`,
      );
    else {
      io.out(`restored ${r.files} files (${r.bytes} bytes), every SHA-256 as in the manifest, into ${r.dataDir}\n`);
      for (const w of r.warnings) io.out(`warning: ${w}\n`);
      io.out(`check it: npm run cli -- audit verify --data-dir ${r.dataDir}\n`);
    }
    return 0;
  } catch (err) {
    io.err(`error: ${(err as Error).message}\n`);
    return 1;
  }
}
