/** Evaluation numbers checked by hand on a small confusion matrix (including a class with no support). */
import { describe, expect, it } from "vitest";
import { classificationReport, confusionMatrix, regressionReport } from "../evaluate";

// Rows = true class, columns = predicted class.
const MATRIX = [
  [3, 1, 1, 0], // cat: 5 samples
  [1, 3, 0, 0], // dog: 4
  [0, 1, 2, 0], // bird: 3
  [0, 0, 0, 0], // fish: none, never predicted
];
const LABELS = ["cat", "dog", "bird", "fish"];
const trueLabels: number[] = [];
const predLabels: number[] = [];
MATRIX.forEach((row, t) =>
  row.forEach((n, p) => {
    for (let i = 0; i < n; i++) {
      trueLabels.push(t);
      predLabels.push(p);
    }
  }),
);

describe("[trainer/evaluate] classification report", () => {
  const r = classificationReport(trueLabels, predLabels, LABELS);

  it("rebuilds the confusion matrix with true classes as rows", () => {
    expect(confusionMatrix(trueLabels, predLabels, 4)).toEqual(MATRIX);
    expect(r.confusion).toEqual({ labels: LABELS, matrix: MATRIX });
  });

  it("gives hand-computed accuracy, per-class scores and macro averages", () => {
    expect(r.accuracy).toBeCloseTo(8 / 12, 12);
    const byLabel = Object.fromEntries(r.perClass.map((p) => [p.label, p]));
    expect(byLabel.cat).toMatchObject({ support: 5 });
    expect(byLabel.cat!.precision).toBeCloseTo(3 / 4, 12);
    expect(byLabel.cat!.recall).toBeCloseTo(3 / 5, 12);
    expect(byLabel.cat!.f1).toBeCloseTo(2 / 3, 12);
    expect(byLabel.dog!.precision).toBeCloseTo(3 / 5, 12);
    expect(byLabel.dog!.recall).toBeCloseTo(3 / 4, 12);
    expect(byLabel.bird!.precision).toBeCloseTo(2 / 3, 12);
    expect(byLabel.bird!.recall).toBeCloseTo(2 / 3, 12);
    expect(byLabel.fish).toEqual({ label: "fish", precision: 0, recall: 0, f1: 0, support: 0 });
    expect(r.macro.precision).toBeCloseTo((0.75 + 0.6 + 2 / 3 + 0) / 4, 12);
    expect(r.macro.recall).toBeCloseTo((0.6 + 0.75 + 2 / 3 + 0) / 4, 12);
    expect(r.macro.f1).toBeCloseTo(((2 / 3) * 3) / 4, 12);
  });

  it("rejects mismatched or out-of-range labels", () => {
    expect(() => confusionMatrix([0, 1], [0], 2)).toThrow(/2 true labels but 1 predictions/);
    expect(() => confusionMatrix([0, 2], [0, 1], 2)).toThrow(/out of range at sample 1/);
  });
});

describe("[trainer/evaluate] regression report", () => {
  it("computes MSE, MAE and R²", () => {
    const r = regressionReport([1, 2, 3, 4], [1, 2, 3, 5]);
    expect(r.mse).toBeCloseTo(0.25, 12);
    expect(r.mae).toBeCloseTo(0.25, 12);
    expect(r.r2).toBeCloseTo(1 - 1 / 5, 12);
  });
  it("gives R² = 0 for constant targets instead of dividing by zero", () => {
    expect(regressionReport([2, 2], [1, 3]).r2).toBe(0);
  });
});
