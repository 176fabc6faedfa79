"use client";
/**
 * Metric points of a run, fetched incrementally (from the last step seen on) every second while the run is
 * active, and once more whenever `refreshKey` changes (the run's status: a paused run that resumes can finish all its
 * epochs between two polls of its page, going from paused to completed without ever being seen active).
 */
import { useEffect, useRef, useState } from "react";
import { useTRPCClient } from "@/app/_trpc/client";

export type Point = { step: number; epoch: number; value: number; wallTimeMs: number };
export type SeriesByKey = Record<string, Point[]>;

export function useLiveMetrics(
  runId: number,
  active: boolean,
  refreshKey?: string,
): { series: SeriesByKey; error: unknown; loaded: boolean } {
  const client = useTRPCClient();
  const [series, setSeries] = useState<SeriesByKey>({});
  const [error, setError] = useState<unknown>(null);
  const [loaded, setLoaded] = useState(false);
  const lastStep = useRef<number | undefined>(undefined);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        // The last step seen is asked for again: its epoch-level points (val_*, lr) may be stored after its batch
        // points were already fetched (two flushes); per key, only points past that key's last step are added.
        const seen = lastStep.current;
        const r = await client.runs.metrics.query({ runId, afterStep: seen === undefined ? undefined : seen - 1 });
        if (stopped) return;
        lastStep.current = seen === undefined ? r.maxStep : Math.max(seen, r.maxStep);
        if (Object.keys(r.series).length) {
          setSeries((prev) => {
            const next = { ...prev };
            for (const [k, pts] of Object.entries(r.series)) {
              const known = prev[k] ?? [];
              const after = known.length ? known[known.length - 1]!.step : -Infinity;
              const fresh = pts.filter((p) => p.step > after);
              if (fresh.length) next[k] = [...known, ...fresh];
            }
            return next;
          });
        }
        setLoaded(true);
        setError(null);
      } catch (e) {
        if (!stopped) setError(e);
      }
      if (!stopped && active) timer = setTimeout(tick, 1000);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [client, runId, active, refreshKey]);

  return { series, error, loaded };
}
