/**
 * Stored levels of the audit ledger's RFC 6962 Merkle tree, so an inclusion proof reads O(log n) rows instead of
 * every leaf (server/audit/tree-levels.ts writes and reads it; see its header for the invariant).
 *
 * A row is the root of one perfect subtree: level L >= 1, index i covers leaves [i * 2^L, (i + 1) * 2^L), i.e.
 * events seq i * 2^L + 1 .. (i + 1) * 2^L. Level 0 is not stored here: it is audit_events.leaf_hash.
 * This table is a derived index, not evidence: every proof built from it is checked against a signed root before
 * it is reported as verified, and `audit verify` never reads it.
 */
import { sqliteTable, integer, blob, primaryKey } from "drizzle-orm/sqlite-core";

export const auditTreeNodes = sqliteTable(
  "audit_tree_nodes",
  {
    level: integer("level").notNull(),
    idx: integer("idx").notNull(),
    /** 32-byte SHA-256 node hash: sha256(0x01 || left || right). */
    hash: blob("hash", { mode: "buffer" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.level, t.idx] })],
);
