/**
 * applyCleaning: a cleaning recipe (dropMissing, impute, removeOutliers) applied to a table, with a report of
 * exactly what changed.
 *
 * Invariants:
 * - Pure and deterministic: the input table is never mutated; the same table + steps give the same output
 *   and report (ties in "mode" are broken by the smallest value, so no ordering accident leaks in).
 * - The label column is never imputed. Rows with a missing label are dropped first, as a report step
 *   "dropMissingLabel" (present only when it dropped rows).
 * - Each report step records rowsBefore/rowsAfter/rowsDropped; statistics (fill values, means, stds) are
 *   computed on the table as it is when the step runs.
 * - `sourceRows[i]` is the 1-based row in the original file of output row i, so later errors can name it.
 */
import type { CleaningStep } from "@/contracts/training-config";
import type { CleaningReport, DatasetSchema, Table } from "@/trainer/types";
import { DatasetError } from "./errors";
import { columnIndex } from "./schema";

export type CleaningResult = { table: Table; report: CleaningReport; sourceRows: number[] };
type ReportStep = CleaningReport["steps"][number];
type Cell = string | number | null;
type WorkingTable = { columns: Table["columns"]; rows: Cell[][]; sourceRows: number[] };

function emptyStep(op: string, params: Record<string, unknown>, rowsBefore: number): ReportStep {
  return { op, params, rowsBefore, rowsAfter: rowsBefore, rowsDropped: 0, valuesImputed: {}, outliersRemoved: 0 };
}

function keepRows(t: WorkingTable, keep: (row: Cell[]) => boolean): WorkingTable {
  const rows: Cell[][] = [];
  const sourceRows: number[] = [];
  t.rows.forEach((row, i) => {
    if (keep(row)) {
      rows.push(row);
      sourceRows.push(t.sourceRows[i]!);
    }
  });
  return { columns: t.columns, rows, sourceRows };
}

function resolveColumns(t: WorkingTable, names: string[] | undefined, fallback: string[], stepName: string): string[] {
  if (names === undefined) return fallback;
  for (const name of names) {
    try {
      columnIndex(t, name);
    } catch {
      throw new DatasetError(
        "UNKNOWN_COLUMN",
        `cleaning step '${stepName}': the file has no column named '${name}'; columns are: ${t.columns.map((c) => c.name).join(", ")}`,
        { column: name },
      );
    }
  }
  return names;
}

function dropMissingLabel(t: WorkingTable, labelColumn: string): { table: WorkingTable; step: ReportStep | null } {
  const col = columnIndex(t, labelColumn);
  const next = keepRows(t, (row) => row[col] !== null);
  const dropped = t.rows.length - next.rows.length;
  if (dropped === 0) return { table: t, step: null };
  const step = emptyStep("dropMissingLabel", { column: labelColumn }, t.rows.length);
  return {
    table: next,
    step: {
      ...step,
      rowsAfter: next.rows.length,
      rowsDropped: dropped,
      detail: { reason: `rows with no value in the label column '${labelColumn}' cannot be used` },
    },
  };
}

function dropMissing(t: WorkingTable, columns: string[] | undefined): { table: WorkingTable; step: ReportStep } {
  const names = resolveColumns(
    t,
    columns,
    t.columns.map((c) => c.name),
    "dropMissing",
  );
  const idx = names.map((n) => columnIndex(t, n));
  const missingByColumn: Record<string, number> = {};
  for (const n of names) missingByColumn[n] = 0;
  const next = keepRows(t, (row) => {
    let complete = true;
    idx.forEach((c, k) => {
      if (row[c] === null) {
        complete = false;
        missingByColumn[names[k]!]! += 1;
      }
    });
    return complete;
  });
  const step = emptyStep("dropMissing", columns ? { columns } : {}, t.rows.length);
  return {
    table: next,
    step: { ...step, rowsAfter: next.rows.length, rowsDropped: t.rows.length - next.rows.length, detail: { missingByColumn } },
  };
}

function mean(values: number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Most frequent value; ties go to the smallest (numeric order for numbers, code-point order for strings). */
function mode(values: (string | number)[]): string | number {
  const counts = new Map<string | number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: string | number | undefined;
  let bestCount = -1;
  for (const [v, n] of counts) {
    if (n > bestCount || (n === bestCount && best !== undefined && compareValues(v, best) < 0)) {
      best = v;
      bestCount = n;
    }
  }
  return best!;
}

export function compareValues(a: string | number, b: string | number): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

function impute(
  t: WorkingTable,
  strategy: "mean" | "median" | "mode",
  columns: string[] | undefined,
  labelColumn: string,
): { table: WorkingTable; step: ReportStep } {
  const numericOnly = strategy !== "mode";
  if (columns?.includes(labelColumn)) {
    throw new DatasetError(
      "BAD_CLEANING_STEP",
      `cleaning step 'impute': the label column '${labelColumn}' is never imputed; rows with a missing label are dropped`,
      { column: labelColumn },
    );
  }
  const defaults = t.columns.filter((c) => c.name !== labelColumn && (!numericOnly || c.type === "number")).map((c) => c.name);
  const names = resolveColumns(t, columns, defaults, "impute");
  const valuesImputed: Record<string, number> = {};
  const fillValues: Record<string, string | number> = {};
  const rows = t.rows.map((row) => [...row]);
  for (const name of names) {
    const c = columnIndex(t, name);
    if (numericOnly && t.columns[c]!.type !== "number") {
      throw new DatasetError(
        "BAD_CLEANING_STEP",
        `cleaning step 'impute': cannot take the ${strategy} of column '${name}', it holds text; use strategy 'mode'`,
        { column: name },
      );
    }
    const present = t.rows.map((row) => row[c]).filter((v): v is string | number => v !== null && v !== undefined);
    const missing = t.rows.length - present.length;
    if (missing === 0) continue;
    if (present.length === 0) {
      throw new DatasetError("BAD_CLEANING_STEP", `cleaning step 'impute': column '${name}' has no values to compute a ${strategy} from`, {
        column: name,
      });
    }
    const fill = strategy === "mean" ? mean(present as number[]) : strategy === "median" ? median(present as number[]) : mode(present);
    for (const row of rows) if (row[c] === null) row[c] = fill;
    valuesImputed[name] = missing;
    fillValues[name] = fill;
  }
  const step = emptyStep("impute", columns ? { strategy, columns } : { strategy }, t.rows.length);
  return { table: { columns: t.columns, rows, sourceRows: t.sourceRows }, step: { ...step, valuesImputed, detail: { fillValues } } };
}

function removeOutliers(
  t: WorkingTable,
  zThreshold: number,
  columns: string[] | undefined,
  labelColumn: string,
): { table: WorkingTable; step: ReportStep } {
  const defaults = t.columns.filter((c) => c.name !== labelColumn && c.type === "number").map((c) => c.name);
  const names = resolveColumns(t, columns, defaults, "removeOutliers");
  const stats: Record<string, { mean: number; std: number }> = {};
  const perColumn: Record<string, number> = {};
  const flagged = new Set<number>();
  for (const name of names) {
    const c = columnIndex(t, name);
    if (name === labelColumn || t.columns[c]!.type !== "number") {
      throw new DatasetError("BAD_CLEANING_STEP", `cleaning step 'removeOutliers': column '${name}' is not a numeric feature column`, {
        column: name,
      });
    }
    const present = t.rows.map((row) => row[c]).filter((v): v is number => typeof v === "number");
    perColumn[name] = 0;
    if (present.length === 0) continue;
    const m = mean(present);
    // Population standard deviation: the z-score describes these rows, not an estimate for a wider population.
    const std = Math.sqrt(mean(present.map((v) => (v - m) ** 2)));
    stats[name] = { mean: m, std };
    if (std === 0) continue; // a constant column has no outliers
    t.rows.forEach((row, r) => {
      const v = row[c];
      if (typeof v === "number" && Math.abs((v - m) / std) > zThreshold) {
        perColumn[name]! += 1;
        flagged.add(r);
      }
    });
  }
  let r = -1;
  const next = keepRows(t, () => !flagged.has(++r));
  const step = emptyStep("removeOutliers", columns ? { zThreshold, columns } : { zThreshold }, t.rows.length);
  return {
    table: next,
    step: { ...step, rowsAfter: next.rows.length, rowsDropped: flagged.size, outliersRemoved: flagged.size, detail: { perColumn, stats } },
  };
}

export function applyCleaning(table: Table, steps: readonly CleaningStep[], schema: Pick<DatasetSchema, "labelColumn">): CleaningResult {
  let t: WorkingTable = { columns: table.columns, rows: table.rows, sourceRows: table.rows.map((_, i) => i + 1) };
  const reportSteps: ReportStep[] = [];
  const labelDrop = dropMissingLabel(t, schema.labelColumn);
  t = labelDrop.table;
  if (labelDrop.step) reportSteps.push(labelDrop.step);

  for (const step of steps) {
    const done =
      step.op === "dropMissing"
        ? dropMissing(t, step.columns)
        : step.op === "impute"
          ? impute(t, step.strategy, step.columns, schema.labelColumn)
          : removeOutliers(t, step.zThreshold, step.columns, schema.labelColumn);
    t = done.table;
    reportSteps.push(done.step);
  }
  if (t.rows.length === 0) {
    throw new DatasetError("NO_ROWS_LEFT", `cleaning left no rows (the file had ${table.rows.length}); loosen the cleaning steps`);
  }
  return {
    table: { columns: table.columns.map((c) => ({ ...c })), rows: t.rows },
    report: { steps: reportSteps, rowsIn: table.rows.length, rowsOut: t.rows.length },
    sourceRows: t.sourceRows,
  };
}
