"use client";
/**
 * "Roll back to a checkpoint" (engineers, on a running, paused or completed run): pick one of the run's checkpoints,
 * optionally change the learning rate and the total epochs, give a rationale; the server creates a branch run that
 * continues exactly from that checkpoint's resume state with the changes (runs.pilot.request, kind "rollback").
 * A paused or completed run branches at once (the answer names the branch, linked here); a running run stops at its
 * next epoch boundary and branches there (pending until then, like any other intervention).
 *
 * Invariants: nothing is sent without a checkpoint and a rationale; only filled fields are sent (the branch keeps the
 * settings in force at the checkpoint otherwise); the server decides which checkpoints can be continued (only those
 * with an exact-resume state) and its refusal is shown verbatim. A region of its own, apart from the Pilot panel, so
 * its fields do not share labels with the Adjust form's.
 */
import Link from "next/link";
import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { FormError } from "@/app/_components/states";

/** The run states a rollback may be asked in (server/runs/pilot.ts PILOT_ALLOWED_STATES.rollback). */
export const ROLLBACK_STATES = ["running", "paused", "completed"];

type Checkpoint = { id: number; epoch: number; step: number };

export function RollbackPanel({
  runId,
  status,
  checkpoints,
  current,
}: {
  runId: number;
  status: string;
  checkpoints: Checkpoint[];
  /** The run's current learning rate and total epochs (hints only: the branch starts from the settings at its checkpoint). */
  current: { learningRate: number; epochs: number };
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [checkpointId, setCheckpointId] = useState("");
  const [learningRate, setLearningRate] = useState("");
  const [epochs, setEpochs] = useState("");
  const [rationale, setRationale] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState<{ branchRunId: number | null; epoch: number } | null>(null);
  const request = useMutation(trpc.runs.pilot.request.mutationOptions());

  const submit = () => {
    setDone(null);
    request.reset();
    const ck = checkpoints.find((c) => String(c.id) === checkpointId);
    const problems: string[] = [];
    if (!ck) problems.push("Pick the checkpoint to continue from.");
    const set: Record<string, unknown> = {};
    for (const [label, path, text] of [
      ["Learning rate", "training.learningRate", learningRate],
      ["Total epochs", "training.epochs", epochs],
    ] as const) {
      if (text.trim() === "") continue;
      const v = Number(text);
      if (!Number.isFinite(v)) problems.push(`${label}: enter a number (got “${text}”).`);
      else set[path] = v;
    }
    if (rationale.trim() === "") problems.push("A rationale is required: say why you roll this run back.");
    if (problems.length || !ck) {
      setProblem(problems.join(" "));
      return;
    }
    setProblem(null);
    request.mutate(
      { runId, kind: "rollback", fromCheckpointId: ck.id, rationale, ...(Object.keys(set).length ? { set } : {}) },
      {
        onSuccess: (out) => {
          setDone({ branchRunId: "branchRunId" in out && typeof out.branchRunId === "number" ? out.branchRunId : null, epoch: ck.epoch });
          setRationale("");
          setLearningRate("");
          setEpochs("");
          void queryClient.invalidateQueries({ queryKey: trpc.runs.pilot.list.queryKey({ runId }) });
          void queryClient.invalidateQueries({ queryKey: trpc.runs.get.queryKey({ id: runId }) });
          void queryClient.invalidateQueries({ queryKey: trpc.decisions.timeline.queryKey({ runId }) });
        },
      },
    );
  };

  return (
    <section className="panel" aria-label="Roll back" style={{ margin: 0 }}>
      <h2 style={{ marginTop: 0 }}>Roll back to a checkpoint</h2>
      <p className="muted" style={{ marginTop: 0 }}>
        A new branch run continues exactly from the chosen checkpoint, with the changes below;{" "}
        {status === "running" ? "this run stops at its next epoch boundary, where the branch is created." : "this run stays as it is."}
      </p>
      <form
        aria-label="Roll back to a checkpoint"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <div className="form-grid">
          <label className="field">
            <span>Checkpoint to continue from</span>
            <select aria-label="Checkpoint to continue from" value={checkpointId} onChange={(e) => setCheckpointId(e.target.value)}>
              <option value="">choose a checkpoint…</option>
              {/* Short enough for the form's 180 px column (it read "epoch 12 (step 96, checkpoint #…", cut off); the id is in the title. */}
              {checkpoints.map((c) => (
                <option key={c.id} value={c.id} title={`epoch ${c.epoch} (step ${c.step}, checkpoint #${c.id})`}>
                  epoch {c.epoch} · step {c.step}
                </option>
              ))}
            </select>
          </label>
          <label className="field">
            <span>Branch learning rate</span>
            <input
              aria-label="Branch learning rate"
              inputMode="decimal"
              value={learningRate}
              placeholder="unchanged"
              onChange={(e) => setLearningRate(e.target.value)}
            />
            <small className="muted">now {current.learningRate}; empty keeps the value in force at the checkpoint</small>
          </label>
          <label className="field">
            <span>Branch total epochs</span>
            <input
              aria-label="Branch total epochs"
              inputMode="numeric"
              value={epochs}
              placeholder="unchanged"
              onChange={(e) => setEpochs(e.target.value)}
            />
            <small className="muted">now {current.epochs}</small>
          </label>
        </div>
        <label className="field">
          <span>Rationale (required)</span>
          <textarea
            aria-label="Rollback rationale"
            aria-invalid={problem && rationale.trim() === "" ? true : undefined}
            value={rationale}
            onChange={(e) => setRationale(e.target.value)}
            placeholder="e.g. it diverged after epoch 12: go back there with a lower learning rate"
          />
        </label>
        {problem ? (
          <p className="error-text" role="alert">
            {problem}
          </p>
        ) : null}
        <button type="submit" disabled={request.isPending || checkpoints.length === 0}>
          Roll back
        </button>
      </form>
      <FormError error={request.error} />
      {done ? (
        <p role="status">
          {done.branchRunId !== null ? (
            <Link href={`/runs/${done.branchRunId}`}>
              Branch run {done.branchRunId} created from epoch {done.epoch}
            </Link>
          ) : (
            `Rollback to epoch ${done.epoch} requested: at the next epoch boundary this run stops and the branch run is created.`
          )}
        </p>
      ) : null}
    </section>
  );
}
