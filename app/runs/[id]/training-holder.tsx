"use client";
/**
 * The run page's "Trained by" line: which process holds the run now (server/runs/orchestrator/leases.ts runHolder):
 * a training worker (`npm run worker`) with its host and pid, another process (the web server, `cli train`), or the
 * training workers' queue while no worker has taken it yet. Polled while the run is queued, running or interrupted.
 */
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { formatTime } from "@/app/_components/format";

export function TrainingHolder({ runId, status }: { runId: number; status: string }) {
  const trpc = useTRPC();
  const watching = status === "queued" || status === "running" || status === "interrupted" || status === "paused";
  const holder = useQuery({ ...trpc.runs.holder.queryOptions({ id: runId }), refetchInterval: watching ? 2000 : false });
  const h = holder.data;
  // A run that has ended has no holder (the last answer polled before its end is not shown).
  if (!h || !watching) return null;
  return (
    <>
      <dt>Trained by</dt>
      <dd>
        {h.kind === "queue" ? (
          <>waiting in the training workers&rsquo; queue since {formatTime(h.heartbeatAt)}</>
        ) : (
          <>
            {h.kind === "worker" ? "training worker" : "process"} on <span className="mono">{h.host}</span> · pid{" "}
            <span className="mono">{h.pid}</span>
            <span className="muted">
              {" "}
              —{" "}
              {h.alive
                ? `heartbeat ${formatTime(h.heartbeatAt)}`
                : `gone since ${formatTime(h.heartbeatAt)}; another process takes it over`}
            </span>
          </>
        )}
      </dd>
    </>
  );
}
