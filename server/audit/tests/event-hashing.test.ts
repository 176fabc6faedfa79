/**
 * The verifier's fast leaf-hash path must agree exactly with ledger.ts's reference (leafHash(eventBody(row)))
 * and the rolling chain hasher with ledger.ts's chainHash, on ordinary and on awkward rows.
 */
import { describe, expect, it } from "vitest";
import crypto from "node:crypto";
import { canonicalJson } from "@/contracts/canonical";
import { chainHash, eventBody, GENESIS_CHAIN_HASH, leafHash } from "../ledger";
import { ChainHasher, fastCanonicalEventBody, isCanonicalJsonText, recomputeLeafHash, type EventFields } from "../event-hashing";

function reference(e: EventFields): string | null {
  try {
    return leafHash(eventBody(e));
  } catch {
    return null;
  }
}

function row(payload: string, over: Partial<EventFields> = {}): EventFields {
  return {
    seq: 7,
    at: "2025-01-01T00:00:00.000Z",
    actorId: 3,
    actorName: "Alice",
    role: "engineer",
    action: "run.create",
    entityType: "run",
    entityId: "12",
    payload,
    ...over,
  };
}

/** A small seeded generator of arbitrary JSON values, including awkward strings and numbers. */
function randomValue(rand: () => number, depth = 0): unknown {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const strings = [
    "",
    "a",
    "é",
    "✓",
    "😀",
    "\u0000",
    "\u001f",
    "\b\t\n\f\r",
    '"quote"',
    "back\\slash",
    "\u007f",
    "\u2028",
    "z",
    "Z",
    "10",
    "9",
    "__proto__",
    "\ud800",
  ];
  const numbers = [0, -0, 1, -1, 1.5, 0.1, 1e21, 1e-7, 123456789012345680000, 5e-324, 2 ** 53, -3.25];
  const r = rand();
  if (depth > 3 || r < 0.35) return pick([...strings, ...numbers, true, false, null] as const);
  if (r < 0.6) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1));
  const obj: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 5); i > 0; i--) obj[pick(strings)] = randomValue(rand, depth + 1);
  return obj;
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe("fast leaf hash equals the reference", () => {
  it("uses the fast path for ordinary rows and gets the same hash", () => {
    const e = row(canonicalJson({ after: { lr: 0.001, name: "ünï ✓" }, before: null, n: [1, 2.5, 1e21] }));
    expect(fastCanonicalEventBody(e)).toBe(canonicalJson(eventBody(e)));
    expect(recomputeLeafHash(e)).toBe(reference(e));
    expect(recomputeLeafHash({ ...e, actorId: null })).toBe(reference({ ...e, actorId: null }));
  });

  it("agrees on 3,000 random payloads, canonical or re-spelt", () => {
    const rand = seeded(42);
    let fastUsed = 0;
    for (let i = 0; i < 3000; i++) {
      const value = randomValue(rand);
      let text: string;
      try {
        text = canonicalJson(value);
      } catch {
        text = JSON.stringify(value) ?? "null"; // lone surrogates: JCS refuses them
      }
      const variants = [text, JSON.stringify(value) ?? "null", JSON.stringify(value, null, 1) ?? "null"];
      for (const payload of variants) {
        const e = row(payload, { seq: i });
        const fast = fastCanonicalEventBody(e);
        if (fast !== undefined) {
          fastUsed++;
          expect(fast).toBe(canonicalJson(eventBody(e)));
        }
        expect(recomputeLeafHash(e)).toBe(reference(e));
      }
    }
    expect(fastUsed).toBeGreaterThan(2500);
  });

  it.each([
    ["whitespace", '{"a": 1}'],
    ["unsorted keys", '{"b":1,"a":2}'],
    ["duplicate keys", '{"a":1,"a":2}'],
    ["integer-like keys in numeric order", '{"9":1,"10":2}'],
    ["non-canonical number", '{"a":1.0}'],
    ["exponent spelling", '{"a":1E21}'],
    ["negative zero", "[-0]"],
    ["big integer", "[12345678901234567890]"],
    ["slash escape", '["a\\/b"]'],
    ["unicode escape of a printable", '["\\u0041"]'],
    ["upper-case unicode escape", '["\\u001F"]'],
    ["long form of a short escape", '["\\u000a"]'],
    ["lone surrogate escape", '["\\ud800"]'],
    ["not JSON", "{oops"],
    ["empty", ""],
  ])("refuses the fast path for %s and still matches the reference", (_name, payload) => {
    expect(isCanonicalJsonText(payload)).toBe(false);
    const e = row(payload);
    expect(fastCanonicalEventBody(e)).toBeUndefined();
    expect(recomputeLeafHash(e)).toBe(reference(e));
  });

  it("accepts canonical texts", () => {
    for (const v of [{}, [], "", 0, -1.5, 1e21, { "": [null, true, false], a: { b: "\u0001\n" }, é: "😀" }]) {
      expect(isCanonicalJsonText(canonicalJson(v))).toBe(true);
    }
  });

  it("judges number spellings exactly as the ECMAScript round trip does (fast paths for integers and plain decimals)", () => {
    const rand = seeded(7);
    const digits = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 10)).join("");
    const tokens = [
      "0",
      "-0",
      "0.0",
      "1.",
      ".5",
      "01",
      "1.50",
      "0.000001",
      "0.0000001",
      "-0.000001",
      "123456789012345",
      "1234567890123456",
      "0.123456789012345",
      "0.1234567890123456",
      "9007199254740993",
      "1e21",
      "1E5",
      "1.5e-7",
      "100.5",
      "-12.25",
      "0.30000000000000004",
    ];
    for (let k = 0; k < 4000; k++) {
      const sign = rand() < 0.3 ? "-" : "";
      const int = rand() < 0.4 ? "0" : digits(1 + Math.floor(rand() * 17));
      const frac = rand() < 0.3 ? "" : `.${"0".repeat(Math.floor(rand() * 8))}${digits(Math.floor(rand() * 17))}`;
      tokens.push(`${sign}${int}${frac}`);
    }
    for (const tok of tokens) {
      const n = Number(tok);
      const expected = tok.length > 0 && Number.isFinite(n) && String(n) === tok && JSON.parse(`[${tok}]`) !== undefined;
      let parses = true;
      try {
        JSON.parse(tok);
      } catch {
        parses = false;
      }
      expect(isCanonicalJsonText(`{"a":[${tok}]}`), tok).toBe(expected && parses);
    }
  });

  it("falls back for odd field types and lone surrogates in top-level fields", () => {
    const p = canonicalJson({ a: 1 });
    for (const over of [
      { actorId: 1.5 },
      { actorName: "\ud800x" },
      { seq: Number.POSITIVE_INFINITY },
      { entityId: 12 as unknown as string },
      { role: true as unknown as string },
    ]) {
      const e = row(p, over as Partial<EventFields>);
      expect(recomputeLeafHash(e)).toBe(reference(e));
    }
    expect(fastCanonicalEventBody(row(p, { actorName: "\ud800x" }))).toBeUndefined();
    expect(recomputeLeafHash(row("{oops"))).toBeNull();
  });
});

describe("chain hasher equals ledger.ts chainHash", () => {
  it("follows a chain of 200 links from the genesis hash", () => {
    const hasher = new ChainHasher();
    let prev = GENESIS_CHAIN_HASH;
    for (let i = 0; i < 200; i++) {
      const leaf = crypto.createHash("sha256").update(String(i)).digest("hex");
      const next = hasher.next(leaf);
      expect(next).toBe(chainHash(prev, leaf));
      hasher.advance(next);
      prev = next;
    }
    hasher.reset();
    const leaf = "ab".repeat(32);
    expect(hasher.next(leaf)).toBe(chainHash(GENESIS_CHAIN_HASH, leaf));
  });
});
