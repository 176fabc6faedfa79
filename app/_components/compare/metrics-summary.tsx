"use client";
/** Each metric's last, min and max per run (from the per-run summaries), with the step of the last value. */
import type { Comparison as RunComparison } from "./comparison-type";
import { formatCount, formatMetric } from "@/app/_components/format";
import { runColor, runLabel } from "./run-colors";

export function MetricsSummary({ comparison }: { comparison: RunComparison }) {
  if (comparison.metrics.length === 0) return <p className="muted">None of these runs recorded metrics yet.</p>;
  return (
    <div style={{ overflowX: "auto" }}>
      <table className="compare-table" aria-label="Metric summaries">
        <thead>
          <tr>
            <th>Metric</th>
            {comparison.runs.map((r, i) => (
              <th key={r.id} style={{ color: runColor(i) }}>
                {runLabel(r, comparison.runs)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {comparison.metrics.map((m) => (
            <tr key={m.key}>
              <td className="mono">{m.key}</td>
              {m.values.map((v, i) => (
                <td
                  key={i}
                  className="num"
                  title={
                    v ? `min ${formatMetric(v.min, m.key)} · max ${formatMetric(v.max, m.key)} · ${formatCount(v.count)} points` : undefined
                  }
                >
                  {v ? (
                    <>
                      {formatMetric(v.last, m.key)}{" "}
                      <span className="muted" style={{ fontSize: 11 }}>
                        @ step {formatCount(v.lastStep)}
                      </span>
                    </>
                  ) : (
                    "–"
                  )}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
