/**
 * Test helper: the rewrite-and-re-sign attack (an insider holding the data directory and the signing key), done for real on a closed data directory.
 * Drops the append-only triggers, edits one event, recomputes every leaf and chain hash from there, re-signs every
 * checkpoint WITH THE LOG'S OWN KEY (the attacker holds it), rewrites the copy of each signed head (and its Merkle
 * frontier) that the checkpoint events carry, re-chains after each, drops the derived tree index, and puts the
 * triggers back exactly as they were. The result is internally consistent: only something outside the log (a
 * witness) can tell.
 */
import Database from "better-sqlite3";
import path from "node:path";
import { canonicalJson } from "@/contracts/canonical";
import { chainHash, eventBody, leafHash, GENESIS_CHAIN_HASH } from "@/server/audit/ledger";
import { MerkleAccumulator } from "@/server/audit/merkle";
import { signTreeHead, type TreeHead } from "@/server/audit/checkpoints";
import type { AuditKeys } from "@/server/audit/keys";

type Row = {
  seq: number;
  at: string;
  actorId: number | null;
  actorName: string;
  role: string;
  action: string;
  entityType: string;
  entityId: string;
  payload: string;
  leafHash: string;
  chainHash: string;
};
type Cp = {
  id: number;
  treeSize: number;
  rootHash: string;
  at: string;
  reason: string;
  keyFingerprint: string;
  signature: string;
  frontierHex?: string[];
};

export function rewriteAndResign(
  dataDir: string,
  keys: AuditKeys,
  edit: { seq: number; payload: (p: Record<string, unknown>) => Record<string, unknown> },
): void {
  const db = new Database(path.join(dataDir, "runledger.sqlite"));
  try {
    const triggers = db
      .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('audit_events', 'audit_checkpoints')")
      .all() as { name: string; sql: string }[];
    for (const t of triggers) db.exec(`DROP TRIGGER ${t.name}`);
    db.transaction(() => {
      const rows = db
        .prepare(
          "SELECT seq, at, actor_id AS actorId, actor_name AS actorName, role, action, entity_type AS entityType, entity_id AS entityId, payload, leaf_hash AS leafHash, chain_hash AS chainHash FROM audit_events ORDER BY seq",
        )
        .all() as Row[];
      const cps = db
        .prepare(
          "SELECT id, tree_size AS treeSize, root_hash AS rootHash, at, reason, key_fingerprint AS keyFingerprint, signature FROM audit_checkpoints ORDER BY id",
        )
        .all() as Cp[];
      const target = rows.find((r) => r.seq === edit.seq);
      if (!target) throw new Error(`no event ${edit.seq}`);
      target.payload = canonicalJson(edit.payload(JSON.parse(target.payload) as Record<string, unknown>));
      const bySize = new Map(cps.map((c) => [c.treeSize, c]));
      const acc = new MerkleAccumulator();
      let prev = GENESIS_CHAIN_HASH;
      for (const r of rows) {
        if (r.action === "audit.checkpoint") {
          const p = JSON.parse(r.payload) as { checkpointId: number };
          const cp = cps.find((c) => c.id === p.checkpointId)!;
          const old = JSON.parse(r.payload) as Record<string, unknown>;
          r.payload = canonicalJson({
            ...old,
            rootHash: cp.rootHash,
            signature: cp.signature,
            ...(old.frontier ? { frontier: cp.frontierHex } : {}),
          });
        }
        if (r.seq >= edit.seq) {
          r.leafHash = leafHash(eventBody(r));
          r.chainHash = chainHash(prev, r.leafHash);
          db.prepare("UPDATE audit_events SET payload = ?, leaf_hash = ?, chain_hash = ? WHERE seq = ?").run(
            r.payload,
            r.leafHash,
            r.chainHash,
            r.seq,
          );
        }
        prev = r.chainHash;
        acc.pushHex(r.leafHash);
        const cp = bySize.get(r.seq);
        if (cp) {
          const head: TreeHead = {
            treeSize: cp.treeSize,
            rootHash: acc.root().toString("hex"),
            at: cp.at,
            keyFingerprint: keys.fingerprint,
          };
          cp.rootHash = head.rootHash;
          cp.signature = signTreeHead(keys, head);
          cp.frontierHex = acc.frontier().map((b) => b.toString("hex"));
          db.prepare("UPDATE audit_checkpoints SET root_hash = ?, signature = ? WHERE id = ?").run(cp.rootHash, cp.signature, cp.id);
        }
      }
      if (db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'audit_tree_nodes'").get()) db.exec("DELETE FROM audit_tree_nodes");
    })();
    for (const t of triggers) db.exec(t.sql); // put the protective triggers back exactly as they were
  } finally {
    db.close();
  }
}
