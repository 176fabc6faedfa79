"use client";
/** Loss and accuracy curves (train per batch and per epoch, validation per epoch), growing live while the run trains. */
import { useMemo } from "react";
import { LineChart, type Series } from "@/app/_components/line-chart";
import { useLiveMetrics, type Point } from "@/app/_components/use-live-metrics";
import { ErrorState } from "@/app/_components/states";

const toXY = (pts: Point[] | undefined) => (pts ?? []).map((p) => ({ x: p.epoch, y: p.value }));

export function RunCurves({ runId, active, task }: { runId: number; active: boolean; task: "classification" | "regression" }) {
  const { series, error, loaded } = useLiveMetrics(runId, active);
  const second = task === "classification" ? "accuracy" : "mae";
  const loss = useMemo<Series[]>(
    () => [
      { label: "train loss (batch)", color: "rgba(47,91,211,0.35)", points: toXY(series.batch_loss) },
      { label: "train loss (epoch)", color: "#2f5bd3", points: toXY(series.loss) },
      { label: "validation loss", color: "#d9480f", points: toXY(series.val_loss), dashed: true },
    ],
    [series],
  );
  const acc = useMemo<Series[]>(
    () => [
      { label: `train ${second} (epoch)`, color: "#2f5bd3", points: toXY(series[second]) },
      { label: `validation ${second}`, color: "#d9480f", points: toXY(series[`val_${second}`]), dashed: true },
    ],
    [series, second],
  );
  if (error) return <ErrorState error={error} title="Could not load the curves" />;
  return (
    <section className="panel" aria-label="Curves">
      <h2 style={{ marginTop: 0 }}>Curves</h2>
      {loaded && Object.keys(series).length === 0 ? (
        <p className="muted">{active ? "Waiting for the first batch…" : "This run recorded no metrics."}</p>
      ) : null}
      <div className="grid2">
        <LineChart title="Loss" ariaLabel="Loss curve" series={loss} xLabel="epoch" yLabel="loss" />
        <LineChart
          title={task === "classification" ? "Accuracy" : "Mean absolute error"}
          ariaLabel={`${second} curve`}
          series={acc}
          xLabel="epoch"
          yLabel={second}
        />
      </div>
    </section>
  );
}
