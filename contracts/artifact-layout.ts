/**
 * The on-disk layout of the content-addressed artifact store, shared by the server (which writes it, through
 * server/artifacts/store.ts) and the trainer's workers (which read datasets and parent weights from it without
 * going through the server's main thread).
 *
 * Invariants:
 * - An artifact lives at <dataDir>/artifacts/<sha256[0:2]>/<sha256>; this file is the only place that says so.
 * - A read checks the content hash, so a corrupted file is never returned (ArtifactIntegrityError instead).
 * - Imports only `node:` modules and contracts/, so the trainer can use it without importing server/.
 */
import fs from "node:fs";
import path from "node:path";
import { sha256Hex } from "@/contracts/canonical";

export class ArtifactIntegrityError extends Error {}

export function artifactsRoot(dataDir: string): string {
  return path.join(dataDir, "artifacts");
}

export function artifactPath(dataDir: string, sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
  return path.join(artifactsRoot(dataDir), sha256.slice(0, 2), sha256);
}

/** The artifact's bytes, after checking they hash to `sha256`. */
export function readArtifactVerified(dataDir: string, sha256: string): Uint8Array {
  const bytes = new Uint8Array(fs.readFileSync(artifactPath(dataDir, sha256)));
  const actual = sha256Hex(bytes);
  if (actual !== sha256) throw new ArtifactIntegrityError(`artifact ${sha256} is corrupted: its content hashes to ${actual}`);
  return bytes;
}
