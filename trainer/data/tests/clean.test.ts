/** applyCleaning: each step's effect on rows, its report line, exact fill values, and purity. */
import { describe, expect, it } from "vitest";
import type { Table } from "@/trainer/types";
import { applyCleaning } from "../clean";
import { datasetErrorOf } from "./helpers";

const schema = { labelColumn: "label" };

/** Six rows: row 2 lacks b, row 3 lacks a and c, row 4 lacks its label. */
function messyTable(): Table {
  return {
    columns: [
      { name: "a", type: "number" },
      { name: "b", type: "number" },
      { name: "c", type: "string" },
      { name: "label", type: "string" },
    ],
    rows: [
      [1, 10, "red", "p"],
      [2, null, "blue", "q"],
      [null, 30, null, "p"],
      [4, 40, "red", null],
      [3, 20, "blue", "q"],
      [6, 50, "red", "p"],
    ],
  };
}

describe("applyCleaning", () => {
  it("always drops rows with a missing label first, with its own report line", () => {
    const { table, report, sourceRows } = applyCleaning(messyTable(), [], schema);
    expect(table.rows).toHaveLength(5);
    expect(sourceRows).toEqual([1, 2, 3, 5, 6]);
    expect(report.rowsIn).toBe(6);
    expect(report.rowsOut).toBe(5);
    expect(report.steps).toEqual([
      {
        op: "dropMissingLabel",
        params: { column: "label" },
        rowsBefore: 6,
        rowsAfter: 5,
        rowsDropped: 1,
        valuesImputed: {},
        outliersRemoved: 0,
        detail: { reason: "rows with no value in the label column 'label' cannot be used" },
      },
    ]);
  });

  it("adds no label step when every row has a label", () => {
    const t = messyTable();
    t.rows.splice(3, 1);
    expect(applyCleaning(t, [], schema).report.steps).toEqual([]);
  });

  it("dropMissing drops rows missing any value, or only in the listed columns", () => {
    const all = applyCleaning(messyTable(), [{ op: "dropMissing" }], schema);
    expect(all.table.rows).toEqual([
      [1, 10, "red", "p"],
      [3, 20, "blue", "q"],
      [6, 50, "red", "p"],
    ]);
    expect(all.sourceRows).toEqual([1, 5, 6]);
    expect(all.report.steps[1]).toMatchObject({
      op: "dropMissing",
      params: {},
      rowsBefore: 5,
      rowsAfter: 3,
      rowsDropped: 2,
      detail: { missingByColumn: { a: 1, b: 1, c: 1, label: 0 } },
    });

    const onlyB = applyCleaning(messyTable(), [{ op: "dropMissing", columns: ["b"] }], schema);
    expect(onlyB.table.rows.map((r) => r[0])).toEqual([1, null, 3, 6]);
    expect(onlyB.report.steps[1]).toMatchObject({ params: { columns: ["b"] }, rowsBefore: 5, rowsAfter: 4, rowsDropped: 1 });
  });

  it("impute mean fills numeric feature columns with the exact mean of the present values", () => {
    const { table, report } = applyCleaning(messyTable(), [{ op: "impute", strategy: "mean" }], schema);
    // a: mean(1, 2, 3, 6) = 3; b: mean(10, 30, 20, 50) = 27.5; the text column c is left alone.
    expect(table.rows).toEqual([
      [1, 10, "red", "p"],
      [2, 27.5, "blue", "q"],
      [3, 30, null, "p"],
      [3, 20, "blue", "q"],
      [6, 50, "red", "p"],
    ]);
    expect(report.steps[1]).toMatchObject({
      op: "impute",
      params: { strategy: "mean" },
      rowsBefore: 5,
      rowsAfter: 5,
      rowsDropped: 0,
      valuesImputed: { a: 1, b: 1 },
      detail: { fillValues: { a: 3, b: 27.5 } },
    });
  });

  it("impute median uses the middle value, averaging the two middle values for an even count", () => {
    const { report, table } = applyCleaning(messyTable(), [{ op: "impute", strategy: "median" }], schema);
    expect(report.steps[1]!.detail).toEqual({ fillValues: { a: 2.5, b: 25 } });
    expect(table.rows[2]![0]).toBe(2.5);
  });

  it("impute mode works on text columns and breaks ties by the smallest value", () => {
    const { report, table } = applyCleaning(messyTable(), [{ op: "impute", strategy: "mode", columns: ["c", "a"] }], schema);
    // c: red twice, blue twice → "blue" (code-point order); a: all distinct → 1.
    expect(report.steps[1]).toMatchObject({
      params: { strategy: "mode", columns: ["c", "a"] },
      valuesImputed: { c: 1, a: 1 },
      detail: { fillValues: { c: "blue", a: 1 } },
    });
    expect(table.rows[2]).toEqual([1, 30, "blue", "p"]);
  });

  it("never imputes the label column, and refuses a mean of text", () => {
    const label = datasetErrorOf(() => applyCleaning(messyTable(), [{ op: "impute", strategy: "mode", columns: ["label"] }], schema));
    expect(label.code).toBe("BAD_CLEANING_STEP");
    expect(label.message).toBe("cleaning step 'impute': the label column 'label' is never imputed; rows with a missing label are dropped");
    const text = datasetErrorOf(() => applyCleaning(messyTable(), [{ op: "impute", strategy: "mean", columns: ["c"] }], schema));
    expect(text.message).toBe("cleaning step 'impute': cannot take the mean of column 'c', it holds text; use strategy 'mode'");
    const unknown = datasetErrorOf(() => applyCleaning(messyTable(), [{ op: "dropMissing", columns: ["zzz"] }], schema));
    expect(unknown.message).toBe("cleaning step 'dropMissing': the file has no column named 'zzz'; columns are: a, b, c, label");
  });

  it("removeOutliers drops rows with |z| above the threshold on numeric feature columns and reports per column", () => {
    // x: mean 15, population std sqrt(176.25) ≈ 13.28, so 50 has z ≈ 2.64; y: 1s and one -20 (z ≈ -2.65).
    const t: Table = {
      columns: [
        { name: "x", type: "number" },
        { name: "y", type: "number" },
        { name: "label", type: "string" },
      ],
      rows: [10, 11, 9, 10, 12, 8, 10, 50].map((x, i) => [x, i === 2 ? -20 : 1, i % 2 ? "a" : "b"]),
    };
    const strict = applyCleaning(t, [{ op: "removeOutliers", zThreshold: 2.5 }], schema);
    expect(strict.table.rows.map((r) => r[0])).toEqual([10, 11, 10, 12, 8, 10]);
    expect(strict.sourceRows).toEqual([1, 2, 4, 5, 6, 7]);
    const step = strict.report.steps[0]!;
    expect(step).toMatchObject({
      op: "removeOutliers",
      params: { zThreshold: 2.5 },
      rowsBefore: 8,
      rowsAfter: 6,
      rowsDropped: 2,
      outliersRemoved: 2,
    });
    expect(step.detail!.perColumn).toEqual({ x: 1, y: 1 });
    expect((step.detail!.stats as Record<string, { mean: number; std: number }>).x).toEqual({ mean: 15, std: Math.sqrt(176.25) });

    const loose = applyCleaning(t, [{ op: "removeOutliers", zThreshold: 3 }], schema);
    expect(loose.table.rows).toHaveLength(8);
    const onlyX = applyCleaning(t, [{ op: "removeOutliers", zThreshold: 2.5, columns: ["x"] }], schema);
    expect(onlyX.table.rows.map((r) => r[0])).toEqual([10, 11, 9, 10, 12, 8, 10]);
  });

  it("runs steps in order, each seeing the previous step's output", () => {
    const { report, table } = applyCleaning(
      messyTable(),
      [{ op: "impute", strategy: "mean", columns: ["a"] }, { op: "dropMissing" }],
      schema,
    );
    expect(report.steps.map((s) => [s.op, s.rowsBefore, s.rowsAfter])).toEqual([
      ["dropMissingLabel", 6, 5],
      ["impute", 5, 5],
      ["dropMissing", 5, 3],
    ]);
    expect(table.rows.map((r) => r[0])).toEqual([1, 3, 6]);
  });

  it("is pure and deterministic: the input is untouched and a second run gives the same result", () => {
    const input = messyTable();
    const steps = [
      { op: "impute" as const, strategy: "median" as const },
      { op: "removeOutliers" as const, zThreshold: 1 },
    ];
    const first = applyCleaning(input, steps, schema);
    expect(input).toEqual(messyTable());
    expect(applyCleaning(input, steps, schema)).toEqual(first);
  });

  it("says so when cleaning leaves no rows", () => {
    const t = messyTable();
    for (const row of t.rows) row[1] = null;
    t.columns[1] = { name: "b", type: "number" };
    const e = datasetErrorOf(() => applyCleaning(t, [{ op: "dropMissing" }], schema));
    expect(e.code).toBe("NO_ROWS_LEFT");
    expect(e.message).toBe("cleaning left no rows (the file had 6); loosen the cleaning steps");
  });
});
