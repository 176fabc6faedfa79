/** mulberry32 and the Fisher-Yates shuffle: pinned outputs, so a change that would move every split is caught. */
import { describe, expect, it } from "vitest";
import { mulberry32, shuffleInPlace } from "../prng";

describe("prng", () => {
  it("mulberry32 matches the reference implementation's first outputs for seed 42", () => {
    const random = mulberry32(42);
    expect([random(), random(), random()]).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
  });

  it("shuffleInPlace is a seeded permutation", () => {
    const a = shuffleInPlace(
      Array.from({ length: 50 }, (_, i) => i),
      mulberry32(1),
    );
    const b = shuffleInPlace(
      Array.from({ length: 50 }, (_, i) => i),
      mulberry32(1),
    );
    const c = shuffleInPlace(
      Array.from({ length: 50 }, (_, i) => i),
      mulberry32(2),
    );
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(a).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
});
