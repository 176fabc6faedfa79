/**
 * `audit checkpoint-export --out FILE [--data-dir DIR] [--key-dir DIR] [--new] [--json]` (dispatched by
 * audit-verify.ts, same exit codes: 0 done, 1 failure, 2 usage): writes the latest signed checkpoint as a file an
 * auditor keeps outside the server (for `audit verify --trusted-checkpoint FILE`); `--new` signs a fresh one first.
 *
 * With DATABASE_URL=postgres://… (issue 16) it reads the PostgreSQL store (--data-dir is refused, exit 2). There is no
 * data directory holding the public key: the keys of this machine's key directory (--key-dir or RUNLEDGER_KEY_DIR)
 * vouch for the ledger's key chain instead.
 *
 * On both stores the file carries the public key that signed the checkpoint: the key in force at its tree size in the
 * ledger's key chain (ledger-key-chain.ts), which a key held here (SQLite: the data directory's public key file) must
 * lead to, so after a key rotation it is the new key for the new key's checkpoints even on a machine that holds only
 * the old one. When no held key leads to it, or the checkpoint is not signed by that key, the file is written without
 * a public key, and a note says why (the auditor then gives `audit verify` the installation's key with --public-key). `--new` signs with the key the
 * ledger names, from the key directory (cli-pg-keys.ts: never a new key); without it the command refuses (exit 1).
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { openDatabase, resolveDataDir } from "@/db/client";
import { asStore, reader, sqliteStore, type Store } from "@/db/store";
import { postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import {
  type AuditCheckpointRow,
  createAuditCheckpoint,
  createAuditCheckpointOn,
  latestAuditCheckpoint,
  trustedCheckpointFromRow,
} from "@/server/audit/checkpoints";
import { latestCheckpointQuery } from "@/server/audit/checkpoint-reads";
import { type AuditPublicKey, loadAuditPublicKey, loadKeyFromDir, PUBLIC_KEY_FILE, resolveKeyDir } from "@/server/audit/keys";
import { keyFingerprintsInDir, openAuditSigningKeys } from "@/server/audit/key-custody";
import { checkpointProblemIn, ledgerKeyChainOn, signerKeyIn } from "@/server/audit/ledger-key-chain";
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
    // The data directory's public key file names the key this installation holds; the chain leads from it to the signer.
    const publicKeyFile = path.join(dataDir, PUBLIC_KEY_FILE);
    let held: AuditPublicKey[] = [];
    try {
      held = [loadAuditPublicKey(dataDir)];
    } catch {
      // no readable public key file: nothing vouches for a key (noted below)
    }
    const withoutKey = `the data directory's public key file ${publicKeyFile} ${held[0] ? `(${held[0].fingerprint}) is no key of the ledger's key chain` : "is missing or unreadable"}`;
    const signer = await signerPublicKey(sqliteStore(db), row, held, withoutKey, io);
    return written(row, signer, values, values.out, io);
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
    // PostgreSQL keeps no public key file: the keys of this machine's key directory vouch for the ledger's key chain.
    const held = keyFingerprintsInDir(keyDir).flatMap((fp) => {
      const keys = loadKeyFromDir(keyDir, fp);
      return keys ? [{ publicKey: keys.publicKey, publicKeyPem: keys.publicKeyPem, fingerprint: keys.fingerprint }] : [];
    });
    const withoutKey = `the key directory ${keyDir} does not hold the key ${row.keyFingerprint} that signed this checkpoint, nor any key of the ledger's key chain leading to it`;
    return written(row, await signerPublicKey(store, row, held, withoutKey, io), values, outFile, io);
  } finally {
    await on.close();
  }
}

async function latestCheckpoint(store: Store): Promise<AuditCheckpointRow | undefined> {
  return (await latestCheckpointQuery(reader(store), store.tables))[0];
}

/**
 * The public key that signed `row`: the key in force at its tree size in the ledger's key chain (ledger-key-chain.ts),
 * which a key held here must lead to; after a key rotation that may be a newer or an older key than the one held.
 * Otherwise undefined, with a note (the file then carries no public key).
 */
async function signerPublicKey(
  store: Store,
  row: AuditCheckpointRow,
  held: AuditPublicKey[],
  withoutKey: string,
  io: CliIo,
): Promise<string | undefined> {
  const chain = await ledgerKeyChainOn(store, held);
  const signer = signerKeyIn(chain, row);
  if (signer) return signer.publicKeyPem;
  const why = chain ? checkpointProblemIn(chain, row) : withoutKey;
  io.err(
    `note: ${why}, so the file carries no public key: verify with --public-key FILE (the installation's public key) beside --trusted-checkpoint\n`,
  );
  return undefined;
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
