"use client";
/**
 * Asks why before cancelling a run (the run page's "Cancel run"): a cancellation ends training for good and is
 * recorded in the ledger with its reason (runs.cancel), so one click on the header's button opens this form rather
 * than cancelling. "Do not cancel" closes it with nothing sent.
 *
 * Invariants: a reason is required before anything is sent (an inline error says so); the server's message is shown
 * unchanged when it refuses (e.g. the run ended meanwhile).
 */
import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { FormError } from "@/app/_components/states";

export function CancelRunForm({ runId, onClose }: { runId: number; onClose: () => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [reason, setReason] = useState("");
  const [missing, setMissing] = useState(false);
  const cancel = useMutation(
    trpc.runs.cancel.mutationOptions({
      onSuccess: () => {
        onClose();
        void queryClient.invalidateQueries({ queryKey: trpc.runs.get.queryKey({ id: runId }) });
      },
    }),
  );
  return (
    <form
      aria-label={`Cancel run #${runId}`}
      className="panel"
      onSubmit={(e) => {
        e.preventDefault();
        if (reason.trim() === "") return setMissing(true);
        cancel.mutate({ id: runId, reason });
      }}
    >
      <p style={{ marginTop: 0 }}>
        Cancelling ends training now; the run keeps what it recorded so far, and your reason is recorded with it.
      </p>
      <div className="row">
        <input
          aria-label="Why cancel this run"
          aria-invalid={missing || undefined}
          placeholder="why cancel it (required)"
          // The form opens on the header's button: typing the reason is the next step.
          autoFocus
          value={reason}
          style={{ flex: "1 1 240px" }}
          onChange={(e) => {
            setReason(e.target.value);
            setMissing(false);
          }}
        />
        <button type="submit" className="danger" disabled={cancel.isPending}>
          {cancel.isPending ? "Cancelling…" : "Cancel run"}
        </button>
        <button type="button" onClick={onClose} disabled={cancel.isPending}>
          Do not cancel
        </button>
      </div>
      {missing ? (
        <p className="error-text" role="alert" style={{ margin: "6px 0 0" }}>
          A reason is required to cancel a run.
        </p>
      ) : null}
      <FormError error={cancel.error} />
    </form>
  );
}
