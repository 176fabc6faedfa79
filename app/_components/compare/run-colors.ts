/**
 * One colour per compared run, by its position in the compare list, used by every chart and legend of the
 * compare view so a run keeps its colour everywhere. 20 distinguishable colours (the compare limit).
 */
export const RUN_PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#bcbd22",
  "#7f7f7f",
  "#393b79",
  "#ad494a",
  "#637939",
  "#e6550d",
  "#7b4173",
  "#843c39",
  "#3182bd",
  "#31a354",
  "#756bb1",
  "#636363",
] as const;

export const runColor = (index: number): string => RUN_PALETTE[index % RUN_PALETTE.length]!;

/** The colour with an alpha, for faint raw curves under smoothed ones. */
export function withAlpha(hex: string, alpha: number): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

/**
 * How the compare view names a run: its name, followed by "#id" when another compared run has the same name (a fork
 * launched through the API, or given its parent's name by hand, keeps it), so two columns, curves or decision lists never
 * carry the same label.
 */
export function runLabel(run: { id: number; name: string }, runs: readonly { id: number; name: string }[]): string {
  return runs.some((r) => r.id !== run.id && r.name === run.name) ? `${run.name} #${run.id}` : run.name;
}
