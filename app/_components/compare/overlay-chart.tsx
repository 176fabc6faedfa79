"use client";
/**
 * A chart.js line chart of several runs' curves over one x axis, with wheel/drag zoom and shift-drag pan
 * (chartjs-plugin-zoom, loaded in the browser only: it touches `window` on import). After a zoom or pan the
 * visible x range is reported, so the caller can fetch that range's detail from the server; "Reset zoom"
 * reports null. Data updates in place (no re-creation), so a refetch keeps the zoom. Optional markers (e.g. each
 * run's interventions, in its colour) are dashed vertical lines with a hover card (chart-markers.tsx).
 */
import { useEffect, useRef, useState } from "react";
import { Chart, type ChartDataset } from "chart.js";
import type {} from "chartjs-plugin-zoom"; // its option types only; the plugin itself loads in the browser
import { baseLineOptions, type XYPoint } from "../chart-options";
import { MarkerCards, markersPlugin, type ChartMarker, type MarkerBox } from "../chart-markers";

export type OverlaySeries = { label: string; color: string; points: XYPoint[]; faint?: boolean };
export type XRange = { from: number; to: number };

let zoomPlugin: Promise<void> | null = null;
function loadZoom(): Promise<void> {
  zoomPlugin ??= import("chartjs-plugin-zoom").then((m) => Chart.register(m.default));
  return zoomPlugin;
}

function toDatasets(ss: OverlaySeries[]): ChartDataset<"line", XYPoint[]>[] {
  return ss.map((s) => ({
    label: s.label,
    data: s.points,
    borderColor: s.color,
    backgroundColor: s.color,
    borderWidth: s.faint ? 1 : 1.8,
    pointRadius: s.points.length > 40 ? 0 : 2.5,
    pointHitRadius: 4,
  }));
}

export function OverlayChart({
  title,
  ariaLabel,
  series,
  xLabel,
  yLabel,
  logY,
  onZoom,
  markers,
}: {
  title: string;
  ariaLabel: string;
  series: OverlaySeries[];
  xLabel: string;
  yLabel: string;
  logY: boolean;
  onZoom: (range: XRange | null) => void;
  markers?: ChartMarker[];
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<"line", XYPoint[]> | null>(null);
  const latest = useRef(series);
  const onZoomRef = useRef(onZoom);
  const [zoomed, setZoomed] = useState(false);
  const markersRef = useRef<ChartMarker[]>(markers ?? []);
  const [boxes, setBoxes] = useState<MarkerBox[]>([]);
  // The chart is created once per axis setup; these refs let its callbacks see the newest props without recreating it.
  useEffect(() => {
    latest.current = series;
    onZoomRef.current = onZoom;
  });

  useEffect(() => {
    let cancelled = false;
    void loadZoom().then(() => {
      if (cancelled || !canvas.current) return;
      const report = ({ chart: c }: { chart: Chart }) => {
        const x = c.scales.x;
        if (!x) return;
        setZoomed(true);
        onZoomRef.current({ from: x.min, to: x.max });
      };
      const base = baseLineOptions({ title, xLabel, yLabel, logY });
      chart.current = new Chart<"line", XYPoint[]>(canvas.current, {
        type: "line",
        data: { datasets: toDatasets(latest.current) },
        options: {
          ...base,
          plugins: {
            ...base.plugins,
            legend: { display: false },
            tooltip: { filter: (item) => !String(item.dataset.label).endsWith("(raw)") },
            zoom: {
              zoom: {
                wheel: { enabled: true },
                drag: { enabled: true, backgroundColor: "rgba(47,91,211,0.12)" },
                mode: "x",
                onZoomComplete: report,
              },
              pan: { enabled: true, mode: "x", modifierKey: "shift", onPanComplete: report },
            },
          },
        },
        plugins: [markersPlugin(markersRef, setBoxes)],
      });
    });
    return () => {
      cancelled = true;
      chart.current?.destroy();
      chart.current = null;
      setZoomed(false);
      setBoxes([]);
    };
  }, [title, xLabel, yLabel, logY]);

  useEffect(() => {
    markersRef.current = markers ?? [];
    const c = chart.current;
    if (!c) return;
    c.data.datasets = toDatasets(series);
    c.update("none");
  }, [series, markers]);

  const points = series.reduce((n, s) => n + (s.faint ? 0 : s.points.length), 0);
  return (
    <div>
      <div className="chart-tall">
        <canvas ref={canvas} role="img" aria-label={ariaLabel} data-points={points} data-markers={markers?.length ?? 0} />
        <MarkerCards boxes={boxes} />
      </div>
      <div className="row" style={{ justifyContent: "flex-end", marginTop: 4 }}>
        <span className="muted" style={{ fontSize: 12 }}>
          Drag or scroll to zoom (detail is fetched from the server); shift-drag to pan.
        </span>
        <button
          type="button"
          disabled={!zoomed}
          onClick={() => {
            (chart.current as unknown as { resetZoom?: () => void } | null)?.resetZoom?.();
            setZoomed(false);
            onZoom(null);
          }}
        >
          Reset zoom
        </button>
      </div>
    </div>
  );
}
