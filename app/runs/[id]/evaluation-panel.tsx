"use client";
/**
 * Evaluations of a run on the test partition: every one listed (the trainer's own at the end of training, and those
 * requested later per checkpoint), each naming its checkpoint (epoch) and the SHA-256 of the data it was computed on.
 * The chosen one (the latest by default) shows per-class precision/recall/F1 and the confusion matrix as a heat map
 * table, or MSE/MAE/R² for regression. Each row is the anchor #evaluation-<id> (the checkpoints table links there); following
 * such a link on the page also shows that evaluation below.
 * A run that can never have a test evaluation says why and what to do instead of "Not evaluated yet": its split has no
 * test rows (the trainer skips the end-of-training evaluation and the server refuses one, server/runs/evaluations.ts;
 * fork it with a split that keeps test rows), or it has no recorded split (a run logged through the tracking API).
 */
import Link from "next/link";
import { useEffect, useState } from "react";
import { Hash } from "@/app/_components/hash";
import { Empty } from "@/app/_components/states";
import { formatMetric, formatTime } from "@/app/_components/format";

type Evaluation = {
  id: number;
  checkpointId: number;
  partition: string;
  dataSha256: string;
  source: "training" | "requested";
  createdByName: string;
  createdAt: string;
  metrics: Record<string, unknown>;
  confusion: { labels: string[]; matrix: number[][] } | null;
};
type PerClass = { label: string; precision: number; recall: number; f1: number; support: number };

/** Who produced an evaluation: the trainer at the end of the run, or a person who asked for it later. */
function origin(e: Evaluation): string {
  return e.source === "training" ? "End of training" : `Requested by ${e.createdByName}`;
}

/** The one number a checkpoint's row shows for its evaluation: accuracy, or MSE for regression. */
export function evaluationShortResult(m: Record<string, unknown>): string {
  return m.task === "regression" ? `MSE ${formatMetric(m.mse as number)}` : `accuracy ${formatMetric(m.accuracy as number, "accuracy")}`;
}

function headline(m: Record<string, unknown>): string {
  if (m.task === "regression")
    return `MSE ${formatMetric(m.mse as number)} · MAE ${formatMetric(m.mae as number)} · R² ${formatMetric(m.r2 as number)}`;
  return `accuracy ${formatMetric(m.accuracy as number, "accuracy")} · macro F1 ${formatMetric((m.macro as { f1: number } | undefined)?.f1, "f1")}`;
}

/**
 * Why a run cannot have a test evaluation, when it cannot: its split has no test rows (its test ratio, and where the
 * Fork form is, for an engineer), or it has no recorded split (a run logged through the tracking API). null: it can.
 */
export type NoTestEvaluation =
  { reason: "no-test-rows"; testRatio: number | undefined; forkHref: string | null } | { reason: "no-split" } | null;

export function EvaluationPanel({
  evaluations,
  checkpoints,
  noTestEvaluation = null,
}: {
  evaluations: Evaluation[];
  checkpoints: { id: number; epoch: number }[];
  noTestEvaluation?: NoTestEvaluation;
}) {
  const [chosenId, setChosenId] = useState<number | null>(null);
  // A link to #evaluation-<id> on this page (the checkpoints table's) shows that evaluation below.
  useEffect(() => {
    const followHash = () => {
      const linked = /^#evaluation-(\d+)$/.exec(window.location.hash);
      if (linked) setChosenId(Number(linked[1]));
    };
    window.addEventListener("hashchange", followHash);
    return () => window.removeEventListener("hashchange", followHash);
  }, []);
  const epochOf = (e: Evaluation) => checkpoints.find((c) => c.id === e.checkpointId)?.epoch ?? "?";
  const chosen = evaluations.find((e) => e.id === chosenId) ?? evaluations.at(-1);
  return (
    <section className="panel" aria-label="Evaluation">
      <h2 style={{ marginTop: 0 }}>Evaluation</h2>
      {evaluations.length === 0 || !chosen ? (
        <NoEvaluation why={noTestEvaluation} />
      ) : (
        <>
          <div className="table-scroll">
            <table aria-label="Evaluations">
              <thead>
                <tr>
                  <th className="num">#</th>
                  <th className="num">Checkpoint epoch</th>
                  <th>Partition</th>
                  <th>Origin</th>
                  <th>Result</th>
                  <th>Data SHA-256</th>
                  <th>When (UTC)</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                {evaluations.map((e) => (
                  <tr key={e.id} id={`evaluation-${e.id}`} style={{ scrollMarginTop: 64 }}>
                    <td className="num">{e.id}</td>
                    <td className="num">{epochOf(e)}</td>
                    <td>{e.partition}</td>
                    <td>{origin(e)}</td>
                    <td>{headline(e.metrics)}</td>
                    <td>
                      <Hash value={e.dataSha256} label={`evaluation ${e.id} data sha256`} />
                    </td>
                    <td>{formatTime(e.createdAt)}</td>
                    <td>
                      {e.id === chosen.id ? (
                        <span className="muted">shown below</span>
                      ) : (
                        <button type="button" onClick={() => setChosenId(e.id)} aria-label={`Show evaluation ${e.id}`}>
                          Show
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <EvaluationDetail e={chosen} epoch={epochOf(chosen)} />
        </>
      )}
    </section>
  );
}

/** The panel's empty state: why there is no evaluation yet, or why there can be none and what to do about it. */
function NoEvaluation({ why }: { why: NoTestEvaluation }) {
  if (why?.reason === "no-test-rows") {
    const ratio =
      why.testRatio === undefined ? "" : why.testRatio === 0 ? " (test ratio 0)" : ` (test ratio ${why.testRatio}: too few rows for one)`;
    return (
      <Empty
        title="No test evaluation: this run's split has no test rows"
        hint={`Its split keeps no rows for testing${ratio}, so no checkpoint can be evaluated on held-out data, neither at the end of training nor on request. To get a test evaluation (needed to request production), fork the run with a split that keeps test rows: a Test ratio above 0${why.forkHref ? "" : " (engineers fork runs)"}.`}
      >
        {why.forkHref ? <Link href={why.forkHref}>Fork with a split that keeps test rows</Link> : null}
      </Empty>
    );
  }
  if (why?.reason === "no-split")
    return (
      <Empty
        title="No test evaluation: this run has no recorded split"
        hint="It was logged through the tracking API, which records its metrics but not a split of its data, so there is no test partition to evaluate a checkpoint on. A run launched from New run records its split and is evaluated on its test rows."
      />
    );
  return (
    <Empty
      title="Not evaluated yet"
      hint="When training ends, the best checkpoint is evaluated on the test partition; engineers and reviewers can evaluate any checkpoint from the table above."
    />
  );
}

function EvaluationDetail({ e, epoch }: { e: Evaluation; epoch: number | string }) {
  const m = e.metrics;
  const perClass = (m.perClass as PerClass[] | undefined) ?? [];
  const max = Math.max(1, ...(e.confusion?.matrix.flat() ?? [1]));
  return (
    <div aria-label={`Evaluation ${e.id}`} role="group">
      <p>
        Evaluation #{e.id} ({origin(e).toLowerCase()}): on the <strong>{e.partition}</strong> partition, checkpoint of epoch {epoch} · data{" "}
        <Hash value={e.dataSha256} label="evaluation data sha256" />
      </p>
      {m.task === "regression" ? (
        <dl className="kv">
          <dt>MSE</dt>
          <dd>{formatMetric(m.mse as number)}</dd>
          <dt>MAE</dt>
          <dd>{formatMetric(m.mae as number)}</dd>
          <dt>R²</dt>
          <dd>{formatMetric(m.r2 as number)}</dd>
        </dl>
      ) : (
        <div className="grid2">
          <div>
            <p>
              <strong>Accuracy {formatMetric(m.accuracy as number, "accuracy")}</strong> · macro precision{" "}
              {formatMetric((m.macro as { precision: number } | undefined)?.precision, "precision")} · macro recall{" "}
              {formatMetric((m.macro as { recall: number } | undefined)?.recall, "recall")} · macro F1{" "}
              {formatMetric((m.macro as { f1: number } | undefined)?.f1, "f1")}
            </p>
            <div className="table-scroll">
              <table aria-label="Per-class metrics">
                <thead>
                  <tr>
                    <th>Class</th>
                    <th className="num">Precision</th>
                    <th className="num">Recall</th>
                    <th className="num">F1</th>
                    <th className="num">Support</th>
                  </tr>
                </thead>
                <tbody>
                  {perClass.map((c) => (
                    <tr key={c.label}>
                      <td>{c.label}</td>
                      <td className="num">{formatMetric(c.precision, "precision")}</td>
                      <td className="num">{formatMetric(c.recall, "recall")}</td>
                      <td className="num">{formatMetric(c.f1, "f1")}</td>
                      <td className="num">{c.support}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </div>
          {e.confusion ? (
            <div>
              <div className="table-scroll">
                <table aria-label="Confusion matrix" style={{ width: "auto" }}>
                  <caption className="muted" style={{ captionSide: "top", textAlign: "left" }}>
                    Confusion matrix (rows: true class, columns: predicted)
                  </caption>
                  <thead>
                    <tr>
                      <th></th>
                      {e.confusion.labels.map((l) => (
                        <th key={l} className="num">
                          {l}
                        </th>
                      ))}
                    </tr>
                  </thead>
                  <tbody>
                    {e.confusion.matrix.map((row, i) => (
                      <tr key={i}>
                        <th>{e.confusion!.labels[i]}</th>
                        {row.map((v, j) => (
                          <td
                            key={j}
                            className="num"
                            style={{ background: `rgba(47,91,211,${(v / max) * 0.75})`, color: v / max > 0.5 ? "#fff" : undefined }}
                          >
                            {v}
                          </td>
                        ))}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </div>
          ) : null}
        </div>
      )}
    </div>
  );
}
