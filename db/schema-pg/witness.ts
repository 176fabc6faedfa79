/**
 * PostgreSQL form of db/schema/witness.ts: the same tables, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, text, index, uniqueIndex, bigint, boolean } from "drizzle-orm/pg-core";

export const witnessCosignatures = pgTable(
  "witness_cosignatures",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    checkpointId: bigint("checkpoint_id", { mode: "number" }).notNull(),
    origin: text("origin").notNull(),
    treeSize: bigint("tree_size", { mode: "number" }).notNull(),
    rootHash: text("root_hash").notNull(),
    witnessName: text("witness_name").notNull(),
    keyId: text("key_id").notNull(),
    timestamp: bigint("timestamp", { mode: "number" }).notNull(),
    signature: text("signature").notNull(),
    receivedAt: text("received_at").notNull(),
  },
  (t) => [
    uniqueIndex("witness_cosignatures_unique").on(t.witnessName, t.keyId, t.treeSize, t.rootHash),
    index("witness_cosignatures_size").on(t.treeSize),
  ],
);

export const witnessStatus = pgTable("witness_status", {
  url: text("url").primaryKey(),
  witnessName: text("witness_name").notNull(),
  keyId: text("key_id").notNull(),
  reachable: boolean("reachable"),
  cosignedSize: bigint("cosigned_size", { mode: "number" }),
  lastAttemptAt: text("last_attempt_at"),
  lastSuccessAt: text("last_success_at"),
  lastError: text("last_error"),
  lastErrorAt: text("last_error_at"),
  failingSince: text("failing_since"),
});
