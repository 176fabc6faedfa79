"use client";
/**
 * Checkpoints of a run: epoch, step, metrics at that step, weights hash; the best one (by the configured metric) marked.
 * Engineers may fine-tune from a checkpoint or compress it (compress-panel.tsx); engineers and reviewers may evaluate one on the test partition of the run's
 * split (the server re-checks the role, computes it in a trainer worker and records it; the evaluation panel lists it).
 * A checkpoint already evaluated shows its latest result, linked to it in the evaluation panel, and offers "Re-evaluate"
 * (runs.evaluate records another evaluation of it beside the first; nothing is replaced), not "Evaluate" as if it had none.
 * A run whose split has no test rows (test ratio 0), or that has no recorded split, offers no evaluation at all: the server
 * refuses those (server/runs/evaluations.ts); its rows say why instead.
 * A long run's table is collapsed to its best and last checkpoints (a 150-epoch run made a ~9,600 px page); "Show all N
 * checkpoints" expands it, with every row's actions. Up to COLLAPSE_ABOVE checkpoints are always shown in full.
 */
import Link from "next/link";
import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { WeightsDownload, weightsHref } from "@/app/_components/weights-download";
import { FormError } from "@/app/_components/states";
import { formatBytes, formatMetric } from "@/app/_components/format";
import { CompressPanel } from "./compress-panel";
import { evaluationShortResult } from "./evaluation-panel";

/** At most this many checkpoints are listed in full without a click: a short run's table is already short. */
const COLLAPSE_ABOVE = 6;

type Checkpoint = {
  id: number;
  epoch: number;
  step: number;
  sha256: string;
  bytes: number;
  isBest: boolean;
  metrics: Record<string, number>;
};

type CheckpointEvaluation = { id: number; checkpointId: number; metrics: Record<string, unknown> };

export function CheckpointsTable({
  runId,
  checkpoints,
  evaluations = [],
  testRows,
  canFineTune,
  canEvaluate = false,
}: {
  runId: number;
  checkpoints: Checkpoint[];
  /** The run's evaluations, oldest first: each checkpoint's row shows its latest. */
  evaluations?: CheckpointEvaluation[];
  /** Rows in the test partition of the run's split; null when the run has no recorded split. */
  testRows?: number | null;
  canFineTune: boolean;
  canEvaluate?: boolean;
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [evaluating, setEvaluating] = useState<number | null>(null);
  const evaluate = useMutation(
    trpc.runs.evaluate.mutationOptions({
      onSuccess: () => void queryClient.invalidateQueries({ queryKey: trpc.runs.get.queryKey({ id: runId }) }),
      onSettled: () => setEvaluating(null),
    }),
  );
  const done = evaluate.data;
  const [expanded, setExpanded] = useState(false);
  const [compressing, setCompressing] = useState<Checkpoint | null>(null);
  const collapsible = checkpoints.length > COLLAPSE_ABOVE;
  const lastId = checkpoints.at(-1)?.id;
  const shown = collapsible && !expanded ? checkpoints.filter((c) => c.isBest || c.id === lastId) : checkpoints;
  const latestEvaluation = new Map(evaluations.map((e) => [e.checkpointId, e]));
  const refusal = testRows === null ? "no recorded split to evaluate on" : testRows === 0 ? "no test rows in this run's split" : null;
  return (
    <section className="panel" aria-label="Checkpoints">
      <h2 style={{ marginTop: 0 }}>Checkpoints</h2>
      {checkpoints.length === 0 ? (
        <p className="muted">No checkpoint yet: one is saved at the end of each epoch (or every N epochs).</p>
      ) : (
        <div className="table-scroll">
          <table aria-label="Checkpoints table">
            <thead>
              <tr>
                <th className="num">Epoch</th>
                <th className="num">Step</th>
                <th className="num">loss</th>
                <th className="num">val loss</th>
                <th className="num">val accuracy</th>
                <th>Weights SHA-256</th>
                <th className="num">Size</th>
                <th></th>
                <th></th>
                <th>Test evaluation</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((c) => (
                <tr key={c.id}>
                  <td className="num">{c.epoch}</td>
                  <td className="num">{c.step}</td>
                  <td className="num">{formatMetric(c.metrics.loss)}</td>
                  <td className="num">{formatMetric(c.metrics.val_loss)}</td>
                  <td className="num">{formatMetric(c.metrics.val_accuracy, "val_accuracy")}</td>
                  <td>
                    <WeightsDownload href={weightsHref({ checkpointId: c.id })} sha256={c.sha256} what={`checkpoint ${c.epoch}`} />
                  </td>
                  <td className="num">{formatBytes(c.bytes)}</td>
                  <td>
                    {c.isBest ? <span className="badge completed">best</span> : null}
                    {c.id === lastId && collapsible ? <span className="badge">last</span> : null}
                  </td>
                  <td>
                    {canFineTune ? (
                      <Link href={`/runs/${runId}/finetune?checkpoint=${c.id}`} aria-label={`Fine-tune from epoch ${c.epoch}`}>
                        fine-tune
                      </Link>
                    ) : null}
                    {canFineTune ? (
                      <>
                        {" "}
                        <button
                          type="button"
                          aria-label={`Compress epoch ${c.epoch}`}
                          aria-expanded={compressing?.id === c.id}
                          onClick={() => setCompressing(compressing?.id === c.id ? null : c)}
                        >
                          compress
                        </button>
                      </>
                    ) : null}
                  </td>
                  <td>
                    <EvaluationCell
                      checkpoint={c}
                      evaluation={latestEvaluation.get(c.id)}
                      canEvaluate={canEvaluate && refusal === null}
                      refusal={refusal}
                      evaluating={evaluating}
                      onEvaluate={() => {
                        setEvaluating(c.id);
                        evaluate.mutate({ runId, checkpointId: c.id });
                      }}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {collapsible ? (
        <button type="button" aria-expanded={expanded} onClick={() => setExpanded(!expanded)} style={{ marginTop: 8 }}>
          {expanded ? "Show best and last only" : `Show all ${checkpoints.length} checkpoints`}
        </button>
      ) : null}
      {compressing ? (
        <CompressPanel key={compressing.id} runId={runId} checkpoint={compressing} onClose={() => setCompressing(null)} />
      ) : null}
      <FormError error={evaluate.error} />
      {done && !evaluate.isPending ? (
        <p role="status">
          Evaluated the checkpoint of epoch {done.epoch} on the test partition (
          {done.result.task === "classification"
            ? `accuracy ${formatMetric(done.result.accuracy, "accuracy")}`
            : `MSE ${formatMetric(done.result.mse)}`}
          ); see Evaluation below.
        </p>
      ) : null}
    </section>
  );
}

/** A checkpoint's test evaluation: its latest result and a link to it, or "not evaluated"; the action says which it does. */
function EvaluationCell({
  checkpoint: c,
  evaluation,
  canEvaluate,
  refusal,
  evaluating,
  onEvaluate,
}: {
  checkpoint: Checkpoint;
  evaluation: CheckpointEvaluation | undefined;
  canEvaluate: boolean;
  /** Why no checkpoint of this run can be evaluated, or null. */
  refusal: string | null;
  evaluating: number | null;
  onEvaluate: () => void;
}) {
  const busy = evaluating === c.id;
  return (
    // One line per row, as the other cells: the table scrolls sideways in its box rather than wrapping "Re-evaluate".
    <span className="row" style={{ gap: 6, flexWrap: "nowrap", whiteSpace: "nowrap" }}>
      {evaluation ? (
        <span>
          {evaluationShortResult(evaluation.metrics)} · <a href={`#evaluation-${evaluation.id}`}>evaluation #{evaluation.id}</a>
        </span>
      ) : (
        <span className="muted">not evaluated{refusal ? `: ${refusal}` : ""}</span>
      )}
      {canEvaluate ? (
        <button
          type="button"
          aria-label={`${evaluation ? "Re-evaluate" : "Evaluate"} epoch ${c.epoch} on the test set`}
          title={evaluation ? `Evaluates again: records another evaluation beside #${evaluation.id}, which stays` : undefined}
          disabled={evaluating !== null}
          onClick={onEvaluate}
        >
          {busy ? "Evaluating…" : evaluation ? "Re-evaluate" : "Evaluate on test set"}
        </button>
      ) : null}
    </span>
  );
}
