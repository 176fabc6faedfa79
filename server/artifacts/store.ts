/**
 * Content-addressed artifact store: uploaded data, checkpoint weights, exports.
 * Layout: <dataDir>/artifacts/<sha256[0:2]>/<sha256> (contracts/artifact-layout.ts, shared with the trainer). Writes go to a temp file, are fsynced, then renamed
 * (server/fs/atomic-write.ts), so a reader never sees a partial file; reads check the hash, so a corrupted file
 * is never served (except by readPrefix, a bounded read for previews, which cannot check a hash over the whole file).
 * Services use only the ArtifactStore interface, so the files can later move to S3-compatible storage.
 */
import fs from "node:fs";
import path from "node:path";
import { sha256Hex } from "@/contracts/canonical";
import { writeFileAtomic } from "@/server/fs/atomic-write";
import { ArtifactIntegrityError, artifactPath, readArtifactVerified } from "@/contracts/artifact-layout";

// Re-exported so the server's callers keep one import for the store and its error.
export { ArtifactIntegrityError };

/** The first bytes of an artifact and its full size (`bytes.byteLength < size` when the artifact is longer). */
export type ArtifactPrefix = { bytes: Uint8Array; size: number };

export interface ArtifactStore {
  put(bytes: Uint8Array): { sha256: string; bytes: number };
  /**
   * Moves a file already on the data directory's file system into the store under `sha256`, which the caller
   * computed over exactly its bytes (uploads hash while streaming, and the parse worker re-hashes the file);
   * reads check it again. The file is gone afterwards (kept nowhere else when the artifact already exists).
   */
  putFile(file: string, sha256: string): { sha256: string; bytes: number };
  get(sha256: string): Uint8Array;
  /**
   * At most `maxBytes` from the start of the artifact, read without reading the rest. Not hash-checked (a prefix
   * cannot be): for previews only; training, exports and downloads use `get`, which checks the whole file.
   */
  readPrefix(sha256: string, maxBytes: number): ArtifactPrefix;
  has(sha256: string): boolean;
}

/** readPrefix on the data directory's files: one bounded read from the start. */
export function readFilePrefix(file: string, maxBytes: number): ArtifactPrefix {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, Math.min(maxBytes, size)));
    let n = 0;
    while (n < buf.length) {
      const got = fs.readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    return { bytes: new Uint8Array(buf.buffer, buf.byteOffset, n), size };
  } finally {
    fs.closeSync(fd);
  }
}

export function fileArtifactStore(dataDir: string): ArtifactStore {
  const pathOf = (sha: string) => artifactPath(dataDir, sha);
  return {
    put(bytes) {
      const sha256 = sha256Hex(bytes);
      const target = pathOf(sha256);
      if (!fs.existsSync(target)) {
        fs.mkdirSync(path.dirname(target), { recursive: true });
        writeFileAtomic(target, bytes, { mode: 0o644 });
      }
      return { sha256, bytes: bytes.byteLength };
    },
    putFile(file, sha256) {
      const target = pathOf(sha256);
      const bytes = fs.statSync(file).size;
      if (fs.existsSync(target)) {
        fs.rmSync(file, { force: true });
        return { sha256, bytes };
      }
      fs.mkdirSync(path.dirname(target), { recursive: true });
      const fd = fs.openSync(file, "r");
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(file, target);
      return { sha256, bytes };
    },
    get(sha256) {
      return readArtifactVerified(dataDir, sha256);
    },
    readPrefix(sha256, maxBytes) {
      return readFilePrefix(pathOf(sha256), maxBytes);
    },
    has(sha256) {
      return fs.existsSync(pathOf(sha256));
    },
  };
}
