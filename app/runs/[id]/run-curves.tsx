"use client";
/**
 * Loss and accuracy curves (train per batch and per epoch, validation per epoch) and the applied learning rate per
 * epoch, growing live while the run trains. Each applied intervention is a dashed marker at its epoch on every chart
 * (hover: who, what, why) and a line of the marker list under the charts, which is the accessible form of the markers.
 * The compare view's controls apply to the loss and accuracy charts: log y scale, EMA smoothing (the same emaSmooth,
 * 0 = raw) and wheel/drag zoom on x (the same chartjs-plugin-zoom). The learning-rate chart stays raw and log-scaled
 * (an applied schedule is not noise) but zooms too. Each chart exposes its state as data attributes (data-log-y,
 * data-smoothing), since canvas content is not inspectable.
 */
import { useMemo, useState } from "react";
import { LineChart, type ChartMarker, type Series } from "@/app/_components/line-chart";
import { useLiveMetrics, type Point } from "@/app/_components/use-live-metrics";
import { ErrorState } from "@/app/_components/states";
import { emaSmooth } from "@/app/_components/compare/smoothing";
// The compare view's control classes (.controls, .switch), so both pages' curve controls look the same.
import "@/app/_components/runs-explorer/explorer.css";
import { describeChanges, type Intervention } from "./interventions";

const toXY = (pts: Point[] | undefined) => (pts ?? []).map((p) => ({ x: p.epoch, y: p.value }));
const smooth = (ss: Series[], weight: number): Series[] =>
  weight > 0 ? ss.map((s) => ({ ...s, points: emaSmooth(s.points, weight) })) : ss;

/** "epoch 12 (step 340) · Erin Engineer: training.learningRate 0.03 → 0.005 — “why”" */
function markerText(i: Intervention): string {
  return `epoch ${i.appliedAtEpoch} (step ${i.appliedAtStep}) · ${i.requestedBy.name}: ${describeChanges(i)} — “${i.rationale}”`;
}

export function RunCurves({
  runId,
  active,
  status,
  task,
  interventions,
}: {
  runId: number;
  active: boolean;
  /** The run's status: the curves are read once more when it changes (see useLiveMetrics). */
  status?: string;
  task: "classification" | "regression";
  interventions: Intervention[];
}) {
  const { series, error, loaded } = useLiveMetrics(runId, active, status);
  const second = task === "classification" ? "accuracy" : "mae";
  const [logY, setLogY] = useState(false);
  const [smoothing, setSmoothing] = useState(0);
  const applied = useMemo(() => interventions.filter((i) => i.status === "applied" && i.appliedAtEpoch !== null), [interventions]);
  const markers = useMemo<ChartMarker[]>(
    () => applied.map((i) => ({ x: i.appliedAtEpoch!, title: `${markerText(i).replace(" · ", "\n")}` })),
    [applied],
  );
  const loss = useMemo<Series[]>(
    () => [
      { label: "train loss (batch)", color: "rgba(63,111,224,0.35)", points: toXY(series.batch_loss) },
      { label: "train loss (epoch)", color: "#3f6fe0", points: toXY(series.loss) },
      { label: "validation loss", color: "#d9480f", points: toXY(series.val_loss), dashed: true },
    ],
    [series],
  );
  const lossShown = useMemo(() => smooth(loss, smoothing), [loss, smoothing]);
  const acc = useMemo<Series[]>(
    () => [
      { label: `train ${second} (epoch)`, color: "#3f6fe0", points: toXY(series[second]) },
      { label: `validation ${second}`, color: "#d9480f", points: toXY(series[`val_${second}`]), dashed: true },
    ],
    [series, second],
  );
  const accShown = useMemo(() => smooth(acc, smoothing), [acc, smoothing]);
  const lr = useMemo<Series[]>(
    () => [{ label: "learning rate (applied, per epoch)", color: "#2e9e68", points: toXY(series.lr) }],
    [series],
  );
  if (error) return <ErrorState error={error} title="Could not load the curves" />;
  // A finished run without a single metric (it failed before it recorded a batch): empty 0–1 axes, zoom and smoothing
  // controls would only suggest something is still to come. A live run keeps its empty charts, which fill as it trains.
  if (loaded && !active && Object.keys(series).length === 0)
    return (
      <section className="panel" aria-label="Curves">
        <h2 style={{ marginTop: 0 }}>Curves</h2>
        <p className="muted">
          This run recorded no metrics{status === "failed" ? ": it failed before it recorded a batch (see why above)." : "."}
        </p>
      </section>
    );
  return (
    <section className="panel" aria-label="Curves">
      <h2 style={{ marginTop: 0 }}>Curves</h2>
      {loaded && Object.keys(series).length === 0 ? <p className="muted">Waiting for the first batch…</p> : null}
      <div className="controls" role="group" aria-label="Curve controls">
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
        <span className="muted" style={{ fontSize: 12 }}>
          Drag or scroll on a chart to zoom; shift-drag to pan.
        </span>
      </div>
      <div className="grid2">
        <LineChart
          title="Loss"
          ariaLabel="Loss curve"
          series={lossShown}
          xLabel="epoch"
          yLabel={logY ? "loss (log)" : "loss"}
          logY={logY}
          smoothing={smoothing}
          markers={markers}
          zoomable
        />
        <LineChart
          title={task === "classification" ? "Accuracy" : "Mean absolute error"}
          ariaLabel={`${second} curve`}
          series={accShown}
          xLabel="epoch"
          yLabel={logY ? `${second} (log)` : second}
          logY={logY}
          smoothing={smoothing}
          markers={markers}
          zoomable
        />
        {series.lr?.length ? (
          <LineChart
            title="Learning rate"
            ariaLabel="Learning rate curve"
            series={lr}
            xLabel="epoch"
            yLabel="learning rate (log)"
            logY
            markers={markers}
            zoomable
          />
        ) : null}
      </div>
      {applied.length ? (
        <div style={{ marginTop: 8 }}>
          <strong style={{ fontSize: 13 }}>Markers</strong>
          <ul aria-label="Intervention markers" style={{ listStyle: "none", padding: 0, margin: "4px 0 0", fontSize: 13 }}>
            {applied.map((i) => (
              <li key={i.id} aria-label={`Marker at epoch ${i.appliedAtEpoch}: ${describeChanges(i)}`}>
                <span className="marker-swatch" aria-hidden="true" />
                {markerText(i)}
              </li>
            ))}
          </ul>
        </div>
      ) : (
        <p className="muted" style={{ margin: "8px 0 0", fontSize: 13 }}>
          No interventions yet: a dashed marker appears on the curves at the epoch where each one takes effect.
        </p>
      )}
    </section>
  );
}
