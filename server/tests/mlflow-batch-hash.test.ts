/**
 * The run.log event's batchSha256 is the sha256 of the canonical JSON (RFC 8785) of the parsed batch. log-batch
 * writes that JSON with a serializer for the batch's fixed shape (server/mlflow/logging.ts batchCanonicalJson): it
 * must give exactly the bytes of the generic canonicalJson, for any numbers and strings a batch can hold.
 */
import { describe, expect, it } from "vitest";
import { canonicalJson } from "@/contracts/canonical";
import { batchCanonicalJson, type Batch } from "@/server/mlflow/logging";

const NUMBERS = [0, -0, 1, -1, 0.1, 1 / 3, -2.5e-7, 1e21, 1e-7, 123456789012345, Number.MAX_SAFE_INTEGER, 5e-324, 1.7976931348623157e308];
const STRINGS = [
  "",
  "loss",
  "a b/c:d-e.f_g",
  'quote " and \\ backslash',
  "tab\tnew\nline\u0001",
  "é ü 中文 😀",
  "\u2028\u2029",
  "\\ud800 as text",
];

function randomBatch(seed: number): Batch {
  let x = seed;
  const rnd = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  return {
    metrics: Array.from({ length: 1 + Math.floor(rnd() * 50) }, () => ({
      key: pick(STRINGS),
      value: rnd() < 0.5 ? pick(NUMBERS) : (rnd() - 0.5) * 10 ** Math.floor(rnd() * 40 - 20),
      timestamp: Math.floor(rnd() * 2e12),
      step: rnd() < 0.2 ? -Math.floor(rnd() * 100) : Math.floor(rnd() * 1e9),
    })),
    params: Array.from({ length: Math.floor(rnd() * 5) }, () => ({ key: pick(STRINGS), value: pick(STRINGS) })),
    tags: Array.from({ length: Math.floor(rnd() * 5) }, () => ({ key: pick(STRINGS), value: pick(STRINGS) + pick(STRINGS) })),
  };
}

describe("batchCanonicalJson", () => {
  it("gives the bytes of canonicalJson for batches of all shapes", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const b = randomBatch(seed);
      expect(batchCanonicalJson(b)).toBe(canonicalJson(b));
    }
    const empty: Batch = { metrics: [], params: [], tags: [] };
    expect(batchCanonicalJson(empty)).toBe(canonicalJson(empty));
  });

  it("refuses a lone surrogate as canonicalJson does", () => {
    const b: Batch = { metrics: [], params: [{ key: "p", value: "bad \ud800 half" }], tags: [] };
    expect(() => canonicalJson(b)).toThrow(/lone surrogate/);
    expect(() => batchCanonicalJson(b)).toThrow(/lone surrogate/);
  });
});
