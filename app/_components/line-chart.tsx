"use client";
/** A chart.js line chart over numeric x (step, epoch or seconds). Updates in place as points arrive, without re-creating the chart. */
import { useEffect, useRef } from "react";
import { Chart, LineController, LineElement, PointElement, LinearScale, LogarithmicScale, Legend, Tooltip, Title, Decimation, type ChartDataset } from "chart.js";

Chart.register(LineController, LineElement, PointElement, LinearScale, LogarithmicScale, Legend, Tooltip, Title, Decimation);

export type Series = { label: string; color: string; points: { x: number; y: number }[]; dashed?: boolean };

export function LineChart({ title, series, xLabel, yLabel, logY = false, ariaLabel }: { title: string; series: Series[]; xLabel: string; yLabel: string; logY?: boolean; ariaLabel?: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<"line", { x: number; y: number }[]> | null>(null);

  useEffect(() => {
    if (!canvas.current) return;
    chart.current = new Chart(canvas.current, {
      type: "line",
      data: { datasets: [] },
      options: {
        animation: false,
        parsing: false,
        normalized: true,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        plugins: { title: { display: true, text: title }, legend: { position: "bottom" }, decimation: { enabled: true, algorithm: "lttb", samples: 800 } },
        scales: { x: { type: "linear", title: { display: true, text: xLabel } }, y: { type: logY ? "logarithmic" : "linear", title: { display: true, text: yLabel } } },
      },
    });
    return () => {
      chart.current?.destroy();
      chart.current = null;
    };
  }, [title, xLabel, yLabel, logY]);

  useEffect(() => {
    const c = chart.current;
    if (!c) return;
    c.data.datasets = series.map(
      (s): ChartDataset<"line", { x: number; y: number }[]> => ({ label: s.label, data: s.points, borderColor: s.color, backgroundColor: s.color, borderWidth: 1.5, pointRadius: s.points.length > 60 ? 0 : 2, borderDash: s.dashed ? [5, 4] : undefined, indexAxis: "x" }),
    );
    c.update("none");
  }, [series]);

  return <div className="chart-box"><canvas ref={canvas} role="img" aria-label={ariaLabel ?? title} data-points={series.reduce((n, s) => n + s.points.length, 0)} /></div>;
}
