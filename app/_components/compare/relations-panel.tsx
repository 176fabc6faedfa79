"use client";
/** Hyperparameters → metric: parallel coordinates over the differing hyperparameters, and a scatter of one chosen hyperparameter against one metric. */
import { useMemo, useState } from "react";
import type { Comparison as RunComparison } from "./comparison-type";
import { defaultMetric, differingParamAxes, metricAxis, paramAxis, type MetricStat } from "./compare-axes";
import { ParallelCoordinates } from "./parallel-coordinates";
import { ParamScatter } from "./param-scatter";

export function RelationsPanel({ comparison }: { comparison: RunComparison }) {
  const [metric, setMetric] = useState(() => defaultMetric(comparison));
  const [stat, setStat] = useState<MetricStat>("last");
  const differing = comparison.params.filter((p) => p.differs);
  const [scatterParam, setScatterParam] = useState(
    () => differing.find((p) => p.path === "training.learningRate")?.path ?? differing[0]?.path ?? comparison.params[0]?.path ?? "",
  );
  const [logX, setLogX] = useState(false);
  const runs = useMemo(() => comparison.runs.map((r) => ({ id: r.id, name: r.name })), [comparison]);
  const yAxis = useMemo(() => metricAxis(comparison, metric, stat), [comparison, metric, stat]);
  const pcpAxes = useMemo(() => (metric ? [...differingParamAxes(comparison), yAxis] : []), [comparison, metric, yAxis]);
  const xParam = comparison.params.find((p) => p.path === scatterParam);
  const xAxis = useMemo(() => (xParam ? paramAxis(xParam.path, xParam.values) : null), [xParam]);
  if (!metric) return null;
  return (
    <section className="panel" aria-label="Hyperparameters and metric">
      <h2 style={{ marginTop: 0 }}>Hyperparameters → metric</h2>
      <div className="controls">
        <label className="field" style={{ flexDirection: "row", alignItems: "center" }}>
          <span>Metric</span>
          <select aria-label="Relation metric" value={metric} onChange={(e) => setMetric(e.target.value)}>
            {comparison.metrics.map((m) => (
              <option key={m.key} value={m.key}>
                {m.key}
              </option>
            ))}
          </select>
          <select aria-label="Metric statistic" value={stat} onChange={(e) => setStat(e.target.value as MetricStat)}>
            <option value="last">last</option>
            <option value="min">min</option>
            <option value="max">max</option>
          </select>
        </label>
      </div>
      <h3>Parallel coordinates</h3>
      <ParallelCoordinates runs={runs} axes={pcpAxes} />
      <h3>Scatter</h3>
      <div className="controls">
        <label className="field" style={{ flexDirection: "row", alignItems: "center" }}>
          <span>x</span>
          <select aria-label="Scatter hyperparameter" value={scatterParam} onChange={(e) => setScatterParam(e.target.value)}>
            {comparison.params.map((p) => (
              <option key={p.path} value={p.path}>
                {p.path}
                {p.differs ? " (differs)" : ""}
              </option>
            ))}
          </select>
        </label>
        <label className="switch">
          <input type="checkbox" aria-label="Log x" checked={logX} onChange={(e) => setLogX(e.target.checked)} /> log x
        </label>
      </div>
      <div style={{ maxWidth: 760 }}>
        {xAxis ? <ParamScatter runs={runs} x={xAxis} y={yAxis} logX={logX} /> : <p className="muted">No hyperparameters recorded.</p>}
      </div>
    </section>
  );
}
