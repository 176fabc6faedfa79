/**
 * Where a checkpoint's exact-resume state is kept (trainer/resume-state.ts: weights, optimizer slots, epoch/step,
 * bookkeeping, effective settings), so a paused run continues exactly, in this process or after a restart.
 *
 * The state bytes go to the content-addressed artifact store (by their own SHA-256, which the trainer verifies on
 * resume). The checkpoints table has no column for the state hash and we add no migration for it: the link
 * "checkpoint weights sha256 → state sha256" is a small pointer file `<dataDir>/resume-states/<weights sha256>.json`.
 *
 * Invariants:
 * - The pointer is written after the state bytes are stored, atomically, so a pointer never names missing bytes.
 * - A state is looked up by the weights hash of the checkpoint it was written with; same weights, same pointer
 *   (a deterministic replay writes the same state, so a second write is left alone).
 * - The pointer is not part of the ledger: the trainer re-checks the state's SHA-256 before using it, and the
 *   weights it restores are the checkpoint's (their hash is what the ledger binds).
 */
import fs from "node:fs";
import path from "node:path";
import type { ServiceDeps } from "@/server/app-context/service-context";
import { writeFileAtomic } from "@/server/fs/atomic-write";

const SHA256 = /^[0-9a-f]{64}$/;

function pointerPath(dataDir: string, weightsSha256: string): string {
  if (!SHA256.test(weightsSha256)) throw new Error(`not a SHA-256: ${weightsSha256}`);
  return path.join(dataDir, "resume-states", `${weightsSha256}.json`);
}

/** Stores a checkpoint's resume state and links it to the checkpoint's weights hash. */
export function storeResumeState(
  deps: Pick<ServiceDeps, "artifacts" | "dataDir">,
  weightsSha256: string,
  state: Uint8Array,
  stateSha256: string,
): void {
  const stored = deps.artifacts.put(state);
  if (stored.sha256 !== stateSha256)
    throw new Error(`resume state: trainer reported sha256 ${stateSha256} but the bytes hash to ${stored.sha256}`);
  const target = pointerPath(deps.dataDir, weightsSha256);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  writeFileAtomic(target, JSON.stringify({ stateSha256 }), { mode: 0o600, createOnly: true });
}

/** The resume state of the checkpoint with these weights, or null when none was stored. */
export function loadResumeState(
  deps: Pick<ServiceDeps, "artifacts" | "dataDir">,
  weightsSha256: string,
): { state: Uint8Array; sha256: string } | null {
  const target = pointerPath(deps.dataDir, weightsSha256);
  if (!fs.existsSync(target)) return null;
  const { stateSha256 } = JSON.parse(fs.readFileSync(target, "utf8")) as { stateSha256: string };
  if (!SHA256.test(stateSha256) || !deps.artifacts.has(stateSha256)) return null;
  return { state: deps.artifacts.get(stateSha256), sha256: stateSha256 };
}
