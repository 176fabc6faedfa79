"use client";
/** Evaluation on the test partition: headline metrics, per-class precision/recall/F1 and the confusion matrix as a heat map table. */
import { Hash } from "@/app/_components/hash";
import { formatMetric } from "@/app/_components/format";

type Evaluation = { id: number; checkpointId: number; partition: string; dataSha256: string; metrics: Record<string, unknown>; confusion: { labels: string[]; matrix: number[][] } | null };
type PerClass = { label: string; precision: number; recall: number; f1: number; support: number };

export function EvaluationPanel({ evaluations, checkpoints }: { evaluations: Evaluation[]; checkpoints: { id: number; epoch: number }[] }) {
  return (
    <section className="panel" aria-label="Evaluation">
      <h2 style={{ marginTop: 0 }}>Evaluation</h2>
      {evaluations.length === 0 ? <p className="muted">Not evaluated yet: when training ends, the best checkpoint is evaluated on the test partition.</p> : evaluations.map((e) => {
        const m = e.metrics;
        const epoch = checkpoints.find((c) => c.id === e.checkpointId)?.epoch;
        const perClass = (m.perClass as PerClass[] | undefined) ?? [];
        const max = Math.max(1, ...(e.confusion?.matrix.flat() ?? [1]));
        return (
          <div key={e.id}>
            <p>On the <strong>{e.partition}</strong> partition, checkpoint of epoch {epoch ?? "?"} · data <Hash value={e.dataSha256} label="evaluation data sha256" /></p>
            {m.task === "regression" ? (
              <dl className="kv"><dt>MSE</dt><dd>{formatMetric(m.mse as number)}</dd><dt>MAE</dt><dd>{formatMetric(m.mae as number)}</dd><dt>R²</dt><dd>{formatMetric(m.r2 as number)}</dd></dl>
            ) : (
              <div className="grid2">
                <div>
                  <p><strong>Accuracy {formatMetric(m.accuracy as number, "accuracy")}</strong> · macro F1 {formatMetric((m.macro as { f1: number } | undefined)?.f1, "f1")}</p>
                  <table aria-label="Per-class metrics"><thead><tr><th>Class</th><th className="num">Precision</th><th className="num">Recall</th><th className="num">F1</th><th className="num">Support</th></tr></thead>
                    <tbody>{perClass.map((c) => <tr key={c.label}><td>{c.label}</td><td className="num">{formatMetric(c.precision, "precision")}</td><td className="num">{formatMetric(c.recall, "recall")}</td><td className="num">{formatMetric(c.f1, "f1")}</td><td className="num">{c.support}</td></tr>)}</tbody>
                  </table>
                </div>
                {e.confusion ? (
                  <div>
                    <table aria-label="Confusion matrix" style={{ width: "auto" }}>
                      <caption className="muted" style={{ captionSide: "top", textAlign: "left" }}>Confusion matrix (rows: true class, columns: predicted)</caption>
                      <thead><tr><th></th>{e.confusion.labels.map((l) => <th key={l} className="num">{l}</th>)}</tr></thead>
                      <tbody>{e.confusion.matrix.map((row, i) => (
                        <tr key={i}><th>{e.confusion!.labels[i]}</th>{row.map((v, j) => <td key={j} className="num" style={{ background: `rgba(47,91,211,${(v / max) * 0.75})`, color: v / max > 0.5 ? "#fff" : undefined }}>{v}</td>)}</tr>
                      ))}</tbody>
                    </table>
                  </div>
                ) : null}
              </div>
            )}
          </div>
        );
      })}
    </section>
  );
}
