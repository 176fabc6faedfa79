/**
 * The sign-in throttle's table (server/auth/throttle.ts, throttle_buckets): the same policy as before, on a clock the
 * test controls, and a table an unauthenticated client cannot grow without limit (account keys in buckets, IPv6 per
 * /64, rows deleted once their window and wait are over). The cross-process behaviour is in two-web-servers.test.ts.
 */
import { afterEach, describe, expect, it } from "vitest";
import { throttleBuckets } from "@/db/schema";
import {
  ACCOUNT_BUCKETS,
  ACCOUNT_POLICY,
  ADDRESS_POLICY,
  SignInThrottle,
  accountBucketKey,
  addressBucketKey,
} from "@/server/auth/throttle";
import { createTestApp, type TestApp } from "./test-app";

let app: TestApp | undefined;
afterEach(() => app?.close());

describe("sign-in throttle in the store", () => {
  it("keeps the policy: free failures, then doubling waits; a success clears the account; counts end with the window", async () => {
    app = createTestApp();
    let now = 1_000_000_000_000;
    const throttle = new SignInThrottle(app.db, () => now);
    for (let i = 0; i < ACCOUNT_POLICY.freeFailures; i++) expect((await throttle.attempt("acct", "10.0.0.1")).allowed).toBe(true);
    expect(await throttle.attempt("acct", "10.0.0.1")).toEqual({ allowed: false, retryAfterSeconds: 5, by: "account" });
    expect(await throttle.attempt("acct", "10.0.0.1")).toEqual({ allowed: false, retryAfterSeconds: 5, by: "account" }); // waiting: not counted
    now += 5_000;
    expect(await throttle.attempt("acct", "10.0.0.1")).toEqual({ allowed: false, retryAfterSeconds: 10, by: "account" });
    now += 10_000;
    const ok = await throttle.attempt("acct", "10.0.0.2");
    expect(ok.allowed).toBe(false); // 8th failure for the account: a 20 s wait
    now += ACCOUNT_POLICY.windowSeconds * 1000; // window over: counts and waits gone
    const fresh = await throttle.attempt("acct", "10.0.0.1");
    expect(fresh.allowed).toBe(true);
    if (fresh.allowed) await fresh.release("success");
    expect(
      app.db
        .select()
        .from(throttleBuckets)
        .all()
        .map((r) => r.key),
    ).toEqual([addressBucketKey("10.0.0.1")]);
  });

  it("bounds the table: unknown emails share ACCOUNT_BUCKETS buckets, an IPv6 /64 is one address, expired rows are deleted", async () => {
    app = createTestApp();
    let now = 1_000_000_000_000;
    const throttle = new SignInThrottle(app.db, () => now);
    const buckets = new Set(Array.from({ length: 5000 }, (_, i) => accountBucketKey(`digest-${i}`)));
    expect(buckets.size).toBeLessThanOrEqual(ACCOUNT_BUCKETS);
    for (const k of buckets) expect(Number(k.split(":")[1])).toBeLessThan(ACCOUNT_BUCKETS);
    expect(addressBucketKey("2001:db8:1:2:aaaa::1")).toBe(addressBucketKey("2001:0db8:0001:0002:ffff:1:2:3"));
    expect(addressBucketKey("2001:db8::1")).toBe("signin-address:2001:db8:0:0::/64");
    expect(addressBucketKey("203.0.113.9")).toBe("signin-address:203.0.113.9");
    // One /64 rotating through addresses meets the address limit like one address.
    let last;
    for (let i = 0; i <= ADDRESS_POLICY.freeFailures; i++) last = await throttle.attempt(`other-${i}`, `2001:db8:1:2::${i + 1}`);
    expect(last).toMatchObject({ allowed: false, by: "address" });
    expect(app.db.select().from(throttleBuckets).all().length).toBeLessThanOrEqual(ADDRESS_POLICY.freeFailures + 2);
    now += ADDRESS_POLICY.windowSeconds * 1000 + 1;
    await throttle.attempt("someone", "198.51.100.7"); // every attempt deletes the rows that are over
    expect(app.db.select().from(throttleBuckets).all().length).toBe(2);
  });
});
