"use client";
/**
 * A run's live interventions, oldest first, for every role: what was asked, by whom and why, and where it stands
 * (pending until the next epoch boundary, or until its script checks in for a run logged through the tracking API, applied at an epoch and step, rejected with the server's reason, or
 * withdrawn). Engineers may withdraw a pending one, with a reason; other roles read only. An applied rollback links
 * to the branch run it created.
 */
import Link from "next/link";
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Empty, ErrorState, FormError, Loading } from "@/app/_components/states";
import { formatTime } from "@/app/_components/format";
import { describeChanges, describeStatus, KIND_LABEL, rollbackBranchOf, type Intervention } from "./interventions";

export function InterventionsList({
  runId,
  list,
  canPilot,
  live,
  runStatus,
}: {
  runId: number;
  list: { data?: Intervention[]; error: unknown; isPending: boolean };
  canPilot: boolean;
  /** The run's status (a change pending on a paused run takes effect when it resumes). */
  runStatus: string;
  /** Whether the run trains or is paused (the empty state then says how to intervene). */
  live: boolean;
}) {
  return (
    <section className="panel" aria-label="Interventions" style={{ margin: 0 }}>
      <h2 style={{ marginTop: 0 }}>Interventions</h2>
      {list.isPending ? (
        <Loading what="Loading interventions" />
      ) : list.error ? (
        <ErrorState error={list.error} title="Could not load the interventions" />
      ) : list.data!.length === 0 ? (
        <Empty
          title="No interventions"
          hint={
            live && canPilot
              ? "Pause, stop or adjust this run from the Pilot panel; each change takes effect at the next epoch boundary."
              : "Nobody paused, stopped or adjusted this run while it trained."
          }
        />
      ) : (
        <ol style={{ listStyle: "none", padding: 0, margin: 0 }}>
          {list.data!.map((i) => (
            <Item key={i.id} runId={runId} i={i} canCancel={canPilot && i.status === "pending"} runStatus={runStatus} />
          ))}
        </ol>
      )}
    </section>
  );
}

function Item({ runId, i, canCancel, runStatus }: { runId: number; i: Intervention; canCancel: boolean; runStatus: string }) {
  const trpc = useTRPC();
  // The run page's own query (read from its cache, never fetched here): whether a script logs this run (tracking API).
  const script = useQuery({ ...trpc.runs.get.queryOptions({ id: runId }), enabled: false }).data?.origin === "api";
  const changes = describeChanges(i);
  const branch = rollbackBranchOf(i);
  return (
    <li
      aria-label={`Intervention #${i.id}: ${KIND_LABEL[i.kind] ?? i.kind}`}
      data-status={i.status}
      style={{
        borderLeft: `3px solid ${i.status === "applied" ? "var(--marker)" : i.status === "pending" ? "var(--accent)" : "var(--line)"}`,
        padding: "4px 0 8px 10px",
        marginBottom: 8,
      }}
    >
      <div className="row" style={{ gap: 6 }}>
        <strong>{KIND_LABEL[i.kind] ?? i.kind}</strong>
        {i.kind === "set" || i.changes.length ? (
          <span className="mono">{i.kind === "set" ? changes : changes.split("; ").slice(1).join("; ")}</span>
        ) : null}
      </div>
      <div className={i.status === "rejected" ? "error-text" : i.status === "pending" ? undefined : "muted"}>
        {describeStatus(i, runStatus, script)}
      </div>
      {branch ? (
        <div>
          <Link href={`/runs/${branch.branchRunId}`}>
            branch run #{branch.branchRunId}
            {branch.fromEpoch !== null ? ` (from epoch ${branch.fromEpoch})` : ""}
          </Link>
        </div>
      ) : null}
      <div>“{i.rationale}”</div>
      <div className="muted">
        #{i.id} · asked by {i.requestedBy.name} · {formatTime(i.requestedAt)}
        {i.decision ? ` · decision #${i.decision.id}` : ""}
      </div>
      {canCancel ? <Withdraw runId={runId} id={i.id} /> : null}
    </li>
  );
}

function Withdraw({ runId, id }: { runId: number; id: number }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const [missing, setMissing] = useState(false);
  const cancel = useMutation(
    trpc.runs.pilot.cancel.mutationOptions({
      onSuccess: () => {
        setOpen(false);
        void queryClient.invalidateQueries({ queryKey: trpc.runs.pilot.list.queryKey({ runId }) });
      },
    }),
  );
  if (!open)
    return (
      <button type="button" onClick={() => setOpen(true)} style={{ marginTop: 4 }}>
        Cancel
      </button>
    );
  return (
    <form
      aria-label={`Withdraw intervention #${id}`}
      className="row"
      style={{ marginTop: 4 }}
      onSubmit={(e) => {
        e.preventDefault();
        if (reason.trim() === "") return setMissing(true);
        cancel.mutate({ interventionId: id, rationale: reason });
      }}
    >
      <input
        aria-label={`Why withdraw intervention #${id}`}
        aria-invalid={missing || undefined}
        placeholder="why withdraw it (required)"
        value={reason}
        onChange={(e) => {
          setReason(e.target.value);
          setMissing(false);
        }}
      />
      <button type="submit" className="danger" disabled={cancel.isPending}>
        Withdraw
      </button>
      <button type="button" onClick={() => setOpen(false)}>
        Keep
      </button>
      {missing ? (
        <p className="error-text" role="alert" style={{ flexBasis: "100%", margin: 0 }}>
          A reason is required to withdraw an intervention.
        </p>
      ) : null}
      <FormError error={cancel.error} />
    </form>
  );
}
