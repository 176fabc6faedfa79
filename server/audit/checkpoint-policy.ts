/**
 * When the server signs an audit checkpoint on its own: after any mutation once 100 events (not counting
 * checkpoint events) or 10 minutes have passed since the last checkpoint, and on a timer so a quiet server with
 * trainer events still signs within the interval. Signatures and alias moves checkpoint immediately in their
 * services (server/app-context/audit-checkpoint-after-commit.ts).
 *
 * Invariants: a checkpoint failure never fails the user's change (it is already committed); it is logged and
 * returned. An AuditIntegrityError (tampered log) means no checkpoint is signed: the server fails closed.
 */
import type { Db } from "@/db/client";
import { maybeCheckpoint } from "./checkpoints";
import type { AuditKeys } from "./keys";

export const CHECKPOINT_EVERY_EVENTS = 100;
export const CHECKPOINT_EVERY_MINUTES = 10;

export type CheckpointPolicyDeps = { db: Db; auditKeys: AuditKeys };
export type PolicyOutcome =
  { checkpointed: false; error?: string } | { checkpointed: true; checkpointId: number; treeSize: number; reason: string };

/** Signs a checkpoint if one is due under the policy; never throws. */
export function applyCheckpointPolicy(
  deps: CheckpointPolicyDeps,
  opts: { now?: Date; everyEvents?: number; everyMinutes?: number } = {},
): PolicyOutcome {
  try {
    const made = maybeCheckpoint(deps.db, deps.auditKeys, {
      everyEvents: opts.everyEvents ?? CHECKPOINT_EVERY_EVENTS,
      everyMinutes: opts.everyMinutes ?? CHECKPOINT_EVERY_MINUTES,
      now: opts.now ?? new Date(),
    });
    if (!made) return { checkpointed: false };
    return { checkpointed: true, checkpointId: made.checkpoint.id, treeSize: made.checkpoint.treeSize, reason: made.checkpoint.reason };
  } catch (err) {
    const error = (err as Error).message;
    console.error(`audit checkpoint policy: ${error}`);
    return { checkpointed: false, error };
  }
}

/**
 * Checks the policy once a minute (unref'd: never keeps the process alive). Only the long-lived web server starts
 * it; tests and the CLI call applyCheckpointPolicy directly. Returns a stop function.
 *
 * Several processes (web servers on one data directory) may each run this timer: maybeCheckpoint decides again and
 * signs inside the IMMEDIATE transaction that reads the head, so the cluster signs each tree size once, and every
 * checkpoint's own event directly follows the tree it signs (server/tests/two-web-servers.test.ts).
 * `policy` (tests): other thresholds, and `onOutcome` to see each tick's outcome.
 */
export function startCheckpointTimer(
  deps: CheckpointPolicyDeps,
  everyMs = 60_000,
  policy: { everyEvents?: number; everyMinutes?: number; onOutcome?: (outcome: PolicyOutcome) => void } = {},
): () => void {
  const { onOutcome, ...thresholds } = policy;
  const timer = setInterval(() => {
    const outcome = applyCheckpointPolicy(deps, thresholds);
    onOutcome?.(outcome);
  }, everyMs);
  timer.unref?.();
  return () => clearInterval(timer);
}
