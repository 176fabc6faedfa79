"use client";
/**
 * A chart.js line chart over numeric x (step, epoch or seconds). Updates in place as points arrive, without
 * re-creating the chart. Optional markers draw a dashed vertical line at an x (e.g. an intervention's epoch) with a
 * hover card over it; the card is decoration (aria-hidden): a page that shows markers lists them accessibly too.
 */
import { useEffect, useRef, useState } from "react";
import { Chart, Legend, Decimation, type ChartDataset } from "chart.js";
import { baseLineOptions, type XYPoint } from "./chart-options";
import { MarkerCards, markersPlugin, type ChartMarker, type MarkerBox } from "./chart-markers";

Chart.register(Legend, Decimation);

export type Series = { label: string; color: string; points: XYPoint[]; dashed?: boolean };
export type { ChartMarker } from "./chart-markers";

export function LineChart({
  title,
  series,
  xLabel,
  yLabel,
  logY = false,
  ariaLabel,
  markers,
}: {
  title: string;
  series: Series[];
  xLabel: string;
  yLabel: string;
  logY?: boolean;
  ariaLabel?: string;
  markers?: ChartMarker[];
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<"line", XYPoint[]> | null>(null);
  const markersRef = useRef<ChartMarker[]>(markers ?? []);
  const [boxes, setBoxes] = useState<MarkerBox[]>([]);

  useEffect(() => {
    if (!canvas.current) return;
    const base = baseLineOptions({ title, xLabel, yLabel, logY });
    // Draws the marker lines after the datasets, and hands their pixel positions to React for the hover cards.
    const markerPlugin = markersPlugin(markersRef, setBoxes);
    chart.current = new Chart(canvas.current, {
      type: "line",
      data: { datasets: [] },
      options: {
        ...base,
        plugins: { ...base.plugins, legend: { position: "bottom" }, decimation: { enabled: true, algorithm: "lttb", samples: 800 } },
      },
      plugins: [markerPlugin],
    });
    return () => {
      chart.current?.destroy();
      chart.current = null;
    };
  }, [title, xLabel, yLabel, logY]);

  useEffect(() => {
    const c = chart.current;
    if (!c) return;
    markersRef.current = markers ?? [];
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
  }, [series, markers]);

  return (
    <div className="chart-box">
      <canvas
        ref={canvas}
        role="img"
        aria-label={ariaLabel ?? title}
        data-points={series.reduce((n, s) => n + s.points.length, 0)}
        data-markers={markers?.length ?? 0}
      />
      <MarkerCards boxes={boxes} />
    </div>
  );
}
