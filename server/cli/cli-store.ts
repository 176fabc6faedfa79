/**
 * The store of a command that does not train (users, token, show, register, and those that read or export): the SQLite data directory (--data-dir,
 * RUNLEDGER_DATA_DIR) or, with DATABASE_URL=postgres://…, the PostgreSQL store (issue 16), plus what the command does
 * after a write: the due audit checkpoint, as the web server does after every mutation.
 *
 * On PostgreSQL the checkpoint is signed only when this machine's key directory (RUNLEDGER_KEY_DIR) holds a key: the
 * one the ledger names, or (nothing signed yet) its only key. The command never creates a key there: the key of a
 * PostgreSQL installation belongs to its web servers (the first one to start makes it), and a key minted by an
 * operator's command on another machine would make those servers refuse to start. Without a key it signs nothing and
 * says so; the web servers' checkpoint timer signs the events later.
 */
import path from "node:path";
import { openDatabase, resolveDataDir, type Db } from "@/db/client";
import type { Store } from "@/db/store";
import { openPgStoreServices, postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import { applyCheckpointPolicyOn } from "@/server/audit/checkpoint-policy";
import { keyFingerprintsInDir, ledgerKeyFingerprintOn, openAuditSigningKeysOn } from "@/server/audit/key-custody";
import { resolveKeyDir } from "@/server/audit/keys";
import { fileArtifactStore } from "@/server/artifacts/store";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { checkpointAfterCliWrite } from "./checkpoint-after-write";

export type CliStore = {
  store: Store | Db;
  /** The installation's artifacts: the data directory's files, or PostgreSQL's chunked blobs. */
  artifacts: AnyArtifactStore;
  /** The SQLite data directory; null on PostgreSQL (the record and the artifacts are in the database). */
  dataDir: string | null;
  checkpointAfterWrite(): Promise<void>;
  close(): Promise<void>;
};

/** The refusal of --data-dir when DATABASE_URL names PostgreSQL (exit 2), as train, worker and seed say it; else null. */
export function dataDirWithPostgresRefusal(command: string, dataDir: string | undefined): string | null {
  if (dataDir === undefined || !postgresUrlFromEnv()) return null;
  return `${command}: --data-dir names a SQLite data directory, but DATABASE_URL names PostgreSQL: drop one of them\n`;
}

export async function openCliStore(opts: { dataDir?: string; keyDir?: string }): Promise<CliStore> {
  const pgUrl = postgresUrlFromEnv();
  if (!pgUrl) {
    const dataDir = resolveDataDir(opts.dataDir);
    const db = openDatabase(dataDir);
    return {
      store: db,
      artifacts: fileArtifactStore(dataDir),
      dataDir,
      checkpointAfterWrite: async () => void checkpointAfterCliWrite(db, { dataDir, keyDir: opts.keyDir }),
      close: async () => {
        db.$client.close();
      },
    };
  }
  const pg = await openPgStoreServices(pgUrl, { poolSize: 2 });
  return {
    store: pg.store,
    artifacts: pg.artifacts,
    dataDir: null,
    checkpointAfterWrite: () => checkpointOnPostgres(pg.store, opts.keyDir),
    close: () => pg.close(),
  };
}

async function checkpointOnPostgres(store: Store, explicitKeyDir: string | undefined): Promise<void> {
  const note = (why: string) =>
    process.stderr.write(`note: no audit checkpoint signed after this change (${why}); the web servers' checkpoint timer will sign one\n`);
  try {
    const keyDir = resolveKeyDir(explicitKeyDir);
    if (keyFingerprintsInDir(keyDir).length === 0) {
      const inForce = await ledgerKeyFingerprintOn(store);
      note(`the key directory ${keyDir} holds no signing key${inForce ? ` (the ledger is signed by ${inForce})` : ""}`);
      return;
    }
    const localDir = path.resolve(process.env.RUNLEDGER_DATA_DIR ?? "./data");
    const auditKeys = await openAuditSigningKeysOn(store, { localDir, keyDir });
    const outcome = await applyCheckpointPolicyOn({ db: store, auditKeys });
    if (!outcome.checkpointed && outcome.error) process.stderr.write(`warning: no audit checkpoint signed: ${outcome.error}\n`);
  } catch (err) {
    note((err as Error).message);
  }
}
