"use client";
/** A scatter of one hyperparameter (x) against one metric (y): one point per run, in its compare colour. */
import { useEffect, useRef } from "react";
import { Chart, ScatterController, PointElement, LinearScale, LogarithmicScale, Tooltip } from "chart.js";
import type { Axis } from "./compare-axes";
import { tickLabel } from "./compare-axes";
import { runColor } from "./run-colors";
import "../chart-theme";

Chart.register(ScatterController, PointElement, LinearScale, LogarithmicScale, Tooltip);

export function ParamScatter({ runs, x, y, logX }: { runs: { id: number; name: string }[]; x: Axis; y: Axis; logX: boolean }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!canvas.current) return;
    const chart = new Chart(canvas.current, {
      type: "scatter",
      data: {
        datasets: runs.flatMap((r, i) => {
          const xv = x.values[i];
          const yv = y.values[i];
          return xv === null || xv === undefined || yv === null || yv === undefined
            ? []
            : [{ label: r.name, data: [{ x: xv, y: yv }], backgroundColor: runColor(i), borderColor: runColor(i), pointRadius: 6 }];
        }),
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: {
          x: {
            type: logX && !x.categories ? "logarithmic" : "linear",
            title: { display: true, text: x.label },
            ticks: { callback: tickLabel(x), ...(x.categories ? { stepSize: 1 } : {}) },
            ...(x.categories ? { min: -0.5, max: x.categories.length - 0.5 } : {}),
          },
          y: { type: "linear", title: { display: true, text: y.label } },
        },
      },
    });
    return () => chart.destroy();
  }, [runs, x, y, logX]);
  const plotted = runs.filter((_, i) => x.values[i] !== null && y.values[i] !== null).length;
  return (
    <div>
      <div className="chart-tall">
        <canvas ref={canvas} role="img" aria-label="Scatter chart" />
      </div>
      <p className="muted" style={{ fontSize: 12, margin: "4px 0 0" }}>
        {plotted} of {runs.length} runs have both values.
      </p>
    </div>
  );
}
