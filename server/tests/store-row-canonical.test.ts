/**
 * The store copy check's row line (server/backup/store-tables.ts canonicalRow, written by a per-table writer) is
 * byte for byte the line of its definition (canonicalRowReference: the object of canonical values, keys sorted,
 * through JSON.stringify), for every table of the schema and values of every kind either store can hand back.
 */
import { describe, expect, it } from "vitest";
import { canonicalRow, canonicalRowReference, storeTables } from "@/server/backup/store-tables";
import { mulberry32 } from "@/trainer/data/prng";

const VALUES: unknown[] = [
  null,
  undefined,
  0,
  -0,
  1,
  -17,
  2 ** 53 - 1,
  2 ** 53 + 2,
  12345678901234567890n,
  3n,
  0.1,
  1e21,
  -1.5e-7,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  true,
  false,
  "",
  "plain",
  'quote " and backslash \\',
  "line\nbreak\ttab\u0001",
  "é 日本 🧪",
  "\u2028\u2029",
  "\ud800 lone surrogate",
  "12",
  Buffer.from([0, 1, 254, 255]),
  new Uint8Array([7, 8]),
];

const BYTES: unknown[] = [null, Buffer.from([0, 1, 254, 255]), new Uint8Array([7, 8]), Buffer.alloc(0)];

describe("canonicalRow: the store copy check's row line", () => {
  it("equals its definition for every table and random rows of every kind of value", () => {
    const next = mulberry32(20261206); // seeded, so a failure replays
    let rows = 0;
    for (const t of storeTables()) {
      for (let n = 0; n < 60; n++) {
        // (a bytes column holds bytes or NULL on both stores; anything else is refused by both forms alike)
        const row = t.columns.map(
          (c) => (c.storage === "bytes" ? BYTES : VALUES)[Math.floor(next() * (c.storage === "bytes" ? BYTES : VALUES).length)],
        );
        expect(canonicalRow(t, row), `${t.name} row ${n}`).toBe(canonicalRowReference(t, row));
        rows++;
      }
    }
    expect(rows).toBeGreaterThan(1000);
  });

  it("is the sorted-key JSON of the row's canonical values", () => {
    const runs = storeTables().find((t) => t.name === "runs")!;
    const row = runs.columns.map((c) => (c.name === "id" ? 7 : c.name === "name" ? "a run" : null));
    const line = canonicalRow(runs, row);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual([...runs.columns.map((c) => c.name)].sort());
    expect(parsed).toMatchObject({ id: 7, name: "a run" });
  });
});
