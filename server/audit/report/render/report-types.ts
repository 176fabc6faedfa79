/**
 * What the report page is rendered from besides the facts: the integrity evidence (signed checkpoint, key, proofs;
 * stored in report.json) and the training-curve charts (derived from the facts, also written as charts/*.svg).
 */
import type { ChartSeries, LineChartOptions } from "./line-chart-svg";

export type ReportIntegrity = {
  checkpoint: { id: number; treeSize: number; rootHash: string; at: string; reason: string; keyFingerprint: string; signature: string };
  publicKeyPem: string;
  exportEventSeq: number;
  proofs: { seq: number; leafIndex: number; treeSize: number; leafHash: string; proof: string[] }[];
};

/** One chart of one run: drawn inline in the page and, from the same component, as the standalone file `file` (svg). */
export type ReportChart = { runId: number; file: string; title: string; series: ChartSeries[]; options: LineChartOptions; svg: string };
