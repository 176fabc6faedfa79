/**
 * `npm run cli -- audit <verify|checkpoint-export|move-key|rotate-key> ...`: verify the audit ledger of a data
 * directory or an exported bundle, and export a signed checkpoint for an auditor to keep (audit-checkpoint-export.ts;
 * key custody commands: audit-keys.ts).
 *
 * `audit verify --database postgres://…` (or, with no --data-dir or --bundle, DATABASE_URL=postgres://…) verifies a
 * PostgreSQL store through a SQLite copy of one snapshot, proved equal to it first (server/audit/verify-pg.ts), against
 * a key held outside the store (--public-key or --trusted-checkpoint). --data-dir with DATABASE_URL=postgres://… set
 * is refused (exit 2), as every command refuses it there.
 * `audit verify` states what it proved per level (chain, content, anchor, triggers; audit-verify-format.ts);
 * `--trusted-checkpoint FILE` and `--witness-key FILE` (repeatable) anchor the log from outside, `--witness-url URL`
 * (repeatable, with --witness-key; data directories only) asks each witness for its latest cosigned checkpoint
 * before the snapshot and anchors the log to it too (witness/witness-url-anchors.ts), `--require-anchor`
 * fails without an anchor, `--no-content` checks the chain and anchors only (the result says content was not run).
 * Exit codes (what scripts rely on): 0 = ledger intact, 1 = ledger damaged or unreadable (the first bad seq and
 * the problem are printed), or not anchored with --require-anchor, 2 = usage error. `audit verify` opens the
 * database read-only and writes nothing.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { resolveDataDir } from "@/db/client";
import { parseTrustedCheckpoint } from "@/server/audit/checkpoints";
import { type VerifyDatabaseOptions, type VerifyResult, verifyDatabase } from "@/server/audit/verify";
import { verifyBundle } from "@/server/audit/bundle";
import { toWitnessKeys } from "@/server/audit/witness/witness-anchors";
import { type WitnessUrlAnchors, askWitnesses, logOriginsForDataDir } from "@/server/audit/witness/witness-url-anchors";
import { postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import { formatResult } from "./audit-verify-format";
import { dataDirWithPostgresRefusal } from "./cli-store";

export type CliIo = { out: (text: string) => void; err: (text: string) => void };
const processIo: CliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

const USAGE = `usage:
  audit verify [--data-dir DIR | --bundle DIR | --database postgres://…] [--trusted-checkpoint FILE] [--witness-key FILE]...
               (none given: the PostgreSQL store DATABASE_URL names, else the data directory)
               [--public-key FILE] (a PostgreSQL store needs --public-key or --trusted-checkpoint)
               [--artifacts-dir DIR] [--keep-copy DIR] (PostgreSQL: artifacts in a shared directory; keep the SQLite copy)
               [--witness-url URL]... (with --witness-key; data directory only)
               [--require-anchor] [--no-content] [--workers auto|N] [--json]
  audit checkpoint-export --out FILE [--data-dir DIR] [--key-dir DIR] [--new] [--json]
  audit move-key [--data-dir DIR] [--key-dir DIR] [--json]
  audit rotate-key [--data-dir DIR] [--key-dir DIR] [--json]`;

export class UsageError extends Error {}

export async function auditVerifyCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const [sub, ...rest] = argv[0] === "audit" ? argv.slice(1) : argv;
  try {
    if (sub === "verify") return await verifyCommand(rest, io);
    if (sub === "checkpoint-export") return await (await import("./audit-checkpoint-export")).checkpointExportCommand(rest, io);
    if (sub === "move-key") return await (await import("./audit-keys")).moveKeyCommand(rest, io);
    if (sub === "rotate-key") return await (await import("./audit-keys")).rotateKeyCommand(rest, io);
    throw new UsageError(sub ? `unknown audit command "${sub}"` : "missing audit command");
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      io.err(`${(err as Error).message}\n${USAGE}\n`);
      return 2;
    }
    io.err(`error: ${(err as Error).message}\n`);
    return 1;
  }
}

/** A witness verifier key file: one C2SP vkey line ("<name>+<key id>+<base64 key>"), as `witness key` prints it. */
function readWitnessKey(file: string): string {
  const text = readTextFile(file, "witness key file").trim();
  try {
    toWitnessKeys([text]);
  } catch (err) {
    throw new UsageError(
      `${file} is not a witness verifier key (expected one line "<name>+<key id>+<base64 key>"): ${(err as Error).message}`,
    );
  }
  return text;
}

function checkWitnessUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--witness-url "${url}" is not a URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new UsageError(`--witness-url "${url}" must be http or https`);
  return url.replace(/\/+$/, "");
}

function readTextFile(file: string, what: string): string {
  if (!fs.existsSync(file)) throw new UsageError(`${what} not found: ${file}`);
  return fs.readFileSync(file, "utf8");
}

async function verifyCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "data-dir": { type: "string" },
      bundle: { type: "string" },
      database: { type: "string" },
      "artifacts-dir": { type: "string" },
      "keep-copy": { type: "string" },
      "trusted-checkpoint": { type: "string" },
      "public-key": { type: "string" },
      workers: { type: "string" },
      "witness-key": { type: "string", multiple: true },
      "witness-url": { type: "string", multiple: true },
      "require-anchor": { type: "boolean", default: false },
      "no-content": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if ([values["data-dir"], values.bundle, values.database].filter(Boolean).length > 1)
    throw new UsageError("give one of --data-dir, --bundle or --database");
  // A PostgreSQL store: --database URL, or DATABASE_URL=postgres://… when no bundle is named (as every command takes
  // it); a data directory named with it set is refused like every command's --data-dir there.
  const refusal = dataDirWithPostgresRefusal("audit verify", values["data-dir"]);
  if (refusal) throw new UsageError(refusal.trimEnd());
  const databaseUrl = values.database ?? (values.bundle ? undefined : postgresUrlFromEnv());
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//i.test(databaseUrl))
    throw new UsageError(`--database takes a postgres:// URL, got "${databaseUrl}"`);
  if ((values["artifacts-dir"] || values["keep-copy"]) && databaseUrl === undefined)
    throw new UsageError("--artifacts-dir and --keep-copy apply to a PostgreSQL store (--database URL)");
  const trustedCheckpoint = values["trusted-checkpoint"]
    ? parseTrustedCheckpoint(JSON.parse(readTextFile(values["trusted-checkpoint"], "trusted checkpoint file")))
    : undefined;
  const publicKeyPem = values["public-key"] ? readTextFile(values["public-key"], "public key file") : undefined;
  // Default "auto": parallel range workers for large logs (AUTO_PARALLEL_FROM_EVENTS or more), one pass otherwise.
  const workers: number | "auto" = values.workers === undefined || values.workers === "auto" ? "auto" : Number(values.workers);
  if (workers !== "auto" && (!Number.isInteger(workers) || workers < 0))
    throw new UsageError("--workers takes auto or a whole number (0 = one pass)");
  const witnessKeys = (values["witness-key"] ?? []).map((file) => readWitnessKey(file));
  const witnessUrls = (values["witness-url"] ?? []).map((url) => checkWitnessUrl(url));
  if (witnessUrls.length > 0 && witnessKeys.length === 0)
    throw new UsageError("--witness-url needs --witness-key FILE: the key the witness's cosignature must verify under");
  if (witnessUrls.length > 0 && databaseUrl !== undefined)
    throw new UsageError(
      "--witness-url is not available for a PostgreSQL store yet: use --witness-key, which checks the witness cosignatures stored with the log",
    );
  if (witnessUrls.length > 0 && values.bundle) {
    throw new UsageError(
      "--witness-url checks a live data directory: a bundle is a snapshot, and the witness has since cosigned a larger tree (use --witness-key with the bundle's cosignatures.json)",
    );
  }
  const opts: VerifyDatabaseOptions = {
    trustedCheckpoint,
    publicKeyPem,
    workers,
    witnessKeys,
    requireAnchor: values["require-anchor"],
    content: !values["no-content"],
  };

  let result: VerifyResult;
  let target: string;
  let witnessChecks: WitnessUrlAnchors | null = null;
  if (databaseUrl !== undefined) {
    const { verifyPgStore, VerifyPgRefused } = await import("@/server/audit/verify-pg");
    try {
      const pgResult = await verifyPgStore(databaseUrl, {
        ...opts,
        artifactsDir: values["artifacts-dir"],
        keepCopyIn: values["keep-copy"],
        onProgressLine: values.json ? undefined : (line) => io.err(`${line}\n`),
      });
      target = pgResult.store.url;
      result = pgResult;
    } catch (err) {
      if (err instanceof VerifyPgRefused) throw new UsageError(err.message);
      throw err;
    }
  } else if (values.bundle) {
    target = path.resolve(values.bundle);
    if (!fs.existsSync(target)) throw new UsageError(`bundle directory not found: ${target}`);
    result = await verifyBundle(target, opts);
  } else {
    target = resolveDataDir(values["data-dir"]);
    if (!fs.existsSync(target)) throw new UsageError(`data directory not found: ${target}`);
    // Ask the witnesses first: the log only grows while they answer (witness-url-anchors.ts).
    if (witnessUrls.length > 0) {
      const [origin] = logOriginsForDataDir(target, publicKeyPem ?? trustedCheckpoint?.publicKeyPem);
      witnessChecks = await askWitnesses(witnessUrls, witnessKeys, origin!, { requireAnchor: values["require-anchor"] });
      opts.witnessUrlAnchors = witnessChecks;
    }
    result = await verifyDatabase(target, opts);
  }

  const asked = witnessChecks ? { witnessUrls: witnessChecks.checks } : {};
  if (values.json) io.out(JSON.stringify({ target, ...result, ...asked }) + "\n");
  else io.out(formatResult(target, result, trustedCheckpoint !== undefined, witnessChecks?.checks));
  return result.ok ? 0 : 1;
}

export { formatResult };
