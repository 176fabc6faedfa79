"use client";
/** Hyperparameters side by side (one column per run) with a "Differences only" switch; differing rows are highlighted. */
import { useState } from "react";
import type { Comparison as RunComparison } from "./comparison-type";
import { formatParam } from "@/app/_components/runs-explorer/column-fields";
import { runColor, runLabel } from "./run-colors";

export function ParamsTable({ comparison }: { comparison: RunComparison }) {
  const [differencesOnly, setDifferencesOnly] = useState(false);
  const rows = differencesOnly ? comparison.params.filter((p) => p.differs) : comparison.params;
  const differing = comparison.params.filter((p) => p.differs).length;
  return (
    <section className="panel" aria-label="Hyperparameters">
      <div className="row">
        <h2 style={{ margin: 0 }}>Hyperparameters</h2>
        <span className="muted">
          {differing} of {comparison.params.length} differ
        </span>
        <span className="spacer" />
        <label className="switch">
          <input
            type="checkbox"
            role="switch"
            aria-checked={differencesOnly}
            aria-label="Differences only"
            checked={differencesOnly}
            onChange={(e) => setDifferencesOnly(e.target.checked)}
          />
          Differences only
        </label>
      </div>
      <div style={{ overflowX: "auto", marginTop: 8 }}>
        <table className="compare-table" aria-label="Hyperparameters side by side">
          <thead>
            <tr>
              <th>Parameter</th>
              {comparison.runs.map((r, i) => (
                <th key={r.id} style={{ color: runColor(i) }}>
                  {runLabel(r, comparison.runs)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 ? (
              <tr>
                <td colSpan={comparison.runs.length + 1} className="muted">
                  {differencesOnly ? "No differences: these runs share every hyperparameter." : "No hyperparameters recorded."}
                </td>
              </tr>
            ) : null}
            {rows.map((p) => (
              <tr key={p.path} data-differs={p.differs}>
                <td className="mono">{p.path}</td>
                {p.values.map((v, i) => (
                  <td key={i} className={`mono${p.differs ? " differs" : ""}`}>
                    {formatParam(v)}
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
