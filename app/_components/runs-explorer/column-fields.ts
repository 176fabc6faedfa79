/**
 * Column fields of the runs table: the fixed columns (sortable by their server-side field name) and
 * chosen params/metrics ("params.<path>", "metrics.<key>" = last, "metrics.<key>.min|.max").
 */
import type { ParamValue } from "@/server/runs/explore";

export type ChosenColumn =
  { field: string; kind: "param"; path: string } | { field: string; kind: "metric"; key: string; stat: "last" | "min" | "max" };

export function parseColumn(field: string): ChosenColumn | null {
  if (field.startsWith("params.") && field.length > 7) return { field, kind: "param", path: field.slice(7) };
  if (field.startsWith("metrics.") && field.length > 8) {
    const rest = field.slice(8);
    const m = /^(.+)\.(min|max|last)$/.exec(rest);
    return m
      ? { field, kind: "metric", key: m[1]!, stat: m[2] as "min" | "max" | "last" }
      : { field, kind: "metric", key: rest, stat: "last" };
  }
  return null;
}

/** The key a RunRow's metrics record uses for this column ("val_loss", "val_loss.min"). */
export const metricRowKey = (c: Extract<ChosenColumn, { kind: "metric" }>) => (c.stat === "last" ? c.key : `${c.key}.${c.stat}`);

/** A short header: the last two segments of a param path, the metric key with its statistic. */
export function columnLabel(c: ChosenColumn): string {
  if (c.kind === "param") return c.path.split(".").slice(-2).join(".");
  return c.stat === "last" ? c.key : `${c.key} (${c.stat})`;
}

export function formatParam(v: ParamValue | undefined): string {
  if (v === undefined || v === null) return "–";
  if (typeof v === "number")
    return Number.isInteger(v) ? String(v) : Math.abs(v) < 0.001 ? v.toExponential(2) : String(Number(v.toPrecision(6)));
  return String(v);
}
