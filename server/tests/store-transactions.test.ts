/**
 * db/store.ts's transactions (issue 16's store port): one generator body, run on SQLite and on PostgreSQL.
 * - SQLite: another request's statements never land inside an open transaction (an async callback on the shared
 *   connection would let them: its write rolled back with ours, its read seeing rows that never commit).
 * - Both stores: a failed statement rolls the whole transaction back, whether the body rethrows or returns; a body
 *   that sends a statement after a failure gets an error.
 * - PostgreSQL: bodies naming the same advisory lock run one at a time across pools (two web servers), as IMMEDIATE
 *   makes them on SQLite.
 * - The sign-in throttle (the first service on the store) keeps its policy on PostgreSQL and counts concurrent
 *   attempts from two servers exactly.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { type Db, type Tx } from "@/db/client";
import { pgSchema, PG_LOCK_KEYS } from "@/db/pg-client";
import { exec, pgStore, row, rows, runOnSqliteTx, sqliteStore, transact, type Store, type TxBody } from "@/db/store";
import { ACCOUNT_POLICY, SignInThrottle } from "@/server/auth/throttle";
import { appendEvent } from "@/server/audit/ledger-pg";
import { describePg } from "./pg-test-env";
import { sqliteForSuite, twoPgServersForSuite } from "./store-test-env";

/** A throttle_buckets row used as a plain keyed row (the table has no foreign keys and no triggers). */
const bucket = (key: string, failures: number) => ({ key, failures, windowEndsAt: 1, waitUntil: 0, expiresAt: 1 });

function* keysOf(tx: Tx, store: Store): TxBody<string[]> {
  const t = store.tables.throttleBuckets;
  return (yield* rows(tx.select({ key: t.key }).from(t).orderBy(t.key))).map((r) => r.key);
}

async function storedKeys(store: Store): Promise<string[]> {
  return transact(store, (tx) => keysOf(tx, store));
}

/** The failure-handling cases, the same on both stores. */
function failureCases(storeOf: () => Store): void {
  it("rolls back on a body's error, and on a failed statement whether the body rethrows or returns", async () => {
    const store = storeOf();
    const t = store.tables.throttleBuckets;
    await expect(
      transact(store, function* (tx) {
        yield* exec(tx.insert(t).values(bucket("thrown", 1)));
        throw new Error("the body gives up");
      }),
    ).rejects.toThrow("the body gives up");

    await expect(
      transact(store, function* (tx) {
        yield* exec(tx.insert(t).values(bucket("dup-a", 1)));
        yield* exec(tx.insert(t).values(bucket("dup-a", 2))); // primary key violation
        return "not reached";
      }),
    ).rejects.toThrow();

    const caught = await transact(store, function* (tx) {
      yield* exec(tx.insert(t).values(bucket("dup-b", 1)));
      try {
        yield* exec(tx.insert(t).values(bucket("dup-b", 2)));
      } catch {
        return "duplicate";
      }
      return "inserted";
    });
    expect(caught).toBe("duplicate");

    await expect(
      transact(store, function* (tx) {
        yield* exec(tx.insert(t).values(bucket("dup-c", 1)));
        try {
          yield* exec(tx.insert(t).values(bucket("dup-c", 2)));
        } catch {
          yield* exec(tx.insert(t).values(bucket("after-failure", 1)));
        }
      }),
    ).rejects.toThrow("a transaction body sent a statement after one of its statements failed");

    expect(await storedKeys(store)).toEqual([]);

    const committed = await transact(store, function* (tx) {
      yield* exec(tx.insert(t).values(bucket("kept", 3)));
      return (yield* row(tx.select().from(t).where(eq(t.key, "kept"))))?.failures;
    });
    expect(committed).toBe(3);
    expect(await storedKeys(store)).toEqual(["kept"]);
  });
}

/** The ledger append inside a body (ledger-pg.ts appendEvent): committed with the body's rows, or rolled back with them. */
function ledgerCases(storeOf: () => Store): void {
  it("appends ledger events with the body's rows, the same chain on either store, and rolls both back together", async () => {
    const store = storeOf();
    const t = store.tables.throttleBuckets;
    const events = store.tables.auditEvents;
    const event = (n: number) => ({
      actor: { id: null, name: "store test", role: "system" },
      action: "user.create" as const,
      entityType: "user",
      entityId: n,
      payload: { n },
      at: `2026-12-04T00:00:0${n}.000Z`,
    });
    const appended = await transact(
      store,
      function* (tx) {
        yield* exec(tx.insert(t).values(bucket("with event", 1)));
        const first = yield* appendEvent(event(1));
        const second = yield* appendEvent(event(2));
        return [first.seq, second.seq];
      },
      { pgLock: PG_LOCK_KEYS.ledger },
    );
    expect(appended).toEqual([1, 2]);
    await expect(
      transact(store, function* (tx) {
        yield* appendEvent(event(3));
        yield* exec(tx.insert(t).values(bucket("with event", 2))); // duplicate key: the event goes too
      }),
    ).rejects.toThrow();
    const stored = await transact(store, (tx) => rows(tx.select().from(events).orderBy(events.seq)));
    expect(stored.map((e) => [e.seq, e.entityId])).toEqual([
      [1, "1"],
      [2, "2"],
    ]);
    ledgerHeads.push(stored.map((e) => e.chainHash).join());
  });
}
const ledgerHeads: string[] = [];

describe("store transactions on SQLite", () => {
  const sqlite = sqliteForSuite("rl-store-tx-");
  let db: Db;
  beforeAll(() => {
    db = sqlite.db();
  });
  afterEach(() => db.$client.exec("DELETE FROM throttle_buckets"));

  it("no other request's statement runs inside an open transaction: its write survives our rollback, its read sees only commits", async () => {
    const store = sqliteStore(db);
    const t = store.tables.throttleBuckets;
    const seenByOther: string[][] = [];
    // The other request resumes at every microtask while ours is open, as concurrent requests on one connection do.
    const otherRequest = (async () => {
      for (let i = 0; i < 5; i++) {
        await Promise.resolve();
        seenByOther.push((await db.select({ key: t.key }).from(t)).map((r) => r.key));
      }
      await db.insert(t).values(bucket("other request", 1));
    })();
    const ours = transact(store, function* (tx) {
      for (let i = 0; i < 5; i++) {
        yield* exec(tx.insert(t).values(bucket(`ours ${i}`, 1)));
        yield* rows(tx.select().from(t));
      }
      throw new Error("ours fails after its statements");
    });
    await expect(ours).rejects.toThrow("ours fails");
    await otherRequest;
    expect(seenByOther.flat()).toEqual([]);
    expect(await storedKeys(store)).toEqual(["other request"]);
  });

  failureCases(() => sqliteStore(db));
  ledgerCases(() => sqliteStore(db));

  it("a body's part runs inside a synchronous transaction that unported code holds, and rolls back with it", () => {
    const t = sqliteStore(db).tables.throttleBuckets;
    function* insertPart(tx: Tx, key: string): TxBody<number> {
      yield* exec(tx.insert(t).values(bucket(key, 1)));
      return (yield* rows(tx.select().from(t))).length;
    }
    expect(db.transaction((tx) => runOnSqliteTx(tx, insertPart(tx, "part")))).toBe(1);
    expect(() =>
      db.transaction((tx) => {
        runOnSqliteTx(tx, insertPart(tx, "part 2"));
        runOnSqliteTx(tx, insertPart(tx, "part")); // duplicate key
      }),
    ).toThrow();
    expect(db.select({ key: t.key }).from(t).all()).toEqual([{ key: "part" }]);
  });
});

describePg("store transactions on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  afterEach(async () => {
    await pg.a().delete(pgSchema.throttleBuckets);
  });

  failureCases(() => pgStore(pg.a()));
  ledgerCases(() => pgStore(pg.a()));

  it("gives the same ledger bytes as SQLite did", () => {
    expect(ledgerHeads).toHaveLength(2);
    expect(ledgerHeads[1]).toBe(ledgerHeads[0]);
  });

  it("bodies naming one advisory lock run one at a time across two pools: 40 read-then-write increments count 40", async () => {
    const stores = [pgStore(pg.a()), pgStore(pg.b())];
    const t = stores[0]!.tables.throttleBuckets;
    await transact(stores[0]!, (tx) => exec(tx.insert(t).values(bucket("counter", 0))));
    const increment = (store: Store) =>
      transact(
        store,
        function* (tx) {
          const current = yield* row(tx.select().from(t).where(eq(t.key, "counter")));
          yield* exec(
            tx
              .update(t)
              .set({ failures: current!.failures + 1 })
              .where(eq(t.key, "counter")),
          );
        },
        { pgLock: PG_LOCK_KEYS.throttle },
      );
    await Promise.all(Array.from({ length: 40 }, (_, i) => increment(stores[i % 2]!)));
    const counter = await transact(stores[1]!, (tx) => row(tx.select().from(t).where(eq(t.key, "counter"))));
    expect(counter?.failures).toBe(40);
  });

  it("the sign-in throttle keeps its policy on PostgreSQL: free failures, doubling waits, a success clears the account", async () => {
    let now = 1_000_000_000_000;
    const throttle = new SignInThrottle(pgStore(pg.a()), () => now);
    for (let i = 0; i < ACCOUNT_POLICY.freeFailures; i++) expect((await throttle.attempt("acct", "10.0.0.1")).allowed).toBe(true);
    expect(await throttle.attempt("acct", "10.0.0.1")).toEqual({ allowed: false, retryAfterSeconds: 5, by: "account" });
    expect(await throttle.attempt("acct", "10.0.0.1")).toEqual({ allowed: false, retryAfterSeconds: 5, by: "account" });
    now += 5_000;
    expect(await throttle.attempt("acct", "10.0.0.1")).toEqual({ allowed: false, retryAfterSeconds: 10, by: "account" });
    now += ACCOUNT_POLICY.windowSeconds * 1000;
    const fresh = await throttle.attempt("acct", "10.0.0.1");
    expect(fresh.allowed).toBe(true);
    if (fresh.allowed) await fresh.release("success");
    // Address count taken back (forgive's CASE), account row cleared.
    const left = await pg.a().select().from(pgSchema.throttleBuckets);
    expect(left.map((r) => [r.key, r.failures])).toEqual([["signin-address:10.0.0.1", 0]]);
  });

  it("concurrent sign-in attempts on one account from two servers are counted exactly: the free failures, then waits", async () => {
    const throttles = [new SignInThrottle(pgStore(pg.a())), new SignInThrottle(pgStore(pg.b()))];
    const decisions = await Promise.all(
      Array.from({ length: 30 }, (_, i) => throttles[i % 2]!.attempt("shared account", `192.0.2.${i + 1}`)),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(ACCOUNT_POLICY.freeFailures);
    expect(decisions.filter((d) => !d.allowed).every((d) => !d.allowed && d.by === "account")).toBe(true);
  });
});
