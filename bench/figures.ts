/** A benchmark figure, printed as `name: value unit (target: …)` and collected into bench-results.json. */
export type Figure = {
  name: string;
  value: number;
  unit: string;
  target?: string;
  /** Not measured, and why (value NaN). */ skipped?: string;
};

export function printFigure(f: Figure): void {
  if (f.skipped !== undefined) {
    process.stdout.write(`${f.name}: skipped (${f.skipped})${f.target ? ` (target: ${f.target})` : ""}\n`);
    return;
  }
  const v = Number.isInteger(f.value) ? String(f.value) : f.value.toFixed(f.value < 10 ? 3 : 1);
  process.stdout.write(`${f.name}: ${v} ${f.unit}${f.target ? ` (target: ${f.target})` : ""}\n`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
