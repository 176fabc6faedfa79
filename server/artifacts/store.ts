/**
 * Content-addressed artifact store: uploaded data, checkpoint weights, exports.
 * Layout: <dataDir>/artifacts/<sha256[0:2]>/<sha256>. Writes go to a temp file, are fsynced, then renamed
 * (server/fs/atomic-write.ts), so a reader never sees a partial file; reads check the hash, so a corrupted file
 * is never served.
 * Services use only the ArtifactStore interface, so the files can later move to S3-compatible storage.
 */
import fs from "node:fs";
import path from "node:path";
import { sha256Hex } from "@/server/audit/canonical";
import { writeFileAtomic } from "@/server/fs/atomic-write";

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

export class ArtifactIntegrityError extends Error {}

export function fileArtifactStore(dataDir: string): ArtifactStore {
  const root = path.join(dataDir, "artifacts");
  const pathOf = (sha: string) => {
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new Error(`not a sha256: ${sha}`);
    return path.join(root, sha.slice(0, 2), sha);
  };
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
      const bytes = new Uint8Array(fs.readFileSync(pathOf(sha256)));
      const actual = sha256Hex(bytes);
      if (actual !== sha256) throw new ArtifactIntegrityError(`artifact ${sha256} is corrupted: its content hashes to ${actual}`);
      return bytes;
    },
    has(sha256) {
      return fs.existsSync(pathOf(sha256));
    },
  };
}
