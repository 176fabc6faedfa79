"use client";
/** On a completed run: register one of its checkpoints (the best by default) as the next version of a named model. */
import { useState } from "react";
import { useRouter } from "next/navigation";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { FormError } from "@/app/_components/states";

export function RegisterVersionForm({
  runId,
  checkpoints,
}: {
  runId: number;
  checkpoints: { id: number; epoch: number; isBest: boolean }[];
}) {
  const trpc = useTRPC();
  const router = useRouter();
  const models = useQuery(trpc.models.list.queryOptions());
  const [modelName, setModelName] = useState("");
  const [choice, setChoice] = useState("best");
  const register = useMutation(
    trpc.models.register.mutationOptions({ onSuccess: (r) => router.push(`/models/${encodeURIComponent(r.model)}`) }),
  );
  return (
    <section className="panel" aria-label="Register as model version">
      <h2 style={{ marginTop: 0 }}>Register as model version</h2>
      <p className="muted" style={{ marginTop: 0 }}>
        The best checkpoint is the one evaluated on the test partition; only an evaluated checkpoint can later be promoted to production.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          register.mutate({ runId, modelName, checkpoint: choice === "best" ? "best" : { checkpointId: Number(choice) } });
        }}
      >
        <div className="form-grid">
          <label className="field">
            <span>Model name</span>
            <input
              aria-label="Model name"
              list="known-models"
              value={modelName}
              onChange={(e) => setModelName(e.target.value)}
              placeholder="e.g. iris-classifier"
            />
          </label>
          <datalist id="known-models">
            {(models.data ?? []).map((m) => (
              <option key={m.id} value={m.name} />
            ))}
          </datalist>
          <label className="field">
            <span>Checkpoint</span>
            <select aria-label="Checkpoint to register" value={choice} onChange={(e) => setChoice(e.target.value)}>
              <option value="best">best (epoch {checkpoints.find((c) => c.isBest)?.epoch ?? "?"})</option>
              {checkpoints.map((c) => (
                <option key={c.id} value={c.id}>
                  epoch {c.epoch}
                  {c.isBest ? " (best)" : ""}
                </option>
              ))}
            </select>
          </label>
        </div>
        <FormError error={register.error} />
        <button className="primary" type="submit" style={{ marginTop: 8 }} disabled={register.isPending || modelName.trim() === ""}>
          Register version
        </button>
      </form>
    </section>
  );
}
