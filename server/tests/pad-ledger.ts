/**
 * Test helper: appends `count` events to a real app's ledger fast (raw prepared statements in one transaction, as
 * bench/audit.ts builds its ledgers), continuing the existing hash chain and Merkle tree, with a signed checkpoint
 * (row + "audit.checkpoint" event carrying the frontier) every CHECKPOINT_EVERY_EVENTS events, as the server signs
 * them. The events are aggregated failed sign-ins (user.signInFailed), which no table row backs: they add ledger
 * volume without changing what content verification checks. Hashes come from the functions the verifier uses, so
 * the padded ledger verifies.
 */
import type { Db } from "@/db/client";
import { canonicalJson } from "@/server/audit/canonical";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import { ChainHasher, recomputeLeafHash } from "@/server/audit/event-hashing";
import { MerkleAccumulator } from "@/server/audit/merkle";
import type { AuditKeys } from "@/server/audit/keys";
import { signTreeHead, type TreeHead } from "@/server/audit/checkpoints";
import { CHECKPOINT_EVERY_EVENTS } from "@/server/audit/checkpoint-policy";

export function padLedger(db: Db, keys: AuditKeys, count: number): number {
  const sqlite = db.$client;
  const insertEvent = sqlite.prepare("INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
  const insertCheckpoint = sqlite.prepare("INSERT INTO audit_checkpoints (id, tree_size, root_hash, at, reason, key_fingerprint, signature) VALUES (?,?,?,?,?,?,?)");
  let written = 0;
  sqlite.transaction(() => {
    const tree = new MerkleAccumulator();
    let seq = 0;
    let lastChain: string | undefined;
    for (const row of sqlite.prepare("SELECT seq, leaf_hash AS leaf, chain_hash AS chain FROM audit_events ORDER BY seq").iterate() as Iterable<{ seq: number; leaf: string; chain: string }>) {
      if (row.seq !== seq + 1) throw new Error(`padLedger: seq ${seq + 1} missing`);
      tree.pushHex(row.leaf);
      seq = row.seq;
      lastChain = row.chain;
    }
    const chain = new ChainHasher();
    chain.reset(lastChain);
    let checkpointId = (sqlite.prepare("SELECT coalesce(max(id), 0) AS id FROM audit_checkpoints").get() as { id: number }).id;
    const t0 = Date.now() - 1000 * count; // one event a second, ending now: no checkpoint gap older than the policy
    const write = (e: { at: string; actorId: number | null; actorName: string; role: string; action: string; entityType: string; entityId: string; payload: string }) => {
      const row = { seq: ++seq, ...e };
      const leaf = recomputeLeafHash(row)!;
      const chainHex = chain.next(leaf);
      chain.advance(chainHex);
      insertEvent.run(row.seq, row.at, row.actorId, row.actorName, row.role, row.action, row.entityType, row.entityId, row.payload, leaf, chainHex);
      tree.pushHex(leaf);
      written++;
    };
    let sinceCheckpoint = 0;
    while (written < count) {
      const at = new Date(t0 + written * 1000).toISOString();
      const identifier = (written % 4096).toString(16).padStart(16, "0");
      write({ at, actorId: null, actorName: "anonymous", role: SYSTEM_ACTOR.role, action: "user.signInFailed", entityType: "signInIdentifier", entityId: identifier, payload: canonicalJson({ identifier, windowStart: at, windowMinutes: 10, failures: 1 }) });
      if (++sinceCheckpoint < CHECKPOINT_EVERY_EVENTS) continue;
      sinceCheckpoint = 0;
      const head: TreeHead = { treeSize: seq, rootHash: tree.root().toString("hex"), at, keyFingerprint: keys.fingerprint };
      const signature = signTreeHead(keys, head);
      insertCheckpoint.run(++checkpointId, head.treeSize, head.rootHash, head.at, `every ${CHECKPOINT_EVERY_EVENTS} events`, head.keyFingerprint, signature);
      const payload = { checkpointId, ...head, signature, reason: `every ${CHECKPOINT_EVERY_EVENTS} events`, frontier: tree.frontier().map((b) => b.toString("hex")) };
      write({ at, actorId: SYSTEM_ACTOR.id, actorName: SYSTEM_ACTOR.name, role: SYSTEM_ACTOR.role, action: "audit.checkpoint", entityType: "auditCheckpoint", entityId: String(checkpointId), payload: canonicalJson(payload) });
    }
  })();
  return written;
}
