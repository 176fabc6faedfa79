/**
 * Fast ledger building for benchmarks and tests ONLY (bench/audit.ts, server/tests/pad-ledger.ts): appends events
 * to audit_events with raw prepared statements (the caller wraps the appends in one transaction), continuing the
 * hash chain and the Merkle tree with the functions the verifier uses, and after every CHECKPOINT_EVERY_EVENTS
 * appended events signs a checkpoint the way createAuditCheckpoint writes one: the audit_checkpoints row, then its
 * "audit.checkpoint" event (system actor, same time as the event that triggered it) carrying the signed head, the
 * reason and the frontier.
 *
 * Invariants: seqs continue the existing log without gaps (resume refuses a log with a gap); the ledger it leaves
 * verifies. It skips ledger.ts's checks and locking, so the app must never use it.
 */
import type Database from "better-sqlite3";
import { canonicalJson } from "@/contracts/canonical";
import { SYSTEM_ACTOR } from "./ledger";
import { ChainHasher, recomputeLeafHash } from "./event-hashing";
import { MerkleAccumulator } from "./merkle";
import type { AuditKeys } from "./keys";
import { signTreeHead, type TreeHead } from "./checkpoints";
import { CHECKPOINT_EVERY_EVENTS } from "./checkpoint-policy";

/** One event as stored (payload already canonical JSON). */
export type RawLedgerEvent = {
  at: string;
  actorId: number | null;
  actorName: string;
  role: string;
  action: string;
  entityType: string;
  entityId: string;
  payload: string;
};

const CHECKPOINT_REASON = `every ${CHECKPOINT_EVERY_EVENTS} events`;

export class RawLedgerAppender {
  /** Events written by this appender, checkpoint events included. */
  written = 0;
  private sinceCheckpoint = 0;
  private readonly insertEvent: Database.Statement;
  private readonly insertCheckpoint: Database.Statement;

  private constructor(
    sqlite: Database.Database,
    private readonly keys: AuditKeys,
    private seq: number,
    private readonly chain: ChainHasher,
    private readonly tree: MerkleAccumulator,
    private checkpointId: number,
  ) {
    this.insertEvent = sqlite.prepare(
      "INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    );
    this.insertCheckpoint = sqlite.prepare(
      "INSERT INTO audit_checkpoints (id, tree_size, root_hash, at, reason, key_fingerprint, signature) VALUES (?,?,?,?,?,?,?)",
    );
  }

  /** Continues the log in `sqlite` (empty or not): reads every leaf hash once to rebuild the tree. */
  static resume(sqlite: Database.Database, keys: AuditKeys): RawLedgerAppender {
    const tree = new MerkleAccumulator();
    let seq = 0;
    let lastChain: string | undefined;
    for (const row of sqlite
      .prepare("SELECT seq, leaf_hash AS leaf, chain_hash AS chain FROM audit_events ORDER BY seq")
      .iterate() as Iterable<{ seq: number; leaf: string; chain: string }>) {
      if (row.seq !== seq + 1) throw new Error(`raw ledger appender: seq ${seq + 1} missing`);
      tree.pushHex(row.leaf);
      seq = row.seq;
      lastChain = row.chain;
    }
    const chain = new ChainHasher();
    chain.reset(lastChain); // undefined: the genesis chain hash (all zeros)
    const checkpointId = (sqlite.prepare("SELECT coalesce(max(id), 0) AS id FROM audit_checkpoints").get() as { id: number }).id;
    return new RawLedgerAppender(sqlite, keys, seq, chain, tree, checkpointId);
  }

  /** The seq of the last event in the log. */
  get lastSeq(): number {
    return this.seq;
  }

  /** Appends `e`; every CHECKPOINT_EVERY_EVENTS such events, a signed checkpoint and its event follow. */
  append(e: RawLedgerEvent): void {
    this.write(e);
    if (++this.sinceCheckpoint < CHECKPOINT_EVERY_EVENTS) return;
    this.sinceCheckpoint = 0;
    const head: TreeHead = {
      treeSize: this.seq,
      rootHash: this.tree.root().toString("hex"),
      at: e.at,
      keyFingerprint: this.keys.fingerprint,
    };
    const signature = signTreeHead(this.keys, head);
    const checkpointId = ++this.checkpointId;
    this.insertCheckpoint.run(checkpointId, head.treeSize, head.rootHash, head.at, CHECKPOINT_REASON, head.keyFingerprint, signature);
    const payload = {
      checkpointId,
      ...head,
      signature,
      reason: CHECKPOINT_REASON,
      frontier: this.tree.frontier().map((b) => b.toString("hex")),
    };
    this.write({
      at: e.at,
      actorId: SYSTEM_ACTOR.id,
      actorName: SYSTEM_ACTOR.name,
      role: SYSTEM_ACTOR.role,
      action: "audit.checkpoint",
      entityType: "auditCheckpoint",
      entityId: String(checkpointId),
      payload: canonicalJson(payload),
    });
  }

  private write(e: RawLedgerEvent): void {
    const row = { seq: ++this.seq, ...e };
    const leaf = recomputeLeafHash(row)!;
    const chainHex = this.chain.next(leaf);
    this.chain.advance(chainHex);
    this.insertEvent.run(
      row.seq,
      row.at,
      row.actorId,
      row.actorName,
      row.role,
      row.action,
      row.entityType,
      row.entityId,
      row.payload,
      leaf,
      chainHex,
    );
    this.tree.pushHex(leaf);
    this.written++;
  }
}
