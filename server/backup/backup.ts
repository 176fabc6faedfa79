/**
 * `backup`: one tar of a data directory that restores to a working, verifiable copy, taken while the server runs.
 *
 * Archive layout (top folder `runledger-backup/`):
 *   runledger.sqlite     the database, copied with SQLite's online backup API (better-sqlite3 db.backup) in one
 *                        step: a consistent snapshot even while the server writes (WAL readers never block writers)
 *   artifacts/xx/<sha>   every file of the content-addressed artifact store
 *   audit-ed25519.pub    the public key of the signing key (public; the verifier reads it)
 *   MANIFEST.json        last entry: format, time, the ledger's size and head, and the sha256 and size of every
 *                        other entry (restore checks them all before it writes anything in place)
 * Invariants:
 * - The private signing key is never included: it lives in the key directory, never the data directory. Only the
 *   files listed above are archived (a whitelist), so nothing else in the data directory can leak into a backup.
 * - The database is copied before the artifacts are listed: artifacts are immutable and written before the rows
 *   that name them, so every artifact the snapshot references is in the archive (later ones are harmless).
 * - An artifact whose content does not hash to its name is archived as it is and reported (the backup of a
 *   damaged store still saves what there is); `problems` says which.
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import Database from "better-sqlite3";
import { PUBLIC_KEY_FILE } from "@/server/audit/keys";
import { TarWriter, type TarEntryDigest } from "./tar-stream";

export const BACKUP_ROOT = "runledger-backup";
export const BACKUP_FORMAT = "runledger-backup/1";
export const MANIFEST_FILE = "MANIFEST.json";
export const DATABASE_FILE = "runledger.sqlite";

export type BackupManifest = {
  format: typeof BACKUP_FORMAT;
  createdAt: string;
  sourceDataDir: string;
  ledger: { events: number; lastSeq: number | null; chainHead: string | null; checkpoints: number };
  files: Record<string, TarEntryDigest>;
  problems: string[];
  note: string;
};

/** The artifact store's files, relative to the data directory ("artifacts/ab/abcd…"), sorted; temp files skipped. */
function listArtifacts(dataDir: string): string[] {
  const root = path.join(dataDir, "artifacts");
  if (!fs.existsSync(root)) return [];
  const out: string[] = [];
  for (const shard of fs.readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory() && /^[0-9a-f]{2}$/.test(d.name))) {
    for (const f of fs.readdirSync(path.join(root, shard.name), { withFileTypes: true })) {
      if (f.isFile() && /^[0-9a-f]{64}$/.test(f.name)) out.push(`artifacts/${shard.name}/${f.name}`);
    }
  }
  return out.sort();
}

/** Copies the live database into `target` with the online backup API, all pages in one step. */
async function snapshotDatabase(dataDir: string, target: string): Promise<BackupManifest["ledger"]> {
  const source = path.join(dataDir, DATABASE_FILE);
  if (!fs.existsSync(source)) throw new Error(`no database in ${dataDir} (expected ${DATABASE_FILE})`);
  // Read-write open (nothing is written): a read-only connection cannot open a WAL database whose -shm is gone.
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    // Returning the largest step after the first call copies every page in one step: one consistent snapshot, no
    // restarts however busy the server is.
    await db.backup(target, { progress: () => 0x7fffffff });
  } finally {
    db.close();
  }
  const copy = new Database(target, { readonly: true, fileMustExist: true });
  try {
    const head = copy.prepare("SELECT count(*) AS n, max(seq) AS last FROM audit_events").get() as { n: number; last: number | null };
    const chainHead =
      head.last === null
        ? null
        : (copy.prepare("SELECT chain_hash AS h FROM audit_events WHERE seq = ?").get(head.last) as { h: string }).h;
    const checkpoints = (copy.prepare("SELECT count(*) AS n FROM audit_checkpoints").get() as { n: number }).n;
    return { events: head.n, lastSeq: head.last, chainHead, checkpoints };
  } finally {
    copy.close();
  }
}

export type BackupResult = { out: string; manifest: BackupManifest; archiveBytes: number };

export async function createBackup(opts: {
  dataDir: string;
  out: string;
  /** What the manifest names as the source (default: the data directory); a PostgreSQL store's backup names its URL. */
  sourceLabel?: string;
  onProgress?: (line: string) => void;
}): Promise<BackupResult> {
  const dataDir = path.resolve(opts.dataDir);
  const out = path.resolve(opts.out);
  if (fs.existsSync(out)) throw new Error(`${out} already exists: choose a new file for the backup`);
  if (!fs.existsSync(path.dirname(out))) throw new Error(`the folder ${path.dirname(out)} does not exist`);
  if (out.startsWith(dataDir + path.sep)) throw new Error(`write the backup outside the data directory (${dataDir})`);
  const dbCopy = `${out}.${randomBytes(6).toString("hex")}.sqlite.tmp`;
  const partial = `${out}.${randomBytes(6).toString("hex")}.partial`;
  let tar: TarWriter | null = null;
  try {
    const ledger = await snapshotDatabase(dataDir, dbCopy);
    opts.onProgress?.(`database copied: ${ledger.events} audit events, ${ledger.checkpoints} signed checkpoints`);
    const files: Record<string, TarEntryDigest> = {};
    const problems: string[] = [];
    tar = await TarWriter.create(partial);
    await tar.addDirectory(BACKUP_ROOT);
    files[DATABASE_FILE] = await tar.addFile(`${BACKUP_ROOT}/${DATABASE_FILE}`, dbCopy);
    const artifacts = listArtifacts(dataDir);
    for (const rel of artifacts) {
      const digest = await tar.addFile(`${BACKUP_ROOT}/${rel}`, path.join(dataDir, rel));
      if (digest.sha256 !== path.basename(rel))
        problems.push(`${rel} does not hash to its name (content sha256 ${digest.sha256}): archived as found`);
      files[rel] = digest;
    }
    opts.onProgress?.(`artifacts copied: ${artifacts.length} files`);
    const pub = path.join(dataDir, PUBLIC_KEY_FILE);
    if (fs.existsSync(pub)) files[PUBLIC_KEY_FILE] = await tar.addFile(`${BACKUP_ROOT}/${PUBLIC_KEY_FILE}`, pub);
    else
      problems.push(
        `${PUBLIC_KEY_FILE} is missing from the data directory: the restored copy needs the public key (or --public-key) to verify`,
      );
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      createdAt: new Date().toISOString(),
      sourceDataDir: opts.sourceLabel ?? dataDir,
      ledger,
      files,
      problems,
      note: "The private signing key is not in this backup: it lives in the key directory (RUNLEDGER_KEY_DIR). Back that up separately and keep it apart from this file.",
    };
    await tar.addBuffer(`${BACKUP_ROOT}/${MANIFEST_FILE}`, Buffer.from(JSON.stringify(manifest, null, 2) + "\n"));
    await tar.close();
    tar = null;
    fs.renameSync(partial, out);
    return { out, manifest, archiveBytes: fs.statSync(out).size };
  } finally {
    if (tar) await tar.abort();
    fs.rmSync(dbCopy, { force: true });
    fs.rmSync(partial, { force: true });
  }
}
