/**
 * Witness cosignatures of the audit log's checkpoints, and each configured witness's last known status.
 *
 * witness_cosignatures: one row per cosignature received and verified (c2sp.org/tlog-cosignature): the checkpoint
 * it was for, the checkpoint note's origin, tree size and root, the witness's key name and key ID, the cosignature
 * timestamp and the signature as it appears on the note line (base64 of key ID || timestamp || Ed25519 signature).
 * Rows are append-only (triggers in the migration); verifiers re-check every row against witness keys they trust,
 * so a forged or edited row fails verification rather than counting.
 * witness_status: operational state per witness URL (reachable, last success, last error), freely updated.
 */
import { sqliteTable, text, integer, index, uniqueIndex } from "drizzle-orm/sqlite-core";

export const witnessCosignatures = sqliteTable(
  "witness_cosignatures",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    /** The audit_checkpoints row whose tree head was cosigned (no foreign key: evidence outlives rows). */
    checkpointId: integer("checkpoint_id").notNull(),
    origin: text("origin").notNull(),
    treeSize: integer("tree_size").notNull(),
    /** hex */
    rootHash: text("root_hash").notNull(),
    witnessName: text("witness_name").notNull(),
    /** 8 hex digits */
    keyId: text("key_id").notNull(),
    /** POSIX seconds, from the cosignature itself */
    timestamp: integer("timestamp").notNull(),
    /** base64(key ID || 8-byte timestamp || 64-byte signature), as on the note's signature line */
    signature: text("signature").notNull(),
    receivedAt: text("received_at").notNull(),
  },
  (t) => [
    uniqueIndex("witness_cosignatures_unique").on(t.witnessName, t.keyId, t.treeSize, t.rootHash),
    index("witness_cosignatures_size").on(t.treeSize),
  ],
);

export const witnessStatus = sqliteTable("witness_status", {
  url: text("url").primaryKey(),
  witnessName: text("witness_name").notNull(),
  keyId: text("key_id").notNull(),
  reachable: integer("reachable", { mode: "boolean" }),
  /** The tree size this witness last cosigned for us (its "old size" for the next push). */
  cosignedSize: integer("cosigned_size"),
  lastAttemptAt: text("last_attempt_at"),
  lastSuccessAt: text("last_success_at"),
  lastError: text("last_error"),
  lastErrorAt: text("last_error_at"),
  /** First failure of the current run of failures; null when the last attempt succeeded. */
  failingSince: text("failing_since"),
});
