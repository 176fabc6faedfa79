/**
 * Key custody commands (dispatched by audit-verify.ts, same exit codes: 0 done, 1 failure, 2 usage):
 *   `audit move-key [--data-dir DIR] [--key-dir DIR] [--json]`   moves the old layout's private key out of the data
 *      directory into the key directory as ed25519-<fingerprint hex>.key (0600), then deletes it from the data directory;
 *   `audit rotate-key [--data-dir DIR] [--key-dir DIR] [--json]` makes a new key in the key directory and records the
 *      rotation in the ledger, endorsed by the old key (server/audit/key-rotation.ts). A running server picks it up.
 *      With DATABASE_URL=postgres://… (no --data-dir) it rotates the PostgreSQL store's key: the key directory must hold
 *      the key the ledger names (it never creates that one); the new key is written there, and the operator copies it
 *      to every web server's key directory (each signs nothing until it has it, key-custody.ts).
 * Key directory: --key-dir, else RUNLEDGER_KEY_DIR, else ${XDG_CONFIG_HOME:-~/.config}/runledger/keys.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { openDatabase, resolveDataDir } from "@/db/client";
import { resolveKeyDir } from "@/server/audit/keys";
import { moveKeyToKeyDir, openAuditSigningKeys } from "@/server/audit/key-custody";
import { rotateAuditKey, rotateAuditKeyOn } from "@/server/audit/key-rotation";
import { openPgStoreServices, postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import { dataDirWithPostgresRefusal } from "./cli-store";
import { ledgerKeyForCommandOn } from "./cli-pg-keys";
import { type CliIo, UsageError } from "./audit-verify";

function parseKeyArgs(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: { "data-dir": { type: "string" }, "key-dir": { type: "string" }, json: { type: "boolean", default: false } },
    strict: true,
    allowPositionals: false,
  });
  const dataDir = resolveDataDir(values["data-dir"]);
  if (!fs.existsSync(dataDir)) throw new UsageError(`data directory not found: ${dataDir}`);
  return { dataDir, keyDir: resolveKeyDir(values["key-dir"]), json: values.json };
}

export async function moveKeyCommand(argv: string[], io: CliIo): Promise<number> {
  const { dataDir, keyDir, json } = parseKeyArgs(argv);
  const r = moveKeyToKeyDir(dataDir, keyDir);
  if (json) io.out(JSON.stringify({ moved: true, ...r, keyDir }) + "\n");
  else {
    io.out(
      `Moved the audit signing key ${r.fingerprint} out of the data directory:\n` +
        `  from ${r.from} (deleted)\n  to   ${r.to} (mode 0600)\n` +
        `Back up the key directory ${keyDir} separately from the data directory. Copies and backups of the data directory\n` +
        `made before now still hold this key: delete them, or rotate the key (npm run cli -- audit rotate-key).\n`,
    );
  }
  return 0;
}

export async function rotateKeyCommand(argv: string[], io: CliIo): Promise<number> {
  const pgUrl = postgresUrlFromEnv();
  if (pgUrl) return rotateKeyOnPostgres(pgUrl, argv, io);
  const { dataDir, keyDir, json } = parseKeyArgs(argv);
  if (!fs.existsSync(path.join(dataDir, "runledger.sqlite"))) throw new UsageError(`no Runledger database in ${dataDir}`);
  const db = openDatabase(dataDir);
  try {
    const keys = openAuditSigningKeys(db, { dataDir, keyDir });
    const r = rotateAuditKey(db, keys.current(), { keyDir, dataDir });
    if (json) io.out(JSON.stringify({ ...r, keyDir }) + "\n");
    else {
      io.out(
        `Rotated the audit signing key of ${dataDir}:\n` +
          `  old key: ${r.oldFingerprint}\n  new key: ${r.newFingerprint} (${r.keyFile}, mode 0600)\n` +
          `  recorded as ledger event seq ${r.rotationSeq} (audit.keyRotate, endorsed by the old key), between checkpoint #${r.before.id}\n` +
          `  (old key, tree size ${r.before.treeSize}) and checkpoint #${r.after.id} (new key, tree size ${r.after.treeSize})\n` +
          `Back up the new key file now. A running server signs with the new key from its next checkpoint. Auditors who trust\n` +
          `the old key's fingerprint verify the new one through the rotation event; the old private key is no longer used.\n`,
      );
    }
    return 0;
  } finally {
    db.$client.close();
  }
}

/** `audit rotate-key` with DATABASE_URL naming PostgreSQL: one rotation under the ledger lock (rotateAuditKeyOn). */
async function rotateKeyOnPostgres(url: string, argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { "data-dir": { type: "string" }, "key-dir": { type: "string" }, json: { type: "boolean", default: false } },
    strict: true,
    allowPositionals: false,
  });
  const refusal = dataDirWithPostgresRefusal("audit rotate-key", values["data-dir"]);
  if (refusal) throw new UsageError(refusal.trimEnd());
  const keyDir = resolveKeyDir(values["key-dir"]);
  const pg = await openPgStoreServices(url, { poolSize: 2 });
  try {
    const current = await ledgerKeyForCommandOn(pg.store, keyDir, "audit rotate-key");
    const r = await rotateAuditKeyOn(pg.store, current, { keyDir });
    if (values.json) io.out(JSON.stringify({ ...r, keyDir, store: pg.where, copyToEveryWebServer: r.keyFile }) + "\n");
    else {
      io.out(
        `Rotated the audit signing key of the PostgreSQL store ${pg.where}:\n` +
          `  old key: ${r.oldFingerprint}\n  new key: ${r.newFingerprint} (${r.keyFile}, mode 0600)\n` +
          `  recorded as ledger event seq ${r.rotationSeq} (audit.keyRotate, endorsed by the old key), between checkpoint #${r.before.id}\n` +
          `  (old key, tree size ${r.before.treeSize}) and checkpoint #${r.after.id} (new key, tree size ${r.after.treeSize})\n` +
          `Copy ${r.keyFile} (mode 0600) into the key directory of every web server of this installation (its\n` +
          `RUNLEDGER_KEY_DIR). A web server without it signs no checkpoint and logs which file it lacks; once the file is there\n` +
          `it signs with the new key from its next checkpoint, without a restart. Back up the new key file now.\n`,
      );
    }
    return 0;
  } finally {
    await pg.close();
  }
}
