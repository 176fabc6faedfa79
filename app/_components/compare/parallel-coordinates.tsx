"use client";
/**
 * Parallel coordinates: one vertical axis per differing hyperparameter and a last axis for the chosen
 * metric; one line per run in its compare colour (chartjs-chart-pcp, which works with chart.js 4.6).
 * Text hyperparameters become category axes labelled with their values.
 */
import { useEffect, useRef } from "react";
import { ParallelCoordinatesChart } from "chartjs-chart-pcp";
import { Tooltip } from "chart.js";
import type { Axis } from "./compare-axes";
import { tickLabel } from "./compare-axes";
import { runColor } from "./run-colors";
import "../chart-theme";

ParallelCoordinatesChart.register(Tooltip);

export function ParallelCoordinates({ runs, axes }: { runs: { id: number; name: string }[]; axes: Axis[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!canvas.current || axes.length < 2) return;
    const chart = new ParallelCoordinatesChart(canvas.current, {
      data: {
        labels: runs.map((r) => r.name),
        datasets: axes.map((a) => ({
          label: a.label,
          data: a.values.map((v) => (v === null ? Number.NaN : v)),
          borderColor: (ctx: { dataIndex: number }) => runColor(ctx.dataIndex),
          borderWidth: 2.5,
          ticks: { callback: tickLabel(a), ...(a.categories ? { stepSize: 1 } : {}) },
          ...(a.categories ? { min: -0.25, max: a.categories.length - 0.75 } : {}),
        })),
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        layout: { padding: { top: 14, bottom: 4, left: 8, right: 8 } },
        plugins: { legend: { display: false } },
      },
    } as ConstructorParameters<typeof ParallelCoordinatesChart>[1]);
    return () => chart.destroy();
  }, [runs, axes]);
  if (axes.length < 2)
    return (
      <p className="muted">
        Parallel coordinates need at least one differing hyperparameter and a metric; these runs share every hyperparameter.
      </p>
    );
  return (
    <div className="chart-tall" style={{ height: 360 }}>
      <canvas ref={canvas} role="img" aria-label="Parallel coordinates chart" />
    </div>
  );
}
