/**
 * Test helper: appends `count` events to a real app's ledger fast (raw prepared statements in one transaction, with
 * the RawLedgerAppender bench/audit.ts builds its ledgers with), continuing the existing hash chain and Merkle tree,
 * with a signed checkpoint (row + "audit.checkpoint" event carrying the frontier) every CHECKPOINT_EVERY_EVENTS
 * events, as the server signs them. The events are aggregated failed sign-ins (user.signInFailed), which no table
 * row backs: they add ledger volume without changing what content verification checks. Hashes come from the
 * functions the verifier uses, so the padded ledger verifies. Returns the number of events written (checkpoint
 * events included).
 */
import type { Db } from "@/db/client";
import { canonicalJson } from "@/contracts/canonical";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import type { AuditKeys } from "@/server/audit/keys";
import { RawLedgerAppender } from "@/server/audit/raw-ledger-appender";

export function padLedger(db: Db, keys: AuditKeys, count: number): number {
  const sqlite = db.$client;
  return sqlite.transaction(() => {
    const ledger = RawLedgerAppender.resume(sqlite, keys);
    const t0 = Date.now() - 1000 * count; // one event a second, ending now: no checkpoint gap older than the policy
    while (ledger.written < count) {
      const at = new Date(t0 + ledger.written * 1000).toISOString();
      const identifier = (ledger.written % 4096).toString(16).padStart(16, "0");
      ledger.append({
        at,
        actorId: null,
        actorName: "anonymous",
        role: SYSTEM_ACTOR.role,
        action: "user.signInFailed",
        entityType: "signInIdentifier",
        entityId: identifier,
        payload: canonicalJson({ identifier, windowStart: at, windowMinutes: 10, failures: 1 }),
      });
    }
    return ledger.written;
  })();
}
