"use client";
/**
 * One metric's curves for every compared run, fetched downsampled from the server (explore.series; at most
 * MAX_POINTS per run, spikes kept). Zooming refetches only the visible x range, so detail appears as you
 * zoom in. Wall time is shown as seconds since each run's first point of this metric (runs started at
 * different times overlay); a zoom on it is mapped back to each run's own absolute range. Each run's in-flight
 * decisions are markers in its colour at the x where they took effect (inflight-decisions.tsx).
 */
import { useMemo, useState } from "react";
import { useQueries, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { formatCount } from "@/app/_components/format";
import { OverlayChart, type OverlaySeries, type XRange } from "./overlay-chart";
import { runColor, runLabel, withAlpha } from "./run-colors";
import { emaSmooth } from "./smoothing";
import { interventionMarkers, type ComparedIntervention } from "./inflight-decisions";

export type XAxis = "step" | "epoch" | "wall";
const MAX_POINTS = 800;
export const X_LABEL: Record<XAxis, string> = { step: "step (batches)", epoch: "epoch", wall: "wall time (s since start)" };

export function MetricChart({
  metric,
  runs,
  xAxis,
  logY,
  smoothing,
  interventions,
}: {
  metric: string;
  runs: { id: number; name: string }[];
  xAxis: XAxis;
  logY: boolean;
  smoothing: number;
  /** Per run (same order as `runs`): its applied interventions, drawn as markers. */
  interventions: ComparedIntervention[][];
}) {
  const trpc = useTRPC();
  const [range, setRange] = useState<XRange | null>(null);
  const runIds = runs.map((r) => r.id);
  // The whole range: one request for all runs. A zoom on step/epoch: one request with the range; on wall time
  // each run's range differs (its own start), so one request per run (batched into one HTTP call by tRPC).
  const whole = useQuery(trpc.explore.series.queryOptions({ runIds, key: metric, xAxis, maxPoints: MAX_POINTS }));
  const offsets = runs.map((_, i) => (xAxis === "wall" ? (whole.data?.[i]?.points[0]?.x ?? 0) : 0));
  const scale = xAxis === "wall" ? 1000 : 1;
  const zoomedShared = useQuery({
    ...trpc.explore.series.queryOptions({ runIds, key: metric, xAxis, maxPoints: MAX_POINTS, from: range?.from ?? 0, to: range?.to ?? 0 }),
    enabled: range !== null && xAxis !== "wall",
  });
  const zoomedWall = useQueries({
    queries: runs.map((r, i) => ({
      ...trpc.explore.series.queryOptions({
        runIds: [r.id],
        key: metric,
        xAxis,
        maxPoints: MAX_POINTS,
        from: offsets[i]! + (range?.from ?? 0) * scale,
        to: offsets[i]! + (range?.to ?? 0) * scale,
      }),
      enabled: range !== null && xAxis === "wall" && whole.data !== undefined,
    })),
  });
  const zoomed = (i: number) => (xAxis === "wall" ? zoomedWall[i]?.data?.[0] : zoomedShared.data?.[i]);
  const loaded = runs.map((_, i) => (range ? (zoomed(i) ?? whole.data?.[i]) : whole.data?.[i]));
  // `loaded`, `offsets` and `scale` are new values on every render: the curves are keyed on this digest of all three
  // instead, so they are recomputed when a fetched series or the x axis changes, not on each render.
  const dataKey = [
    scale,
    offsets.join(","),
    ...loaded.map((d) => (d ? `${d.total}:${d.points.length}:${d.points[0]?.step}:${d.points.at(-1)?.step}` : "-")),
  ].join("|");
  const series = useMemo<OverlaySeries[]>(
    () =>
      runs.flatMap((r, i) => {
        const s = loaded[i];
        if (!s) return [];
        const pts = s.points.map((p) => ({ x: (p.x - offsets[i]!) / scale, y: p.y }));
        const color = runColor(i);
        const label = runLabel(r, runs);
        if (smoothing <= 0) return [{ label, color, points: pts }];
        return [
          { label: `${label} (raw)`, color: withAlpha(color, 0.22), points: pts, faint: true },
          { label, color, points: emaSmooth(pts, smoothing) },
        ];
      }),
    // eslint-disable-next-line react-hooks/exhaustive-deps -- keyed on dataKey, which digests loaded, offsets and scale
    [dataKey, smoothing, runs],
  );
  const offsetsKey = offsets.join(",");
  const markers = useMemo(
    () => interventionMarkers(runs, interventions, xAxis, offsets),
    // eslint-disable-next-line react-hooks/exhaustive-deps -- offsets is a new array each render; offsetsKey digests it
    [runs, interventions, xAxis, offsetsKey],
  );
  const error = whole.error ?? zoomedShared.error ?? zoomedWall.find((q) => q.error)?.error;
  const pending = whole.isPending;
  const fetching = zoomedShared.isFetching || zoomedWall.some((q) => q.isFetching);
  const downsampled = loaded.some((t) => t?.downsampled);
  const totalPoints = loaded.reduce((n, t) => n + (t?.total ?? 0), 0);
  const shown = loaded.reduce((n, t) => n + (t?.points.length ?? 0), 0);
  const noData = !pending && loaded.every((t) => !t || t.points.length === 0);

  return (
    <div className="panel" style={{ marginBottom: 0 }} aria-label={`${metric} curves`} role="group">
      {error ? (
        <p className="error-text" role="alert">
          Could not load {metric}: {error instanceof Error ? error.message : String(error)}
        </p>
      ) : null}
      {noData ? <p className="muted">{range ? "No points in the zoomed range." : `No points recorded for ${metric}.`}</p> : null}
      <OverlayChart
        title={metric}
        ariaLabel={`${metric} chart`}
        series={series}
        xLabel={X_LABEL[xAxis]}
        yLabel={metric}
        logY={logY}
        onZoom={setRange}
        markers={markers}
      />
      <p className="muted" style={{ fontSize: 12, margin: "4px 0 0" }}>
        {pending
          ? "Loading curves…"
          : `${formatCount(shown)} of ${formatCount(totalPoints)} points shown${downsampled ? " (downsampled on the server: min/max per bucket, spikes kept)" : ""}`}
        {range
          ? ` · zoomed to ${range.from.toPrecision(4)}–${range.to.toPrecision(4)} ${xAxis === "wall" ? "s" : xAxis}${fetching ? " · fetching detail…" : ""}`
          : ""}
      </p>
    </div>
  );
}
