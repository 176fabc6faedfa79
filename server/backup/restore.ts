/**
 * `restore`: unpacks a backup (backup.ts) into a new data directory, only after every file checks out.
 *
 * Invariants:
 * - The target must be absent or an empty directory: a restore never mixes with or overwrites existing data.
 * - Everything is first extracted into a staging folder inside the target while hashed; then the manifest (the last
 *   entry) is read and every file must be listed with the same sha256 and size, every listed file present, nothing
 *   extra, and every artifact must hash to its own name. Only then are the files moved into place; on any failure
 *   the staging folder (and a target this restore created) is removed and nothing is left behind.
 * - The private signing key is not restored (it is not in backups): the server needs the original key directory.
 */
import fs from "node:fs";
import path from "node:path";
import { createHash, randomBytes, type Hash } from "node:crypto";
import { BACKUP_FORMAT, BACKUP_ROOT, MANIFEST_FILE, type BackupManifest } from "./backup";
import { readTar, type TarEntryDigest } from "./tar-stream";

const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

export class RestoreError extends Error {}

export type RestoreResult = { dataDir: string; files: number; bytes: number; manifest: BackupManifest; warnings: string[] };

export async function restoreBackup(opts: { from: string; dataDir: string }): Promise<RestoreResult> {
  const from = path.resolve(opts.from);
  const target = path.resolve(opts.dataDir);
  if (!fs.existsSync(from)) throw new RestoreError(`backup file not found: ${from}`);
  const created = !fs.existsSync(target);
  if (!created && (!fs.statSync(target).isDirectory() || fs.readdirSync(target).length > 0)) {
    throw new RestoreError(`${target} is not empty: restore into a new or empty directory`);
  }
  fs.mkdirSync(target, { recursive: true });
  const staging = path.join(target, `.restore-${randomBytes(6).toString("hex")}`);
  fs.mkdirSync(staging);
  try {
    const found: Record<string, TarEntryDigest> = {};
    const chunks: Buffer[] = [];
    let manifestBytes = 0;
    await readTar(from, BACKUP_ROOT, async (entry) => {
      if (entry.type === "directory") return null;
      if (entry.path === MANIFEST_FILE) {
        if (entry.size > MAX_MANIFEST_BYTES) throw new RestoreError(`${MANIFEST_FILE} is ${entry.size} bytes, more than a manifest can be`);
        return async (chunk) => {
          manifestBytes += chunk.length;
          chunks.push(Buffer.from(chunk));
        };
      }
      if (found[entry.path]) throw new RestoreError(`the archive holds ${entry.path} twice`);
      const file = path.join(staging, entry.path);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const fh = await fs.promises.open(file, "wx", 0o644);
      const hash: Hash = createHash("sha256");
      let bytes = 0;
      found[entry.path] = { sha256: "", bytes: 0 };
      const finishAt = entry.size;
      const close = async () => {
        await fh.sync();
        await fh.close();
        found[entry.path] = { sha256: hash.digest("hex"), bytes };
      };
      if (finishAt === 0) await close();
      return async (chunk) => {
        hash.update(chunk);
        await fh.write(chunk, 0, chunk.length, bytes);
        bytes += chunk.length;
        if (bytes === finishAt) await close();
      };
    });
    if (manifestBytes === 0)
      throw new RestoreError(`the archive has no ${BACKUP_ROOT}/${MANIFEST_FILE}: not a Runledger backup, or cut short`);
    const manifest = JSON.parse(Buffer.concat(chunks).toString("utf8")) as BackupManifest;
    if (manifest.format !== BACKUP_FORMAT)
      throw new RestoreError(`unknown backup format ${JSON.stringify(manifest.format)} (expected ${BACKUP_FORMAT})`);
    const warnings = checkAgainstManifest(found, manifest);
    // Everything checked: move into place.
    for (const entry of fs.readdirSync(staging)) fs.renameSync(path.join(staging, entry), path.join(target, entry));
    fs.rmSync(staging, { recursive: true, force: true });
    const bytes = Object.values(found).reduce((n, f) => n + f.bytes, 0);
    return { dataDir: target, files: Object.keys(found).length, bytes, manifest, warnings };
  } catch (e) {
    fs.rmSync(staging, { recursive: true, force: true });
    if (created) fs.rmSync(target, { recursive: true, force: true });
    throw e;
  }
}

/** Throws unless the archive is exactly what the manifest lists; returns warnings about damage the backup recorded. */
function checkAgainstManifest(found: Record<string, TarEntryDigest>, manifest: BackupManifest): string[] {
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const [rel, want] of Object.entries(manifest.files)) {
    const got = found[rel];
    if (!got) problems.push(`${rel} is listed in the manifest but missing from the archive`);
    else if (got.sha256 !== want.sha256 || got.bytes !== want.bytes)
      problems.push(
        `${rel}: the archive holds ${got.bytes} bytes hashing to ${got.sha256}, the manifest says ${want.bytes} bytes, ${want.sha256}`,
      );
    else if (rel.startsWith("artifacts/") && path.basename(rel) !== got.sha256)
      warnings.push(`${rel}: the artifact's content hashes to ${got.sha256}, not to its name (damaged in the source when backed up)`);
  }
  for (const rel of Object.keys(found)) if (!manifest.files[rel]) problems.push(`${rel} is in the archive but not in the manifest`);
  if (problems.length)
    throw new RestoreError(
      `the backup does not check out; nothing was restored:\n  ${problems.slice(0, 20).join("\n  ")}${problems.length > 20 ? `\n  … and ${problems.length - 20} more` : ""}`,
    );
  return warnings;
}
