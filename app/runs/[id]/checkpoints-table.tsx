"use client";
/** Checkpoints of a run: epoch, step, metrics at that step, weights hash; the best one (by the configured metric) marked. */
import Link from "next/link";
import { Hash } from "@/app/_components/hash";
import { formatBytes, formatMetric } from "@/app/_components/format";

type Checkpoint = { id: number; epoch: number; step: number; sha256: string; bytes: number; isBest: boolean; metrics: Record<string, number> };

export function CheckpointsTable({ runId, checkpoints, canFineTune }: { runId: number; checkpoints: Checkpoint[]; canFineTune: boolean }) {
  return (
    <section className="panel" aria-label="Checkpoints">
      <h2 style={{ marginTop: 0 }}>Checkpoints</h2>
      {checkpoints.length === 0 ? <p className="muted">No checkpoint yet: one is saved at the end of each epoch (or every N epochs).</p> : (
        <table aria-label="Checkpoints table">
          <thead><tr><th className="num">Epoch</th><th className="num">Step</th><th className="num">loss</th><th className="num">val loss</th><th className="num">val accuracy</th><th>Weights SHA-256</th><th className="num">Size</th><th></th><th></th></tr></thead>
          <tbody>
            {checkpoints.map((c) => (
              <tr key={c.id}>
                <td className="num">{c.epoch}</td>
                <td className="num">{c.step}</td>
                <td className="num">{formatMetric(c.metrics.loss)}</td>
                <td className="num">{formatMetric(c.metrics.val_loss)}</td>
                <td className="num">{formatMetric(c.metrics.val_accuracy, "val_accuracy")}</td>
                <td><Hash value={c.sha256} label={`checkpoint ${c.epoch} sha256`} /></td>
                <td className="num">{formatBytes(c.bytes)}</td>
                <td>{c.isBest ? <span className="badge completed">best</span> : null}</td>
                <td>{canFineTune ? <Link href={`/runs/${runId}/finetune?checkpoint=${c.id}`} aria-label={`Fine-tune from epoch ${c.epoch}`}>fine-tune</Link> : null}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
