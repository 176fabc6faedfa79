"use client";
/**
 * A chart.js line chart over numeric x (step, epoch or seconds). Updates in place as points arrive, without
 * re-creating the chart. Optional markers draw a dashed vertical line at an x (e.g. an intervention's epoch) with a
 * hover card over it; the card is decoration (aria-hidden): a page that shows markers lists them accessibly too.
 * With `zoomable`, wheel/drag zooms the x axis and shift-drag pans (chartjs-plugin-zoom, the compare view's mechanism,
 * loaded in the browser only); "Reset zoom" restores the full range. The data is all in the browser here, so a zoom
 * fetches nothing. Switching the y scale (log) re-creates the chart with the current series, never an empty one.
 */
import { useEffect, useRef, useState } from "react";
import { Chart, Legend, Decimation, type ChartDataset } from "chart.js";
import type {} from "chartjs-plugin-zoom"; // its option types only; the plugin itself loads in the browser
import { baseLineOptions, type XYPoint } from "./chart-options";
import { MarkerCards, markersPlugin, type ChartMarker, type MarkerBox } from "./chart-markers";

Chart.register(Legend, Decimation);

let zoomPlugin: Promise<void> | null = null;
function loadZoom(): Promise<void> {
  zoomPlugin ??= import("chartjs-plugin-zoom").then((m) => Chart.register(m.default));
  return zoomPlugin;
}

function toDatasets(series: Series[]): ChartDataset<"line", XYPoint[]>[] {
  return series.map((s) => ({
    label: s.label,
    data: s.points,
    borderColor: s.color,
    backgroundColor: s.color,
    borderWidth: 1.5,
    pointRadius: s.points.length > 60 ? 0 : 2,
    borderDash: s.dashed ? [5, 4] : undefined,
    indexAxis: "x",
  }));
}

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
  zoomable = false,
  smoothing,
}: {
  title: string;
  series: Series[];
  xLabel: string;
  yLabel: string;
  logY?: boolean;
  ariaLabel?: string;
  markers?: ChartMarker[];
  zoomable?: boolean;
  /** The EMA weight the caller applied to the series; shown as data-smoothing (tests read the chart's state there). */
  smoothing?: number;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<"line", XYPoint[]> | null>(null);
  const markersRef = useRef<ChartMarker[]>(markers ?? []);
  const [boxes, setBoxes] = useState<MarkerBox[]>([]);

  const latest = useRef(series);
  const [zoomed, setZoomed] = useState(false);
  useEffect(() => {
    latest.current = series;
  });

  useEffect(() => {
    let cancelled = false;
    const create = () => {
      if (cancelled || !canvas.current) return;
      const base = baseLineOptions({ title, xLabel, yLabel, logY });
      // Draws the marker lines after the datasets, and hands their pixel positions to React for the hover cards.
      const markerPlugin = markersPlugin(markersRef, setBoxes);
      chart.current = new Chart(canvas.current, {
        type: "line",
        data: { datasets: toDatasets(latest.current) },
        options: {
          ...base,
          plugins: {
            ...base.plugins,
            legend: { position: "bottom" },
            decimation: { enabled: true, algorithm: "lttb", samples: 800 },
            ...(zoomable
              ? {
                  zoom: {
                    zoom: {
                      wheel: { enabled: true },
                      drag: { enabled: true, backgroundColor: "rgba(47,91,211,0.12)" },
                      mode: "x" as const,
                      onZoomComplete: () => setZoomed(true),
                    },
                    pan: { enabled: true, mode: "x" as const, modifierKey: "shift" as const, onPanComplete: () => setZoomed(true) },
                  },
                }
              : {}),
          },
        },
        plugins: [markerPlugin],
      });
    };
    if (zoomable) void loadZoom().then(create);
    else create();
    return () => {
      cancelled = true;
      chart.current?.destroy();
      chart.current = null;
      setZoomed(false);
    };
  }, [title, xLabel, yLabel, logY, zoomable]);

  useEffect(() => {
    const c = chart.current;
    markersRef.current = markers ?? [];
    if (!c) return;
    c.data.datasets = toDatasets(series);
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
        data-log-y={logY ? "true" : "false"}
        data-smoothing={smoothing === undefined ? undefined : smoothing.toFixed(2)}
        data-zoomed={zoomable ? (zoomed ? "true" : "false") : undefined}
      />
      <MarkerCards boxes={boxes} />
      {zoomable ? (
        <button
          type="button"
          className="chart-reset"
          aria-label={`Reset zoom: ${ariaLabel ?? title}`}
          disabled={!zoomed}
          style={{ position: "absolute", top: 0, right: 0, fontSize: 11, padding: "1px 6px" }}
          onClick={() => {
            (chart.current as unknown as { resetZoom?: () => void } | null)?.resetZoom?.();
            setZoomed(false);
          }}
        >
          Reset zoom
        </button>
      ) : null}
    </div>
  );
}
