/**
 * `audit checkpoint-export --out FILE [--data-dir DIR] [--key-dir DIR] [--new] [--json]` (dispatched by
 * audit-verify.ts, same exit codes: 0 done, 1 failure, 2 usage): writes the latest signed checkpoint as a file an
 * auditor keeps outside the server (for `audit verify --trusted-checkpoint FILE`); `--new` signs a fresh one first.
 *
 * With DATABASE_URL=postgres://… (issue 16) it reads the PostgreSQL store (--data-dir is refused, exit 2). There is no
 * data directory holding the public key: the file carries the public key of the checkpoint's key from this machine's
 * key directory (--key-dir or RUNLEDGER_KEY_DIR); without that key file it is written without one, and says so (the
 * auditor then gives `audit verify` the installation's public key with --public-key). `--new` signs with the key the
 * ledger names, from the key directory (cli-pg-keys.ts: never a new key); without it the command refuses (exit 1).
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { openDatabase, resolveDataDir } from "@/db/client";
import { asStore, reader, type Store } from "@/db/store";
import { postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import {
  type AuditCheckpointRow,
  createAuditCheckpoint,
  createAuditCheckpointOn,
  latestAuditCheckpoint,
  trustedCheckpointFromRow,
} from "@/server/audit/checkpoints";
import { latestCheckpointQuery } from "@/server/audit/checkpoint-reads";
import { loadAuditPublicKey, loadKeyFromDir, resolveKeyDir } from "@/server/audit/keys";
import { openAuditSigningKeys } from "@/server/audit/key-custody";
import { type CliIo, UsageError } from "./audit-verify";
import { dataDirWithPostgresRefusal, openCliStore } from "./cli-store";
import { COPY_THE_KEY_HINT, installationKeyOnPostgres } from "./cli-pg-keys";

type Values = { out?: string; "data-dir"?: string; "key-dir"?: string; new: boolean; json: boolean };

export async function checkpointExportCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: "string" },
      "data-dir": { type: "string" },
      "key-dir": { type: "string" },
      new: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.out) throw new UsageError("--out FILE is required");
  const refusal = dataDirWithPostgresRefusal("audit checkpoint-export", values["data-dir"]);
  if (refusal) {
    io.err(refusal);
    return 2;
  }
  if (postgresUrlFromEnv()) return onPostgres(values, values.out, io);
  const dataDir = resolveDataDir(values["data-dir"]);
  if (!fs.existsSync(dataDir)) throw new UsageError(`data directory not found: ${dataDir}`);
  const db = openDatabase(dataDir);
  try {
    let row = latestAuditCheckpoint(db);
    // Only --new signs (and so needs the private key from the key directory); exporting reads the public key.
    if (values.new)
      row = createAuditCheckpoint(
        db,
        openAuditSigningKeys(db, { dataDir, keyDir: resolveKeyDir(values["key-dir"]) }),
        "checkpoint export",
      ).checkpoint;
    if (!row) {
      io.err("error: there is no checkpoint yet; run with --new to create one\n");
      return 1;
    }
    return written(row, loadAuditPublicKey(dataDir).publicKeyPem, values, values.out, io);
  } finally {
    db.$client.close();
  }
}

async function onPostgres(values: Values, outFile: string, io: CliIo): Promise<number> {
  const keyDir = resolveKeyDir(values["key-dir"]);
  const on = await openCliStore({ keyDir });
  try {
    const store = asStore(on.store);
    if (values.new) {
      const key = await installationKeyOnPostgres(store, keyDir);
      if (!key.keys) {
        io.err(
          `error: --new signs a checkpoint with the installation's audit key, but ${key.missing}: ${COPY_THE_KEY_HINT}; ` +
            `or drop --new to export the latest signed checkpoint\n`,
        );
        return 1;
      }
      const { checkpoint } = await createAuditCheckpointOn(store, key.keys, "checkpoint export");
      return written(checkpoint, key.keys.publicKeyPem, values, outFile, io);
    }
    const row = await latestCheckpoint(store);
    if (!row) {
      io.err("error: there is no checkpoint yet; run with --new to create one\n");
      return 1;
    }
    // The public key of the key that signed it, from this machine's key directory (PostgreSQL keeps no public key file).
    const publicKeyPem = loadKeyFromDir(keyDir, row.keyFingerprint)?.publicKeyPem;
    if (!publicKeyPem)
      io.err(
        `note: the key directory ${keyDir} does not hold the key ${row.keyFingerprint} that signed this checkpoint, so the file ` +
          `carries no public key: verify with --public-key FILE (the installation's public key) beside --trusted-checkpoint\n`,
      );
    return written(row, publicKeyPem, values, outFile, io);
  } finally {
    await on.close();
  }
}

async function latestCheckpoint(store: Store): Promise<AuditCheckpointRow | undefined> {
  return (await latestCheckpointQuery(reader(store), store.tables))[0];
}

function written(row: AuditCheckpointRow, publicKeyPem: string | undefined, values: Values, outFile: string, io: CliIo): number {
  const exported = trustedCheckpointFromRow(row, publicKeyPem);
  const out = path.resolve(outFile);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(exported, null, 2) + "\n");
  if (values.json) io.out(JSON.stringify({ out, ...exported }) + "\n");
  else {
    io.out(
      `Wrote checkpoint #${row.id} (tree size ${row.treeSize}, root ${row.rootHash}, ${row.at}) to ${out}\n` +
        `Keep it outside the server; later run: audit verify --trusted-checkpoint ${out}\n`,
    );
  }
  return 0;
}
