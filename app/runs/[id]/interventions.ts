"use client";
/**
 * A run's live interventions (runs.pilot.list) for the run page, and how they read in words: the hook polls while the
 * run trains or while one is pending (a pending one changes state at the next epoch boundary); the describe helpers
 * are the one wording shared by the pilot panel, the interventions list, the curve markers and the decisions timeline.
 *
 * Invariant: every component of the page uses the same query key, so React Query fetches the list once per tick.
 */
import { useQuery } from "@tanstack/react-query";
import type { inferRouterOutputs } from "@trpc/server";
import { useTRPC } from "@/app/_trpc/client";
import type { AppRouter } from "@/server/trpc/root";
import { formatMetric, formatMetricDelta } from "@/app/_components/format";

export type Intervention = inferRouterOutputs<AppRouter>["runs"]["pilot"]["list"][number];

const LIVE = ["running", "queued"];

/** Polls every second while the run is live or an intervention is pending; otherwise fetched once. */
export function useInterventions(runId: number, runStatus: string | undefined) {
  const trpc = useTRPC();
  return useQuery({
    ...trpc.runs.pilot.list.queryOptions({ runId }),
    refetchInterval: (q) =>
      (runStatus !== undefined && LIVE.includes(runStatus)) || q.state.data?.some((i) => i.status === "pending") ? 1000 : false,
  });
}

const show = (v: unknown) => (typeof v === "number" ? String(v) : JSON.stringify(v));

/** "pause"; "training.learningRate 0.03 → 0.005"; "stop" — the action and each changed path, old → new. */
export function describeChanges(i: Pick<Intervention, "kind" | "changes">): string {
  const changes = i.changes.map((c) => `${c.path} ${show(c.oldValue)} → ${show(c.newValue)}`);
  if (i.kind === "set") return changes.join("; ");
  return [i.kind, ...changes].join("; ");
}

/**
 * "applied at epoch 12 (step 340)"; "pending — takes effect at the next epoch boundary"; … `script`: the run is logged
 * by a script through the tracking API, which applies a pending intervention when it checks in between its epochs.
 */
export function describeStatus(i: Intervention, runStatus?: string, script = false): string {
  switch (i.status) {
    case "pending":
      if (script) return "pending — takes effect when the script checks in between its epochs";
      // A change asked for while the run is paused takes effect at the resume point (the pause's checkpoint).
      return i.kind === "resume"
        ? "pending — the run continues from its last checkpoint"
        : runStatus === "paused" && i.kind === "set"
          ? "pending — takes effect when the run resumes"
          : "pending — takes effect at the next epoch boundary";
    case "applied":
      return `applied at epoch ${i.appliedAtEpoch} (step ${i.appliedAtStep})`;
    case "rejected":
      // Closed by a user: a script that could not apply it (tracking API); else the server.
      return `rejected${i.closedBy !== null ? " by the script" : ""}: ${i.closeReason ?? "no reason recorded"}`;
    default:
      return `withdrawn: ${i.closeReason ?? "no reason recorded"}`;
  }
}

/** The last values the pilot saw (batch metrics left out), e.g. "loss 0.4100, val_accuracy 85.0 %". */
export function describeSnapshotLast(i: Intervention): string {
  const last = Object.entries(i.metricsSnapshot?.last ?? {}).filter(([k]) => !k.startsWith("batch_") && k !== "lr");
  return last.length ? last.map(([k, v]) => `${k} ${formatMetric(v, k)}`).join(", ") : "no metrics recorded yet";
}

/** The watched metric's trend in the snapshot, oldest first, e.g. "val_loss 0.52 (epoch 3) → 0.49 (epoch 4)". */
export function describeTrend(i: Intervention): string | null {
  const w = i.metricsSnapshot?.watched;
  if (!w) return null;
  return `${w.metric} ${w.trend.map((p) => `${formatMetric(p.value, w.metric)} (epoch ${p.epoch})`).join(" → ")}`;
}

/** The effect over the following epochs: "val_loss 0.4500 at epoch 12 → 0.4012 at epoch 15 (−0.0488)". */
export function describeEffect(i: Pick<Intervention, "effect" | "appliedAtEpoch">): string | null {
  const e = i.effect;
  if (!e) return null;
  if (!e.before) return `${e.metric}: no value at epoch ${i.appliedAtEpoch} to compare with`;
  if (e.after.length === 0)
    return `${e.metric} ${formatMetric(e.before.value, e.metric)} at epoch ${e.before.epoch}; waiting for the next epochs`;
  const last = e.after.at(-1)!;
  return `${e.metric} ${formatMetric(e.before.value, e.metric)} at epoch ${e.before.epoch} → ${formatMetric(last.value, e.metric)} at epoch ${last.epoch} (${formatMetricDelta(e.delta ?? 0, e.metric)})`;
}

/** The branch an applied rollback created (its decision's new value names it), else null. */
export function rollbackBranchOf(i: Pick<Intervention, "kind" | "decision">): { branchRunId: number; fromEpoch: number | null } | null {
  if (i.kind !== "rollback" || !i.decision?.newValueJson) return null;
  try {
    const v = JSON.parse(i.decision.newValueJson) as { branchRunId?: unknown; fromEpoch?: unknown };
    return typeof v.branchRunId === "number"
      ? { branchRunId: v.branchRunId, fromEpoch: typeof v.fromEpoch === "number" ? v.fromEpoch : null }
      : null;
  } catch {
    return null;
  }
}

export const KIND_LABEL: Record<string, string> = {
  pause: "Pause",
  resume: "Resume",
  stop: "Stop",
  set: "Adjust",
  rollback: "Roll back",
};
