/**
 * PostgreSQL form of db/schema/audit-tree.ts: the same tables, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, primaryKey, bigint } from "drizzle-orm/pg-core";
import { bytea } from "./columns";

export const auditTreeNodes = pgTable(
  "audit_tree_nodes",
  {
    level: bigint("level", { mode: "number" }).notNull(),
    idx: bigint("idx", { mode: "number" }).notNull(),
    hash: bytea("hash").notNull(),
  },
  (t) => [primaryKey({ columns: [t.level, t.idx] })],
);
