/**
 * Server-side SVG line charts for the auditor's report: training curves drawn from the recorded metric points,
 * with no browser. Pure function of its input (same points → same bytes), so the chart files can be hashed.
 *
 * Invariants: every text is XML-escaped; non-finite values are skipped; numbers are printed with fixed precision;
 * the output is a standalone SVG document (xmlns set) that also works inlined in HTML and prints in black and white
 * (series differ by dash pattern as well as colour).
 */

export type ChartSeries = { name: string; points: { x: number; y: number }[] };
export type LineChartOptions = { title: string; xLabel: string; yLabel: string; width?: number; height?: number };

const COLOURS = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#444444"];
const DASHES = ["", "6 3", "2 3", "8 3 2 3", "1 2"];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

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

export function renderLineChartSvg(series: ChartSeries[], o: LineChartOptions): string {
  const width = o.width ?? 640;
  const height = o.height ?? 300;
  const m = { left: 64, right: 16, top: 32, bottom: 48 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const clean = series.map((s) => ({ ...s, points: s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x) }));
  const all = clean.flatMap((s) => s.points);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(o.title)}" font-family="sans-serif" font-size="11">`,
    `<title>${escapeXml(o.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${m.left}" y="18" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`,
  ];
  if (all.length === 0) {
    parts.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#666">no points recorded</text></svg>`);
    return parts.join("");
  }
  let xMin = Math.min(...all.map((p) => p.x)), xMax = Math.max(...all.map((p) => p.x));
  let yMin = Math.min(...all.map((p) => p.y)), yMax = Math.max(...all.map((p) => p.y));
  if (xMax === xMin) [xMin, xMax] = [xMin - 1, xMax + 1];
  if (yMax === yMin) [yMin, yMax] = [yMin - Math.abs(yMin || 1) * 0.1, yMax + Math.abs(yMax || 1) * 0.1];
  const pad = (yMax - yMin) * 0.05;
  yMin -= pad;
  yMax += pad;
  const sx = (x: number) => m.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const sy = (y: number) => m.top + plotH - ((y - yMin) / (yMax - yMin)) * plotH;

  for (const t of niceTicks(yMin, yMax)) {
    const y = fmt(sy(t));
    parts.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`, `<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${tickLabel(t)}</text>`);
  }
  for (const t of niceTicks(xMin, xMax, 8)) {
    const x = fmt(sx(t));
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.top + plotH}" y2="${m.top + plotH + 4}" stroke="#333"/>`, `<text x="${x}" y="${m.top + plotH + 16}" text-anchor="middle">${tickLabel(t)}</text>`);
  }
  parts.push(
    `<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${m.left + plotW / 2}" y="${height - 8}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`,
    `<text transform="translate(14 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`,
  );
  clean.forEach((s, i) => {
    if (s.points.length === 0) return;
    const colour = COLOURS[i % COLOURS.length]!;
    const dash = DASHES[i % DASHES.length]!;
    const d = s.points.map((p, j) => `${j === 0 ? "M" : "L"}${fmt(sx(p.x))} ${fmt(sy(p.y))}`).join(" ");
    parts.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="1.8"${dash ? ` stroke-dasharray="${dash}"` : ""}><title>${escapeXml(s.name)}</title></path>`);
    if (s.points.length === 1) parts.push(`<circle cx="${fmt(sx(s.points[0]!.x))}" cy="${fmt(sy(s.points[0]!.y))}" r="3" fill="${colour}"/>`);
    const ly = m.top + 6 + i * 16;
    const lx = m.left + plotW - 150;
    parts.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ""}/>`, `<text x="${lx + 30}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("");
}
