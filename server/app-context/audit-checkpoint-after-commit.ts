/**
 * A signed audit checkpoint right after a signature or an alias move has committed (design: "at every promotion
 * and signature"). It runs outside the change's transaction on purpose: the change is already durable, and the
 * checkpoint re-verifies the whole log before signing. If the log fails that check the change still stands, and
 * the failure is returned (and logged) so the caller can show it rather than hide it. The key comes from the deps
 * (the server's live signing keys), never from a file.
 */
import { createAuditCheckpoint } from "@/server/audit/checkpoints";
import type { ServiceDeps } from "./service-context";

export type CheckpointOutcome = { ok: true; checkpointId: number; treeSize: number; rootHash: string } | { ok: false; error: string };

export function checkpointAfterCommit(deps: Pick<ServiceDeps, "db" | "auditKeys">, reason: string): CheckpointOutcome {
  try {
    const { checkpoint } = createAuditCheckpoint(deps.db, deps.auditKeys, reason);
    return { ok: true, checkpointId: checkpoint.id, treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash };
  } catch (err) {
    const error = (err as Error).message;
    console.error(`audit checkpoint after "${reason}" failed: ${error}`);
    return { ok: false, error };
  }
}
