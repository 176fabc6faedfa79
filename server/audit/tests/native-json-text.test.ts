/**
 * rl_json_text, rl_json_sha256, rl_text_sha256 and rl_json_array (rl_audit.c): the texts SQLite builds from row
 * values to compare event payloads with (bulk-events-sql.ts, check-checkpoints-sql.ts, check-evaluations-sql.ts).
 * A TEXT answer must be exactly the text JavaScript's template builds from the value better-sqlite3 reads (so a
 * payload equal to it is one JavaScript would pass too); anything uncertain must be the zero-length BLOB, which
 * equals no payload and stays uncertain when passed on. Checked on random rows of every storage type, valid and
 * invalid UTF-8, every escape, and for the plain values the app writes it must answer (else the fast path is dead).
 */
import type Database from "better-sqlite3";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "@/trainer/data/prng";
import { nativeOff, nativeTestDb } from "./native-test-db";

let db: Database.Database;

beforeAll(() => {
  if (!nativeOff) db = nativeTestDb("CREATE TABLE v (i INTEGER PRIMARY KEY, x)");
});

afterAll(() => db?.close());

const sha256Hex = (s: string) => createHash("sha256").update(s).digest("hex");

/** A stored value, as SQL (to store any storage type, invalid UTF-8 TEXT included), and whether the app writes such. */
type Stored = { sql: string; plain: boolean };

const TEXTS = [
  "relu",
  "",
  'say "hi"',
  "a\\b",
  "line\nbreak\r\t\b\f",
  "nul\u0000x",
  "\u001f\u007f",
  "é😀",
  "\u2028",
  '{"a":[1,2]}',
  "2025-01-01T00:00:00.000Z",
];
const sqlText = (s: string) => `CAST(x'${Buffer.from(s, "utf8").toString("hex")}' AS TEXT)`;
const VALUES: Stored[] = [
  { sql: "NULL", plain: true },
  { sql: "0", plain: true },
  { sql: "-42", plain: true },
  { sql: "9007199254740991", plain: true },
  { sql: "-9007199254740991", plain: true },
  { sql: "9007199254740992", plain: false }, // beyond 2^53 - 1: JavaScript reads it rounded
  { sql: "-9223372036854775808", plain: false },
  { sql: "0.5", plain: false }, // a REAL
  { sql: "3.0", plain: false },
  { sql: "x'6869'", plain: false }, // a BLOB
  { sql: "x''", plain: false },
  ...TEXTS.map((s) => ({ sql: sqlText(s), plain: true })),
  { sql: "CAST(x'ff61' AS TEXT)", plain: false }, // invalid UTF-8 (JavaScript would read U+FFFD)
  { sql: "CAST(x'eda080' AS TEXT)", plain: false }, // an encoded surrogate
  { sql: "CAST(x'c0af' AS TEXT)", plain: false }, // overlong
  { sql: "CAST(x'61e282' AS TEXT)", plain: false }, // truncated
];

/** What the template of a key's form prints for v (as better-sqlite3 reads it), or undefined where it is no JSON text we could build. */
function printed(form: "" | "#" | "~", v: unknown): string | undefined {
  if (form === "") return JSON.stringify(v);
  if (v === null || typeof v === "number") return `${v as number | null}`;
  if (form === "~" && typeof v === "string") return v;
  return undefined; // a string printed raw where a number is printed: never what the C may claim
}

/** Stores the values and asks SQL `fn` over (key, value) pairs; returns [answer, the values as JavaScript reads them]. */
function ask(fn: string, pairs: [key: string, value: Stored][]): [unknown, unknown[]] {
  db.exec("DELETE FROM v");
  pairs.forEach(([, value], i) => db.exec(`INSERT INTO v VALUES (${i}, ${value.sql})`));
  const read = (db.prepare("SELECT x FROM v ORDER BY i").pluck().all() as unknown[]).map((x) => x);
  const args = pairs.map(([key], i) => `'${key}', (SELECT x FROM v WHERE i = ${i})`).join(", ");
  return [db.prepare(`SELECT ${fn}(${args})`).pluck().get(), read];
}

const isUncertain = (x: unknown) => Buffer.isBuffer(x) && x.length === 0;

describe.skipIf(nativeOff)("rl_json_text: a row's values printed as JavaScript prints them, or uncertain", () => {
  it("random rows of every storage type, in every key form", () => {
    const r = mulberry32(20261206);
    let answered = 0;
    for (let n = 0; n < 3000; n++) {
      const pairs: [string, Stored][] = [];
      const forms: ("" | "#" | "~")[] = [];
      for (let k = 1 + Math.floor(r() * 5); k > 0; k--) {
        const form = (["", "#", "~"] as const)[Math.floor(r() * 3)]!;
        forms.push(form);
        pairs.push([`${form}k${pairs.length}`, VALUES[Math.floor(r() * VALUES.length)]!]);
      }
      const [text, read] = ask("rl_json_text", pairs);
      const members = read.map((v, i) => [`k${i}`, printed(forms[i]!, v)] as const);
      const certain =
        pairs.every(
          ([, s], i) =>
            s.plain &&
            (forms[i] === "" || read[i] === null || (forms[i] === "#" ? typeof read[i] === "number" : typeof read[i] === "string")),
        ) && members.every(([, p]) => p !== undefined);
      if (typeof text === "string") {
        answered++;
        expect(members.every(([, p]) => p !== undefined)).toBe(true);
        expect(text).toBe(`{${members.map(([k, p]) => `"${k}":${p}`).join(",")}}`);
        const [sha] = ask("rl_json_sha256", pairs);
        expect(sha).toBe(sha256Hex(text));
      } else {
        expect(isUncertain(text), `${JSON.stringify(pairs)} gave ${String(text)}`).toBe(true);
        expect(isUncertain(ask("rl_json_sha256", pairs)[0])).toBe(true);
      }
      // Every plain value in a form that prints it is answered: the fast path is live.
      expect(typeof text === "string").toBe(certain);
    }
    expect(answered).toBeGreaterThan(300);
  });

  it("an uncertain text passed on as a value makes the outer text uncertain, never null", () => {
    const inner = "rl_json_text('a', 0.5)";
    expect(isUncertain(db.prepare(`SELECT ${inner}`).pluck().get())).toBe(true);
    for (const key of ["x", "#x", "~x"])
      expect(isUncertain(db.prepare(`SELECT rl_json_text('${key}', ${inner})`).pluck().get())).toBe(true);
    expect(db.prepare(`SELECT rl_json_text('~x', rl_json_text('a', 1))`).pluck().get()).toBe('{"x":{"a":1}}');
  });

  it("keys that need an escape, or an odd argument count, are uncertain", () => {
    for (const sql of [
      `rl_json_text('a"b', 1)`,
      `rl_json_text('a\\b', 1)`,
      "rl_json_text('é', 1)",
      "rl_json_text('#', 1)",
      "rl_json_text('a')",
      "rl_json_text(1, 1)",
    ])
      expect(isUncertain(db.prepare(`SELECT ${sql}`).pluck().get()), sql).toBe(true);
    expect(db.prepare("SELECT rl_json_text()").pluck().get()).toBe("{}");
  });
});

describe.skipIf(nativeOff)("rl_text_sha256 and rl_json_array", () => {
  it("rl_text_sha256: sha256 of a valid UTF-8 TEXT's bytes, NULL for NULL, uncertain otherwise", () => {
    for (const s of TEXTS)
      expect(
        db
          .prepare(`SELECT rl_text_sha256(${sqlText(s)})`)
          .pluck()
          .get(),
      ).toBe(sha256Hex(s));
    expect(db.prepare("SELECT rl_text_sha256(NULL)").pluck().get()).toBeNull();
    for (const sql of ["1", "0.5", "x'61'", "CAST(x'ff' AS TEXT)"])
      expect(isUncertain(db.prepare(`SELECT rl_text_sha256(${sql})`).pluck().get()), sql).toBe(true);
  });

  it("rl_json_array: TEXT elements in strictly increasing id order, else uncertain", () => {
    const arr = (rows: string) => db.prepare(`SELECT rl_json_array(e, id) FROM (${rows})`).pluck().get();
    expect(arr("SELECT 1 AS e, 1 AS id WHERE 0")).toBe("[]");
    expect(arr("SELECT '{\"a\":1}' AS e, 1 AS id UNION ALL SELECT '2', 5")).toBe('[{"a":1},2]');
    expect(isUncertain(arr("SELECT 'a' AS e, 2 AS id UNION ALL SELECT 'b', 2"))).toBe(true); // not increasing
    expect(isUncertain(arr("SELECT 'a' AS e, 2 AS id UNION ALL SELECT 'b', 1"))).toBe(true);
    expect(isUncertain(arr("SELECT 'a' AS e, '1' AS id"))).toBe(true); // id not an INTEGER
    expect(isUncertain(arr("SELECT x'' AS e, 1 AS id UNION ALL SELECT 'b', 2"))).toBe(true); // an uncertain element
    expect(isUncertain(arr("SELECT NULL AS e, 1 AS id"))).toBe(true);
  });
});

/**
 * quote_string and scan_string read eight plain bytes at a time (rl_audit.c special8) and fall back to one byte at a
 * time where a block holds anything else: long texts with every kind of byte at every offset of a block, and cut
 * short at every length, so each special byte lands both inside a block and in the byte-by-byte tail.
 */
describe.skipIf(nativeOff)("eight bytes at a time: a special byte anywhere in a long text", () => {
  // Pieces as UTF-8 bytes: plain ASCII, each escape, controls, DEL, valid multi-byte, and invalid sequences.
  const PIECES: { bytes: Buffer; valid: boolean }[] = [
    ..."abcdefghXYZ0129 _-:.{}[],".split("").map((ch) => ({ bytes: Buffer.from(ch), valid: true })),
    ...['"', "\\", "\n", "\t", "\b", "\f", "\r", "\u0000", "\u0001", "\u001f", "\u007f", "é", "€", "😀", "\u2028"].map((ch) => ({
      bytes: Buffer.from(ch, "utf8"),
      valid: true,
    })),
    ...["ff", "80", "c0af", "eda080", "e282", "f4908080"].map((hex) => ({ bytes: Buffer.from(hex, "hex"), valid: false })),
  ];
  const plainAscii = PIECES.slice(0, 25);

  /** A text of plain bytes with one special piece at byte `at`, cut to `len` bytes (never inside the piece). */
  function textWith(piece: { bytes: Buffer; valid: boolean }, at: number, len: number, r: () => number): { bytes: Buffer; valid: boolean } {
    const parts: Buffer[] = [];
    let n = 0;
    while (n < at) {
      const p = plainAscii[Math.floor(r() * plainAscii.length)]!.bytes;
      parts.push(p);
      n += p.length;
    }
    parts.push(piece.bytes);
    n += piece.bytes.length;
    while (n < len) {
      const p = plainAscii[Math.floor(r() * plainAscii.length)]!.bytes;
      parts.push(p);
      n += p.length;
    }
    return { bytes: Buffer.concat(parts), valid: piece.valid };
  }

  it("rl_json_text quotes as JSON.stringify does, or is uncertain exactly for invalid UTF-8", () => {
    const r = mulberry32(20261207);
    let checked = 0;
    for (const piece of PIECES)
      for (let at = 0; at < 20; at++)
        for (const extra of [0, 1, 7, 8, 9, 17]) {
          const { bytes, valid } = textWith(piece, at, at + piece.bytes.length + extra, r);
          const got = db
            .prepare(`SELECT rl_json_text('k', CAST(x'${bytes.toString("hex")}' AS TEXT))`)
            .pluck()
            .get();
          if (valid) expect(got).toBe(`{"k":${JSON.stringify(bytes.toString("utf8"))}}`);
          else expect(isUncertain(got), bytes.toString("hex")).toBe(true);
          checked++;
        }
    expect(checked).toBe(PIECES.length * 20 * 6);
  });

  it("rl_unless_json_object accepts JSON.stringify's texts, and never a raw control, quote or invalid byte", () => {
    const r = mulberry32(20261208);
    for (const piece of PIECES)
      for (let at = 0; at < 20; at++)
        for (const extra of [0, 1, 7, 8, 9, 17]) {
          const { bytes, valid } = textWith(piece, at, at + piece.bytes.length + extra, r);
          const unless = (payload: Buffer) =>
            db
              .prepare(`SELECT rl_unless_json_object(CAST(x'${payload.toString("hex")}' AS TEXT))`)
              .pluck()
              .get();
          if (valid) {
            // What canonicalJson prints for {"k": text}: accepted (NULL), whatever offset the escapes fall on.
            const canonical = Buffer.from(JSON.stringify({ k: bytes.toString("utf8") }), "utf8");
            expect(unless(canonical), canonical.toString()).toBeNull();
          }
          // The raw bytes inside the quotes: accepted only when they need no escape and are valid UTF-8. (Not for a
          // backslash: with the byte after it, it may be an escape canonicalJson prints.)
          if (piece.bytes.equals(Buffer.from("\\"))) continue;
          const raw = Buffer.concat([Buffer.from('{"k":"'), bytes, Buffer.from('"}')]);
          const needsNoEscape = valid && JSON.stringify(bytes.toString("utf8")) === `"${bytes.toString("utf8")}"`;
          if (needsNoEscape) expect(unless(raw), raw.toString("hex")).toBeNull();
          else expect(unless(raw), raw.toString("hex")).not.toBeNull();
        }
  });
});
