/**
 * `backup --database postgres://…` (issue 16): a PostgreSQL store in the same archive as a data directory's backup
 * (backup.ts: database, artifacts, public key, SHA-256 manifest). One REPEATABLE READ snapshot of the store is copied
 * into a SQLite data directory under the temporary directory and proved equal to it (pg-snapshot.ts), then archived.
 * `restore` gives a working SQLite data directory; `migrate-store` moves that into an empty PostgreSQL database.
 *
 * Invariants: a copy that differs from the snapshot is never archived (the command fails, naming each difference);
 * nothing is written to PostgreSQL; the temporary copy is removed. The public key is not in the store: it is taken
 * from `publicKeyPem` (the manifest says when it is missing, as for a data directory without one).
 */
import fs from "node:fs";
import path from "node:path";
import { PUBLIC_KEY_FILE } from "@/server/audit/keys";
import { copyDirectory } from "@/server/audit/verify-pg";
import { createBackup, type BackupResult } from "./backup";
import { redactUrl } from "./migrate-store";
import { checkedPgSnapshot } from "./pg-snapshot";

export async function createPgBackup(opts: {
  url: string;
  out: string;
  publicKeyPem?: string;
  /** The installation keeps its artifacts in this shared directory, not in PostgreSQL. */
  artifactsDir?: string;
  onProgress?: (line: string) => void;
}): Promise<BackupResult & { copyCheckMs: number }> {
  if (opts.artifactsDir && !fs.existsSync(opts.artifactsDir)) throw new Error(`artifact directory not found: ${opts.artifactsDir}`);
  const dir = copyDirectory(undefined, "runledger-backup-pg-");
  try {
    if (opts.publicKeyPem) fs.writeFileSync(path.join(dir, PUBLIC_KEY_FILE), opts.publicKeyPem);
    const taken = await checkedPgSnapshot(opts.url, dir, {
      artifactsDir: opts.artifactsDir,
      inSnapshot: async () => null,
      onProgress: opts.onProgress,
    });
    if (taken.copyDifferences.length > 0)
      throw new Error(`the snapshot's copy differs from PostgreSQL, so nothing was archived: ${taken.copyDifferences.join("; ")}`);
    const result = await createBackup({
      dataDir: dir,
      out: opts.out,
      sourceLabel: `${redactUrl(opts.url)} (PostgreSQL store, one snapshot)`,
      onProgress: opts.onProgress,
    });
    return { ...result, copyCheckMs: taken.copyCheckMs };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
