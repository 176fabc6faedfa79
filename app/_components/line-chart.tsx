"use client";
/** A chart.js line chart over numeric x (step, epoch or seconds). Updates in place as points arrive, without re-creating the chart. */
import { useEffect, useRef } from "react";
import { Chart, Legend, Decimation, type ChartDataset } from "chart.js";
import { baseLineOptions, type XYPoint } from "./chart-options";

Chart.register(Legend, Decimation);

export type Series = { label: string; color: string; points: XYPoint[]; dashed?: boolean };

export function LineChart({
  title,
  series,
  xLabel,
  yLabel,
  logY = false,
  ariaLabel,
}: {
  title: string;
  series: Series[];
  xLabel: string;
  yLabel: string;
  logY?: boolean;
  ariaLabel?: string;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<"line", XYPoint[]> | null>(null);

  useEffect(() => {
    if (!canvas.current) return;
    const base = baseLineOptions({ title, xLabel, yLabel, logY });
    chart.current = new Chart(canvas.current, {
      type: "line",
      data: { datasets: [] },
      options: {
        ...base,
        plugins: { ...base.plugins, legend: { position: "bottom" }, decimation: { enabled: true, algorithm: "lttb", samples: 800 } },
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
    c.data.datasets = series.map((s): ChartDataset<"line", XYPoint[]> => ({
      label: s.label,
      data: s.points,
      borderColor: s.color,
      backgroundColor: s.color,
      borderWidth: 1.5,
      pointRadius: s.points.length > 60 ? 0 : 2,
      borderDash: s.dashed ? [5, 4] : undefined,
      indexAxis: "x",
    }));
    c.update("none");
  }, [series]);

  return (
    <div className="chart-box">
      <canvas ref={canvas} role="img" aria-label={ariaLabel ?? title} data-points={series.reduce((n, s) => n + s.points.length, 0)} />
    </div>
  );
}
