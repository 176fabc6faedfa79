"use client";
/**
 * Overlaid curves per metric with shared controls: x axis (step, epoch, wall time), log scale, EMA smoothing, which
 * metrics; each run's in-flight decisions as markers on the curves and, under the charts, as a table.
 */
import { useMemo, useState } from "react";
import type { Comparison as RunComparison } from "./comparison-type";
import { MetricChart, type XAxis } from "./metric-chart";
import { InFlightDecisions } from "./inflight-decisions";

/** Validation curves first, then training, then the rest; the learning rate last. */
function defaultCharted(keys: string[]): string[] {
  const rank = (k: string) =>
    k.startsWith("val_") ? 0 : k === "loss" || k === "accuracy" ? 1 : k.startsWith("batch_") ? 2 : k === "lr" ? 4 : 3;
  return [...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).slice(0, 4);
}

export function CurvesPanel({ comparison }: { comparison: RunComparison }) {
  const keys = comparison.metrics.map((m) => m.key);
  const [charted, setCharted] = useState<string[]>(() => defaultCharted(keys));
  const [xAxis, setXAxis] = useState<XAxis>("epoch");
  const [logY, setLogY] = useState(false);
  const [smoothing, setSmoothing] = useState(0);
  // Stable references: the charts recompute their markers only when the comparison changes.
  const runs = useMemo(() => comparison.runs.map((r) => ({ id: r.id, name: r.name })), [comparison.runs]);
  return (
    <section className="panel" aria-label="Curves">
      <h2 style={{ marginTop: 0 }}>Curves</h2>
      {keys.length === 0 ? (
        <p className="muted">None of these runs recorded metrics yet.</p>
      ) : (
        <>
          <div className="controls">
            <label className="field" style={{ flexDirection: "row", alignItems: "center" }}>
              <span>x axis</span>
              <select aria-label="x axis" value={xAxis} onChange={(e) => setXAxis(e.target.value as XAxis)}>
                <option value="step">step</option>
                <option value="epoch">epoch</option>
                <option value="wall">wall time (s)</option>
              </select>
            </label>
            <label className="switch">
              <input type="checkbox" aria-label="Log scale" checked={logY} onChange={(e) => setLogY(e.target.checked)} /> Log scale (y)
            </label>
            <label className="switch">
              Smoothing{" "}
              <input
                type="range"
                aria-label="Smoothing"
                min={0}
                max={0.99}
                step={0.01}
                value={smoothing}
                onChange={(e) => setSmoothing(Number(e.target.value))}
              />
              <span className="mono" style={{ width: 32 }}>
                {smoothing.toFixed(2)}
              </span>
            </label>
          </div>
          <fieldset style={{ padding: "6px 12px" }}>
            <legend>Metrics</legend>
            <div className="row">
              {keys.map((k) => (
                <label key={k} className="check">
                  <input
                    type="checkbox"
                    aria-label={`Chart ${k}`}
                    checked={charted.includes(k)}
                    onChange={(e) => setCharted(e.target.checked ? [...charted, k] : charted.filter((c) => c !== k))}
                  />{" "}
                  <span className="mono">{k}</span>
                </label>
              ))}
            </div>
          </fieldset>
          <div className="grid2">
            {keys
              .filter((k) => charted.includes(k))
              .map((k) => (
                <MetricChart
                  key={`${k}:${xAxis}:${logY}`}
                  metric={k}
                  runs={runs}
                  xAxis={xAxis}
                  logY={logY}
                  smoothing={smoothing}
                  interventions={comparison.interventions}
                />
              ))}
          </div>
        </>
      )}
      <InFlightDecisions comparison={comparison} />
    </section>
  );
}
