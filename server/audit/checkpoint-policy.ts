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
import { isStore, type Store } from "@/db/store";
import { maybeCheckpoint, maybeCheckpointOn, type MadeCheckpoint } from "./checkpoints";
import type { AuditKeys } from "./keys";

export const CHECKPOINT_EVERY_EVENTS = 100;
export const CHECKPOINT_EVERY_MINUTES = 10;

/** `db`: the SQLite handle (unported callers, answered synchronously) or a store of either kind (issue 16). */
export type CheckpointPolicyDeps = { db: Store | Db; auditKeys: AuditKeys };
export type PolicyOutcome =
  { checkpointed: false; error?: string } | { checkpointed: true; checkpointId: number; treeSize: number; reason: string };
type PolicyOptions = { now?: Date; everyEvents?: number; everyMinutes?: number };

function thresholds(opts: PolicyOptions) {
  return {
    everyEvents: opts.everyEvents ?? CHECKPOINT_EVERY_EVENTS,
    everyMinutes: opts.everyMinutes ?? CHECKPOINT_EVERY_MINUTES,
    now: opts.now ?? new Date(),
  };
}

function outcomeOf(made: MadeCheckpoint | null): PolicyOutcome {
  if (!made) return { checkpointed: false };
  return { checkpointed: true, checkpointId: made.checkpoint.id, treeSize: made.checkpoint.treeSize, reason: made.checkpoint.reason };
}

function failed(err: unknown): PolicyOutcome {
  const error = (err as Error).message;
  // A key this server does not hold (after a rotation elsewhere) was logged once when found; not again every tick.
  // By name, not instanceof: Next may bundle the start-up code that made the keys apart from this module (service.ts).
  const notHeld = err instanceof Error && err.name === "SigningKeyNotHeldError"; // its constructor sets this name
  if (!notHeld) console.error(`audit checkpoint policy: ${error}`);
  return { checkpointed: false, error };
}

/**
 * Signs a checkpoint if one is due under the policy; never throws (nor rejects). Given the SQLite handle it answers
 * at once, as before the port; given a store (either kind) it answers with a promise.
 */
export function applyCheckpointPolicy(deps: { db: Db; auditKeys: AuditKeys }, opts?: PolicyOptions): PolicyOutcome;
export function applyCheckpointPolicy(deps: CheckpointPolicyDeps, opts?: PolicyOptions): PolicyOutcome | Promise<PolicyOutcome>;
export function applyCheckpointPolicy(deps: CheckpointPolicyDeps, opts: PolicyOptions = {}): PolicyOutcome | Promise<PolicyOutcome> {
  const db = deps.db;
  if (isStore(db)) return applyCheckpointPolicyOn({ db, auditKeys: deps.auditKeys }, opts);
  try {
    return outcomeOf(maybeCheckpoint(db, deps.auditKeys, thresholds(opts)));
  } catch (err) {
    return failed(err);
  }
}

/** applyCheckpointPolicy on either store, always awaited (the timer's form); never rejects. */
export async function applyCheckpointPolicyOn(deps: CheckpointPolicyDeps, opts: PolicyOptions = {}): Promise<PolicyOutcome> {
  try {
    return outcomeOf(await maybeCheckpointOn(deps.db, deps.auditKeys, thresholds(opts)));
  } catch (err) {
    return failed(err);
  }
}

/**
 * Checks the policy once a minute (unref'd: never keeps the process alive). Only the long-lived web server starts
 * it; tests and the CLI call applyCheckpointPolicy directly. Returns a stop function. A tick still signing when the
 * next one is due makes that one skip (on PostgreSQL a tick awaits its statements).
 *
 * Several processes (web servers on one data directory, or on one PostgreSQL database) may each run this timer:
 * maybeCheckpointOn decides again and signs inside the transaction that reads the head (SQLite's IMMEDIATE, or the
 * ledger's advisory lock on PostgreSQL), so the cluster signs each tree size once, and every checkpoint's own event
 * directly follows the tree it signs (server/tests/two-web-servers.test.ts, audit-checkpoints-pg.test.ts).
 * `policy` (tests): other thresholds, and `onOutcome` to see each tick's outcome.
 */
export function startCheckpointTimer(
  deps: CheckpointPolicyDeps,
  everyMs = 60_000,
  policy: { everyEvents?: number; everyMinutes?: number; onOutcome?: (outcome: PolicyOutcome) => void } = {},
): () => void {
  const { onOutcome, ...limits } = policy;
  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    void applyCheckpointPolicyOn(deps, limits)
      .then((outcome) => onOutcome?.(outcome))
      .catch((err: unknown) => console.error(`audit checkpoint timer: ${(err as Error).message}`))
      .finally(() => {
        ticking = false;
      });
  }, everyMs);
  timer.unref?.();
  return () => clearInterval(timer);
}
