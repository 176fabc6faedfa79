/**
 * `npm run cli -- migrate-store --from DATA_DIR --to postgres://… [--json]`: moves a SQLite installation (database
 * and artifacts) to PostgreSQL and its cluster artifact store, then checks the copy against the source before
 * committing it (server/backup/migrate-store.ts, store-copy-check.ts). `--check` compares an existing copy with its
 * source and changes nothing. Progress goes to stderr; the summary (rows per table, artifacts, bytes, the check) to
 * stdout, as text or one JSON object.
 * Exit codes: 0 copied and equal to the source (or, with --check, equal), 1 refused, failed or a mismatch (named;
 * a copy with a mismatch is rolled back), 2 usage.
 */
import { parseArgs } from "node:util";
import { isPostgresUrl } from "@/db/pg-client";
import { checkExistingCopy, migrateStore, redactUrl, StoreMigrationRefused } from "@/server/backup/migrate-store";
import type { StoreCopyCheck } from "@/server/backup/store-copy-check";

export type CliIo = { out: (text: string) => void; err: (text: string) => void };
const processIo: CliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

const USAGE = "usage: migrate-store --from DATA_DIR --to postgres://USER[:PASSWORD]@HOST[:PORT]/DB [--check] [--json]";

function checkLines(check: StoreCopyCheck): string[] {
  const lines: string[] = [];
  const rootsEqual = check.ledger.roots.filter((r) => r.equal).length;
  lines.push(
    `ledger on PostgreSQL: ${check.ledger.events} events, ${check.ledger.checkpoints} signed checkpoints, ${check.ledger.targetVerifies ? "verifies" : `does NOT verify (${check.ledger.targetProblem})`}`,
  );
  lines.push(
    `Merkle roots equal to the source's at ${rootsEqual} of ${check.ledger.roots.length} tree size(s) (every checkpoint and the head)`,
  );
  lines.push(
    `artifacts: ${check.artifacts.hashChecked} of ${check.artifacts.source} read back from PostgreSQL with their SHA-256 checked (${check.artifacts.bytes} bytes)`,
  );
  lines.push(
    `tables: ${check.tables.filter((t) => t.equal).length} of ${check.tables.length} equal to the source (row count and row digest)`,
  );
  lines.push(`identity sequences: ${check.sequences.filter((s) => s.ok).length} of ${check.sequences.length} past the copied ids`);
  lines.push(
    `protective triggers: ${check.triggers.expected - check.triggers.missingOrDisabled.length} of ${check.triggers.expected} present and enabled`,
  );
  if (check.ok) {
    lines.push(`What this proves: ${check.proves}.`);
    lines.push(`What it does not: ${check.notProved}.`);
  } else for (const m of check.mismatches) lines.push(`MISMATCH: ${m}`);
  return lines;
}

export async function migrateStoreCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  let values: { from?: string; to?: string; check?: boolean; json?: boolean };
  try {
    values = parseArgs({
      args: argv,
      options: {
        from: { type: "string" },
        to: { type: "string" },
        check: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    if (!(err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) throw err;
    io.err(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (!values.from || !values.to) {
    io.err(`migrate-store needs --from DATA_DIR and --to postgres://…\n${USAGE}\n`);
    return 2;
  }
  if (!isPostgresUrl(values.to)) {
    io.err(`--to must be a PostgreSQL URL (postgres://… or postgresql://…), got ${redactUrl(values.to)}\n${USAGE}\n`);
    return 2;
  }
  const progress = (line: string) => io.err(`migrate-store: ${line}\n`);
  try {
    if (values.check) {
      const check = await checkExistingCopy({ dataDir: values.from, url: values.to, onProgress: progress });
      if (values.json) io.out(`${JSON.stringify({ check })}\n`);
      else {
        io.out(
          `${check.ok ? "the copy equals the source" : `the copy DIFFERS from the source (${check.mismatches.length} mismatch(es))`}\n`,
        );
        for (const l of checkLines(check)) io.out(`${l}\n`);
      }
      return check.ok ? 0 : 1;
    }
    const s = await migrateStore({ dataDir: values.from, url: values.to, onProgress: progress });
    if (values.json) io.out(`${JSON.stringify(s)}\n`);
    else {
      io.out(
        s.committed
          ? `copied ${s.from} to ${s.to}: ${s.rows} rows in ${s.tables.length} tables, ${s.artifacts.count} artifacts (${s.artifacts.bytes} bytes)${s.queuedJobs > 0 ? `, ${s.queuedJobs} training job(s) for queued runs` : ""} in ${s.copyMs} ms; checked in ${s.checkMs} ms\n`
          : `NOT copied: the copy of ${s.from} differed from the source and was rolled back (the target is migrated and empty)\n`,
      );
      for (const t of s.tables) io.out(`  ${t.name.padEnd(22)} ${String(t.rows).padStart(9)} row(s)\n`);
      for (const l of checkLines(s.check)) io.out(`${l}\n`);
      for (const n of s.notCopied) io.out(`not copied: ${n}\n`);
      if (s.committed)
        io.out(
          `The copy is the source as of its ledger head ${s.ledger.head ?? "(empty ledger)"} (${s.ledger.events} events): anything written to ${s.from} after that is not in it.\n`,
        );
    }
    return s.committed ? 0 : 1;
  } catch (err) {
    io.err(`error: ${(err as Error).message}\n`);
    if (!(err instanceof StoreMigrationRefused) && !values.json) io.err("nothing was committed to the target\n");
    return 1;
  }
}
