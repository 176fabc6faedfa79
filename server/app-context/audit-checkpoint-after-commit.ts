/**
 * A signed audit checkpoint right after a signature or an alias move has committed (design: "at every promotion
 * and signature"). It runs outside the change's transaction on purpose: the change is already durable, and the
 * checkpoint re-verifies the whole log before signing. If the log fails that check the change still stands, and
 * the failure is returned (and logged) so the caller can show it rather than hide it. The key comes from the deps
 * (the server's live signing keys), never from a file, and is never written to the database.
 *
 * On either store (issue 16): given the SQLite handle it answers at once, as before the port (unported callers use
 * the outcome directly); given a store it answers with a promise, and on PostgreSQL signs under the ledger's advisory
 * lock (checkpoints.ts, createAuditCheckpointOn).
 */
import type { Db } from "@/db/client";
import { isStore, type Store } from "@/db/store";
import { createAuditCheckpoint, createAuditCheckpointOn, type MadeCheckpoint } from "@/server/audit/checkpoints";
import type { AuditKeys } from "@/server/audit/keys";

export type CheckpointOutcome = { ok: true; checkpointId: number; treeSize: number; rootHash: string } | { ok: false; error: string };

function outcomeOf({ checkpoint }: MadeCheckpoint): CheckpointOutcome {
  return { ok: true, checkpointId: checkpoint.id, treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash };
}

function failed(reason: string, err: unknown): CheckpointOutcome {
  const error = (err as Error).message;
  console.error(`audit checkpoint after "${reason}" failed: ${error}`);
  return { ok: false, error };
}

/** Signs a checkpoint over the log as it is now; never throws (nor rejects). */
export function checkpointAfterCommit(deps: { db: Db; auditKeys: AuditKeys }, reason: string): CheckpointOutcome;
export function checkpointAfterCommit(
  deps: { db: Store | Db; auditKeys: AuditKeys },
  reason: string,
): CheckpointOutcome | Promise<CheckpointOutcome>;
export function checkpointAfterCommit(
  deps: { db: Store | Db; auditKeys: AuditKeys },
  reason: string,
): CheckpointOutcome | Promise<CheckpointOutcome> {
  const db = deps.db;
  if (isStore(db)) return checkpointAfterCommitOn({ db, auditKeys: deps.auditKeys }, reason);
  try {
    return outcomeOf(createAuditCheckpoint(db, deps.auditKeys, reason));
  } catch (err) {
    return failed(reason, err);
  }
}

/** checkpointAfterCommit on either store, always awaited; never rejects. */
export async function checkpointAfterCommitOn(deps: { db: Store | Db; auditKeys: AuditKeys }, reason: string): Promise<CheckpointOutcome> {
  try {
    return outcomeOf(await createAuditCheckpointOn(deps.db, deps.auditKeys, reason));
  } catch (err) {
    return failed(reason, err);
  }
}
