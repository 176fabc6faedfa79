"use client";
/**
 * "Download weights" for a checkpoint or a model version, with the weights' SHA-256 beside it (short, full value on
 * hover, copy button). The link is a plain GET of app/api/weights/… (session cookie, no side effects): a ZIP with
 * the TF.js model (model.json + weights.bin, for tf.loadLayersModel once unpacked), the recorded weights file
 * checkpoint.rlw1 (whose SHA-256 is the one shown) and SHA256SUMS. The server checks the stored file's hash before
 * serving it.
 */
import { Hash } from "./hash";

export function weightsHref(subject: { checkpointId: number } | { modelVersionId: number }): string {
  return "checkpointId" in subject
    ? `/api/weights/checkpoints/${subject.checkpointId}`
    : `/api/weights/model-versions/${subject.modelVersionId}`;
}

export function WeightsDownload({ href, sha256, what }: { href: string; sha256: string; what: string }) {
  return (
    <span className="weights-download" style={{ display: "inline-flex", gap: 6, alignItems: "center", flexWrap: "wrap" }}>
      <a
        href={href}
        download
        aria-label={`Download weights of ${what} (TF.js model, .zip)`}
        title="A .zip with model.json + weights.bin (TensorFlow.js: tf.loadLayersModel) and the recorded weights file checkpoint.rlw1, whose SHA-256 is shown beside this link"
      >
        Download weights
      </a>
      <Hash value={sha256} label={`${what} weights sha256`} />
    </span>
  );
}
