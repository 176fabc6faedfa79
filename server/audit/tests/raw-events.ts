/**
 * Test helper: appends many well-formed audit events straight into audit_events (real leaf and chain hashes,
 * continuing the chain from the last row), in one transaction. appendAuditEvent through drizzle, one transaction
 * per event, is far too slow for the 100,000-event ledgers the tests need.
 */
import type { Db } from "@/db/client";
import { canonicalJson } from "@/contracts/canonical";
import { chainHash, eventBody, GENESIS_CHAIN_HASH, leafHash } from "../ledger";

export function appendRawEvents(db: Db, count: number): void {
  const sqlite = db.$client;
  const insert = sqlite.prepare(
    "INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
  );
  sqlite.transaction(() => {
    const last = sqlite.prepare("SELECT seq, chain_hash AS chainHash FROM audit_events ORDER BY seq DESC LIMIT 1").get() as
      { seq: number; chainHash: string } | undefined;
    let prev = last?.chainHash ?? GENESIS_CHAIN_HASH;
    const first = (last?.seq ?? 0) + 1;
    const at = new Date().toISOString();
    for (let seq = first; seq < first + count; seq++) {
      const base = {
        seq,
        at,
        actorId: null,
        actorName: "Runledger server",
        role: "system",
        action: "user.signOut",
        entityType: "user",
        entityId: "1",
        payload: canonicalJson({ n: seq }),
      };
      const leaf = leafHash(eventBody(base));
      prev = chainHash(prev, leaf);
      insert.run(
        base.seq,
        base.at,
        base.actorId,
        base.actorName,
        base.role,
        base.action,
        base.entityType,
        base.entityId,
        base.payload,
        leaf,
        prev,
      );
    }
  })();
}
