"use client";
/**
 * Fine-tune from a checkpoint: start a new run from a recorded checkpoint's weights, training everything, freezing the
 * first N layers, or replacing the output layer (for a different set of classes). The parent checkpoint and the
 * frozen/replaced layers are recorded in the new run's lineage.
 */
import Link from "next/link";
import { use, useState } from "react";
import { useRouter, useSearchParams } from "next/navigation";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell } from "@/app/_components/shell";
import { ErrorState, Loading } from "@/app/_components/states";
import { Hash } from "@/app/_components/hash";
import { RunConfigForm } from "@/app/_components/run-config-form";
import type { TrainingConfigInput } from "@/contracts/training-config";

const OUTPUT_LAYER_CHOICES = {
  keep: "keep the parent's (same classes)",
  replace: "replace with a new one (new classes)",
} as const;

function FineTune({ runId }: { runId: number }) {
  const trpc = useTRPC();
  const router = useRouter();
  const params = useSearchParams();
  const run = useQuery(trpc.runs.get.queryOptions({ id: runId }));
  const [freezeLayers, setFreezeLayers] = useState(0);
  const [replaceHead, setReplaceHead] = useState(false);
  const create = useMutation(trpc.runs.create.mutationOptions({ onSuccess: (r) => router.push(`/runs/${r.id}`) }));
  if (run.isPending) return <Loading what="Loading the parent run" />;
  if (run.error) return <ErrorState error={run.error} />;
  const r = run.data;
  const wanted = Number(params.get("checkpoint"));
  const checkpoint = r.checkpoints.find((c) => c.id === wanted) ?? r.checkpoints.find((c) => c.isBest) ?? r.checkpoints.at(-1);
  if (!checkpoint) return <ErrorState title="Nothing to fine-tune from" error="This run has no checkpoint yet." />;
  const initial: TrainingConfigInput = {
    ...r.config,
    name: `${r.name} fine-tune`,
    fineTune: null,
    training: { ...r.config.training, epochs: Math.min(r.config.training.epochs, 20) },
  };
  const maxFreeze = r.config.model.layers.length;
  return (
    <>
      <p className="muted">
        <Link href={`/runs/${runId}`}>{r.name}</Link> / fine-tune
      </p>
      <h1>Fine-tune from a checkpoint</h1>
      <p className="subtitle">
        Starts from the weights of epoch {checkpoint.epoch} of “{r.name}” (
        <Hash value={checkpoint.sha256} label="parent checkpoint sha256" />
        ). The architecture is the parent's; change the data, the training settings, and what to freeze.
      </p>
      <div className="panel">
        <RunConfigForm
          initial={initial}
          submitLabel="Launch fine-tune"
          lockedModel={`The layers are those of run #${r.id}'s checkpoint, whose weights this run starts from; to change them, fork the run or start a new one.`}
          busy={create.isPending}
          serverError={create.error}
          onSubmit={(config, rationale) =>
            create.mutate({
              experimentId: r.experimentId,
              config: { ...config, fineTune: { parentCheckpointId: String(checkpoint.id), freezeLayers, replaceHead } },
              rationale,
            })
          }
          estimateConfig={(config) => ({ ...config, fineTune: { parentCheckpointId: String(checkpoint.id), freezeLayers, replaceHead } })}
          extra={
            <fieldset>
              <legend>Transfer</legend>
              {/* Not the form's 180 px grid: the output layer's choices are sentences, cut off in a cell that narrow. */}
              <div className="row" style={{ alignItems: "flex-start" }}>
                <label className="field" style={{ flex: "1 1 220px", maxWidth: 320 }}>
                  <span>Freeze the first N layers (0 = train everything; at most {maxFreeze})</span>
                  <input
                    type="number"
                    aria-label="Freeze layers"
                    min={0}
                    max={maxFreeze}
                    value={freezeLayers}
                    onChange={(e) => setFreezeLayers(Math.max(0, Math.min(maxFreeze, Number(e.target.value) || 0)))}
                  />
                </label>
                <label className="field" style={{ flex: "1 1 320px", maxWidth: 420 }}>
                  <span>Output layer</span>
                  <select
                    aria-label="Output layer"
                    value={replaceHead ? "replace" : "keep"}
                    title={replaceHead ? OUTPUT_LAYER_CHOICES.replace : OUTPUT_LAYER_CHOICES.keep}
                    onChange={(e) => setReplaceHead(e.target.value === "replace")}
                  >
                    <option value="keep">{OUTPUT_LAYER_CHOICES.keep}</option>
                    <option value="replace">{OUTPUT_LAYER_CHOICES.replace}</option>
                  </select>
                </label>
              </div>
            </fieldset>
          }
        />
      </div>
    </>
  );
}

export default function FineTunePage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = use(params);
  return <Shell>{() => <FineTune runId={Number(id)} />}</Shell>;
}
