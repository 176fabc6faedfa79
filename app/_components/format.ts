/** Formatting helpers: numbers carry units; times are shown in UTC ISO-8601. */
import { timeText } from "@/contracts/time-text";

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "–";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) [v, i] = [v / 1024, i + 1];
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
const isFractionMetric = (key: string | undefined) => !!key && /acc|precision|recall|f1/i.test(key);
/**
 * A metric's value: four decimals ("0.5114"); below 0.001, where four decimals would leave one digit or none, three
 * significant digits, still as a decimal ("0.000803", not "8.03e-4", so a small loss reads like its neighbours in a
 * column); exponent form only for the extremes (≥ 1000, or below 0.00001 where the zeros get hard to count).
 */
export function formatMetric(v: number | null | undefined, key?: string): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (isFractionMetric(key)) return `${(v * 100).toFixed(1)} %`;
  const a = Math.abs(v);
  if (a >= 1000 || (a < 0.00001 && v !== 0)) return v.toExponential(2);
  return a < 0.001 && v !== 0 ? v.toPrecision(3) : v.toFixed(4);
}
/**
 * A signed difference of two values of a metric. A difference of two percentages is in percentage points ("−9.5 pp"):
 * "−9.5 %" would read as a relative change.
 */
export function formatMetricDelta(d: number, key?: string): string {
  const sign = d > 0 ? "+" : d < 0 ? "−" : "±";
  return isFractionMetric(key) ? `${sign}${(Math.abs(d) * 100).toFixed(1)} pp` : `${sign}${formatMetric(Math.abs(d), key)}`;
}
/** A recorded time for people (contracts/time-text.ts, shared with the lineage graph the server composes). */
export const formatTime = timeText;
export function formatCount(n: number | null | undefined): string {
  return n === null || n === undefined ? "–" : n.toLocaleString("en-US");
}
/** A count with its noun, singular for exactly one: "1 signed checkpoint", "2,048 signed checkpoints". */
export function formatCountOf(n: number, singular: string, plural = `${singular}s`): string {
  return `${formatCount(n)} ${n === 1 ? singular : plural}`;
}
