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
import { runParamValue } from "./records";
import type { ContentChecker } from "./checker";
import type { Created } from "./creations";
import type { Tables } from "./tables";

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
  const groups = sqlite.prepare(
    `SELECT run_id, count(*), max(typeof(key) <> 'text' OR typeof(value_text) NOT IN ('text', 'null') OR typeof(value_num) NOT IN ('real', 'integer', 'null')),
       group_concat(key, char(31)), group_concat(ifnull('T' || value_text, 'N'), char(31)), group_concat(quote(value_num), char(31))
     FROM run_params WHERE run_id > ? GROUP BY run_id ORDER BY run_id LIMIT ${GROUP_CHUNK}`,
  ).raw(true);
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
  const values = [0, -0, 1, -1, 0.1, 0.2 + 0.1, 1 / 3, 2 ** 53 + 2, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 123456789.123456789, 0.008, 1e21, 1e-7, Infinity, -Infinity];
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

/** True when the folded group holds exactly the expected rows (same keys, texts and numbers; nothing else). */
function sameAsExpected(params: Map<string, Param>, g: RunParamGroup, numbers: boolean): boolean {
  const [, count, odd, keys, texts, nums] = g;
  if (odd || count !== params.size) return false;
  const sorted = [...params.keys()].sort();
  let k = "", t = "";
  for (let i = 0; i < sorted.length; i++) {
    const key = sorted[i]!;
    const v = params.get(key)!;
    // A separator inside an expected value would make the joined texts ambiguous: the row path decides.
    if (key.includes(SEP) || (v.valueText !== null && v.valueText.includes(SEP))) return false;
    k += i === 0 ? key : SEP + key;
    const tv = v.valueText === null ? "N" : `T${v.valueText}`;
    t += i === 0 ? tv : SEP + tv;
  }
  if (k !== keys || t !== texts) return false;
  if (!numbers && nums !== Array(count).fill("NULL").join(SEP)) return false;
  const n = nums.split(SEP);
  if (n.length !== count) return false;
  for (let i = 0; i < sorted.length; i++) {
    const want = params.get(sorted[i]!)!.valueNum;
    const got = n[i]!;
    if (want === null ? got !== "NULL" : got === "NULL" || Number(got) !== want) return false;
  }
  return true;
}

/** `rows` null: the source holds no run_params (a bundle); only the seed is checked then. */
export function checkRunDerivedValues(c: ContentChecker, t: Tables, created: Created, rows: RunParamSource | null): void {
  const expectedOf = (runId: number): { params: Map<string, Param>; seq: number } | null => {
    const run = t.runs.get(runId);
    const ev = created.get(runId)?.ev;
    if (!run || !ev) return null;
    let config: unknown;
    try {
      config = JSON.parse(run.configJson) as unknown;
    } catch {
      return null; // the config hash check already failed
    }
    const seed = (config as { training?: { seed?: unknown } } | null)?.training?.seed ?? null;
    c.checked++;
    if (seed !== run.seed) c.derived("run", runId, "seed", "its config gives", seed, run.seed, ev.seq);
    const params = new Map<string, Param>();
    for (const [key, v] of Object.entries(flattenConfig(config))) params.set(key, runParamValue(v));
    return { params, seq: ev.seq };
  };
  const missing = (runId: number, e: { params: Map<string, Param>; seq: number }) => {
    for (const [key, want] of e.params) c.derived("run", runId, `run_params ${key}`, "its config gives", want, null, e.seq);
  };
  const done = new Set<number>();
  if (rows !== null) {
    // Runs in run_params order; a run whose folded rows are exactly what its config calls for counts its rows as
    // checked facts; any other is compared row by row (naming each row that differs), at the same place in the order.
    for (const chunk of rows.groups()) {
      for (const g of chunk) {
        const r = g[0];
        done.add(r);
        const e = expectedOf(r);
        if (!e) continue;
        if (sameAsExpected(e.params, g, rows.numbersRoundTrip)) {
          c.checked += g[1];
          continue;
        }
        for (const [, key, valueText, valueNum] of rows.rowsOf(r)) {
          const want = e.params.get(key);
          e.params.delete(key);
          c.checked++;
          if (want ? want.valueText === valueText && want.valueNum === valueNum : valueText === null && valueNum === null) continue; // (null, null): an undefined config value, dropped from the canonical text
          c.derived("run", r, `run_params ${key}`, "its config gives", want ?? null, { valueText, valueNum }, e.seq);
        }
        missing(r, e);
      }
    }
  }
  for (const runId of created.keys()) {
    if (done.has(runId)) continue;
    const e = expectedOf(runId);
    if (e && rows !== null) missing(runId, e);
  }
}
