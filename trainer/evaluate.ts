/**
 * Evaluation metrics as pure functions over plain arrays (no TensorFlow.js), so they can be
 * hand-checked in tests and reused by the server or UI.
 *
 * Invariants:
 * - Confusion matrix rows are the true class, columns the predicted class, in `labels` order.
 * - Any ratio whose denominator is zero (no predictions of a class, no support) is 0, never NaN.
 * - Macro averages are unweighted means over every class in `labels`, including classes absent
 *   from the data (their scores are 0), as scikit-learn does with `labels=` given.
 */
import type { EvaluationResult } from "./types";

export type ClassificationResult = Extract<EvaluationResult, { task: "classification" }>;
export type RegressionResult = Extract<EvaluationResult, { task: "regression" }>;

const ratio = (num: number, den: number): number => (den === 0 ? 0 : num / den);

/** Rows = true class index, columns = predicted class index. */
export function confusionMatrix(trueLabels: ArrayLike<number>, predLabels: ArrayLike<number>, numClasses: number): number[][] {
  if (trueLabels.length !== predLabels.length) {
    throw new Error(`confusionMatrix: ${trueLabels.length} true labels but ${predLabels.length} predictions`);
  }
  const matrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < trueLabels.length; i++) {
    const t = trueLabels[i]!;
    const p = predLabels[i]!;
    if (!(t >= 0 && t < numClasses) || !(p >= 0 && p < numClasses)) {
      throw new Error(`confusionMatrix: label out of range at sample ${i} (true ${t}, predicted ${p}, ${numClasses} classes)`);
    }
    matrix[t]![p]! += 1;
  }
  return matrix;
}

/** Accuracy, per-class precision/recall/F1/support and macro averages from label indices. */
export function classificationReport(trueLabels: ArrayLike<number>, predLabels: ArrayLike<number>, labels: string[]): ClassificationResult {
  const matrix = confusionMatrix(trueLabels, predLabels, labels.length);
  return reportFromConfusion(matrix, labels);
}

/** The same report computed from an existing confusion matrix (rows = true class). */
export function reportFromConfusion(matrix: number[][], labels: string[]): ClassificationResult {
  const k = labels.length;
  let correct = 0;
  let total = 0;
  const perClass = labels.map((label, c) => {
    const row = matrix[c] ?? [];
    const support = row.reduce((a, b) => a + b, 0);
    const truePositives = row[c] ?? 0;
    let predictedAsC = 0;
    for (let r = 0; r < k; r++) predictedAsC += matrix[r]?.[c] ?? 0;
    correct += truePositives;
    total += support;
    const precision = ratio(truePositives, predictedAsC);
    const recall = ratio(truePositives, support);
    const f1 = ratio(2 * precision * recall, precision + recall);
    return { label, precision, recall, f1, support };
  });
  const mean = (pick: (p: (typeof perClass)[number]) => number) =>
    ratio(
      perClass.reduce((a, p) => a + pick(p), 0),
      k,
    );
  return {
    task: "classification",
    accuracy: ratio(correct, total),
    perClass,
    macro: { precision: mean((p) => p.precision), recall: mean((p) => p.recall), f1: mean((p) => p.f1) },
    confusion: { labels: [...labels], matrix },
  };
}

/** Mean squared error, mean absolute error and R² (1 - SSres/SStot; 0 when the targets are constant). */
export function regressionReport(trueValues: ArrayLike<number>, predValues: ArrayLike<number>): RegressionResult {
  const n = trueValues.length;
  if (n !== predValues.length) throw new Error(`regressionReport: ${n} targets but ${predValues.length} predictions`);
  if (n === 0) return { task: "regression", mse: 0, mae: 0, r2: 0 };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += trueValues[i]!;
  const mean = sum / n;
  let squared = 0;
  let absolute = 0;
  let totalVariance = 0;
  for (let i = 0; i < n; i++) {
    const err = trueValues[i]! - predValues[i]!;
    squared += err * err;
    absolute += Math.abs(err);
    totalVariance += (trueValues[i]! - mean) ** 2;
  }
  return { task: "regression", mse: squared / n, mae: absolute / n, r2: totalVariance === 0 ? 0 : 1 - squared / totalVariance };
}
