/**
 * Feature normalisation fitted on the train partition only, and applied to every partition.
 *
 * Invariants:
 * - Statistics come only from the rows passed to fitNormalization (the caller passes train rows), so nothing
 *   about validation or test leaks into the features.
 * - Every recorded stat applies as x' = (x - a) / b: standard → a = mean, b = population std; minmax → a = min,
 *   b = max - min. A constant column would divide by zero, so its recorded b is 1 (the divisor actually used).
 */
import type { SplitManifest } from "@/trainer/types";

export type NormalizationMethod = SplitManifest["normalization"]["method"];
export type NormalizationStats = SplitManifest["normalization"]["stats"];

/** Fits per-column statistics on `rows` (each row holds one value per column, in `columns` order). */
export function fitNormalization(
  method: NormalizationMethod,
  columns: readonly string[],
  rows: readonly (readonly number[])[],
): NormalizationStats {
  const stats: NormalizationStats = {};
  if (method === "none") return stats;
  columns.forEach((name, c) => {
    if (rows.length === 0) {
      stats[name] = { a: 0, b: 1 };
      return;
    }
    if (method === "minmax") {
      let min = Infinity;
      let max = -Infinity;
      for (const row of rows) {
        const v = row[c]!;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const range = max - min;
      stats[name] = { a: min, b: range === 0 ? 1 : range };
    } else {
      let sum = 0;
      for (const row of rows) sum += row[c]!;
      const mean = sum / rows.length;
      let sq = 0;
      for (const row of rows) sq += (row[c]! - mean) ** 2;
      const std = Math.sqrt(sq / rows.length);
      stats[name] = { a: mean, b: std === 0 ? 1 : std };
    }
  });
  return stats;
}

/** Applies fitted stats to one row (a copy is returned); columns without stats pass through unchanged. */
export function normalizeRow(columns: readonly string[], row: readonly number[], stats: NormalizationStats): number[] {
  return row.map((v, c) => {
    const s = stats[columns[c]!];
    return s ? (v - s.a) / s.b : v;
  });
}
