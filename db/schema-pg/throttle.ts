/**
 * PostgreSQL form of db/schema/throttle.ts: the same table, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, text, bigint, index } from "drizzle-orm/pg-core";

export const throttleBuckets = pgTable(
  "throttle_buckets",
  {
    key: text("key").primaryKey(),
    failures: bigint("failures", { mode: "number" }).notNull(),
    windowEndsAt: bigint("window_ends_at", { mode: "number" }).notNull(),
    waitUntil: bigint("wait_until", { mode: "number" }).notNull(),
    expiresAt: bigint("expires_at", { mode: "number" }).notNull(),
  },
  (t) => [index("throttle_buckets_expires_at").on(t.expiresAt)],
);
