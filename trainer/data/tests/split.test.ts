/** makeSplit and describePartition: coverage, disjointness, stratification, seeding, digests and errors. */
import { describe, expect, it } from "vitest";
import { describePartition, makeSplit, PARTITIONS, type SplitIndices } from "../split";
import { mulberry32 } from "../prng";
import { datasetErrorOf } from "./helpers";

const spec = { strategy: "stratified" as const, train: 0.7, validation: 0.15, test: 0.15, seed: 42 };

/** 3 unbalanced classes (60 / 30 / 13 rows), interleaved so class order differs from row order. */
const labels: string[] = Array.from({ length: 103 }, (_, i) => (i < 60 ? "a" : i < 90 ? "b" : "c"));
const shuffledLabels = (() => {
  const out = [...labels];
  const random = mulberry32(7);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
})();

function expectPartitionOf(split: SplitIndices, n: number): void {
  const all = PARTITIONS.flatMap((p) => split[p]);
  expect(all.length).toBe(n);
  expect(new Set(all).size).toBe(n);
  expect([...all].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
  for (const p of PARTITIONS) expect(split[p]).toEqual([...split[p]].sort((a, b) => a - b));
}

describe("makeSplit", () => {
  it("random: disjoint partitions that cover every row, with counts by largest remainder", () => {
    const split = makeSplit(101, null, { ...spec, strategy: "random" });
    expectPartitionOf(split, 101);
    // 70.7 / 15.15 / 15.15 → floors 70 / 15 / 15, the remaining row goes to train (largest remainder).
    expect([split.train.length, split.validation.length, split.test.length]).toEqual([71, 15, 15]);
  });

  it("stratified: every class's share of every partition is within ±1 row of proportional", () => {
    const split = makeSplit(shuffledLabels.length, shuffledLabels, spec);
    expectPartitionOf(split, shuffledLabels.length);
    const sizes: Record<string, number> = { a: 60, b: 30, c: 13 };
    for (const p of PARTITIONS) {
      const ratio = spec[p];
      const balance = describePartition(split[p], shuffledLabels).classBalance!;
      for (const [label, size] of Object.entries(sizes)) {
        expect(Math.abs(balance[label]! - size * ratio)).toBeLessThanOrEqual(1);
      }
    }
  });

  it("is stable across calls and changes with the seed", () => {
    const a = makeSplit(shuffledLabels.length, shuffledLabels, spec);
    const b = makeSplit(shuffledLabels.length, shuffledLabels, spec);
    expect(b).toEqual(a);
    const digests = (s: SplitIndices) => PARTITIONS.map((p) => describePartition(s[p], shuffledLabels).indicesSha256);
    expect(digests(b)).toEqual(digests(a));
    const other = makeSplit(shuffledLabels.length, shuffledLabels, { ...spec, seed: 43 });
    expect(other.train).not.toEqual(a.train);
    expect(digests(other)[0]).not.toBe(digests(a)[0]);
    const random = makeSplit(100, null, { ...spec, strategy: "random" });
    expect(makeSplit(100, null, { ...spec, strategy: "random", seed: 1 }).train).not.toEqual(random.train);
  });

  it("gives a partition with ratio 0 no rows, but every positive partition at least one row of each class", () => {
    const noTest = makeSplit(shuffledLabels.length, shuffledLabels, { ...spec, train: 0.8, validation: 0.2, test: 0 });
    expect(noTest.test).toEqual([]);
    expectPartitionOf(noTest, shuffledLabels.length);
    // 3 rows of class "x": 2.1 / 0.45 / 0.45 would leave test empty; each partition gets one instead.
    const tiny = ["x", "x", "x", "y", "y", "y", "y", "y", "y", "y", "y", "y"];
    const split = makeSplit(tiny.length, tiny, spec);
    for (const p of PARTITIONS) expect(describePartition(split[p], tiny).classBalance!.x).toBe(1);
  });

  it("explains when a class has too few rows for a stratified split", () => {
    const few = ["a", "a", "a", "a", "b", "b"];
    const e = datasetErrorOf(() => makeSplit(few.length, few, spec));
    expect(e.code).toBe("TOO_FEW_ROWS");
    expect(e.message).toBe(
      "class 'b' has only 2 rows; a stratified split with ratios 0.7/0.15/0.15 needs at least 3 of each class so every partition gets one. Add rows, merge the class, or use a random split",
    );
    const noLabels = datasetErrorOf(() => makeSplit(10, null, spec));
    expect(noLabels.message).toBe("a stratified split needs class labels; use strategy 'random' for regression");
    const tooSmall = datasetErrorOf(() => makeSplit(2, null, { ...spec, strategy: "random" }));
    expect(tooSmall.message).toBe("the dataset has only 2 rows; a split with ratios 0.7/0.15/0.15 needs at least 3");
  });
});

describe("describePartition", () => {
  it("records count, class balance (absent classes as 0) and the digest of the sorted indices", () => {
    const m = describePartition([0, 2], ["a", "b", "a", "c"]);
    expect(m.count).toBe(2);
    expect(m.classBalance).toEqual({ a: 2, b: 0, c: 0 });
    // sha256 of the canonical JSON "[0,2]".
    expect(m.indicesSha256).toBe("45e1c0b7597006d357bb6b74965c9d19ee076dc5bf7ff45406f375e146f187df");
    expect(describePartition([0, 2], null)).toEqual({ count: 2, classBalance: null, indicesSha256: m.indicesSha256 });
  });
});
