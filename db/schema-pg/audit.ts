/**
 * PostgreSQL form of db/schema/audit.ts: the same tables, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, text, index, bigint } from "drizzle-orm/pg-core";

export const auditEvents = pgTable(
  "audit_events",
  {
    seq: bigint("seq", { mode: "number" }).primaryKey(),
    at: text("at").notNull(),
    actorId: bigint("actor_id", { mode: "number" }),
    actorName: text("actor_name").notNull(),
    role: text("role").notNull(),
    action: text("action").notNull(),
    entityType: text("entity_type").notNull(),
    entityId: text("entity_id").notNull(),
    payload: text("payload").notNull(),
    leafHash: text("leaf_hash").notNull(),
    chainHash: text("chain_hash").notNull(),
  },
  (t) => [index("audit_events_entity").on(t.entityType, t.entityId), index("audit_events_action").on(t.action)],
);

export const auditCheckpoints = pgTable(
  "audit_checkpoints",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    treeSize: bigint("tree_size", { mode: "number" }).notNull(),
    rootHash: text("root_hash").notNull(),
    at: text("at").notNull(),
    reason: text("reason").notNull(),
    keyFingerprint: text("key_fingerprint").notNull(),
    signature: text("signature").notNull(),
  },
  (t) => [index("audit_checkpoints_tree_size").on(t.treeSize)],
);
