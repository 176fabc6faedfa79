/**
 * Values derived from a run's config, checked against the config (itself checked against the ledger's
 * configSha256): the seed column and the run_params rows (the flattened config the runs explorer filters and sorts
 * by). The run_params rows are read once, folded per run by SQLite (RunParamGroup) in run order; a run whose folded
 * rows equal what its config calls for passes without a JavaScript object per row, any other is read and compared
 * row by row; each run's config is parsed once.
 *
 * Invariants: only runs whose run.create event was found are judged (the config of any other run is unverified);
 * the folded comparison only ever passes a run whose rows the row-by-row comparison would pass (same count, no
 * separator inside an expected key or text, storage types checked, numbers compared as doubles after a round-trip
 * self-test of SQLite's printing); anything else goes row by row, which decides and names the differences.
 */
import type Database from "better-sqlite3";
import { flattenConfig } from "@/contracts/training-config";
import { isApiRunConfig } from "@/contracts/mlflow/types";
import { runParamValue } from "./records";
import type { ContentChecker } from "./checker";
import type { Created } from "./creations";
import type { RunConfigRow } from "./tables";

export type RunParamRow = [runId: number, key: string, valueText: string | null, valueNum: number | null];

/**
 * One run's run_params rows folded by SQLite into one row: how many, whether any value is of an unexpected storage
 * type, the keys, the texts ("T" + text, or "N" for NULL) and the numbers (quote(): NULL, or the value printed with
 * 17 significant digits, which parses back to the same double) each joined by U+001F, in the table's (run, key) order.
 */
export type RunParamGroup = [runId: number, count: number, odd: number, keys: string, texts: string, nums: string];

/** run_params of a live database: folded groups of runs in run order (chunks), and one run's rows for the row-by-row path. */
export type RunParamSource = {
  groups(): Iterable<RunParamGroup[]>;
  rowsOf(runId: number): RunParamRow[];
  /** False when this SQLite's printed numbers did not all parse back to the same double (then every run takes the row path). */
  numbersRoundTrip: boolean;
};

const SEP = "\u001f";
const GROUP_CHUNK = 4096;

export function sqliteRunParams(sqlite: Database.Database): RunParamSource {
  // Each group is read in the primary key's (run_id, key) order; if SQLite ever joined them in another order the
  // comparison below would fail and the run would take the row path, which decides.
  const groups = sqlite
    .prepare(
      `SELECT run_id, count(*), max(typeof(key) <> 'text' OR typeof(value_text) NOT IN ('text', 'null') OR typeof(value_num) NOT IN ('real', 'integer', 'null')),
       group_concat(key, char(31)), group_concat(ifnull('T' || value_text, 'N'), char(31)), group_concat(quote(value_num), char(31))
     FROM run_params WHERE run_id > ? GROUP BY run_id ORDER BY run_id LIMIT ${GROUP_CHUNK}`,
    )
    .raw(true);
  const rows = sqlite.prepare("SELECT run_id, key, value_text, value_num FROM run_params WHERE run_id = ? ORDER BY key").raw(true);
  return {
    *groups() {
      // Chunks (read inside the caller's read transaction, so all from one snapshot) leave the connection free
      // between them for the row path of a run that differs, in run order.
      let after: unknown = -Infinity; // below every stored run id (rows with a NULL run id belong to no run and are not judged, as row by row)
      for (;;) {
        const chunk = groups.all(after) as RunParamGroup[];
        if (chunk.length === 0) return;
        yield chunk;
        if (chunk.length < GROUP_CHUNK) return;
        after = chunk[chunk.length - 1]![0];
      }
    },
    rowsOf: (runId) => rows.all(runId) as RunParamRow[],
    numbersRoundTrip: numbersRoundTrip(sqlite),
  };
}

/** Checks that SQLite's quote() of a REAL parses back to the same double, on edge cases and random bit patterns. */
function numbersRoundTrip(sqlite: Database.Database): boolean {
  const q = sqlite.prepare("SELECT quote(?)").pluck();
  const values = [
    0,
    -0,
    1,
    -1,
    0.1,
    0.2 + 0.1,
    1 / 3,
    2 ** 53 + 2,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    123456789.12345679,
    0.008,
    1e21,
    1e-7,
    Infinity,
    -Infinity,
  ];
  const bits = new DataView(new ArrayBuffer(8));
  for (let i = 0; i < 256; i++) {
    bits.setUint32(0, (Math.random() * 2 ** 32) >>> 0);
    bits.setUint32(4, (Math.random() * 2 ** 32) >>> 0);
    const v = bits.getFloat64(0);
    if (Number.isFinite(v)) values.push(v);
  }
  return values.every((v) => Number(q.get(v) as string) === v);
}

type Param = { valueText: string | null; valueNum: number | null };

/**
 * True when the folded group holds exactly the rows the flattened config calls for (same keys, texts and numbers;
 * nothing else). Works on the flattened config directly (runParamValue as paramValueInto gives it), so a matching run costs no
 * object per row. (The reference for sameAsExpectedOfConfig below, and its fallback.)
 */
export function sameAsExpected(flat: Record<string, unknown>, g: RunParamGroup, numbers: boolean): boolean {
  const [, count, odd, keys, texts, nums] = g;
  if (odd) return false;
  const sorted = Object.keys(flat);
  if (count !== sorted.length) return false;
  sorted.sort();
  const n = nums.split(SEP);
  if (n.length !== count) return false;
  let k = "",
    t = "";
  for (let i = 0; i < sorted.length; i++) {
    const key = sorted[i]!;
    const v = flat[key];
    paramValueInto(v, leaf);
    const { text, num } = leaf;
    // A separator inside an expected key or text would make the joined texts ambiguous: the row path decides.
    if (key.includes(SEP) || (text !== null && text.includes(SEP))) return false;
    k += i === 0 ? key : SEP + key;
    const tv = text === null ? "N" : `T${text}`;
    t += i === 0 ? tv : SEP + tv;
    const got = n[i]!;
    if (num === null ? got !== "NULL" : !numbers || got === "NULL" || Number(got) !== num) return false;
  }
  return k === keys && t === texts;
}

// Leaves of the config being compared (path, value), reused from run to run: the fast path allocates no object per leaf.
const leafPaths: string[] = [];
const leafValues: unknown[] = [];
const leafOrder: number[] = [];

/**
 * flattenConfig's leaves of `v` under `prefix`, pushed in flattenConfig's order; false when a key could make two
 * paths collide or be dropped by flattenConfig's object (an empty key, a key with a dot, "__proto__"): the caller
 * then uses flattenConfig itself. Without such keys every path is distinct, so the leaves are exactly flattenConfig's.
 */
function collectLeaves(v: unknown, prefix: string): boolean {
  if (v === null || typeof v !== "object") {
    leafPaths.push(prefix);
    leafValues.push(v);
    return true;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) {
      leafPaths.push(prefix);
      leafValues.push(v);
    }
    for (let i = 0; i < v.length; i++) if (!collectLeaves(v[i], `${prefix}.${i}`)) return false;
    return true;
  }
  const keys = Object.keys(v);
  if (keys.length === 0) {
    leafPaths.push(prefix);
    leafValues.push(v);
  }
  for (const key of keys) {
    if (key === "" || key === "__proto__" || key.includes(".")) return false;
    if (!collectLeaves((v as Record<string, unknown>)[key], `${prefix}.${key}`)) return false;
  }
  return true;
}

/**
 * The leaves of `config` as flattenConfig gives them, in key order (UTF-16 code units, as Array.prototype.sort):
 * `order` indexes `paths` and `values` (arrays reused from call to call: read them before the next call). Collected
 * without the flattened object when no key can make two paths collide (collectLeaves), else through flattenConfig.
 */
export function sortedConfigLeaves(config: unknown): { paths: readonly string[]; values: readonly unknown[]; order: readonly number[] } {
  leafPaths.length = 0;
  leafValues.length = 0;
  let simple = config !== null && typeof config === "object" && !Array.isArray(config);
  if (simple) {
    const rootKeys = Object.keys(config as object);
    simple = rootKeys.length > 0;
    for (let i = 0; simple && i < rootKeys.length; i++) {
      const key = rootKeys[i]!;
      simple = key !== "" && key !== "__proto__" && !key.includes(".") && collectLeaves((config as Record<string, unknown>)[key], key);
    }
  }
  if (!simple) {
    leafPaths.length = 0;
    leafValues.length = 0;
    const flat = flattenConfig(config);
    for (const key of Object.keys(flat)) {
      leafPaths.push(key);
      leafValues.push(flat[key]);
    }
  }
  const n = leafPaths.length;
  leafOrder.length = n;
  let sorted = true;
  for (let i = 0; i < n; i++) {
    leafOrder[i] = i;
    if (i > 0 && !(leafPaths[i - 1]! < leafPaths[i]!)) sorted = false;
  }
  if (!sorted) leafOrder.sort((a, b) => (leafPaths[a]! < leafPaths[b]! ? -1 : leafPaths[a]! > leafPaths[b]! ? 1 : 0));
  return { paths: leafPaths, values: leafValues, order: leafOrder };
}

/** runParamValue(v) as [text, number] into `out`: the fast paths call it per leaf of every run, so no object per call. */
export function paramValueInto(v: unknown, out: { text: string | null; num: number | null }): void {
  out.text = null;
  out.num = null;
  if (typeof v === "number") out.num = v;
  else if (typeof v === "boolean") {
    out.text = String(v);
    out.num = v ? 1 : 0;
  } else if (typeof v === "string") out.text = v;
  else if (v !== null && v !== undefined) out.text = JSON.stringify(v);
}
/** The reused `out` of paramValueInto. */
export const leaf: { text: string | null; num: number | null } = { text: null, num: null };

/**
 * sameAsExpected(flattenConfig(config), g, numbers) without building the flattened object or the joined strings:
 * the leaves are collected into reused arrays (collectLeaves; a config it cannot handle goes through flattenConfig
 * and sameAsExpected), put in the same sorted order (UTF-16 code units, as Array.prototype.sort), and compared
 * piece by piece with the group's joined keys, texts and numbers. Same answer as sameAsExpected (tested).
 */
export function sameAsExpectedOfConfig(config: unknown, g: RunParamGroup, numbers: boolean): boolean {
  const [, count, odd, keys, texts, nums] = g;
  if (odd) return false;
  // The root: a non-empty plain object (flattenConfig gives anything else a path "" or no leaves at all).
  if (config === null || typeof config !== "object" || Array.isArray(config)) return sameAsExpected(flattenConfig(config), g, numbers);
  leafPaths.length = 0;
  leafValues.length = 0;
  const rootKeys = Object.keys(config);
  let simple = rootKeys.length > 0;
  for (let i = 0; simple && i < rootKeys.length; i++) {
    const key = rootKeys[i]!;
    simple = key !== "" && key !== "__proto__" && !key.includes(".") && collectLeaves((config as Record<string, unknown>)[key], key);
  }
  if (!simple) return sameAsExpected(flattenConfig(config), g, numbers);
  const n = leafPaths.length;
  if (count !== n) return false;
  leafOrder.length = n;
  let sorted = true;
  for (let i = 0; i < n; i++) {
    leafOrder[i] = i;
    if (i > 0 && !(leafPaths[i - 1]! < leafPaths[i]!)) sorted = false;
  }
  if (!sorted) leafOrder.sort((a, b) => (leafPaths[a]! < leafPaths[b]! ? -1 : leafPaths[a]! > leafPaths[b]! ? 1 : 0));
  let kp = 0,
    tp = 0,
    np = 0;
  for (let i = 0; i < n; i++) {
    const key = leafPaths[leafOrder[i]!]!;
    const v = leafValues[leafOrder[i]!];
    let text: string | null = null;
    let num: number | null = null;
    if (typeof v === "number") num = v;
    else if (typeof v === "boolean") {
      text = String(v);
      num = v ? 1 : 0;
    } else if (typeof v === "string") text = v;
    else if (v !== null && v !== undefined) text = JSON.stringify(v);
    if (key.includes(SEP) || (text !== null && text.includes(SEP))) return false;
    // keys: `key` then a separator (or the end after the last)
    if (i > 0) {
      if (keys.charCodeAt(kp) !== 0x1f || texts.charCodeAt(tp) !== 0x1f) return false;
      kp++;
      tp++;
    }
    if (!keys.startsWith(key, kp)) return false;
    kp += key.length;
    if (text === null) {
      if (texts.charCodeAt(tp) !== 0x4e /* N */) return false;
      tp++;
    } else {
      if (texts.charCodeAt(tp) !== 0x54 /* T */ || !texts.startsWith(text, tp + 1)) return false;
      tp += 1 + text.length;
    }
    let end = nums.indexOf(SEP, np);
    if (end === -1) end = nums.length;
    if (i === n - 1 ? end !== nums.length : end === nums.length) return false;
    const got = nums.slice(np, end);
    np = end + 1;
    if (num === null ? got !== "NULL" : !numbers || got === "NULL" || Number(got) !== num) return false;
  }
  return kp === keys.length && tp === texts.length;
}

/** What a run's config calls for: its run_params rows by key, and the seq of its run.create (named in findings). */
export type ExpectedParams = { params: Map<string, Param>; seq: number };

/**
 * The parsed config of a created run, after its seed column is judged against it (one fact): null when the run has
 * no run.create event (its config is unverified) or the config does not parse (the config hash check already failed).
 */
export function judgedConfig(
  c: ContentChecker,
  created: Created,
  runId: number,
  configJson: string,
  seed: unknown,
): { config: unknown; seq: number } | null {
  const ev = created.get(runId)?.ev;
  if (!ev) return null;
  let config: unknown;
  try {
    config = JSON.parse(configJson) as unknown;
  } catch {
    return null; // the config hash check already failed
  }
  // A run logged through the tracking API (API_RUN_CONFIG) has seed 0 and no run_params (its params are decisions).
  const want = isApiRunConfig(config) ? 0 : ((config as { training?: { seed?: unknown } } | null)?.training?.seed ?? null);
  c.checked++;
  if (want !== seed) c.derived("run", runId, "seed", "its config gives", want, seed, ev.seq);
  return { config, seq: ev.seq };
}

/** The run_params rows a (judged) config calls for: runParamValue of each flattened leaf; none for the tracking API's. */
export function expectedParams(f: { config: unknown; seq: number }): ExpectedParams {
  const params = new Map<string, Param>();
  if (!isApiRunConfig(f.config)) for (const [key, v] of Object.entries(flattenConfig(f.config))) params.set(key, runParamValue(v));
  return { params, seq: f.seq };
}

/** Each row the config calls for that is missing (none of its rows were compared, or they are `e`'s leftovers). */
export function reportMissingParams(c: ContentChecker, runId: number, e: ExpectedParams): void {
  for (const [key, want] of e.params) c.derived("run", runId, `run_params ${key}`, "its config gives", want, null, e.seq);
}

/** The row path, which decides: each of a run's rows against what its config calls for (one fact each), then what is missing. */
export function compareParamRows(c: ContentChecker, runId: number, e: ExpectedParams, rows: Iterable<RunParamRow>): void {
  for (const [, key, valueText, valueNum] of rows) {
    const want = e.params.get(key);
    e.params.delete(key);
    c.checked++;
    if (want ? want.valueText === valueText && want.valueNum === valueNum : valueText === null && valueNum === null) continue; // (null, null): an undefined config value, dropped from the canonical text
    c.derived("run", runId, `run_params ${key}`, "its config gives", want ?? null, { valueText, valueNum }, e.seq);
  }
  reportMissingParams(c, runId, e);
}

/** `rows` null: the source holds no run_params (a bundle); only the seed is checked then. */
export function checkRunDerivedValues(
  c: ContentChecker,
  t: { runs: ReadonlyMap<number, RunConfigRow> },
  created: Created,
  rows: RunParamSource | null,
): void {
  const configOf = (runId: number): { config: unknown; seq: number } | null => {
    const run = t.runs.get(runId);
    return run ? judgedConfig(c, created, runId, run.configJson, run.seed) : null;
  };
  const done = new Set<number>();
  if (rows !== null) {
    // Runs in run_params order; a run whose folded rows are exactly what its config calls for counts its rows as
    // checked facts; any other is compared row by row (naming each row that differs), at the same place in the order.
    for (const chunk of rows.groups()) {
      for (const g of chunk) {
        const r = g[0];
        done.add(r);
        const f = configOf(r);
        if (!f) continue;
        if (!isApiRunConfig(f.config) && sameAsExpectedOfConfig(f.config, g, rows.numbersRoundTrip)) {
          c.checked += g[1];
          continue;
        }
        compareParamRows(c, r, expectedParams(f), rows.rowsOf(r));
      }
    }
  }
  for (const runId of created.keys()) {
    if (done.has(runId)) continue;
    const f = configOf(runId);
    if (f && rows !== null) reportMissingParams(c, runId, expectedParams(f));
  }
}
