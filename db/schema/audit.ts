/**
 * The audit ledger. Invariants (enforced by triggers in the migration and by the ledger writer):
 * - append only: UPDATE and DELETE on audit_events are rejected by SQLite triggers;
 * - seq is gapless, starting at 1, assigned inside the same transaction as the change;
 * - leaf_hash = sha256(0x00 || canonical(event)); chain_hash = sha256(prev_chain_hash || leaf_hash),
 *   with prev_chain_hash of the first event = 32 zero bytes.
 * No foreign keys: the ledger must outlive and describe any row, including ones it cannot reference.
 */
import { sqliteTable, text, integer, index } from "drizzle-orm/sqlite-core";

export const auditEvents = sqliteTable(
  "audit_events",
  {
    seq: integer("seq").primaryKey(),
    at: text("at").notNull(),
    actorId: integer("actor_id"),
    actorName: text("actor_name").notNull(),
    role: text("role").notNull(),
    action: text("action").notNull(),
    entityType: text("entity_type").notNull(),
    entityId: text("entity_id").notNull(),
    /** Canonical JSON: before/after values, hashes, counts; never raw data rows. */
    payload: text("payload").notNull(),
    leafHash: text("leaf_hash").notNull(),
    chainHash: text("chain_hash").notNull(),
  },
  (t) => [index("audit_events_entity").on(t.entityType, t.entityId), index("audit_events_action").on(t.action)],
);

/** Signed tree heads: an RFC 6962 Merkle root over leaf hashes 1..tree_size, signed with the server's Ed25519 key. */
export const auditCheckpoints = sqliteTable(
  "audit_checkpoints",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    treeSize: integer("tree_size").notNull(),
    rootHash: text("root_hash").notNull(),
    at: text("at").notNull(),
    reason: text("reason").notNull(),
    keyFingerprint: text("key_fingerprint").notNull(),
    /** base64 Ed25519 signature over the canonical tree head. */
    signature: text("signature").notNull(),
  },
  // Checkpoints are looked up by tree size (the heads key rotations endorse, a proof's signed root, witness anchors).
  // Not unique: a database may hold several rows of one size (a forged row is reported, never refused by the schema).
  (t) => [index("audit_checkpoints_tree_size").on(t.treeSize)],
);
