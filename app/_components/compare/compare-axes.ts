/**
 * Turns compared params and metric summaries into numeric axes for the parallel-coordinates and scatter
 * charts: numbers stay numbers, booleans become 0/1, text becomes the index of its category (sorted), with
 * the categories kept to label the axis ticks. A run without the value gets null.
 */
import type { ParamValue } from "@/server/runs/explore";
import type { Comparison as RunComparison } from "./comparison-type";

export type Axis = { field: string; label: string; values: (number | null)[]; categories: string[] | null };

export function paramAxis(path: string, values: ParamValue[]): Axis {
  const texts = values.filter((v): v is string => typeof v === "string");
  if (texts.length) {
    const categories = [...new Set(values.filter((v) => v !== null).map(String))].sort();
    return {
      field: `params.${path}`,
      label: path,
      values: values.map((v) => (v === null ? null : categories.indexOf(String(v)))),
      categories,
    };
  }
  return {
    field: `params.${path}`,
    label: path,
    values: values.map((v) => (typeof v === "number" ? v : typeof v === "boolean" ? Number(v) : null)),
    categories: null,
  };
}

export type MetricStat = "last" | "min" | "max";

export function metricAxis(comparison: RunComparison, key: string, stat: MetricStat): Axis {
  const m = comparison.metrics.find((x) => x.key === key);
  const label = stat === "last" ? key : `${key} (${stat})`;
  return {
    field: stat === "last" ? `metrics.${key}` : `metrics.${key}.${stat}`,
    label,
    values: comparison.runs.map((_, i) => m?.values[i]?.[stat] ?? null),
    categories: null,
  };
}

/** Params worth an axis: those that differ between the runs and hold a value for at least one. */
export function differingParamAxes(comparison: RunComparison, limit = 8): Axis[] {
  return comparison.params
    .filter((p) => p.differs && p.values.some((v) => v !== null))
    .slice(0, limit)
    .map((p) => paramAxis(p.path, p.values));
}

/** The metric to relate by default: validation accuracy when present, else the first recorded. */
export function defaultMetric(comparison: RunComparison): string {
  const keys = comparison.metrics.map((m) => m.key);
  return keys.find((k) => k === "val_accuracy") ?? keys.find((k) => k === "val_loss") ?? keys[0] ?? "";
}

export const tickLabel = (axis: Axis) => (v: number | string) => {
  const n = Number(v);
  if (!axis.categories) return typeof v === "number" ? Number(v.toPrecision(4)) : v;
  return Number.isInteger(n) ? (axis.categories[n] ?? "") : "";
};
