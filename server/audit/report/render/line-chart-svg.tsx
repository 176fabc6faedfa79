/**
 * Server-side SVG line charts for the auditor's report: training curves drawn from the recorded metric points,
 * with no browser. One component, <LineChartSvg>, draws both the chart inlined in report.html and the standalone
 * charts/*.svg file (renderLineChartSvg), so the two cannot drift apart.
 *
 * Invariants: every text goes through React, which escapes it (no string is ever pasted into markup); non-finite
 * values are skipped; coordinates are printed with fixed precision; the output is a pure function of its input
 * (same points → same bytes, so the chart files can be hashed and re-rendered by `export --verify`); the standalone
 * document sets xmlns, and series differ by dash pattern as well as colour (prints in black and white).
 */
import { Fragment, type ReactNode } from "react";
import { renderToStaticMarkup } from "./static-markup";

export type ChartSeries = { name: string; points: { x: number; y: number }[] };
export type LineChartOptions = { title: string; xLabel: string; yLabel: string; width?: number; height?: number };

const COLOURS = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#444444"];
const DASHES = ["", "6 3", "2 3", "8 3 2 3", "1 2"];
const MARGIN = { left: 64, right: 16, top: 32, bottom: 48 };

const fmt = (v: number) => (Math.round(v * 100) / 100).toFixed(2);

/** "Nice" tick values covering [min, max] (about `count` of them). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const rough = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= rough) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function tickLabel(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 10_000 || a < 0.001 ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

/** The data range, widened when flat (so a constant series still gets an axis) and padded 5 % vertically. */
function extent(all: { x: number; y: number }[]) {
  let xMin = Math.min(...all.map((p) => p.x)),
    xMax = Math.max(...all.map((p) => p.x));
  let yMin = Math.min(...all.map((p) => p.y)),
    yMax = Math.max(...all.map((p) => p.y));
  if (xMax === xMin) [xMin, xMax] = [xMin - 1, xMax + 1];
  if (yMax === yMin) [yMin, yMax] = [yMin - Math.abs(yMin || 1) * 0.1, yMax + Math.abs(yMax || 1) * 0.1];
  const pad = (yMax - yMin) * 0.05;
  return { xMin, xMax, yMin: yMin - pad, yMax: yMax + pad };
}

export function LineChartSvg({ series, options: o }: { series: ChartSeries[]; options: LineChartOptions }) {
  const width = o.width ?? 640;
  const height = o.height ?? 300;
  const m = MARGIN;
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const clean = series.map((s) => ({
    ...s,
    points: s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x),
  }));
  const all = clean.flatMap((s) => s.points);
  const frame = (
    <>
      <title>{o.title}</title>
      <rect x={0} y={0} width={width} height={height} fill="#ffffff" />
      <text x={m.left} y={18} fontSize={13} fontWeight="bold">
        {o.title}
      </text>
    </>
  );
  const svg = (children: ReactNode) => (
    <svg
      xmlns="http://www.w3.org/2000/svg"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={o.title}
      fontFamily="sans-serif"
      fontSize={11}
    >
      {frame}
      {children}
    </svg>
  );
  if (all.length === 0)
    return svg(
      <text x={width / 2} y={height / 2} textAnchor="middle" fill="#666">
        no points recorded
      </text>,
    );

  const { xMin, xMax, yMin, yMax } = extent(all);
  const sx = (x: number) => m.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const sy = (y: number) => m.top + plotH - ((y - yMin) / (yMax - yMin)) * plotH;
  return svg(
    <>
      {niceTicks(yMin, yMax).map((t) => {
        const y = fmt(sy(t));
        return (
          <Fragment key={`y${t}`}>
            <line x1={m.left} x2={m.left + plotW} y1={y} y2={y} stroke="#e5e5e5" />
            <text x={m.left - 6} y={y} textAnchor="end" dominantBaseline="middle">
              {tickLabel(t)}
            </text>
          </Fragment>
        );
      })}
      {niceTicks(xMin, xMax, 8).map((t) => {
        const x = fmt(sx(t));
        return (
          <Fragment key={`x${t}`}>
            <line x1={x} x2={x} y1={m.top + plotH} y2={m.top + plotH + 4} stroke="#333" />
            <text x={x} y={m.top + plotH + 16} textAnchor="middle">
              {tickLabel(t)}
            </text>
          </Fragment>
        );
      })}
      <rect x={m.left} y={m.top} width={plotW} height={plotH} fill="none" stroke="#333" />
      <text x={m.left + plotW / 2} y={height - 8} textAnchor="middle">
        {o.xLabel}
      </text>
      <text transform={`translate(14 ${m.top + plotH / 2}) rotate(-90)`} textAnchor="middle">
        {o.yLabel}
      </text>
      {clean.map((s, i) => {
        if (s.points.length === 0) return null;
        const colour = COLOURS[i % COLOURS.length]!;
        const dash = DASHES[i % DASHES.length] || undefined;
        const d = s.points.map((p, j) => `${j === 0 ? "M" : "L"}${fmt(sx(p.x))} ${fmt(sy(p.y))}`).join(" ");
        const ly = m.top + 6 + i * 16;
        const lx = m.left + plotW - 150;
        const only = s.points.length === 1 ? s.points[0]! : null;
        return (
          <Fragment key={i}>
            <path d={d} fill="none" stroke={colour} strokeWidth={1.8} strokeDasharray={dash}>
              <title>{s.name}</title>
            </path>
            {only && <circle cx={fmt(sx(only.x))} cy={fmt(sy(only.y))} r={3} fill={colour} />}
            <line x1={lx} x2={lx + 24} y1={ly} y2={ly} stroke={colour} strokeWidth={2} strokeDasharray={dash} />
            <text x={lx + 30} y={ly} dominantBaseline="middle">
              {s.name}
            </text>
          </Fragment>
        );
      })}
    </>,
  );
}

/** The chart as a standalone SVG document (charts/*.svg in the bundle). */
export function renderLineChartSvg(series: ChartSeries[], options: LineChartOptions): string {
  return renderToStaticMarkup(<LineChartSvg series={series} options={options} />);
}
