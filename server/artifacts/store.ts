/**
 * Content-addressed artifact store: uploaded data, checkpoint weights, exports.
 * Layout: <dataDir>/artifacts/<sha256[0:2]>/<sha256> (contracts/artifact-layout.ts, shared with the trainer). Writes go to a temp file, are fsynced, then renamed
 * (server/fs/atomic-write.ts), so a reader never sees a partial file; reads check the hash, so a corrupted file
 * is never served.
 * Services use only the ArtifactStore interface, so the files can later move to S3-compatible storage.
 */
import fs from "node:fs";
import path from "node:path";
import { sha256Hex } from "@/contracts/canonical";
import { writeFileAtomic } from "@/server/fs/atomic-write";
import { ArtifactIntegrityError, artifactPath, readArtifactVerified } from "@/contracts/artifact-layout";

// Re-exported so the server's callers keep one import for the store and its error.
export { ArtifactIntegrityError };

export interface ArtifactStore {
  put(bytes: Uint8Array): { sha256: string; bytes: number };
  /**
   * Moves a file already on the data directory's file system into the store under `sha256`, which the caller
   * computed over exactly its bytes (uploads hash while streaming, and the parse worker re-hashes the file);
   * reads check it again. The file is gone afterwards (kept nowhere else when the artifact already exists).
   */
  putFile(file: string, sha256: string): { sha256: string; bytes: number };
  get(sha256: string): Uint8Array;
  has(sha256: string): boolean;
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
    has(sha256) {
      return fs.existsSync(pathOf(sha256));
    },
  };
}
