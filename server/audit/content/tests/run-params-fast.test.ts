/**
 * The run_params fast path (check-run-params.ts sameAsExpectedOfConfig: leaves collected into reused arrays,
 * compared piece by piece with SQLite's folded group) gives exactly the answer of the reference comparison
 * (sameAsExpected over flattenConfig), on random configs with awkward keys (empty, dotted, "__proto__", numeric,
 * separators, non-ASCII, prefixes of one another) and values (-0, 1e21, 5e-324, empty objects and arrays, texts with
 * the separator), with the rows as the config calls for and tampered (one ulp, a row added, removed or renamed, a
 * storage type changed). The groups come from a real SQLite through sqliteRunParams.
 */
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { flattenConfig } from "@/contracts/training-config";
import { runParamValue } from "../records";
import { paramValueInto, sameAsExpected, sameAsExpectedOfConfig, sqliteRunParams, type RunParamGroup } from "../check-run-params";
import { nextDouble } from "../../tests/next-double";

/** Deterministic pseudo-random numbers (a test that fails can be re-run). */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const KEYS = ["a", "b", "a-b", "a.b", "", "__proto__", "10", "2", "layers", "x\u001fy", "é", "aa", "Z", "units"];
const NUMBERS = [0, -0, 1, -1, 0.1, 0.30000000000000004, 1e21, 5e-324, 123456789.12345679, 1e-7, 16, 2 ** 53 + 2];
const TEXTS = ["relu", "", "a\u001fb", "T", "N", "NULL", "é", "0.1"];

function randomValue(r: () => number, depth: number): unknown {
  const x = r();
  if (depth < 3 && x < 0.25) {
    const o: Record<string, unknown> = {};
    const n = Math.floor(r() * 4);
    for (let i = 0; i < n; i++) o[KEYS[Math.floor(r() * KEYS.length)]!] = randomValue(r, depth + 1);
    return o;
  }
  if (depth < 3 && x < 0.4) return Array.from({ length: Math.floor(r() * 12) }, () => randomValue(r, depth + 1));
  if (x < 0.65) return NUMBERS[Math.floor(r() * NUMBERS.length)];
  if (x < 0.85) return TEXTS[Math.floor(r() * TEXTS.length)];
  if (x < 0.95) return r() < 0.5;
  return null;
}

/** A config as JSON.parse gives it (so "__proto__" is an own key). */
function randomConfig(r: () => number): unknown {
  const o: Record<string, unknown> = {};
  const n = 1 + Math.floor(r() * 6);
  for (let i = 0; i < n; i++) o[KEYS[Math.floor(r() * KEYS.length)]!] = randomValue(r, 1);
  if (r() < 0.03) return r() < 0.5 ? {} : [1, { a: 2 }];
  return JSON.parse(JSON.stringify(o)) as unknown;
}

type Row = [key: unknown, text: unknown, num: unknown];

function rowsOf(config: unknown): Row[] {
  return Object.entries(flattenConfig(config)).map(([k, v]) => {
    const p = runParamValue(v);
    return [k, p.valueText, p.valueNum];
  });
}

function tamper(r: () => number, rows: Row[]): Row[] {
  const out = rows.map((x) => [...x] as Row);
  const i = Math.floor(r() * Math.max(1, out.length));
  const kind = Math.floor(r() * 7);
  if (kind === 0) out.splice(i, 1);
  else if (kind === 1) out.push(["zz.extra", null, 1]);
  else if (out[i] && kind === 2 && typeof out[i][2] === "number") out[i][2] = nextDouble(out[i][2] as number);
  else if (out[i] && kind === 3) out[i][0] = `${String(out[i][0])}x`;
  else if (out[i] && kind === 4 && typeof out[i][1] === "string") out[i][1] = `${String(out[i][1])}!`;
  else if (out[i] && kind === 5 && typeof out[i][1] === "string" && /^\d+$/.test(out[i][1] as string)) out[i][1] = Number(out[i][1]);
  else if (out[i] && kind === 6) out[i][2] = out[i][2] === null ? 0 : null;
  return out;
}

describe("run_params fast comparison", () => {
  it("reads a leaf's text and number as runParamValue does (paramValueInto, which the fast paths share)", () => {
    const out = { text: null as string | null, num: null as number | null };
    for (const v of [...NUMBERS, ...TEXTS, true, false, null, undefined, {}, [], { a: [1, "x"] }, [null]]) {
      paramValueInto(v, out);
      const want = runParamValue(v);
      expect([out.text, out.num]).toEqual([want.valueText, want.valueNum]);
    }
  });

  it("answers exactly as the reference on random configs, clean and tampered", () => {
    const db = new Database(":memory:");
    db.exec(
      "CREATE TABLE run_params (run_id integer NOT NULL, key text NOT NULL, value_text text, value_num real, PRIMARY KEY (run_id, key))",
    );
    const insert = db.prepare("INSERT OR IGNORE INTO run_params VALUES (?, ?, ?, ?)");
    const r = rng(20261204);
    const configs = new Map<number, unknown>();
    let tampered = 0;
    for (let run = 1; run <= 3000; run++) {
      const config = randomConfig(r);
      configs.set(run, config);
      let rows = rowsOf(config);
      if (r() < 0.5) {
        rows = tamper(r, rows);
        tampered++;
      }
      for (const [k, t, n] of rows) insert.run(run, k, t, n);
    }
    const source = sqliteRunParams(db);
    let same = 0,
      compared = 0;
    for (const chunk of source.groups())
      for (const g of chunk as RunParamGroup[]) {
        const config = configs.get(g[0])!;
        const want = sameAsExpected(flattenConfig(config), g, source.numbersRoundTrip);
        expect(sameAsExpectedOfConfig(config, g, source.numbersRoundTrip), `run ${g[0]}: ${JSON.stringify(config)}`).toBe(want);
        compared++;
        if (want) same++;
      }
    // Both outcomes occur often enough for the comparison to mean something.
    expect(tampered).toBeGreaterThan(1000);
    expect(compared).toBeGreaterThan(2500);
    expect(same).toBeGreaterThan(800);
    expect(compared - same).toBeGreaterThan(800);
    db.close();
  });
});
