"use client";
/**
 * The model each compared run produced (issue 17): weights size, parameters (non-zero for a pruned model), test accuracy
 * (or MSE) of its best checkpoint, and the inference time a compression measured; a compression names its method and
 * how much smaller it is than the checkpoint it came from. One column per run, in the legend's colours.
 */
import type { Comparison as RunComparison } from "./comparison-type";
import { formatBytes, formatCount, formatMetric } from "@/app/_components/format";
import { runColor, runLabel } from "./run-colors";

export function ModelsPanel({ comparison }: { comparison: RunComparison }) {
  const models = comparison.models;
  if (models.every((m) => m === null)) return null;
  const rows: [string, (m: NonNullable<(typeof models)[number]>) => string][] = [
    ["Compression", (m) => (m.compression ? m.compression.method : "–")],
    ["Weights size", (m) => formatBytes(m.sizeBytes)],
    [
      "Size vs source",
      (m) => (m.compression?.parentSizeBytes ? `${Math.round((100 * m.sizeBytes) / m.compression.parentSizeBytes)}%` : "–"),
    ],
    ["Parameters", (m) => (m.params === null ? "–" : formatCount(m.params))],
    ["Non-zero parameters", (m) => (m.nonzeroParams === null ? "–" : formatCount(m.nonzeroParams))],
    [
      "Test accuracy",
      (m) => (m.accuracy === null ? (m.mse === null ? "–" : `MSE ${formatMetric(m.mse)}`) : formatMetric(m.accuracy, "accuracy")),
    ],
    ["Inference (µs / sample)", (m) => (m.inferenceUsPerSample === null ? "–" : String(m.inferenceUsPerSample))],
  ];
  return (
    <section className="panel" aria-label="Models">
      <h2 style={{ marginTop: 0 }}>Models: size, accuracy, inference time</h2>
      <div style={{ overflowX: "auto" }}>
        <table className="compare-table" aria-label="Model size and accuracy">
          <thead>
            <tr>
              <th></th>
              {comparison.runs.map((r, i) => (
                <th key={r.id} style={{ color: runColor(i) }}>
                  {runLabel(r, comparison.runs)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map(([label, cell]) => (
              <tr key={label}>
                <td>{label}</td>
                {models.map((m, i) => (
                  <td key={i} className="num">
                    {m ? cell(m) : "–"}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
