/**
 * Sign-in throttling per account and per client address, with exponential backoff.
 *
 * How it works, for each key (an account's identifier digest, and the client address):
 * - Every attempt that is not already waiting out a backoff counts as a failure BEFORE the password is checked
 *   (so 100 concurrent attempts cannot all slip past the count); a successful sign-in takes its count back.
 * - The first FREE_FAILURES failures in the window are free. Each later one makes the key wait
 *   min(BASE · 2^(extra-1), MAX) seconds; attempts during the wait are answered 429 without counting or hashing.
 * - Counts reset WINDOW_SECONDS after the first failure.
 *
 * Storage: the throttle_buckets table (db/schema/throttle.ts), shared by every process on the store, so two web servers
 * behind a proxy allow the free failures once between them. An attempt's whole decision (read the waits, count the
 * failures, start a wait) is one transaction that no other attempt interleaves with (IMMEDIATE on SQLite, the
 * throttle's advisory lock on PostgreSQL; db/store.ts runs the same body on either), so concurrent attempts in several
 * processes count exactly like attempts in one. (rate-limiter-flexible's SQLite store was not used: it counts and blocks in two separate
 * writes, and creates its own table outside the migrations.)
 *
 * Bounded table: an unauthenticated client picks the account identifier freely, so account keys are folded into
 * ACCOUNT_BUCKETS buckets (a collision only shares a count; any client can already make any account wait by failing on
 * it); IPv6 addresses count per /64 (one host has a whole /64); every attempt first deletes the rows whose window and
 * wait are over. Rows: at most ACCOUNT_BUCKETS + the addresses seen in the last window.
 *
 * Client address: the socket's address by default; X-Forwarded-For only as far as RUNLEDGER_TRUST_PROXY says
 * (server/http/client-address.ts; README, Deployment settings), so a client cannot pick its own address.
 */
import { createHash } from "node:crypto";
import { and, eq, gt, lte, sql } from "drizzle-orm";
import type { Db, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, exec, row as firstRow, transact, type Store, type TxBody } from "@/db/store";
import { DomainError } from "@/server/errors";

/** Too many attempts for an account or address: a too_many_requests DomainError, answered 429 with Retry-After. */
export class TooManyAttempts extends DomainError {
  declare readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number, message: string) {
    super("too_many_requests", message, { retryAfterSeconds });
  }
}

type Policy = { freeFailures: number; windowSeconds: number; baseWaitSeconds: number; maxWaitSeconds: number };

export const ACCOUNT_POLICY: Policy = { freeFailures: 5, windowSeconds: 3600, baseWaitSeconds: 5, maxWaitSeconds: 15 * 60 };
export const ADDRESS_POLICY: Policy = { freeFailures: 10, windowSeconds: 3600, baseWaitSeconds: 5, maxWaitSeconds: 15 * 60 };
export const ACCOUNT_BUCKETS = 65_536;

/** The account's row key: its identifier digest folded into one of ACCOUNT_BUCKETS buckets. */
export function accountBucketKey(accountKey: string): string {
  const n = createHash("sha256").update(accountKey).digest().readUInt32BE(0) % ACCOUNT_BUCKETS;
  return `signin-account:${n}`;
}

/** The address's row key: an IPv6 address counts by its /64 (the first four groups), anything else as given. */
export function addressBucketKey(address: string): string {
  const a = address.slice(0, 64).toLowerCase();
  if (a.includes(":") && !a.startsWith("::ffff:")) {
    const [head = "", tail] = a.split("::");
    const groups = head ? head.split(":") : [];
    if (tail !== undefined) {
      const rest = tail ? tail.split(":") : [];
      while (groups.length + rest.length < 8) groups.push("0");
      groups.push(...rest);
    }
    return `signin-address:${groups
      .slice(0, 4)
      .map((g) => g.replace(/^0+(?=.)/, ""))
      .join(":")}::/64`;
  }
  return `signin-address:${a}`;
}

/** A transaction body over the store's throttle_buckets table (db/store.ts: generators, one body for both stores). */
type Bucket = Store["tables"]["throttleBuckets"];

/** Seconds left to wait for a row key, or 0. */
function* waitingSeconds(tx: Tx, buckets: Bucket, key: string, now: number): TxBody<number> {
  const row = yield* firstRow(tx.select({ waitUntil: buckets.waitUntil }).from(buckets).where(eq(buckets.key, key)));
  return row && row.waitUntil > now ? Math.ceil((row.waitUntil - now) / 1000) : 0;
}

/** Counts one failure for a row key; returns the seconds to wait when it is past the free failures (0 otherwise). */
function* countFailure(tx: Tx, buckets: Bucket, key: string, policy: Policy, now: number): TxBody<number> {
  const row = yield* firstRow(tx.select().from(buckets).where(eq(buckets.key, key)));
  const live = row !== undefined && row.windowEndsAt > now;
  const failures = (live ? row.failures : 0) + 1;
  const windowEndsAt = live ? row.windowEndsAt : now + policy.windowSeconds * 1000;
  const extra = failures - policy.freeFailures;
  const wait = extra > 0 ? Math.min(policy.baseWaitSeconds * 2 ** (extra - 1), policy.maxWaitSeconds) : 0;
  const waitUntil = wait > 0 ? now + wait * 1000 : row && row.waitUntil > now ? row.waitUntil : 0;
  const values = { failures, windowEndsAt, waitUntil, expiresAt: Math.max(windowEndsAt, waitUntil) };
  yield* exec(
    tx
      .insert(buckets)
      .values({ key, ...values })
      .onConflictDoUpdate({ target: buckets.key, set: values }),
  );
  return wait;
}

/** Takes one failure back (an attempt whose password was not checked). */
function* forgive(tx: Tx, buckets: Bucket, key: string, now: number): TxBody<void> {
  // CASE rather than SQLite's two-argument max(), which PostgreSQL spells GREATEST: the same text on both stores.
  yield* exec(
    tx
      .update(buckets)
      .set({ failures: sql`CASE WHEN ${buckets.failures} > 0 THEN ${buckets.failures} - 1 ELSE 0 END` })
      .where(and(eq(buckets.key, key), gt(buckets.windowEndsAt, now))),
  );
}

function* reset(tx: Tx, buckets: Bucket, key: string): TxBody<void> {
  yield* exec(tx.delete(buckets).where(eq(buckets.key, key)));
}

function refused(accountWait: number, addressWait: number): ThrottleDecision | null {
  if (accountWait <= 0 && addressWait <= 0) return null;
  return accountWait >= addressWait
    ? { allowed: false, retryAfterSeconds: accountWait, by: "account" }
    : { allowed: false, retryAfterSeconds: addressWait, by: "address" };
}

/** success: clear the account's count, take the address's back; failure: keep both; notChecked: take both back. */
export type AttemptOutcome = "success" | "failure" | "notChecked";
export type ThrottleDecision =
  | { allowed: true; release: (outcome: AttemptOutcome) => Promise<void> }
  | { allowed: false; retryAfterSeconds: number; by: "account" | "address" };

export class SignInThrottle {
  private readonly store: Store;

  constructor(
    store: Store | Db,
    private readonly clock: () => number = Date.now,
  ) {
    this.store = asStore(store);
  }

  /** One transaction (IMMEDIATE on SQLite, the throttle's advisory lock on PostgreSQL): expired rows deleted first (bounded table), then `body`. */
  private atomically<T>(body: (tx: Tx, buckets: Bucket, now: number) => TxBody<T>): Promise<T> {
    const now = this.clock();
    const buckets = this.store.tables.throttleBuckets;
    return transact(
      this.store,
      function* (tx) {
        yield* exec(tx.delete(buckets).where(lte(buckets.expiresAt, now)));
        return yield* body(tx, buckets, now);
      },
      { pgLock: PG_LOCK_KEYS.throttle },
    );
  }

  /**
   * Decides whether an attempt may check a password. When allowed, call `release(outcome)` afterwards.
   */
  async attempt(accountKey: string, addressKey: string): Promise<ThrottleDecision> {
    const account = accountBucketKey(accountKey);
    const address = addressBucketKey(addressKey);
    const decision = await this.atomically(function* (tx, buckets, now) {
      const waiting = refused(yield* waitingSeconds(tx, buckets, account, now), yield* waitingSeconds(tx, buckets, address, now));
      if (waiting) return waiting;
      return refused(
        yield* countFailure(tx, buckets, account, ACCOUNT_POLICY, now),
        yield* countFailure(tx, buckets, address, ADDRESS_POLICY, now),
      );
    });
    if (decision) return decision;
    return {
      allowed: true,
      release: async (outcome) => {
        if (outcome === "failure") return;
        await this.atomically(function* (tx, buckets, now) {
          if (outcome === "success") yield* reset(tx, buckets, account);
          else yield* forgive(tx, buckets, account, now);
          yield* forgive(tx, buckets, address, now);
        });
      },
    };
  }

  /**
   * The same per-account count for a password re-entered by a signed-in user (signatures): the account's failures
   * are shared with sign-in, so a stolen session gets no extra guesses. No per-address count (the caller is
   * already identified by the session). When allowed, call `release(outcome)` afterwards.
   */
  async attemptAccount(accountKey: string): Promise<ThrottleDecision> {
    const account = accountBucketKey(accountKey);
    const decision = await this.atomically(function* (tx, buckets, now) {
      const waiting = yield* waitingSeconds(tx, buckets, account, now);
      if (waiting > 0) return refused(waiting, 0);
      return refused(yield* countFailure(tx, buckets, account, ACCOUNT_POLICY, now), 0);
    });
    if (decision) return decision;
    return {
      allowed: true,
      release: async (outcome) => {
        if (outcome === "success") await this.atomically((tx, buckets) => reset(tx, buckets, account));
        else if (outcome === "notChecked") await this.atomically((tx, buckets, now) => forgive(tx, buckets, account, now));
      },
    };
  }
}
