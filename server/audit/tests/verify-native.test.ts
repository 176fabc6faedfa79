/**
 * The native range check (native-range.ts over native/rl_audit.c) must give exactly the RangeScanner's result
 * (verify-range.ts, the reference) on clean, awkward and tampered logs, whole or split into ranges, and must really
 * run here (this machine has a C compiler: a silent fallback to the reference would make the comparisons vacuous).
 */
import { beforeAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { canonicalJson } from "@/contracts/canonical";
import { chainHash, eventBody, GENESIS_CHAIN_HASH, leafHash } from "../ledger";
import { auditNativeExtension, loadAuditNative, scanDatabaseRangeFast, scanDatabaseRangeNative } from "../native-range";
import { evaluationResultTextSha256, runParamValue } from "../content/records";
import { frameRunParams, runParamsFrame } from "../content/check-run-params-json";
import { flattenConfig } from "@/contracts/training-config";
import { CHECKPOINT_ACTION, scanDatabaseRange, type CheckpointCopy, type RangeSpec } from "../verify-range";
import { nativeOff } from "./native-test-db";

const DDL = `CREATE TABLE audit_events (seq integer PRIMARY KEY NOT NULL, at text NOT NULL, actor_id integer,
  actor_name text NOT NULL, role text NOT NULL, action text NOT NULL, entity_type text NOT NULL, entity_id text NOT NULL,
  payload text NOT NULL, leaf_hash text NOT NULL, chain_hash text NOT NULL)`;

type Ev = {
  at: unknown;
  actorId: unknown;
  actorName: unknown;
  role: unknown;
  action: unknown;
  entityType: unknown;
  entityId: unknown;
  payload: unknown;
};

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** Numbers of every kind a trainer writes (float32 metrics, tiny and huge magnitudes, powers of two, integers). */
function randomNumber(rand: () => number): number {
  const r = rand();
  if (r < 0.2) return Math.floor(rand() * 1e6);
  if (r < 0.4) return Math.fround(rand() * 4);
  if (r < 0.55) return (rand() - 0.5) * 10 ** Math.floor(rand() * 50 - 25);
  if (r < 0.65) return 2 ** Math.floor(rand() * 120 - 60);
  if (r < 0.75) return Math.round(rand() * 1e4) / 1e4;
  if (r < 0.8)
    return [0, 5e-324, 1e21, 1e-7, 123456789012345680000, 2 ** 53, 2 ** 53 + 2, -0.1, 0.30000000000000004][Math.floor(rand() * 9)]!;
  return rand();
}

const STRINGS = ["", "a", "é", "✓", "😀", "\u0000", "\u001f", "\b\t\n\f\r", '"q"', "back\\slash", "\u007f", "\u2028", "Z", "10", "9"];

function randomValue(rand: () => number, depth = 0, keys = ["a", "b", "runId", "metrics", "10", "9", ""]): unknown {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const r = rand();
  if (depth > 3 || r < 0.3) return pick([...STRINGS, true, false, null] as const);
  if (r < 0.55) return randomNumber(rand);
  if (r < 0.75) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1, keys));
  const obj: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 5); i > 0; i--) obj[pick(keys)] = randomValue(rand, depth + 1, keys);
  return obj;
}

function tempDb(name: string): Database.Database {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rl-native-${name}-`));
  const db = new Database(path.join(dir, "events.sqlite"));
  db.pragma("synchronous = OFF"); // test data only: thousands of one-row rewrites
  db.exec(DDL);
  return db;
}

/** Appends events with their reference leaf (null when the reference cannot hash them: a random one then) and chain. */
function append(db: Database.Database, events: Ev[]): void {
  const last = db.prepare("SELECT seq, chain_hash FROM audit_events ORDER BY seq DESC LIMIT 1").raw(true).get() as
    [number, string] | undefined;
  let seq = last?.[0] ?? 0;
  let prev = last?.[1] ?? GENESIS_CHAIN_HASH;
  const insert = db.prepare("INSERT INTO audit_events VALUES (?,?,?,?,?,?,?,?,?,?,?)");
  db.transaction(() => {
    for (const e of events) {
      seq++;
      let leaf: string;
      try {
        leaf = leafHash(eventBody({ seq, ...e } as Parameters<typeof eventBody>[0]));
      } catch {
        leaf = crypto.randomBytes(32).toString("hex");
      }
      prev = chainHash(prev, leaf);
      insert.run(seq, e.at, e.actorId, e.actorName, e.role, e.action, e.entityType, e.entityId, e.payload, leaf, prev);
    }
  })();
}

/** An ordinary event carrying `value` as canonical JSON, or `raw` as its payload text when given. */
function ordinary(i: number, value: unknown, raw?: string): Ev {
  return {
    at: new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString(),
    actorId: i % 3 === 0 ? null : 1 + (i % 5),
    actorName: "Alice Engineer",
    role: "engineer",
    action: i % 7 === 0 ? "key.rotate" : "run.create",
    entityType: "run",
    entityId: String(i),
    payload: raw ?? canonicalJson(value),
  };
}

const COPY: CheckpointCopy = { id: 1, treeSize: 40, rootHash: "ab".repeat(32), signature: "sig", at: "2025-01-01T00:00:40.000Z" };

function checkpointEvent(i: number, id: number, copy: Partial<CheckpointCopy> = COPY): Ev {
  return {
    ...ordinary(i, { checkpointId: id, treeSize: copy.treeSize, rootHash: copy.rootHash, signature: copy.signature, at: copy.at }),
    actorId: null,
    role: "system",
    action: "audit.checkpoint",
    entityType: "auditCheckpoint",
  };
}

function spec(n: number, over: Partial<RangeSpec> = {}): RangeSpec {
  const sizes: number[] = [];
  for (let s = 37; s <= n; s += 37) sizes.push(s);
  return {
    from: 1,
    to: Number.POSITIVE_INFINITY,
    prevChainHex: null,
    sizes,
    checkpoints: [COPY, { ...COPY, id: 2, treeSize: 80 }],
    coveredUpTo: Math.floor(n / 2),
    watchActions: ["key.rotate"],
    watchSeqs: [3, 5, n],
    ...over,
  };
}

/** Recomputes leaf and chain hashes from `fromSeq` on, over the rows as JavaScript reads them (the operator's rewrite). */
function rechainAsRead(db: Database.Database, fromSeq: number): void {
  let prev = db
    .prepare("SELECT chain_hash FROM audit_events WHERE seq = ?")
    .pluck()
    .get(fromSeq - 1) as string;
  const rows = db.prepare("SELECT * FROM audit_events WHERE seq >= ? ORDER BY seq").all(fromSeq) as Record<string, unknown>[];
  const update = db.prepare("UPDATE audit_events SET leaf_hash = ?, chain_hash = ? WHERE seq = ?");
  for (const r of rows) {
    const leaf = leafHash(
      eventBody({
        seq: r.seq,
        at: r.at,
        actorId: r.actor_id,
        actorName: r.actor_name,
        role: r.role,
        action: r.action,
        entityType: r.entity_type,
        entityId: r.entity_id,
        payload: r.payload,
      } as Parameters<typeof eventBody>[0]),
    );
    prev = chainHash(prev, leaf);
    update.run(leaf, prev, r.seq);
  }
}

const maxSeq = (db: Database.Database) => db.prepare("SELECT max(seq) FROM audit_events").pluck().get() as number;

/**
 * Native and reference results on the same range: the native one must exist and equal the reference, or (`declines`)
 * be null, leaving the range to the reference, which scanDatabaseRangeFast then gives.
 */
function compare(db: Database.Database, s: RangeSpec, upTo = maxSeq(db), declines = false) {
  const native = scanDatabaseRangeNative(db, s, upTo);
  const reference = scanDatabaseRange(db, s, upTo);
  if (declines) {
    expect(native).toBeNull();
    expect(scanDatabaseRangeFast(db, s, upTo)).toEqual(reference);
  } else {
    expect(native).not.toBeNull();
    expect(native).toEqual(reference);
  }
  return reference;
}

/** Split the log in three ranges as the parallel verifier does and compare each. */
function compareSplit(db: Database.Database, n: number, declines: (from: number, to: number) => boolean = () => false): void {
  const stored = db.prepare("SELECT chain_hash FROM audit_events WHERE seq = ?").pluck();
  for (const [from, to] of [
    [1, Math.floor(n / 3)],
    [Math.floor(n / 3) + 1, Math.floor((2 * n) / 3)],
    [Math.floor((2 * n) / 3) + 1, n],
  ] as const) {
    const prev = from > 1 ? (stored.get(from - 1) as string) : null;
    const s = spec(n, { from, to, prevChainHex: prev, sizes: spec(n).sizes.filter((x) => x >= from && x <= to) });
    compare(db, s, maxSeq(db), declines(from, to));
  }
}

let awkward: Ev[];
beforeAll(() => {
  const rand = seeded(2026);
  awkward = [];
  for (let i = 0; i < 1500; i++) {
    const value = randomValue(rand);
    const e = ordinary(i, value);
    awkward.push(e);
    if (i % 50 === 0) awkward.push(checkpointEvent(i, 1 + (i % 3), i % 100 === 0 ? COPY : { ...COPY, signature: "other" }));
  }
});

describe.skipIf(nativeOff)("native range check", () => {
  it("files the same action as the checkpoint event the JavaScript verifier does", () => {
    const source = fs.readFileSync(path.join(__dirname, "..", "native", "rl_audit.c"), "utf8");
    expect(source).toContain(`memcmp(action, "${CHECKPOINT_ACTION}", ${Buffer.byteLength(CHECKPOINT_ACTION)})`);
  });

  it("builds and loads on this machine", () => {
    const ext = auditNativeExtension();
    expect(ext.reason).toBe("built");
    expect(ext.path).not.toBeNull();
    const db = tempDb("load");
    expect(loadAuditNative(db)).toBe(true);
    expect(db.prepare("SELECT rl_sha256('abc')").pluck().get()).toBe(crypto.createHash("sha256").update("abc").digest("hex"));
    expect(db.prepare("SELECT rl_sha256(x'00ff')").pluck().get()).toBe(
      crypto
        .createHash("sha256")
        .update(Buffer.from([0, 255]))
        .digest("hex"),
    );
  });

  it("equals the reference on a log of random canonical payloads, whole and split, and decides most leaves itself", () => {
    const db = tempDb("canonical");
    append(db, awkward);
    const n = maxSeq(db);
    const r = compare(db, spec(n));
    expect(r.problem).toBeNull();
    expect(r.leaves).toBe(n);
    expect(r.findings.length).toBeGreaterThan(10); // checkpoint events that differ from their rows
    expect(r.watched.length).toBeGreaterThan(100);
    compareSplit(db, n);
    // Deferred leaves (left to the reference) are the exception: payloads of 16-17 digit powers of two, say.
    loadAuditNative(db);
    db.prepare("SELECT rl_range_begin(1, -1, NULL, '', 0, '', '')").get();
    db.prepare(
      "SELECT sum(rl_range_feed(seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash)) FROM audit_events",
    ).get();
    const state = JSON.parse(db.prepare("SELECT rl_range_result()").pluck().get() as string) as { deferred: number[]; leaves: number };
    expect(state.leaves).toBe(n);
    expect(state.deferred.length).toBeLessThan(n * 0.05);
  });

  it("equals the reference on re-spelt payloads and odd field values (left to the reference, still verified)", () => {
    const db = tempDb("odd");
    const rand = seeded(9);
    const events: Ev[] = [];
    for (let i = 0; i < 400; i++) {
      const value = randomValue(rand, 0, ["a", "b", "é", "\n", "😀", "\u0001", "10", "9", ""]);
      const variants = [JSON.stringify(value, null, 1) ?? "null", JSON.stringify(value) ?? "null", canonicalJson(value)];
      events.push(ordinary(i, null, variants[i % 3]));
    }
    events.push(
      { ...ordinary(1, { a: 1 }), actorId: 1.5 },
      { ...ordinary(2, { a: 1 }), actorName: 'Ma"l\\lory\n\u0001😀' },
      { ...ordinary(4, { a: 1 }), actorId: 2 ** 53 + 8 },
      { ...ordinary(5, { b: 1, a: 2 }), payload: '{"b":1,"a":2}' },
      { ...ordinary(6, {}), payload: '{"é":1,"z":2}' },
      { ...ordinary(7, {}), payload: '{"\\n":1}' },
    );
    append(db, events);
    const n = maxSeq(db);
    const r = compare(db, spec(n));
    expect(r.problem).toBeNull();
    compareSplit(db, n);
  });

  // [what, tamper, whether the reference finds a problem, the seq of an event whose range the extension leaves to it]
  const tampers: [string, (db: Database.Database, n: number) => void, boolean?, number?][] = [
    ["an edited payload", (db) => db.prepare(`UPDATE audit_events SET payload = '{"a":2}' WHERE seq = 700`).run()],
    ["an edited actor", (db) => db.prepare("UPDATE audit_events SET actor_name = 'Mallory' WHERE seq = 701").run()],
    ["a leaf hash in upper case", (db) => db.prepare("UPDATE audit_events SET leaf_hash = upper(leaf_hash) WHERE seq = 702").run()],
    ["a garbled chain hash", (db) => db.prepare("UPDATE audit_events SET chain_hash = substr(chain_hash, 2) || '0' WHERE seq = 703").run()],
    ["a deleted row", (db) => db.prepare("DELETE FROM audit_events WHERE seq = 704").run()],
    ["a deleted tail", (db, n) => db.prepare("DELETE FROM audit_events WHERE seq > ?").run(n - 5)],
    // The same bytes typed as a blob: the reference reads them as the same text (no problem); the extension defers it.
    [
      "a payload stored as a blob",
      (db) => db.prepare("UPDATE audit_events SET payload = CAST(payload AS BLOB) WHERE seq = 705").run(),
      false,
    ],
    ["a time stored as a number", (db) => db.prepare("UPDATE audit_events SET at = 5 WHERE seq = 706").run()],
    [
      "a re-spelt payload hashed as stored (not its canonical form)",
      (db) => {
        const [seq, prev] = [707, db.prepare("SELECT chain_hash FROM audit_events WHERE seq = 706").pluck().get() as string];
        const body =
          '\u0000{"action":"run.create","actorId":null,"actorName":"A","at":"t","entityId":"1","entityType":"run","payload":{"a": 1.0},"role":"r","seq":707}';
        const leaf = crypto.createHash("sha256").update(body).digest("hex");
        db.prepare(
          "UPDATE audit_events SET at='t', actor_id=NULL, actor_name='A', role='r', action='run.create', entity_type='run', entity_id='1', payload=?, leaf_hash=?, chain_hash=? WHERE seq=?",
        ).run('{"a": 1.0}', leaf, chainHash(prev, leaf), seq);
      },
    ],
    [
      "a bad deferred leaf before a broken link (the range must end before the leaf)",
      (db) => {
        db.prepare(`UPDATE audit_events SET payload = '{"b": 1}' WHERE seq = 300`).run(); // re-spelt: deferred, and wrong
        db.prepare("UPDATE audit_events SET chain_hash = ? WHERE seq = 900").run("0".repeat(64));
      },
    ],
  ];

  tampers.push([
    "a time that is not valid UTF-8, re-chained as JavaScript reads it",
    (db) => {
      db.prepare("UPDATE audit_events SET at = CAST(X'32303939FF' AS TEXT) WHERE seq = 500").run();
      rechainAsRead(db, 500);
    },
    false, // a rewritten history: only an anchor catches it (threat-model.test.ts)
    500, // a time the extension cannot order as JavaScript does
  ]);

  it.each(tampers)("equals the reference on %s, whole and split", (_name, fn, detected = true, declinedAt) => {
    const db = tempDb("tamper");
    append(db, awkward.slice(0, 1000));
    const n = maxSeq(db);
    fn(db, n);
    const r = compare(db, spec(n, { to: n }), n, declinedAt !== undefined);
    expect(r.problem !== null).toBe(detected);
    compareSplit(db, n, (from, to) => declinedAt !== undefined && from <= declinedAt && declinedAt <= to);
  });

  it("judges number spellings as the reference does (a number hashed as spelt is accepted only when canonical)", () => {
    const db = tempDb("numbers");
    const rand = seeded(11);
    const digits = (k: number) => Array.from({ length: k }, () => Math.floor(rand() * 10)).join("");
    const tokens = ["0", "-0", "0.0", "1.", "01", "1.50", "0.000001", "0.0000001", "1e21", "1e+21", "1E+21", "1.5e-7", "5e-324", "2e-323"];
    tokens.push("123456789012345680000", "1.7976931348623157e+308", "9007199254740993", "0.30000000000000004", "0.5", "0.25");
    for (let k = 0; k < 600; k++) {
      const sign = rand() < 0.3 ? "-" : "";
      const int = rand() < 0.4 ? "0" : digits(1 + Math.floor(rand() * 17));
      const frac = rand() < 0.3 ? "" : `.${"0".repeat(Math.floor(rand() * 8))}${digits(Math.floor(rand() * 17))}`;
      const exp = rand() < 0.2 ? `e${rand() < 0.5 ? "-" : "+"}${Math.floor(rand() * 30)}` : "";
      tokens.push(`${sign}${int}${frac}${exp}`);
      tokens.push(String(randomNumber(rand)));
    }
    const insert = db.prepare("INSERT INTO audit_events VALUES (1, 't', NULL, 'A', 'r', 'x', 'e', '1', ?, ?, ?)");
    let accepted = 0;
    for (const tok of tokens) {
      const payload = `{"a":[${tok}]}`;
      // The leaf as if the text were canonical: right exactly when it is.
      const body = `\u0000{"action":"x","actorId":null,"actorName":"A","at":"t","entityId":"1","entityType":"e","payload":${payload},"role":"r","seq":1}`;
      const leaf = crypto.createHash("sha256").update(body).digest("hex");
      db.prepare("DELETE FROM audit_events").run();
      insert.run(payload, leaf, chainHash(GENESIS_CHAIN_HASH, leaf));
      const r = compare(db, spec(1, { sizes: [1], watchSeqs: [] }));
      if (r.problem === null) accepted++;
    }
    expect(accepted).toBeGreaterThan(400);
  });

  it("computes an evaluation's metrics digest as records.ts does, or leaves it to JavaScript (NULL)", () => {
    const db = tempDb("eval-digest");
    loadAuditNative(db);
    const digest = db.prepare("SELECT rl_member_inserted_sha256(?, 'confusion', ?)").pluck();
    const rand = seeded(5);
    const keys = ["accuracy", "conf", "confusion0", "confusio", "zeta", "", "task", "é", 'a"b', "{", "confusion"];
    let decided = 0;
    for (let i = 0; i < 800; i++) {
      const metrics: Record<string, unknown> = {};
      for (let k = Math.floor(rand() * 5); k > 0; k--) metrics[keys[Math.floor(rand() * keys.length)]!] = randomValue(rand, 2);
      const text = canonicalJson(metrics);
      const confusion =
        rand() < 0.2
          ? null
          : canonicalJson({
              labels: ["a,}", 'b"'],
              matrix: [
                [1, 0],
                [0, 1],
              ],
            });
      const native = digest.get(text, confusion) as string | null;
      if (native === null) continue;
      decided++;
      expect(native, `${text} + ${confusion}`).toBe(evaluationResultTextSha256(text, confusion));
    }
    expect(decided).toBeGreaterThan(500);
    expect(digest.get("{}", "[1]")).toBe(evaluationResultTextSha256("{}", "[1]"));
    expect(digest.get('{"a\\"b":1}', "[1]")).toBeNull(); // an escaped key: JavaScript decides
    expect(digest.get('{"a":1', "[1]")).toBeNull(); // not an object's text
    expect(db.prepare("SELECT rl_member_inserted_sha256(1, 'confusion', NULL)").pluck().get()).toBeNull();
  });

  it("frames a run's run_params rows as frameRunParams does, or leaves them to JavaScript ('X')", () => {
    const db = tempDb("run-params-framed");
    expect(loadAuditNative(db)).toBe(true);
    db.exec("CREATE TABLE p (run_id INTEGER, key, value_text, value_num)");
    const insert = db.prepare("INSERT INTO p VALUES (?, ?, ?, ?)");
    const framed = db
      .prepare("SELECT rl_run_params_framed(key, value_text, value_num) FROM (SELECT * FROM p WHERE run_id = ? ORDER BY rowid)")
      .pluck();
    const config = {
      training: { learningRate: 0.02, epochs: 5, shuffle: true },
      model: { name: "é😀", layers: [{ units: 8 }], note: null },
    };
    const rows = Object.entries(flattenConfig(config))
      .map(([k, v]) => [k, runParamValue(v)] as const)
      .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b))); // the index's order: UTF-8 bytes
    for (const [k, v] of rows) insert.run(1, k, v.valueText, v.valueNum);
    expect(frameRunParams(config)).toBe(rows.length);
    expect(framed.get(1)).toEqual(runParamsFrame(config));
    for (const [k, v] of rows.reverse()) insert.run(2, k, v.valueText, v.valueNum); // keys not ascending
    expect(framed.get(2)).toBe("X");
    insert.run(3, "a", Buffer.from("x"), null); // a BLOB text
    expect(framed.get(3)).toBe("X");
    insert.run(4, "a", null, 2n ** 53n + 1n); // an INTEGER JavaScript would read rounded
    expect(framed.get(4)).toBe("X");
    insert.run(5, 7, null, 1); // a key that is not TEXT, on the first row
    expect(framed.get(5)).toBe("X");
    expect(framed.get(6)).toBeNull(); // no rows
    insert.run(7, "", "t", null);
    insert.run(7, "a", null, -0.5);
    expect(framed.get(7)).toEqual(
      Buffer.from([0x6b, 0, 0, 0, 0, 0x74, 0, 0, 0, 1, 0x74, 0x6e, 0x6b, 0, 0, 0, 1, 0x61, 0x6e, 0x64, 0xbf, 0xe0, 0, 0, 0, 0, 0, 0]),
    );
    expect(frameRunParams({ a: "\ud800" })).toBe(-1); // a lone surrogate has no UTF-8: row by row
  });
});
