"use client";
/**
 * Curves of a run logged through the tracking API (origin "api", server/mlflow/): a script names its metrics freely
 * ("train/loss", "val_acc", …), so there is one chart per metric key, x = the step it logged (stored as the epoch
 * too), growing live while the run is RUNNING. Same data as an embedded run's curves (the metrics table).
 */
import { useMemo } from "react";
import { LineChart } from "@/app/_components/line-chart";
import { useLiveMetrics } from "@/app/_components/use-live-metrics";
import { ErrorState } from "@/app/_components/states";

const COLORS = ["#2f5bd3", "#d9480f", "#2e9e68", "#7b3fb8", "#b8860b", "#0f7f8a"];

export function ApiRunCurves({ runId, active, status }: { runId: number; active: boolean; status?: string }) {
  const { series, error, loaded } = useLiveMetrics(runId, active, status);
  const keys = useMemo(() => Object.keys(series).sort(), [series]);
  if (error) return <ErrorState error={error} title="Could not load the curves" />;
  return (
    <section className="panel" aria-label="Curves">
      <h2 style={{ marginTop: 0 }}>Curves</h2>
      <p className="muted">Logged through the MLflow-compatible API: one chart per metric, by step.</p>
      {loaded && keys.length === 0 ? <p className="muted">{active ? "No metric logged yet." : "This run recorded no metrics."}</p> : null}
      <div className="grid2">
        {keys.map((key, i) => (
          <LineChart
            key={key}
            title={key}
            ariaLabel={`${key} curve`}
            series={[
              { label: key, color: COLORS[i % COLORS.length]!, points: (series[key] ?? []).map((p) => ({ x: p.step, y: p.value })) },
            ]}
            xLabel="step"
            yLabel={key}
            zoomable
          />
        ))}
      </div>
    </section>
  );
}
