/**
 * Sweeps upload temp files that a crash left behind. An upload streams into DATA/tmp/uploads/upload-*.csv and the
 * file is removed (or moved into the artifact store) in every outcome, but a process killed mid-upload leaves it.
 * The server sweeps at start (createAppServices with `recover`, next to recovering interrupted runs).
 *
 * Invariants:
 * - Only entries directly in the upload temp folder, and only those not modified for STALE_UPLOAD_TEMP_MS (1 hour):
 *   an upload still streaming (another process on the same data directory, e.g. the CLI) keeps touching its file.
 * - Regular files and symbolic links are removed (a link itself, never its target); folders are left alone.
 * - Never throws: a file that cannot be removed is reported in `failed` and the start goes on.
 */
import fs from "node:fs";
import path from "node:path";

export const STALE_UPLOAD_TEMP_MS = 60 * 60 * 1000;

/** The folder uploads stream into (server/datasets/service.ts uploadTempDir creates it). */
export function uploadTempFolder(dataDir: string): string {
  return path.join(dataDir, "tmp", "uploads");
}

export type UploadTempSweep = { removed: string[]; kept: number; failed: { file: string; message: string }[] };

export function sweepStaleUploadTemps(dataDir: string, opts: { olderThanMs?: number; now?: number } = {}): UploadTempSweep {
  const dir = uploadTempFolder(dataDir);
  const cutoff = (opts.now ?? Date.now()) - (opts.olderThanMs ?? STALE_UPLOAD_TEMP_MS);
  const out: UploadTempSweep = { removed: [], kept: 0, failed: [] };
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out; // no folder yet: nothing was ever uploaded
  }
  for (const e of entries) {
    if (!e.isFile() && !e.isSymbolicLink()) continue;
    const file = path.join(dir, e.name);
    try {
      if (fs.lstatSync(file).mtimeMs > cutoff) {
        out.kept++;
        continue;
      }
      fs.unlinkSync(file);
      out.removed.push(e.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // removed meanwhile by its upload
      out.failed.push({ file: e.name, message: (err as Error).message });
    }
  }
  return out;
}
