/**
 * `npm run cli -- witness <serve|key|log-key|push>`: run a transparency-log witness (c2sp.org/tlog-witness) for
 * a Runledger audit log, and the log operator's side of it.
 *   witness serve --port P --key-dir D --log-key FILE_OR_VKEY [--log-key ...] [--log-origin NAME] [--host 127.0.0.1] [--name NAME]
 *       HTTP witness; key pair created in D on first start (0600); prints "listening on <url>" and its vkey.
 *   witness key --key-dir D [--name NAME]        prints the witness's vkey (creating the key on first use)
 *   witness log-key [--data-dir DIR | --key-dir DIR]        prints this log's vkey (give it to the witness: --log-key)
 *   witness push [--data-dir DIR | --key-dir DIR] [--json]  pushes the latest checkpoint to RUNLEDGER_WITNESSES now
 * With DATABASE_URL=postgres://… log-key and push run on the PostgreSQL store (--data-dir refused, exit 2): log-key reads
 * the key in force from the ledger (the public key of its latest rotation, else the key directory's file of the key the
 * checkpoints name); push signs the checkpoint note with the key the ledger names, from the key directory (--key-dir,
 * else RUNLEDGER_KEY_DIR), never creating one, and stores the cosignatures in PostgreSQL.
 * --log-key takes a vkey (what `witness log-key` prints), a file of vkeys (one a line; after a key rotation, the old
 * and the new key under the same origin), or a public key PEM (audit-ed25519.pub; its origin is then --log-origin
 * or "runledger/<fingerprint prefix>", right for a ledger whose first checkpoint that key signed).
 * Exit codes: 0 ok, 1 failure, 2 usage error. `serve` runs until SIGINT/SIGTERM.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { resolveDataDir } from "@/db/client";
import { loadAuditPublicKey, parseAuditPublicKey, resolveKeyDir } from "@/server/audit/keys";
import { type VerifierKey, SIG_TYPE_ED25519, parseVerifierKey } from "@/server/audit/witness/note";
import { defaultLogOrigin, logOrigin, logVerifierKey } from "@/server/audit/witness/checkpoint-note";
import { loadOrCreateWitnessIdentity, lockWitnessDir } from "@/server/audit/witness/witness-files";
import { Witness } from "@/server/audit/witness/witness";
import { createWitnessServer, listen } from "@/server/audit/witness/witness-http";
import { firstCheckpointKeyFingerprint, firstCheckpointKeyFingerprintOn } from "@/server/audit/witness/store";
import type { PushResult } from "@/server/audit/witness/pusher";
import { openPgStoreServices, postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import { ledgerPublicKeyOn } from "@/server/audit/key-custody";
import { dataDirWithPostgresRefusal } from "./cli-store";
import { ledgerKeyForCommandOn } from "./cli-pg-keys";

const USAGE = `usage:
  witness serve --port P --key-dir D --log-key FILE_OR_VKEY [--log-key ...] [--log-origin NAME] [--host 127.0.0.1] [--name NAME]
  witness key --key-dir D [--name NAME]
  witness log-key [--data-dir DIR | --key-dir DIR]
  witness push [--data-dir DIR | --key-dir DIR] [--json]`;

class UsageError extends Error {}

/** Log keys from one --log-key value (see file header). */
export function readLogKeys(value: string, origin?: string): VerifierKey[] {
  const isFile = fs.existsSync(value) && fs.statSync(value).isFile();
  const text = isFile ? fs.readFileSync(value, "utf8") : value;
  let keys: VerifierKey[];
  if (text.includes("BEGIN PUBLIC KEY")) {
    const pub = parseAuditPublicKey(text);
    keys = [logVerifierKey(origin ?? defaultLogOrigin(pub.fingerprint), pub.publicKey)];
  } else {
    const lines = text
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    if (lines.length === 0) throw new UsageError(`--log-key ${value}: no key found`);
    keys = lines.map((l) => parseVerifierKey(l));
  }
  for (const k of keys) {
    if (k.type !== SIG_TYPE_ED25519)
      throw new UsageError(`--log-key ${k.name}: not a log key (a log signs with type 0x01 Ed25519 note keys)`);
    if (origin && k.name !== origin)
      throw new UsageError(`--log-key ${k.name}: the key's name is the log origin and differs from --log-origin ${origin}`);
  }
  return keys;
}

async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      "key-dir": { type: "string" },
      "log-key": { type: "string", multiple: true },
      "log-origin": { type: "string" },
      name: { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values["key-dir"]) throw new UsageError("--key-dir D is required (the witness's key and state live there)");
  if (!values["log-key"]?.length)
    throw new UsageError("--log-key is required (the log's vkey or public key file; `witness log-key` prints it)");
  const port = Number(values.port ?? "");
  if (values.port === undefined || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError("--port takes a port number (0 = any free port)");
  const logKeys = values["log-key"].flatMap((v) => readLogKeys(v, values["log-origin"]));
  const keyDir = values["key-dir"];
  const { identity, created } = loadOrCreateWitnessIdentity(keyDir, values.name);
  const release = lockWitnessDir(keyDir);
  const witness = new Witness(identity, logKeys, keyDir);
  const server = createWitnessServer(witness, { log: (l) => process.stderr.write(`${new Date().toISOString()} ${l}\n`) });
  const { url } = await listen(server, port, values.host);
  process.stdout.write(
    `${created ? `created witness key in ${keyDir}\n` : ""}witness ${identity.name} listening on ${url}\n` +
      `vkey ${identity.verifierKey.vkey}\n` +
      `logs ${witness.origins.join(", ")}\n`,
  );
  return new Promise<number>((resolve) => {
    const stop = () => {
      server.close();
      server.closeAllConnections?.();
      release();
      resolve(0);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}

function key(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: { "key-dir": { type: "string" }, name: { type: "string" } },
    strict: true,
    allowPositionals: false,
  });
  if (!values["key-dir"]) throw new UsageError("--key-dir D is required");
  const { identity } = loadOrCreateWitnessIdentity(values["key-dir"], values.name);
  process.stdout.write(`${identity.verifierKey.vkey}\n`);
  return 0;
}

/** --data-dir names a SQLite data directory: refused when DATABASE_URL names PostgreSQL (exit 2). */
function refuseDataDirOnPostgres(command: string, dataDir: string | undefined): void {
  const refusal = dataDirWithPostgresRefusal(command, dataDir);
  if (refusal) throw new UsageError(refusal.trimEnd());
}

async function logKey(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { "data-dir": { type: "string" }, "key-dir": { type: "string" } },
    strict: true,
    allowPositionals: false,
  });
  refuseDataDirOnPostgres("witness log-key", values["data-dir"]);
  const pgUrl = postgresUrlFromEnv();
  if (pgUrl) {
    const pg = await openPgStoreServices(pgUrl, { poolSize: 2 }); // migratePg holds one connection for its lock
    try {
      const pub = await ledgerPublicKeyOn(pg.store, resolveKeyDir(values["key-dir"]));
      const first = await firstCheckpointKeyFingerprintOn(pg.store);
      process.stdout.write(`${logVerifierKey(logOrigin(first ?? pub.fingerprint), pub.publicKey).vkey}\n`);
      return 0;
    } finally {
      await pg.close();
    }
  }
  const dataDir = resolveDataDir(values["data-dir"]);
  const pub = loadAuditPublicKey(dataDir); // the current signing key (public half, kept in the data directory)
  const dbFile = path.join(dataDir, "runledger.sqlite");
  let first: string | null = null;
  if (fs.existsSync(dbFile)) {
    const sqlite = new Database(dbFile, { readonly: true, fileMustExist: true });
    try {
      first = firstCheckpointKeyFingerprint(sqlite);
    } finally {
      sqlite.close();
    }
  }
  process.stdout.write(`${logVerifierKey(logOrigin(first ?? pub.fingerprint), pub.publicKey).vkey}\n`);
  return 0;
}

async function push(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { "data-dir": { type: "string" }, "key-dir": { type: "string" }, json: { type: "boolean", default: false } },
    strict: true,
    allowPositionals: false,
  });
  refuseDataDirOnPostgres("witness push", values["data-dir"]);
  const { createAppServices } = await import("@/server/app-context/app-services");
  const { parseWitnessConfig } = await import("@/server/audit/witness/client");
  const { WitnessPusher } = await import("@/server/audit/witness/pusher");
  const config = parseWitnessConfig(process.env.RUNLEDGER_WITNESSES);
  for (const e of config.errors) process.stderr.write(`RUNLEDGER_WITNESSES: ${e}\n`);
  if (config.witnesses.length === 0) throw new UsageError("no witness configured: set RUNLEDGER_WITNESSES=URL=VKEY[,URL=VKEY...]");
  const report = (results: PushResult[]): number => {
    if (values.json) process.stdout.write(`${JSON.stringify({ results })}\n`);
    else
      for (const r of results)
        process.stdout.write(`${r.url}: ${r.outcome} (tree size ${r.treeSize})${r.outcome === "failed" ? `: ${r.error}` : ""}\n`);
    return results.length > 0 && results.every((r) => r.outcome !== "failed") ? 0 : 1;
  };
  const pgUrl = postgresUrlFromEnv();
  if (pgUrl) {
    // The note is signed with the key the ledger names, from this machine's key directory; none is ever created here.
    const pg = await openPgStoreServices(pgUrl, { poolSize: 2 });
    try {
      const auditKeys = await ledgerKeyForCommandOn(pg.store, resolveKeyDir(values["key-dir"]), "witness push");
      return report(await new WitnessPusher({ db: pg.store, auditKeys }, config, { log: () => undefined }).pushNow());
    } finally {
      await pg.close();
    }
  }
  const services = createAppServices(values["data-dir"], values["key-dir"] ? { keyDir: values["key-dir"] } : {});
  try {
    return report(await new WitnessPusher(services, config, { log: () => undefined }).pushNow());
  } finally {
    services.db.$client.close();
  }
}

export async function witnessCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === "serve") return await serve(rest);
    if (sub === "key") return key(rest);
    if (sub === "log-key") return await logKey(rest);
    if (sub === "push") return await push(rest);
    throw new UsageError(sub ? `unknown witness command "${sub}"` : "missing witness command");
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  }
}
