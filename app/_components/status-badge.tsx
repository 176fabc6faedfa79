"use client";
/** A run's status as a coloured badge, with epoch progress while it trains and the epoch where a paused run stopped. */
export function StatusBadge({ status, progress }: { status: string; progress?: { epoch: number; epochs: number } | null }) {
  return (
    <span className={`badge ${status}`} data-status={status}>
      {status}
      {status === "running" && progress ? ` · epoch ${progress.epoch}/${progress.epochs}` : ""}
      {status === "paused" && progress ? ` at epoch ${progress.epoch}` : ""}
    </span>
  );
}
