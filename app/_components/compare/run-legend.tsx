"use client";
/** The compare view's legend: each run's colour, name and id, the same colours as every chart. */
import Link from "next/link";
import { runColor } from "./run-colors";

export function RunLegend({ runs }: { runs: { id: number; name: string }[] }) {
  return (
    <ul className="legend" aria-label="Run colours" style={{ listStyle: "none", padding: 0, margin: 0 }}>
      {runs.map((r, i) => (
        <li key={r.id} data-color={runColor(i)}>
          <span className="swatch" style={{ background: runColor(i) }} aria-hidden="true" />
          <Link href={`/runs/${r.id}`}>{r.name}</Link> <span className="muted">#{r.id}</span>
        </li>
      ))}
    </ul>
  );
}
