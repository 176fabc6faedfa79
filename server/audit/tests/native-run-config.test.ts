/**
 * rl_run_config_params (rl_audit.c): a run's config compared with its framed run_params rows and its seed inside
 * SQLite. It may only answer "these n rows and the seed are exactly what the config calls for" when the JavaScript
 * row path (check-run-params.ts checkRunDerivedValues: JSON.parse, flattenConfig, runParamValue) finds nothing and
 * counts n rows; anything else must be NULL, so JavaScript decides. Checked on configs written in every way JSON
 * allows (whitespace, escapes of any character in either hex case, surrogate pairs, exponents, "-0", duplicate keys)
 * with awkward keys and values, clean and tampered, and on named cases.
 */
import type Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { flattenConfig } from "@/contracts/training-config";
import { isApiRunConfig } from "@/contracts/mlflow/types";
import { mulberry32 } from "@/trainer/data/prng";
import { runParamValue } from "../content/records";
import { nativeOff, nativeTestDb } from "./native-test-db";
import { nextDouble } from "./next-double";

let db: Database.Database;

beforeAll(() => {
  if (nativeOff) return;
  db = nativeTestDb(`CREATE TABLE runs (id INTEGER PRIMARY KEY, config_json TEXT NOT NULL, seed INTEGER);
    CREATE TABLE run_params (run_id INTEGER NOT NULL, key TEXT NOT NULL, value_text TEXT, value_num REAL, PRIMARY KEY (run_id, key))`);
});

afterAll(() => db?.close());

type Row = [key: unknown, text: unknown, num: unknown];

/** Stores one run (id 1) and returns what rl_run_config_params says of it, as the content worker asks. */
function nativeAnswer(configJson: string, seed: unknown, rows: Row[]): number | null {
  db.exec("DELETE FROM runs; DELETE FROM run_params");
  db.prepare("INSERT INTO runs VALUES (1, ?, ?)").run(configJson, seed);
  const insert = db.prepare("INSERT OR IGNORE INTO run_params VALUES (1, ?, ?, ?)");
  for (const [k, t, n] of rows) insert.run(k, t, n);
  return db
    .prepare(
      `SELECT rl_run_config_params(config_json, seed, (SELECT rl_run_params_framed(key, value_text, value_num) FROM run_params WHERE run_id = runs.id)) FROM runs`,
    )
    .pluck()
    .get() as number | null;
}

/** The JavaScript row path on the stored run: the number of rows when it finds nothing (seed included), else null. */
function referenceAnswer(): number | null {
  const [configJson, seed] = db.prepare("SELECT config_json, seed FROM runs").raw(true).get() as [string, unknown];
  let config: unknown;
  try {
    config = JSON.parse(configJson) as unknown;
  } catch {
    return null;
  }
  const api = isApiRunConfig(config);
  const want = api ? 0 : ((config as { training?: { seed?: unknown } } | null)?.training?.seed ?? null);
  if (want !== seed) return null;
  const expected = new Map<string, { valueText: string | null; valueNum: number | null }>();
  if (!api) for (const [k, v] of Object.entries(flattenConfig(config))) expected.set(k, runParamValue(v));
  const rows = db.prepare("SELECT key, value_text, value_num FROM run_params").raw(true).all() as Row[];
  for (const [key, text, num] of rows) {
    const w = expected.get(key as string);
    expected.delete(key as string);
    if (!(w ? w.valueText === text && w.valueNum === num : text === null && num === null)) return null;
  }
  return expected.size === 0 ? rows.length : null;
}

function rowsOf(config: unknown): Row[] {
  return Object.entries(flattenConfig(config)).map(([k, v]) => {
    const p = runParamValue(v);
    return [k, p.valueText, p.valueNum];
  });
}

const KEYS = ["a", "b", "lr", "a-b", "a.b", "", "__proto__", "10", "2", "api", "seed", 'q"uote', "back\\slash", "tab\t", "é", "😀", "/"];
const NUMBERS = [0, -0, 1, -1, 0.1, 0.30000000000000004, 1e21, 1e-7, 5e-324, 1.7976931348623157e308, 123456789.12345679, 2 ** 53 + 2, 16];
const TEXTS = ["relu", "", 'say "hi"', "a\\b", "line\nbreak", "nul\u0000x", "\u001f", "é😀", "[1]", "0.1", "a/b", "\u2028", "\ud800x"];

/** Keys the native parser takes (no escapes, dots or repeats). */
const PLAIN_KEYS = ["x", "units", "name", "0", "11"];

/** A random value whose object keys come from `keys` (KEYS: awkward ones; PLAIN_KEYS: those the native parser takes). */
function randomValue(r: () => number, depth: number, keys: readonly string[] = KEYS): unknown {
  const x = r();
  if (depth < 4 && x < 0.2) {
    const o: Record<string, unknown> = {};
    for (let n = Math.floor(r() * 4); n > 0; n--) o[keys[Math.floor(r() * keys.length)]!] = randomValue(r, depth + 1, keys);
    return o;
  }
  if (depth < 4 && x < 0.35) return Array.from({ length: Math.floor(r() * 13) }, () => randomValue(r, depth + 1, keys));
  if (x < 0.65) return NUMBERS[Math.floor(r() * NUMBERS.length)];
  if (x < 0.85) return TEXTS[Math.floor(r() * TEXTS.length)];
  if (x < 0.95) return r() < 0.5;
  return null;
}

/** The chance that an object of looseJson repeats a key (set per config). */
let repeatChance = 0;

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/**
 * A JSON text of `v` written as a person or another library might: any whitespace, escapes, number forms, repeated
 * keys. `escapeKeys`: keys get escapes too (which the native parser leaves to JavaScript).
 */
function looseJson(v: unknown, r: () => number, escapeKeys: boolean, isKey = false): string {
  const ws = () => (r() < 0.15 ? pick(r, [" ", "\n", "\t", "\r", "  \n "]) : "");
  if (v === null || typeof v === "boolean") return String(v);
  if (typeof v === "number") {
    if (Object.is(v, -0)) return "-0";
    const forms = [String(v), v.toExponential(), v.toExponential().toUpperCase().replace("E+", "E")];
    if (Number.isInteger(v) && Math.abs(v) < 1e15) forms.push(`${v}.0`, `${v}.000`);
    return pick(r, forms);
  }
  if (typeof v === "string" || isKey) {
    const escapeChance = isKey && !escapeKeys ? 0 : 0.15;
    let out = '"';
    for (const ch of v as string) {
      const plain = JSON.stringify(ch).slice(1, -1);
      if (plain !== ch || r() < escapeChance) {
        // an escape: JSON.stringify's, or each UTF-16 unit as \uXXXX in either case
        const units = [...Array(ch.length).keys()].map((i) => `\\u${ch.charCodeAt(i).toString(16).padStart(4, "0")}`).join("");
        out += r() < 0.5 && plain !== ch ? plain : r() < 0.5 ? units : units.toUpperCase().replaceAll("\\U", "\\u");
      } else out += ch === "/" && r() < 0.5 ? "\\/" : ch;
    }
    return `${out}"`;
  }
  if (Array.isArray(v)) return `[${ws()}${v.map((x) => `${ws()}${looseJson(x, r, escapeKeys)}${ws()}`).join(",")}]`;
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > 0 && r() < repeatChance) entries.push([entries[0]![0], randomValue(r, 3)]); // a repeated key
  return `{${ws()}${entries.map(([k, x]) => `${ws()}${looseJson(k, r, escapeKeys, true)}${ws()}:${ws()}${looseJson(x, r, escapeKeys)}${ws()}`).join(",")}${ws()}}`;
}

function tamper(r: () => number, rows: Row[]): Row[] {
  const out = rows.map((x) => [...x] as Row);
  const i = Math.floor(r() * Math.max(1, out.length));
  const kind = Math.floor(r() * 9);
  if (kind === 0) out.splice(i, 1);
  else if (kind === 1) out.push(["zz.extra", null, 1]);
  else if (kind === 2)
    out.push(["zz.undefined", null, null]); // not a difference for the row path
  else if (out[i] && kind === 3 && typeof out[i][2] === "number") out[i][2] = nextDouble(out[i][2] as number);
  else if (out[i] && kind === 4) out[i][0] = `${String(out[i][0])}x`;
  else if (out[i] && kind === 5 && typeof out[i][1] === "string") out[i][1] = Buffer.from(out[i][1] as string);
  else if (out[i] && kind === 6) out[i][2] = out[i][2] === null ? 0 : null;
  else if (out[i] && kind === 7) out[i][1] = out[i][1] === null ? "" : null;
  else if (out[i] && kind === 8 && typeof out[i][2] === "number") out[i][2] = -(out[i][2] as number);
  return out;
}

describe.skipIf(nativeOff)("rl_run_config_params", () => {
  it("passes a run only when the JavaScript row path finds nothing, on loosely written random configs", () => {
    const r = mulberry32(20261206);
    let decided = 0,
      cleanPlain = 0,
      cleanPlainDecided = 0,
      refused = 0;
    for (let i = 0; i < 4000; i++) {
      const o: Record<string, unknown> = {};
      const plainKeys = r() < 0.5; // only keys the native parser takes
      const keys = plainKeys ? ["a", "b", "lr", "layers", "10", "2"] : KEYS;
      for (let n = 1 + Math.floor(r() * 5); n > 0; n--) o[pick(r, keys)] = randomValue(r, 1, plainKeys ? PLAIN_KEYS : KEYS);
      if (r() < 0.8) o.training = { seed: r() < 0.9 ? Math.floor(r() * 5) : pick(r, [null, "1", 1.5, [], {}, true]), lr: pick(r, NUMBERS) };
      const config = JSON.parse(JSON.stringify(o)) as unknown;
      const escapeKeys = r() < 0.1;
      repeatChance = r() < 0.1 ? 0.3 : 0;
      const text =
        r() < 0.03 ? pick(r, ["{}", "[]", '{"api":"mlflow"}', '{"api":1}', "1", "{", '{"a":1}x']) : looseJson(config, r, escapeKeys);
      let rows = rowsOf(isJson(text) ? JSON.parse(text) : config);
      const wantSeed = (config as { training?: { seed?: unknown } }).training?.seed ?? null;
      let seed: unknown = typeof wantSeed === "number" ? wantSeed : 0;
      const clean = r() < 0.5;
      if (!clean) {
        if (r() < 0.2) seed = (seed as number) + 1;
        else rows = tamper(r, rows);
      }
      const native = nativeAnswer(text, seed, rows);
      const reference = referenceAnswer();
      if (native !== null) {
        decided++;
        expect(native, `${text} ${JSON.stringify(rows)} seed ${String(seed)}`).toBe(reference);
      } else if (reference === null) refused++;
      // (JSON.stringify writes a lone surrogate as an escape, and nothing else that way)
      const plain = plainKeys && !escapeKeys && repeatChance === 0 && !JSON.stringify(config).includes("\\ud8");
      if (clean && plain && typeof wantSeed === "number" && text.startsWith("{")) {
        cleanPlain++;
        if (native !== null) cleanPlainDecided++;
      }
    }
    expect(refused).toBeGreaterThan(800); // tampered runs are left to JavaScript
    expect(decided).toBeGreaterThan(600);
    // Clean runs with plain keys (no escape, repeat, dot; no lone surrogate in a text) and a numeric seed pass in SQLite.
    expect(cleanPlainDecided).toBeGreaterThan(cleanPlain * 0.95);
  });

  it("decides the named cases as JavaScript does, or leaves them to it", () => {
    const config = { training: { seed: 3, learningRate: 0.02, layers: Array.from({ length: 12 }, (_, i) => i) }, note: 'é/"x"' };
    const rows = rowsOf(config);
    expect(nativeAnswer(JSON.stringify(config), 3, rows)).toBe(rows.length);
    expect(nativeAnswer(JSON.stringify(config, null, 2), 3, rows)).toBe(rows.length);
    const escaped = JSON.stringify(config).replace("é", "\\u00E9").replace("/", "\\/").replace("0.02", "2E-2");
    expect(nativeAnswer(escaped, 3, rows)).toBe(rows.length);
    expect(nativeAnswer(JSON.stringify(config), 4, rows)).toBeNull(); // seed differs
    expect(nativeAnswer(JSON.stringify(config), 3, rows.slice(1))).toBeNull(); // a row missing
    const lr = rows.find(([k]) => k === "training.learningRate")!;
    lr[2] = nextDouble(0.02);
    expect(nativeAnswer(JSON.stringify(config), 3, rows)).toBeNull(); // one ulp off
    // Left to JavaScript even where it would pass: a repeated key (JSON.parse keeps the last), an escaped or dotted key,
    // the tracking API's config, an empty root, a lone surrogate, a string seed.
    expect(nativeAnswer('{"a":1,"a":2}', null, [["a", null, 2]])).toBeNull();
    expect(referenceAnswer()).toBe(1);
    const merged: Row[] = [
      ["a.x", null, 1],
      ["a.y", null, 2],
    ];
    expect(nativeAnswer('{"a":{"x":1},"a":{"y":2}}', null, merged)).toBeNull(); // JSON.parse keeps only {"y":2}
    expect(referenceAnswer()).toBeNull();
    expect(nativeAnswer('{"\\u0061":1}', null, [["a", null, 1]])).toBeNull();
    expect(nativeAnswer('{"a.b":1}', null, [["a.b", null, 1]])).toBeNull();
    expect(nativeAnswer('{"api":"mlflow"}', 0, [])).toBeNull();
    expect(nativeAnswer('{"api":"x"}', null, [["api", "x", null]])).toBeNull();
    expect(nativeAnswer("{}", null, [])).toBeNull();
    expect(nativeAnswer('{"a":"\\ud800"}', null, [["a", "\ufffd", null]])).toBeNull();
    expect(nativeAnswer('{"training":{"seed":"1"}}', 1, [["training.seed", "1", null]])).toBeNull();
    // Values of every kind, and a seed of null.
    const kinds = { b: true, f: false, n: null, e: {}, l: [], s: "", big: Infinity }; // (what JSON.parse makes of 1e400);
    expect(nativeAnswer('{"b":true,"f":false,"n":null,"e":{},"l":[],"s":"","big":1e400}', null, rowsOf(kinds))).toBe(7);
    expect(nativeAnswer('{"training":{"seed":null},"x":1}', null, rowsOf({ training: { seed: null }, x: 1 }))).toBe(2);
    expect(nativeAnswer('{"training":{"seed":null},"x":1}', 0, rowsOf({ training: { seed: null }, x: 1 }))).toBeNull();
    // Not JSON, or not all of it.
    for (const bad of [
      '{"a":1',
      '{"a":01}',
      '{"a":1.}',
      '{"a":.5}',
      '{"a":+1}',
      "{'a':1}",
      '{"a":1}]',
      '{"a":"\t"}',
      '{"a":tru}',
      '{"a":1,}',
    ])
      expect(nativeAnswer(bad, null, [["a", null, 1]]), bad).toBeNull();
  });
});

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
