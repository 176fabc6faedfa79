/**
 * Chart colours follow the page's colour scheme (light, or dark when the system asks for it: globals.css). A canvas
 * cannot use CSS variables, so this reads --chart-text and --chart-grid from the document and makes them chart.js's
 * default text and line colours (ticks, axis titles, legend, chart title, grid and axis lines all route to these two);
 * when the system setting changes, every chart on the page is redrawn with the new colours.
 *
 * Each chart's canvas carries the colours it was drawn with (data-text-color, data-grid-color), read after every
 * update from the chart's own resolved options, so a test can see what the canvas shows.
 *
 * Invariant: importing this (chart-options.ts does, for every line chart; the compare page's scatter and parallel
 * coordinates import it too) installs the theme once, in the browser only.
 */
import { Chart, type Plugin } from "chart.js";

const FALLBACK = { text: "#5d6677", grid: "rgba(0, 0, 0, 0.1)" };

function schemeColors(): { text: string; grid: string } {
  const style = getComputedStyle(document.documentElement);
  return {
    text: style.getPropertyValue("--chart-text").trim() || FALLBACK.text,
    grid: style.getPropertyValue("--chart-grid").trim() || FALLBACK.grid,
  };
}

/** Writes the colours the chart resolved for its first axis (or itself) onto its canvas, after each update. */
const colorsOnCanvas: Plugin = {
  id: "runledgerThemeColors",
  afterUpdate(chart) {
    const scale = Object.values(chart.scales)[0]?.options as { ticks?: { color?: unknown }; grid?: { color?: unknown } } | undefined;
    const ticks = scale?.ticks;
    const grid = scale?.grid;
    const text = typeof ticks?.color === "string" ? ticks.color : String(chart.options.color ?? "");
    chart.canvas.dataset.textColor = text;
    chart.canvas.dataset.gridColor = typeof grid?.color === "string" ? grid.color : String(chart.options.borderColor ?? "");
  },
};

function apply(): { text: string; grid: string } {
  const colors = schemeColors();
  Chart.defaults.color = colors.text;
  Chart.defaults.borderColor = colors.grid;
  return colors;
}

type Themable = {
  color?: unknown;
  ticks?: { color?: unknown };
  grid?: { color?: unknown };
  title?: { color?: unknown };
  border?: { color?: unknown };
};

/**
 * A chart made before the change keeps the colours it resolved from the old defaults, so they are set on its own
 * options (text, every axis's ticks, title, grid and border, the chart title and legend) before it is redrawn.
 */
function recolor(chart: Chart, { text, grid }: { text: string; grid: string }) {
  const options = chart.options as unknown as {
    color?: unknown;
    borderColor?: unknown;
    scales?: Record<string, Themable>;
    plugins?: { title?: { color?: unknown }; legend?: { labels?: { color?: unknown } } };
  };
  options.color = text;
  options.borderColor = grid;
  for (const scale of Object.values(options.scales ?? {})) {
    if (scale.ticks) scale.ticks.color = text;
    if (scale.title) scale.title.color = text;
    if (scale.grid) scale.grid.color = grid;
    if (scale.border) scale.border.color = grid;
  }
  if (options.plugins?.title) options.plugins.title.color = text;
  if (options.plugins?.legend?.labels) options.plugins.legend.labels.color = text;
  chart.update("none");
}

let installed = false;

export function installChartTheme() {
  if (installed || typeof window === "undefined") return;
  installed = true;
  Chart.register(colorsOnCanvas);
  apply();
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    const colors = apply();
    for (const chart of Object.values(Chart.instances)) recolor(chart, colors);
  });
}

installChartTheme();
