/**
 * rl_distinct_ids (rl_audit.c): count(DISTINCT x) of row ids in a bitmap, which the clean-ledger reads of
 * check-checkpoints-sql.ts, check-evaluations-sql.ts and check-decisions-sql.ts use to learn that no two events name
 * the same row. Where it answers, the answer must be count(DISTINCT)'s; where it cannot be sure (an id that is not
 * a small non-negative INTEGER) it must answer NULL, which those reads take for "not clean" (the slow path judges).
 */
import type Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "@/trainer/data/prng";
import { nativeOff, nativeTestDb } from "./native-test-db";

let db: Database.Database;

beforeAll(() => {
  if (!nativeOff) db = nativeTestDb("CREATE TABLE v (k INTEGER PRIMARY KEY, x INTEGER, y)");
});

afterAll(() => db?.close());

/** Stores `values` in x (INTEGER affinity: a whole number better-sqlite3 binds as a double is stored as an INTEGER). */
const fill = (values: readonly (number | null)[]) => {
  db.exec("DELETE FROM v");
  const insert = db.prepare("INSERT INTO v (x) VALUES (?)");
  db.transaction(() => values.forEach((x) => insert.run(x)))();
};
const both = () => db.prepare("SELECT rl_distinct_ids(x), count(DISTINCT x) FROM v").raw(true).get() as [number | null, number];

describe.skipIf(nativeOff)("rl_distinct_ids: count(DISTINCT) of row ids, or NULL when uncertain", () => {
  it("agrees with count(DISTINCT) on random ids with repeats and NULLs, across the bitmap's growth", () => {
    const random = mulberry32(7);
    for (const [n, span] of [
      [0, 10],
      [1, 1],
      [50, 20],
      [2_000, 100_000],
      [20_000, 5_000],
      [5_000, (1 << 28) - 1],
    ] as const) {
      const values = Array.from({ length: n }, () => (random() < 0.1 ? null : Math.floor(random() * span)));
      fill(values);
      const [fast, reference] = both();
      expect(fast, `${n} ids below ${span}`).toBe(reference);
    }
    fill([0, 0, 7, 8, 7, (1 << 28) - 1, null, null]);
    expect(both()).toEqual([4, 4]);
    fill([null, null]);
    expect(both()).toEqual([0, 0]);
  });

  it("is NULL for an id it cannot place: negative, too large, not an INTEGER", () => {
    for (const odd of ["-1", `${1 << 28}`, "9007199254740993", "1.0", "'1'", "x'01'"]) {
      db.exec("DELETE FROM v");
      db.exec(`INSERT INTO v (y) VALUES (1), (${odd}), (2)`); // (y: no affinity, so 1.0 and '1' stay what they are)
      expect(db.prepare("SELECT rl_distinct_ids(y) FROM v").pluck().get(), odd).toBeNull();
    }
  });
});
