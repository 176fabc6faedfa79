/**
 * Where a checkpoint's exact-resume state is kept (trainer/resume-state.ts: weights, optimizer slots, epoch/step,
 * bookkeeping, effective settings), so a paused run continues exactly, in this process or after a restart.
 *
 * The state bytes go to the content-addressed artifact store (by their own SHA-256, which the trainer verifies on
 * resume). The checkpoints table has no column for the state hash and we add no migration for it: the link
 * "checkpoint (run, epoch) → state sha256" is a small pointer file `<dataDir>/resume-states/<run id>-<epoch>.json`.
 *
 * Invariants:
 * - The pointer is written after the state bytes are stored, atomically, so a pointer never names missing bytes.
 * - A state is looked up by the run and epoch of its checkpoint (one checkpoint per run and epoch), NOT by the
 *   weights hash: two runs can reach the same weights at an epoch with different settings (a pilot changed the
 *   rate or the cadence of one), and the state carries those settings.
 * - The pointer is not part of the ledger: the trainer re-checks the state's SHA-256 before using it, and the
 *   weights it restores are the checkpoint's (their hash is what the ledger binds).
 */
import fs from "node:fs";
import path from "node:path";
import type { ServiceDeps } from "@/server/app-context/service-context";
import { writeFileAtomic } from "@/server/fs/atomic-write";

const SHA256 = /^[0-9a-f]{64}$/;

/** A checkpoint of a run, by its run id and epoch. */
export type CheckpointAt = { runId: number; epoch: number };

function pointerPath(dataDir: string, at: CheckpointAt): string {
  if (!Number.isInteger(at.runId) || !Number.isInteger(at.epoch)) throw new Error(`not a checkpoint: run ${at.runId}, epoch ${at.epoch}`);
  return path.join(dataDir, "resume-states", `${at.runId}-${at.epoch}.json`);
}

/** Stores a checkpoint's resume state and links it to the checkpoint (run, epoch). */
export function storeResumeState(
  deps: Pick<ServiceDeps, "artifacts" | "dataDir">,
  at: CheckpointAt,
  state: Uint8Array,
  stateSha256: string,
): void {
  const stored = deps.artifacts.put(state);
  if (stored.sha256 !== stateSha256)
    throw new Error(`resume state: trainer reported sha256 ${stateSha256} but the bytes hash to ${stored.sha256}`);
  const target = pointerPath(deps.dataDir, at);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  writeFileAtomic(target, JSON.stringify({ stateSha256 }), { mode: 0o600, createOnly: true });
}

/** The resume state of the run's checkpoint at that epoch, or null when none was stored. */
export function loadResumeState(
  deps: Pick<ServiceDeps, "artifacts" | "dataDir">,
  at: CheckpointAt,
): { state: Uint8Array; sha256: string } | null {
  const target = pointerPath(deps.dataDir, at);
  if (!fs.existsSync(target)) return null;
  const { stateSha256 } = JSON.parse(fs.readFileSync(target, "utf8")) as { stateSha256: string };
  if (!SHA256.test(stateSha256) || !deps.artifacts.has(stateSha256)) return null;
  return { state: deps.artifacts.get(stateSha256), sha256: stateSha256 };
}

/**
 * Removes the pointers of a run's checkpoints after `epoch` (the state bytes stay in the artifact store). A process
 * that died between storing a state and committing its checkpoint row left such a pointer; the resumed run retrains
 * that epoch and stores its state again (pointers are created only once).
 */
export function dropResumeStatesAfter(deps: Pick<ServiceDeps, "dataDir">, runId: number, epoch: number): void {
  const dir = path.join(deps.dataDir, "resume-states");
  if (!fs.existsSync(dir)) return;
  for (const name of fs.readdirSync(dir)) {
    const m = /^(\d+)-(\d+)\.json$/.exec(name);
    if (m && Number(m[1]) === runId && Number(m[2]) > epoch) fs.rmSync(path.join(dir, name), { force: true });
  }
}
