"use client";
/**
 * Vertical markers on a chart.js chart (e.g. where an intervention took effect): a chart.js plugin draws a dashed
 * line at each marker's x inside the chart area, and hands the pixel positions to React, which renders a hover card
 * over each line. Shared by LineChart (run page) and OverlayChart (compare view).
 *
 * Invariants: the cards are decoration (aria-hidden); a page that shows markers lists them accessibly too. A marker
 * outside the visible x range (zoomed out of view) draws nothing. Markers at the same pixel (a pause and a change
 * at one epoch, or two runs' decisions at one epoch) share one card listing them all, else the top one would hide
 * the others from the pointer. The plugin reads the markers through a ref, so new
 * markers need no new chart: set the ref, then update the chart.
 */
import type { Plugin } from "chart.js";

/** A vertical marker at `x`; `title` is shown when hovering it; `color` defaults to the intervention purple. */
export type ChartMarker = { x: number; title: string; color?: string };
export type MarkerBox = { left: number; top: number; height: number; title: string; color: string };

export const MARKER_COLOR = "#7a4cc2";

/** A chart.js plugin drawing `markers.current` after the datasets and reporting their boxes when they move. */
export function markersPlugin(
  markers: { readonly current: readonly ChartMarker[] },
  onBoxes: (boxes: MarkerBox[]) => void,
): Plugin<"line"> {
  let last = "";
  return {
    id: "runledgerMarkers",
    afterDatasetsDraw(c) {
      const { left, right, top, bottom } = c.chartArea;
      const out: MarkerBox[] = [];
      const ctx = c.ctx;
      ctx.save();
      ctx.lineWidth = 1.5;
      ctx.setLineDash([4, 3]);
      for (const m of markers.current) {
        const px = c.scales.x!.getPixelForValue(m.x);
        if (!Number.isFinite(px) || px < left - 0.5 || px > right + 0.5) continue;
        const color = m.color ?? MARKER_COLOR;
        ctx.strokeStyle = color;
        ctx.beginPath();
        ctx.moveTo(px, top);
        ctx.lineTo(px, bottom);
        ctx.stroke();
        const same = out.find((b) => Math.abs(b.left - px) < 1);
        if (same) same.title += `\n\n${m.title}`;
        else out.push({ left: px, top, height: bottom - top, title: m.title, color });
      }
      ctx.restore();
      const key = JSON.stringify(out);
      if (key !== last) {
        last = key;
        onBoxes(out);
      }
    },
  };
}

/** The hover cards over the marker lines (inside a position: relative box holding the canvas). */
export function MarkerCards({ boxes }: { boxes: MarkerBox[] }) {
  return (
    <>
      {boxes.map((b, i) => (
        <span key={i} className="chart-marker" aria-hidden="true" style={{ left: b.left - 5, top: b.top, height: b.height }}>
          <span className="chart-marker-card" style={{ borderLeftColor: b.color }}>
            {b.title}
          </span>
        </span>
      ))}
    </>
  );
}
