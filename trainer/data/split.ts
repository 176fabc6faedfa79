/**
 * makeSplit: seeded train/validation/test partitions of row indices, random or stratified by class.
 *
 * Invariants:
 * - Partitions are disjoint, cover 0..n-1 exactly, and each is sorted ascending.
 * - Same (n, labels, spec) → same partitions → same digests. Randomness comes only from mulberry32(seed).
 * - Stratified: each class's rows are split by largest-remainder allocation, so every class's count in every
 *   partition is within ±1 row of its proportional share; every partition with a ratio > 0 gets at least one
 *   row of every class (for a tiny class this moves one row from its largest partition, which may then sit
 *   slightly more than 1 below its share), or a DatasetError says which class has too few rows.
 */
import type { SplitSpec } from "@/contracts/training-config";
import type { PartitionManifest, PartitionName } from "@/trainer/types";
import { sha256Canonical } from "@/contracts/canonical";
import { DatasetError } from "./errors";
import { mulberry32, shuffleInPlace } from "./prng";

export const PARTITIONS: readonly PartitionName[] = ["train", "validation", "test"];
export type SplitIndices = Record<PartitionName, number[]>;
export type SplitRatios = Pick<SplitSpec, "strategy" | "train" | "validation" | "test" | "seed">;

/** Largest-remainder (Hamilton) allocation of `n` items over ratios; ties go to the earlier partition. */
function allocate(n: number, ratios: number[]): number[] {
  const ideal = ratios.map((r) => r * n);
  const counts = ideal.map((x) => Math.floor(x + 1e-9));
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = ideal.map((x, i) => ({ i, frac: x - Math.floor(x + 1e-9) })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) counts[order[k]!.i]! += 1;
  return counts;
}

/** Moves single rows from the largest partition to any positive-ratio partition left empty. */
function ensureEachPositivePartitionHasOne(counts: number[], ratios: number[]): void {
  ratios.forEach((r, i) => {
    if (r > 0 && counts[i] === 0) {
      const donor = counts.indexOf(Math.max(...counts));
      counts[donor]! -= 1;
      counts[i] = 1;
    }
  });
}

function describeRatios(spec: SplitRatios): string {
  return `${spec.train}/${spec.validation}/${spec.test}`;
}

function cut(shuffled: number[], counts: number[], into: SplitIndices): void {
  let at = 0;
  PARTITIONS.forEach((p, i) => {
    into[p].push(...shuffled.slice(at, at + counts[i]!));
    at += counts[i]!;
  });
}

export function makeSplit(n: number, labels: readonly string[] | null, spec: SplitRatios): SplitIndices {
  const ratios = [spec.train, spec.validation, spec.test];
  const needed = ratios.filter((r) => r > 0).length;
  const random = mulberry32(spec.seed);
  const out: SplitIndices = { train: [], validation: [], test: [] };

  if (spec.strategy === "stratified") {
    if (!labels) throw new DatasetError("BAD_SPLIT", "a stratified split needs class labels; use strategy 'random' for regression");
    if (labels.length !== n) throw new Error(`makeSplit: ${labels.length} labels for ${n} rows`);
    const byClass = new Map<string, number[]>();
    labels.forEach((label, i) => {
      const rows = byClass.get(label);
      if (rows) rows.push(i);
      else byClass.set(label, [i]);
    });
    // Classes in sorted order, so the PRNG stream is consumed in an order that does not depend on row order.
    for (const label of [...byClass.keys()].sort()) {
      const rows = byClass.get(label)!;
      if (rows.length < needed) {
        throw new DatasetError(
          "TOO_FEW_ROWS",
          `class '${label}' has only ${rows.length} row${rows.length === 1 ? "" : "s"}; a stratified split with ratios ${describeRatios(spec)} needs at least ${needed} of each class so every partition gets one. Add rows, merge the class, or use a random split`,
        );
      }
      const counts = allocate(rows.length, ratios);
      ensureEachPositivePartitionHasOne(counts, ratios);
      cut(shuffleInPlace([...rows], random), counts, out);
    }
  } else {
    if (n < needed)
      throw new DatasetError(
        "TOO_FEW_ROWS",
        `the dataset has only ${n} row${n === 1 ? "" : "s"}; a split with ratios ${describeRatios(spec)} needs at least ${needed}`,
      );
    const counts = allocate(n, ratios);
    ensureEachPositivePartitionHasOne(counts, ratios);
    cut(
      shuffleInPlace(
        Array.from({ length: n }, (_, i) => i),
        random,
      ),
      counts,
      out,
    );
  }
  for (const p of PARTITIONS) out[p].sort((a, b) => a - b);
  return out;
}

/** Count, class balance (null without labels) and digest of one partition's sorted indices. */
export function describePartition(indices: readonly number[], labels: readonly string[] | null): PartitionManifest {
  let classBalance: Record<string, number> | null = null;
  if (labels) {
    const counts: Record<string, number> = {};
    for (const label of [...new Set(labels)].sort()) counts[label] = 0;
    for (const i of indices) counts[labels[i]!]! += 1;
    classBalance = counts;
  }
  return { count: indices.length, classBalance, indicesSha256: sha256Canonical(indices) };
}
