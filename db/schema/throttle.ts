/**
 * Sign-in throttling state shared by every process on the store (server/auth/throttle.ts owns the table), so two web
 * servers behind a proxy allow the free failures once between them, not once each.
 *
 * One row per throttled key ("signin-account:<bucket>", "signin-address:<address>"). Operational state, not a
 * recorded fact: outside the ledger, no content check hashes it. Bounded: account keys are folded into 65 536 buckets
 * and IPv6 addresses into their /64, and rows whose window and wait are over are deleted by the next attempt.
 */
import { sqliteTable, text, integer, index } from "drizzle-orm/sqlite-core";

export const throttleBuckets = sqliteTable(
  "throttle_buckets",
  {
    key: text("key").primaryKey(),
    /** Failures counted in the current window. */
    failures: integer("failures").notNull(),
    /** Milliseconds since the epoch when the window (and its count) ends. */
    windowEndsAt: integer("window_ends_at").notNull(),
    /** Milliseconds since the epoch until which attempts are refused without counting; 0 when not waiting. */
    waitUntil: integer("wait_until").notNull(),
    /** max(window_ends_at, wait_until): the row is useless after it and may be deleted. */
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [index("throttle_buckets_expires_at").on(t.expiresAt)],
);
