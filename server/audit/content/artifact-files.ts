/**
 * SHA-256 of artifact files recomputed from their bytes: <artifactsDir>/<sha[0:2]>/<sha> for the live store, or any
 * path for a bundle. Each file is hashed once however many rows cite it (cache by sha).
 *
 * Invariant: a file is read in 1 MiB chunks with synchronous reads (the check runs inside a read transaction),
 * never loaded whole; a missing file yields found = null.
 */
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";

export type FileDigest = { sha256: string; bytes: number } | null;

export function hashFile(file: string): FileDigest {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return null;
  }
  try {
    const hash = createHash("sha256");
    const buf = Buffer.allocUnsafe(1 << 20);
    let total = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      total += n;
    }
    return { sha256: hash.digest("hex"), bytes: total };
  } finally {
    fs.closeSync(fd);
  }
}

/** Hashes artifacts of a content-addressed store once each. */
export class ArtifactHasher {
  private readonly cache = new Map<string, FileDigest>();
  files = 0;

  /** pathOf: where the file of a sha256 lives (null: nowhere it could be); holds: whether this store is meant to hold
   *  that file at all (a bundle carries only the version's weights; the live store holds every recorded file). */
  constructor(
    private readonly pathOf: (sha256: string) => string | null,
    readonly holds: (sha256: string) => boolean = () => true,
  ) {}

  digest(sha256: string): FileDigest {
    let d = this.cache.get(sha256);
    if (d === undefined) {
      const file = this.pathOf(sha256);
      d = file === null ? null : hashFile(file);
      this.cache.set(sha256, d);
      this.files++;
    }
    return d;
  }
}

export function storeArtifactPath(artifactsDir: string): (sha256: string) => string | null {
  return (sha) => (/^[0-9a-f]{64}$/.test(sha) ? path.join(artifactsDir, sha.slice(0, 2), sha) : null);
}
