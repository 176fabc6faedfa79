/**
 * The class-balance warnings beside a split (app/_components/split-warnings.ts), on hand-made manifests and on splits
 * made by the trainer's own makeSplit.
 */
import { describe, expect, it } from "vitest";
import { makeSplit, describePartition } from "@/trainer/data/split";
import { splitClassWarnings } from "@/app/_components/split-warnings";

describe("splitClassWarnings", () => {
  it("names each class a partition with rows lacks, and what that means", () => {
    expect(
      splitClassWarnings({
        train: { count: 4, classBalance: { a: 4, b: 0, c: 0 } },
        validation: { count: 1, classBalance: { a: 0, b: 1, c: 0 } },
        test: { count: 1, classBalance: { a: 0, b: 0, c: 1 } },
      }),
    ).toEqual([
      "Classes 'b', 'c' have no rows in train: a model trained on this split never learns it.",
      "Classes 'a', 'c' have no rows in validation: validation metrics, and early stopping on them, say nothing about it.",
      "Classes 'a', 'b' have no rows in test: test metrics say nothing about it.",
    ]);
  });

  it("says nothing of a balanced split, an empty partition or a regression split", () => {
    expect(
      splitClassWarnings({ train: { count: 2, classBalance: { a: 1, b: 1 } }, test: { count: 0, classBalance: { a: 0, b: 0 } } }),
    ).toEqual([]);
    expect(splitClassWarnings({ train: { count: 9, classBalance: null }, test: { count: 3 } })).toEqual([]);
    expect(splitClassWarnings(undefined)).toEqual([]);
  });

  it("finds the class a real random split of an unbalanced dataset leaves out of train, never one a stratified split does", () => {
    const labels = [...Array.from({ length: 18 }, (_, i) => (i % 2 ? "a" : "b")), "rare", "rare", "rare"];
    const manifest = (strategy: "random" | "stratified", seed: number) => {
      const split = makeSplit(labels.length, labels, { strategy, train: 0.6, validation: 0.2, test: 0.2, seed });
      return Object.fromEntries(Object.entries(split).map(([p, idx]) => [p, describePartition(idx, labels)]));
    };
    const seeds = Array.from({ length: 200 }, (_, s) => s);
    const leftOut = seeds.filter((s) => manifest("random", s).train!.classBalance!.rare === 0);
    expect(leftOut.length).toBeGreaterThan(0);
    expect(splitClassWarnings(manifest("random", leftOut[0]!))[0]).toBe(
      "Class 'rare' has no rows in train: a model trained on this split never learns it.",
    );
    for (const s of seeds.slice(0, 20)) expect(splitClassWarnings(manifest("stratified", s))).toEqual([]);
  });
});
