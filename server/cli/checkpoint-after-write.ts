/**
 * After a command-line write: sign an audit checkpoint when the policy says one is due (checkpoint-policy.ts: every
 * 100 events or 10 minutes since the last checkpoint), as the web server does after every mutation. So a ledger
 * written from the command line keeps the promise `audit verify` checks: no event stays unsigned for longer than
 * the interval while newer events exist (e.g. events a stopped server left unsigned, then a command writes).
 * Commands that hold the signing keys pass them; others open them from the key directory (RUNLEDGER_KEY_DIR or the
 * default). Without a usable key it warns and signs nothing (the next command or the server's timer will).
 * Never throws.
 */
import type { Db } from "@/db/client";
import { applyCheckpointPolicy, type PolicyOutcome } from "@/server/audit/checkpoint-policy";
import { openAuditSigningKeys } from "@/server/audit/key-custody";
import { type AuditKeys, resolveKeyDir } from "@/server/audit/keys";

export function checkpointAfterCliWrite(
  db: Db,
  opts: { dataDir: string; keyDir?: string; auditKeys?: AuditKeys; warn?: (text: string) => void },
): PolicyOutcome | null {
  const warn = opts.warn ?? ((t: string) => process.stderr.write(t));
  let auditKeys = opts.auditKeys;
  if (!auditKeys) {
    try {
      auditKeys = openAuditSigningKeys(db, { dataDir: opts.dataDir, keyDir: resolveKeyDir(opts.keyDir) });
    } catch (err) {
      warn(
        `note: no audit checkpoint signed after this change (${(err as Error).message}); the server or the next command with the key will sign one\n`,
      );
      return null;
    }
  }
  const outcome = applyCheckpointPolicy({ db, auditKeys });
  if (!outcome.checkpointed && outcome.error) warn(`warning: no audit checkpoint signed: ${outcome.error}\n`);
  return outcome;
}
