/**
 * checkRunDerivedValues (check-run-params.ts) on a live database, with less SQLite work per run_params row: the runs
 * table is walked in id order, and for each run SQLite gives its config, its seed and its run_params rows as one
 * JSON text (`[key,text,num],...` in the (run_id, key) index's order, json_array's form: the storage type shows as
 * a quoted string, a number or null, a NUL inside a text is escaped). A run whose text is exactly what its config
 * calls for passes without a JavaScript value per row; any other run is compared row by row, as in
 * checkRunDerivedValues, which decides and names the differences. The configs are parsed as they are read, not kept.
 * With the native extension (the default), the rows come as bytes framed by rl_run_params_framed instead of JSON
 * text and are compared with frameRunParams of the config; the JSON text is the path without it.
 *
 * Invariants: the same findings, in the same order, and the same number of facts as checkRunDerivedValues with
 * sqliteRunParams (run-derived-part.test.ts compares them on tampered databases). The JSON text only ever passes a
 * run whose rows the row path would pass: each expected token is matched whole at the place the previous one ended
 * (a JSON string token ends at its first unescaped quote, so the match keeps the alignment), numbers are compared
 * as doubles after a round-trip self-test of SQLite's JSON printing, and a BLOB in any of the three columns (which
 * json_array would read as JSONB, or refuse) sends the run to the row path.
 */
import type Database from "better-sqlite3";
import { isApiRunConfig } from "@/contracts/mlflow/types";
import {
  compareParamRows,
  expectedParams,
  judgedConfig,
  leaf,
  paramValueInto,
  reportMissingParams,
  sortedConfigLeaves,
  type RunParamRow,
} from "./check-run-params";
import type { ContentChecker } from "./checker";
import type { Created } from "./creations";
import { loadAuditNative } from "../native-range";

const RUN_CHUNK = 2048;

/** One run as the chunk query gives it: its run_params rows (paramsOfRun; null: no run_params row). */
type RunWithParams = [id: number, configJson: string, seed: unknown, rows: string | Buffer | null];

/**
 * A run's run_params rows as JSON text, or "B" when one holds a BLOB (BLOB sorts above every other storage class, so
 * a column's max() is a BLOB exactly when one of its values is). `column` reads each of the three columns.
 */
const paramsOfRun = (column: (name: string) => string) =>
  `(SELECT CASE WHEN typeof(max(key)) = 'blob' OR typeof(max(value_text)) = 'blob' OR typeof(max(value_num)) = 'blob' THEN 'B'
    ELSE group_concat(json_array(${column("key")}, ${column("value_text")}, ${column("value_num")})) END FROM run_params WHERE run_id = runs.id)`;
const PARAMS_OF_RUN = paramsOfRun((name) => name);
// For a chunk where json_array refused a BLOB (one that is not JSONB): BLOBs read as null (their runs are "B" anyway).
const PARAMS_OF_RUN_WITHOUT_BLOBS = paramsOfRun((name) => `CASE WHEN typeof(${name}) = 'blob' THEN NULL ELSE ${name} END`);
/**
 * With the native extension: the run's rows framed as bytes in the index's order instead of their JSON text (no
 * text built per row; rl_audit.c rl_run_params_framed, "X" when the rows must be compared one by one, NULL for none).
 */
const FRAMED_PARAMS_OF_RUN = "(SELECT rl_run_params_framed(key, value_text, value_num) FROM run_params WHERE run_id = runs.id)";

/**
 * With the native extension: each run's config compared with its framed rows, and its seed, inside SQLite
 * (rl_audit.c rl_run_config_params: the number of rows when both are what the config calls for, NULL when
 * JavaScript must decide), so a matching run's config is never parsed in JavaScript.
 */
const CONFIG_MATCHED_ROWS = `rl_run_config_params(config_json, seed, ${FRAMED_PARAMS_OF_RUN})`;

/**
 * The same answer from rows read in one pass over the table before the runs are walked (rl_run_params_collect, which
 * proves that each run's rows came as one block of the table and frames them in the index's order): reading them run
 * by run through the (run_id, key) index costs a lookup of the table per row (0.55 s of the million-event ledger's
 * 3.2M rows; the pass and the framing 0.38 s). When the pass cannot prove it (a run's rows apart, e.g. written
 * later), CONFIG_MATCHED_ROWS reads them through the index.
 */
const COLLECTED_MATCHED_ROWS = "rl_run_config_params_collected(config_json, seed, id)";
const COLLECT_RUN_PARAMS = "SELECT rl_run_params_collect(run_id, key, value_text, value_num, ?) FROM run_params NOT INDEXED";
/**
 * The most the collected rows may take (~35 bytes a row: 112 MB for the million-event ledger's 3.2M rows); beyond it
 * the index is read, with memory bounded.
 */
const COLLECT_MAX_BYTES = 256 * 1024 * 1024;

/** Runs rl_run_params_collect on `sqlite`; true when it kept every run's rows (then release them: rl_run_params_release). */
function collectRunParams(sqlite: Database.Database, maxBytes: number): boolean {
  try {
    return (sqlite.prepare(COLLECT_RUN_PARAMS).pluck().get(maxBytes) as number) >= 0;
  } catch {
    return false; // (the index path then reads the table, and reports what is wrong with it as before)
  }
}

/**
 * Returns how many runs passed without the row path (`native`: of those, how many inside SQLite; `collected`: whether
 * the rows were read in one pass, COLLECTED_MATCHED_ROWS). `via`: "native" (the default, when the native extension
 * loads) first asks rl_run_config_params (on the rows collected in one pass when that pass proves them complete,
 * else read through the index: "native-indexed" always does that), and compares any run it leaves to JavaScript as
 * "framed" does; "framed" compares each run's rl_run_params_framed bytes with frameRunParams of its config; "json"
 * the JSON text (rowsMatchConfig). Each only ever passes a run the row path would pass. `collectMaxBytes`: the bound
 * of the one pass's memory (COLLECT_MAX_BYTES; beyond it the index is read). `createdRuns` may be a function: it is
 * then asked only after that pass (the content worker waits there for the run events the main thread's log scan read,
 * run-events-feed.ts, and has the pass done meanwhile).
 */
export function checkRunDerivedValuesInDatabase(
  c: ContentChecker,
  sqlite: Database.Database,
  createdRuns: Created | (() => Created),
  via: RunParamsVia = "native",
  collectMaxBytes = COLLECT_MAX_BYTES,
): { matchedRuns: number; native: number; collected: boolean } {
  let matchedRuns = 0,
    native = 0;
  const framed = via !== "json" && loadAuditNative(sqlite);
  const inSqlite = framed && (via === "native" || via === "native-indexed");
  const numbers = !framed && jsonNumbersRoundTrip(sqlite);
  const chunkOf = (params: string) =>
    sqlite.prepare(`SELECT id, config_json, seed, ${params} FROM runs WHERE id > ? ORDER BY id LIMIT ${RUN_CHUNK}`).raw(true);
  const chunkQuery = chunkOf(framed ? FRAMED_PARAMS_OF_RUN : PARAMS_OF_RUN);
  // A chunk's runs with the number of rows SQLite matched (NULL: compared here, read again by id).
  const matchedChunkOf = (matched: string) =>
    sqlite.prepare(`SELECT id, ${matched} FROM runs WHERE id > ? ORDER BY id LIMIT ${RUN_CHUNK}`).raw(true);
  let matchedChunk = inSqlite ? matchedChunkOf(CONFIG_MATCHED_ROWS) : null;
  const runById = framed ? sqlite.prepare(`SELECT id, config_json, seed, ${FRAMED_PARAMS_OF_RUN} FROM runs WHERE id = ?`).raw(true) : null;
  // Only json_array refuses a BLOB (one that is not JSONB); rl_run_params_framed answers "X" for it.
  const withoutBlobs = framed ? null : chunkOf(PARAMS_OF_RUN_WITHOUT_BLOBS);
  const rowsOf = sqlite.prepare("SELECT run_id, key, value_text, value_num FROM run_params WHERE run_id = ? ORDER BY key").raw(true);
  // Every run's rows in one pass over the table first, when that pass proves them complete (after the statements
  // above, which name what is wrong with the table if anything is).
  const collected = matchedChunk !== null && via === "native" && collectRunParams(sqlite, collectMaxBytes);
  if (collected) matchedChunk = matchedChunkOf(COLLECTED_MATCHED_ROWS);
  let created: Created;
  try {
    created = typeof createdRuns === "function" ? createdRuns() : createdRuns;
  } catch (err) {
    if (collected) sqlite.prepare("SELECT rl_run_params_release()").get();
    throw err;
  }

  const configOf = (runId: number, configJson: string, seed: unknown) => judgedConfig(c, created, runId, configJson, seed);

  // Created runs without a run_params row: judged after the others, in the order of their run.create events.
  const withoutRows = new Map<number, [configJson: string, seed: unknown]>();
  let after: unknown = -Infinity;
  const judge = ([runId, configJson, seed, rows]: RunWithParams): void => {
    if (rows === null) {
      if (created.has(runId)) withoutRows.set(runId, [configJson, seed]);
      return;
    }
    const f = configOf(runId, configJson, seed);
    if (!f) return;
    if (!isApiRunConfig(f.config)) {
      const n = framed ? framedMatchesConfig(f.config, rows) : rowsMatchConfig(f.config, rows as string, numbers);
      if (n >= 0) {
        c.checked += n;
        matchedRuns++;
        return;
      }
    }
    compareParamRows(c, runId, expectedParams(f), rowsOf.all(runId) as RunParamRow[]);
  };
  // The runs in id order, a chunk at a time.
  const walkRuns = (): void => {
    for (;;) {
      if (matchedChunk) {
        // Runs SQLite matched count their seed and rows as checked (as configOf and the fast path do); a run without
        // a run.create event is not judged either way; any other run is read again and judged here, in its place.
        const chunk = matchedChunk.all(after) as [id: number, rows: number | null][];
        for (const [runId, n] of chunk) {
          if (n !== null) {
            if (created.has(runId)) {
              c.checked += 1 + n;
              matchedRuns++;
              native++;
            }
          } else judge(runById!.get(runId) as RunWithParams);
        }
        if (chunk.length < RUN_CHUNK) break;
        after = chunk[chunk.length - 1]![0];
        continue;
      }
      let chunk: RunWithParams[];
      try {
        chunk = chunkQuery.all(after) as RunWithParams[];
      } catch (err) {
        if (!withoutBlobs) throw err;
        chunk = withoutBlobs.all(after) as RunWithParams[]; // json_array refused a BLOB that is not JSONB
      }
      for (const run of chunk) judge(run);
      if (chunk.length < RUN_CHUNK) break;
      after = chunk[chunk.length - 1]![0];
    }
  };
  try {
    walkRuns();
  } finally {
    if (collected) sqlite.prepare("SELECT rl_run_params_release()").get();
  }
  for (const runId of created.keys()) {
    const run = withoutRows.get(runId);
    if (!run) continue;
    const f = configOf(runId, run[0], run[1]);
    if (f) reportMissingParams(c, runId, expectedParams(f));
  }
  return { matchedRuns, native, collected };
}

/** How checkRunDerivedValuesInDatabase compares each run's rows first (see there). */
export type RunParamsVia = "native" | "native-indexed" | "framed" | "json";

/** The number of rows when `framed` (rl_run_params_framed of the run's rows) is frameRunParams(config), else -1. */
function framedMatchesConfig(config: unknown, framed: unknown): number {
  if (!Buffer.isBuffer(framed)) return -1; // "X": row by row
  const n = frameRunParams(config);
  return n >= 0 && framed.equals(frame.subarray(0, at)) ? n : -1;
}

// frameRunParams' output: `frame` up to `at` (reused from call to call).
let frame = Buffer.allocUnsafe(1 << 16);
let at = 0;

function room(n: number): void {
  if (at + n <= frame.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(frame.length * 2, at + n));
  frame.copy(bigger, 0, 0, at);
  frame = bigger;
}

/** Appends tag + u32 length + the UTF-8 of `s`; false when `s` holds a lone surrogate (no UTF-8 for it). */
function putString(tag: number, s: string): boolean {
  const n = s.length;
  room(5 + 3 * n);
  let p = at + 5;
  for (let i = 0; i < n; i++) {
    const ch = s.charCodeAt(i);
    if (ch >= 0x80) {
      if (!isWellFormed(s)) return false;
      p = at + 5 + frame.write(s, at + 5, "utf8");
      break;
    }
    frame[p++] = ch;
  }
  frame[at] = tag;
  frame.writeUInt32BE(p - at - 5, at + 1);
  at = p;
  return true;
}

/**
 * Frames into `frame` the rows `config` calls for (runParamValue of each flattened leaf, in key order) as
 * rl_run_params_framed frames stored rows, and returns how many; -1 when a key or text is not well-formed UTF-16
 * (its UTF-8 would not be the text the row path compares), so the run goes row by row. Leaves sort as UTF-16 code
 * units, the index as UTF-8 bytes: where the two orders differ the bytes differ, and the row path decides.
 */
export function frameRunParams(config: unknown): number {
  const { paths, values, order } = sortedConfigLeaves(config);
  at = 0;
  for (const i of order) {
    const v = values[i];
    paramValueInto(v, leaf);
    const { text, num } = leaf;
    if (!putString(K, paths[i]!)) return -1;
    if (text === null) {
      room(1);
      frame[at++] = N;
    } else if (!putString(T, text)) return -1;
    room(9);
    if (num === null) frame[at++] = N;
    else {
      frame[at] = D;
      frame.writeDoubleBE(num, at + 1);
      at += 9;
    }
  }
  return order.length;
}
/** frameRunParams' bytes, copied (null: row by row). */
export function runParamsFrame(config: unknown): Buffer | null {
  return frameRunParams(config) < 0 ? null : Buffer.from(frame.subarray(0, at));
}
const [K, T, N, D] = [0x6b, 0x74, 0x6e, 0x64]; // 'k', 't', 'n', 'd'
/** String.prototype.isWellFormed (ES2024, in Node 20; the project's TypeScript lib is ES2023): no lone surrogate. */
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

/** True when `text` needs no escape in JSON (no quote, backslash, control character or surrogate): its token is "text". */
function plainInJson(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch < 0x20 || ch === 0x22 || ch === 0x5c || (ch >= 0xd800 && ch <= 0xdfff)) return false;
  }
  return true;
}

/** Where the JSON string token of `text` ends if it starts at `p` in `s`, else -1. */
function stringTokenAt(s: string, p: number, text: string): number {
  if (plainInJson(text)) {
    if (s.charCodeAt(p) !== 0x22 || !s.startsWith(text, p + 1) || s.charCodeAt(p + 1 + text.length) !== 0x22) return -1;
    return p + text.length + 2;
  }
  const token = JSON.stringify(text);
  return s.startsWith(token, p) ? p + token.length : -1;
}

/**
 * The number of rows when `rows` (SQLite's `[key,text,num],...`) holds exactly the rows the flattened config calls
 * for, in key order (the same keys, texts and numbers; nothing else), else -1 (then the row path decides).
 */
export function rowsMatchConfig(config: unknown, rows: string, numbers: boolean): number {
  const { paths, values, order } = sortedConfigLeaves(config);
  const n = order.length;
  let p = 0;
  for (let i = 0; i < n; i++) {
    if (i > 0) {
      if (rows.charCodeAt(p) !== 0x2c) return -1;
      p++;
    }
    if (rows.charCodeAt(p) !== 0x5b) return -1;
    const v = values[order[i]!];
    paramValueInto(v, leaf);
    const { text, num } = leaf;
    p = stringTokenAt(rows, p + 1, paths[order[i]!]!);
    if (p < 0 || rows.charCodeAt(p) !== 0x2c) return -1;
    p++;
    if (text === null) {
      if (!rows.startsWith("null", p)) return -1;
      p += 4;
    } else {
      p = stringTokenAt(rows, p, text);
      if (p < 0) return -1;
    }
    if (rows.charCodeAt(p) !== 0x2c) return -1;
    p++;
    if (num === null) {
      if (!rows.startsWith("null", p)) return -1;
      p += 4;
    } else {
      // A number token (SQLite printed a REAL or an INTEGER): it starts with a digit or a minus sign and holds no "]".
      const first = rows.charCodeAt(p);
      if (!numbers || !(first === 0x2d || (first >= 0x30 && first <= 0x39))) return -1;
      const end = rows.indexOf("]", p);
      if (end < 0 || Number(rows.slice(p, end)) !== num) return -1;
      p = end;
    }
    if (rows.charCodeAt(p) !== 0x5d) return -1;
    p++;
  }
  return p === rows.length ? n : -1;
}

/** Checks that SQLite's JSON text of a REAL parses back to the same double, on edge cases and random bit patterns. */
export function jsonNumbersRoundTrip(sqlite: Database.Database): boolean {
  const q = sqlite.prepare("SELECT json_array(CAST(? AS REAL))").pluck();
  const values = [0, -0, 1, -1, 0.1, 0.2 + 0.1, 1 / 3, 2 ** 53 + 2, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308];
  values.push(123456789.12345679, 0.008, 1e21, 1e-7, 0.7, 0.15, 0.002, 42, 16);
  const bits = new DataView(new ArrayBuffer(8));
  for (let i = 0; i < 256; i++) {
    bits.setUint32(0, (Math.random() * 2 ** 32) >>> 0);
    bits.setUint32(4, (Math.random() * 2 ** 32) >>> 0);
    const v = bits.getFloat64(0);
    if (Number.isFinite(v)) values.push(v);
  }
  return values.every((v) => {
    const text = q.get(v) as string;
    return Number(text.slice(1, -1)) === v;
  });
}
