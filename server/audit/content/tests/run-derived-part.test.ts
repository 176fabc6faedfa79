/**
 * The content worker's run-derived part (run-derived-part.ts checkRunDerivedPartStreaming: each run's run_params
 * rows compared as SQLite's JSON text, check-run-params-json.ts) gives exactly checkRunDerivedPart's result (every
 * finding, its order, the facts counted, notCovered, whether it stopped) on tampered copies of a bench database:
 * run_params numbers one ulp off, stored as text, as INTEGER, texts and keys as BLOBs (plain bytes, which json_array
 * refuses, and JSONB, which it would read as the same text), NULs, rows added, removed and renamed, seeds, configs
 * unparsable or replaced, runs deleted, metric points, summaries and rollups edited, tables and columns missing; and
 * on random configs with awkward keys and values (quotes, backslashes, control characters, astral characters, dots,
 * "__proto__", -0, 1e21, 5e-324), clean and tampered, where most clean runs must pass on the JSON text alone.
 */
import Database from "better-sqlite3";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { flattenConfig } from "@/contracts/training-config";
import { runParamValue } from "../records";
import { buildBenchContentDatabase } from "../bench-content";
import { checkRunDerivedPart } from "../verify-content";
import { checkRunDerivedPartStreaming } from "../run-derived-part";
import { checkRunDerivedValuesInDatabase, type RunParamsVia } from "../check-run-params-json";
import { ContentChecker } from "../checker";
import type { Created } from "../creations";
import { auditNativeExtension } from "../../native-range";
import { nextDouble } from "../../tests/next-double";

/** The framed path needs the native extension (built with the machine's cc; verify-native.test.ts requires it). */
const native = auditNativeExtension().path !== null;

const RUNS = 40;
let baseDir: string;
const open: { dir: string; db: Database.Database }[] = [];

beforeAll(() => {
  baseDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-run-derived-"));
  buildBenchContentDatabase(baseDir, RUNS * 7, { checkpointsPerRun: 2, weightFiles: 4 });
}, 120_000);

afterAll(() => {
  for (const o of open) {
    o.db.close();
    fs.rmSync(o.dir, { recursive: true, force: true });
  }
  fs.rmSync(baseDir, { recursive: true, force: true });
});

/** A tamperable copy of the bench database (triggers dropped, foreign keys off). */
function copy(): Database.Database {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-run-derived-copy-"));
  fs.copyFileSync(path.join(baseDir, "runledger.sqlite"), path.join(dir, "runledger.sqlite"));
  const db = new Database(path.join(dir, "runledger.sqlite"));
  open.push({ dir, db });
  db.pragma("foreign_keys = OFF");
  for (const t of db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").pluck().all() as string[])
    db.exec(`DROP TRIGGER "${t}"`);
  return db;
}

/** Both parts on one read snapshot: the streaming one must equal the reference. */
function expectSameAsReference(db: Database.Database): ReturnType<typeof checkRunDerivedPart> {
  const n = db.prepare("SELECT max(seq) FROM audit_events").pluck().get() as number;
  db.prepare("BEGIN").run();
  try {
    const reference = checkRunDerivedPart(db, n);
    expect(checkRunDerivedPartStreaming(db, n, "json")).toEqual(reference);
    if (native) expect(checkRunDerivedPartStreaming(db, n, "framed")).toEqual(reference);
    if (native) expect(checkRunDerivedPartStreaming(db, n, "native")).toEqual(reference);
    if (native) expect(checkRunDerivedPartStreaming(db, n, "native-indexed")).toEqual(reference);
    return reference;
  } finally {
    db.prepare("COMMIT").run();
  }
}

const fields = (r: ReturnType<typeof checkRunDerivedPart>) => r.state.problems.map((p) => `${p.entityId} ${p.field}`);

describe("the streaming run-derived part gives checkRunDerivedPart's result", () => {
  it("on the clean database", () => {
    const r = expectSameAsReference(copy());
    expect(r.state.problems).toEqual([]);
    expect(r.state.checked).toBeGreaterThan(RUNS * 26);
  });

  it("on the clean database, every run's config is matched inside SQLite", () => {
    if (!native) return;
    const db = copy();
    const runs = db.prepare("SELECT count(*) FROM runs").pluck().get() as number;
    expect(runs).toBeGreaterThanOrEqual(RUNS);
    expect(checkRunDerived(db, "native")).toEqual({ matchedRuns: runs, native: runs, collected: true });
    expect(checkRunDerived(db, "native-indexed")).toEqual({ matchedRuns: runs, native: runs, collected: false });
  });

  it("reads run_params in one pass only when each run's rows come as one block of the table", () => {
    if (!native) return;
    // A row of run 8 written after every other run's (a new rowid): its rows are no longer one block, so the pass
    // cannot prove it holds all of them, and the rows are read through the index; the extra row is found either way.
    const db = copy();
    db.exec("INSERT INTO run_params (run_id, key, value_text, value_num) VALUES (8, 'training.extra', 'x', NULL)");
    expect(checkRunDerived(db, "native").collected).toBe(false);
    expect(fields(expectSameAsReference(db))).toEqual(["8 run_params training.extra"]);
    // A row added to the last run stays in its block: the pass holds it, and it still differs from the config.
    const last = copy();
    const lastRun = last.prepare("SELECT max(run_id) FROM run_params").pluck().get() as number;
    last.prepare("INSERT INTO run_params (run_id, key, value_text, value_num) VALUES (?, 'training.extra', 'x', NULL)").run(lastRun);
    const runs = last.prepare("SELECT count(*) FROM runs").pluck().get() as number;
    expect(checkRunDerived(last, "native")).toMatchObject({ collected: true, native: runs - 1 });
    expect(fields(expectSameAsReference(last))).toEqual([`${lastRun} run_params training.extra`]);
  });

  it("reads run_params through the index when the one pass would keep more than its bound", () => {
    if (!native) return;
    const db = copy();
    const runs = db.prepare("SELECT count(*) FROM runs").pluck().get() as number;
    // Under the bound: one pass; over it (a few kilobytes here): the index, with the same runs matched in SQLite.
    expect(checkRunDerived(db, "native", 10_000_000)).toEqual({ matchedRuns: runs, native: runs, collected: true });
    expect(checkRunDerived(db, "native", 4096)).toEqual({ matchedRuns: runs, native: runs, collected: false });
  });

  const cases: [string, string[], string[]][] = [
    ["number one ulp off", [], ["3 run_params training.learningRate"]],
    [
      "number stored as text",
      ["UPDATE run_params SET value_num = 'n' || value_num WHERE run_id = 3 AND key = 'training.learningRate'"],
      ["3 run_params training.learningRate"],
    ],
    [
      "number stored as a blob",
      ["UPDATE run_params SET value_num = CAST(CAST(value_num AS TEXT) AS BLOB) WHERE run_id = 3 AND key = 'training.epochs'"],
      ["3 run_params training.epochs"],
    ],
    [
      "text stored as a blob",
      ["UPDATE run_params SET value_text = CAST(value_text AS BLOB) WHERE run_id = 3 AND key = 'training.optimizer.name'"],
      ["3 run_params training.optimizer.name"],
    ],
    [
      "text stored as JSONB (json_array would read the same text)",
      ["UPDATE run_params SET value_text = jsonb(json_quote(value_text)) WHERE run_id = 3 AND key = 'training.optimizer.name'"],
      ["3 run_params training.optimizer.name"],
    ],
    [
      "key stored as JSONB",
      ["UPDATE run_params SET key = jsonb(json_quote(key)) WHERE run_id = 4 AND key = 'data.task'"],
      ["4 run_params data.task"],
    ],
    [
      "key stored as a blob",
      ["UPDATE run_params SET key = CAST(key AS BLOB) WHERE run_id = 4 AND key = 'data.task'"],
      ["4 run_params data.task"],
    ],
    [
      "number stored as JSONB",
      ["UPDATE run_params SET value_num = jsonb(value_num) WHERE run_id = 5 AND key = 'training.batchSize'"],
      ["5 run_params training.batchSize"],
    ],
    [
      "text with a NUL appended",
      ["UPDATE run_params SET value_text = value_text || char(0) || 'x' WHERE run_id = 3 AND key = 'training.optimizer.name'"],
      ["3 run_params training.optimizer.name"],
    ],
    [
      "text moved to the number column",
      ["UPDATE run_params SET value_num = value_text, value_text = NULL WHERE run_id = 6 AND key = 'data.normalization'"],
      ["6 run_params data.normalization"],
    ],
    [
      "number as a text",
      ["UPDATE run_params SET value_text = CAST(value_num AS TEXT), value_num = NULL WHERE run_id = 6 AND key = 'training.epochs'"],
      ["6 run_params training.epochs"],
    ],
    [
      "boolean's number cleared",
      ["UPDATE run_params SET value_num = NULL WHERE run_id = 7 AND key = 'training.shuffle'"],
      ["7 run_params training.shuffle"],
    ],
    ["row deleted", ["DELETE FROM run_params WHERE run_id = 8 AND key = 'training.epochs'"], ["8 run_params training.epochs"]],
    [
      "row added",
      ["INSERT INTO run_params (run_id, key, value_text, value_num) VALUES (8, 'training.extra', 'x', NULL)"],
      ["8 run_params training.extra"],
    ],
    [
      "row added with no value (an undefined config value: not a difference)",
      ["INSERT INTO run_params (run_id, key, value_text, value_num) VALUES (9, 'training.undefined', NULL, NULL)"],
      [],
    ],
    [
      "key renamed",
      ["UPDATE run_params SET key = 'training.epochz' WHERE run_id = 9 AND key = 'training.epochs'"],
      ["9 run_params training.epochz", "9 run_params training.epochs"],
    ],
    [
      "every row of a run deleted (judged after the others)",
      ["DELETE FROM run_params WHERE run_id = 2", "UPDATE runs SET seed = 99 WHERE id = 2", "UPDATE runs SET seed = 98 WHERE id = 30"],
      ["30 seed", "2 seed", "2 run_params data.cleaning"],
    ],
    [
      "rows of a run that does not exist",
      ["INSERT INTO run_params (run_id, key, value_text, value_num) VALUES (9999, 'a', 'b', NULL)"],
      [],
    ],
    ["seed edited", ["UPDATE runs SET seed = seed + 1 WHERE id = 11"], ["11 seed"]],
    ["config unparsable", ["UPDATE runs SET config_json = '{' WHERE id = 12"], []],
    [
      "config of the tracking API with run_params rows",
      [`UPDATE runs SET config_json = '{"api":"mlflow"}' WHERE id = 13`],
      ["13 seed", "13 run_params data.cleaning"],
    ],
    [
      "config changed (learning rate)",
      ["UPDATE runs SET config_json = replace(config_json, '\"learningRate\":0.004', '\"learningRate\":0.5') WHERE id = 3"],
      ["3 run_params training.learningRate"],
    ],
    ["run row deleted", ["DELETE FROM runs WHERE id = 14"], []],
    [
      "run.create event not an object (the run is not judged)",
      ["UPDATE audit_events SET payload = '[]' WHERE action = 'run.create' AND entity_id = '15'", "UPDATE runs SET seed = 0 WHERE id = 15"],
      [],
    ],
    [
      "run.create event an object written with a space (not canonical: parsed, still judged)",
      [
        "UPDATE audit_events SET payload = ' ' || payload WHERE action = 'run.create' AND entity_id = '17'",
        "UPDATE runs SET seed = 0 WHERE id = 17",
      ],
      ["17 seed"],
    ],
    [
      "number as an INTEGER out of a double's range",
      ["UPDATE run_params SET value_num = 9007199254740993 WHERE run_id = 16 AND key = 'training.batchSize'"],
      ["16 run_params training.batchSize"],
    ],
    [
      "metric point, summary and rollup edited",
      [
        "UPDATE metrics SET value = value * 0.5 WHERE run_id = 17",
        "UPDATE metric_summaries SET max = max + 1 WHERE run_id = 18",
        "UPDATE metric_rollups SET min_value = min_value - 1 WHERE run_id = 19",
      ],
      ["17 metric points (epoch, key, step, value)"],
    ],
    [
      "metric summary deleted, rollup added",
      [
        "DELETE FROM metric_summaries WHERE run_id = 20",
        "INSERT INTO metric_rollups SELECT run_id, key, 7, first_step, last_step, min_step, min_value, max_step, max_value, count FROM metric_rollups WHERE run_id = 21",
      ],
      [],
    ],
    ["run_params table missing", ["DROP TABLE run_params"], ["* check"]],
    ["metric_rollups table missing", ["UPDATE runs SET seed = 7 WHERE id = 22", "DROP TABLE metric_rollups"], ["22 seed", "* check"]],
    ["metrics table missing", ["UPDATE runs SET seed = 7 WHERE id = 22", "DROP TABLE metrics"], ["22 seed", "* check"]],
    ["seed column missing", ["ALTER TABLE runs DROP COLUMN seed"], ["* check"]],
  ];
  it.each(cases)("%s", (name, statements, expected) => {
    const db = copy();
    if (name === "number one ulp off") {
      const lr = db.prepare("SELECT value_num FROM run_params WHERE run_id = 3 AND key = 'training.learningRate'").pluck().get() as number;
      db.prepare("UPDATE run_params SET value_num = ? WHERE run_id = 3 AND key = 'training.learningRate'").run(nextDouble(lr));
    }
    for (const s of statements) db.exec(s);
    const r = expectSameAsReference(db);
    for (const f of expected) expect(fields(r)).toContain(f);
    if (expected.length === 0 && !name.includes("metric")) expect(r.state.problems).toEqual([]);
  });
});

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

const KEYS = [
  "a",
  "b",
  "a-b",
  "a.b",
  "",
  "__proto__",
  "10",
  "2",
  "layers",
  'q"uote',
  "back\\slash",
  "nul\u0000",
  "tab\t",
  "é",
  "😀",
  "[",
  ",",
  "null",
  "'",
];
const NUMBERS = [0, -0, 1, -1, 0.1, 0.30000000000000004, 1e21, 5e-324, 123456789.12345679, 1e-7, 16, 2 ** 53 + 2, 42];
const TEXTS = ["relu", "", 'say "hi"', "a\\b", "line\nbreak", "nul\u0000x", "\u001f", "é😀", "[1]", "null", "0.1"];

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

/** A config as JSON.parse gives it (so "__proto__" is an own key), mostly with a training seed. */
function randomConfig(r: () => number): unknown {
  const o: Record<string, unknown> = {};
  const n = 1 + Math.floor(r() * 6);
  for (let i = 0; i < n; i++) o[KEYS[Math.floor(r() * KEYS.length)]!] = randomValue(r, 1);
  if (r() < 0.7) o.training = { seed: Math.floor(r() * 5), lr: NUMBERS[Math.floor(r() * NUMBERS.length)] };
  if (r() < 0.03) return r() < 0.5 ? {} : [1, { a: 2 }];
  return JSON.parse(JSON.stringify(o)) as unknown;
}

type Row = [key: unknown, text: unknown, num: unknown];

function tamper(r: () => number, rows: Row[]): Row[] {
  const out = rows.map((x) => [...x] as Row);
  const i = Math.floor(r() * Math.max(1, out.length));
  const kind = Math.floor(r() * 8);
  if (kind === 0) out.splice(i, 1);
  else if (kind === 1) out.push(["zz.extra", null, 1]);
  else if (out[i] && kind === 2 && typeof out[i][2] === "number") out[i][2] = nextDouble(out[i][2] as number);
  else if (out[i] && kind === 3) out[i][0] = `${String(out[i][0])}x`;
  else if (out[i] && kind === 4 && typeof out[i][1] === "string") out[i][1] = `${String(out[i][1])}"`;
  else if (out[i] && kind === 5 && typeof out[i][1] === "string") out[i][1] = Buffer.from(out[i][1] as string);
  else if (out[i] && kind === 6) out[i][2] = out[i][2] === null ? 0 : null;
  else if (out[i] && kind === 7) out[i][1] = out[i][1] === null ? "" : null;
  return out;
}

describe("random configs with awkward keys and values, clean and tampered", () => {
  it("the streaming part equals the reference, and most clean runs pass on the JSON text", () => {
    const db = copy();
    const r = rng(20261205);
    db.exec("DELETE FROM run_params");
    const insert = db.prepare("INSERT OR IGNORE INTO run_params VALUES (?, ?, ?, ?)");
    const setRun = db.prepare("UPDATE runs SET config_json = ?, seed = ? WHERE id = ?");
    // Every run's config is replaced several times over: RUNS runs per round, a fresh comparison each round.
    let clean = 0,
      tampered = 0,
      matched = 0,
      framedMatched = 0,
      nativeMatched = 0,
      problems = 0;
    for (let round = 0; round < 25; round++) {
      db.exec("DELETE FROM run_params");
      const cleanRuns = new Set<number>();
      for (let run = 1; run <= RUNS; run++) {
        const config = randomConfig(r);
        const seed = (config as { training?: { seed?: number } }).training?.seed ?? null;
        setRun.run(JSON.stringify(config), r() < 0.05 ? 9 : (seed ?? 0), run);
        let rows: Row[] = Object.entries(flattenConfig(config)).map(([k, v]) => {
          const p = runParamValue(v);
          return [k, p.valueText, p.valueNum];
        });
        if (r() < 0.5) {
          rows = tamper(r, rows);
          tampered++;
        } else cleanRuns.add(run);
        for (const [k, t, n] of rows) insert.run(run, k, t, n);
      }
      clean += cleanRuns.size;
      const reference = expectSameAsReference(db);
      problems += reference.state.problems.length;
      matched += matchedRuns(db, "json");
      if (native) framedMatched += matchedRuns(db, "framed");
      if (native) nativeMatched += matchedRuns(db, "native");
      if (native) expect(matchedRuns(db, "native-indexed")).toBe(matchedRuns(db, "native"));
    }
    expect(tampered).toBeGreaterThan(300);
    expect(problems).toBeGreaterThan(300);
    // Configs whose keys JSON must escape (or flattenConfig drops) still pass on the text when their rows are clean.
    expect(matched).toBeGreaterThan(clean * 0.6);
    // The framed rows pass at least what the JSON text does (keys and texts framed as their UTF-8 bytes, unescaped).
    if (native) expect(framedMatched).toBeGreaterThanOrEqual(matched);
    // Those SQLite leaves to JavaScript are compared as "framed" compares them: the same runs pass.
    if (native) expect(nativeMatched).toBe(framedMatched);
  });
});

/** How many runs checkRunDerivedValuesInDatabase passed on the JSON text or framed rows alone (facts counted without the row path). */
function matchedRuns(db: Database.Database, via: RunParamsVia): number {
  return checkRunDerived(db, via).matchedRuns;
}

/** checkRunDerivedValuesInDatabase's counts with every run created. */
function checkRunDerived(
  db: Database.Database,
  via: RunParamsVia,
  collectMaxBytes?: number,
): ReturnType<typeof checkRunDerivedValuesInDatabase> {
  const created: Created = new Map();
  for (const id of db.prepare("SELECT id FROM runs").pluck().all() as number[])
    created.set(id, { ev: { seq: id, action: "run.create", actorId: 1, entityId: String(id), payload: "" }, payload: null });
  const c = new ContentChecker(false);
  return checkRunDerivedValuesInDatabase(c, db, created, via, collectMaxBytes);
}
