"use client";
/**
 * "Estimate size": before a run is launched, asks the server (runs.estimate, computed in a trainer worker on the
 * prepared data) for the model's parameter count and a memory estimate, training versus inference, in float32,
 * plus the weights alone in bfloat16 and int8. Every figure carries its unit. The estimate describes the config it
 * was asked for; when the form changes afterwards the panel says so instead of showing numbers for another model.
 */
import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { formatBytes, formatCount } from "./format";

const OPTIMIZER_SLOTS: Record<string, string> = {
  sgd: "no state",
  momentum: "1 slot per parameter",
  adam: "2 slots per parameter",
  rmsprop: "2 slots per parameter",
};

export function MemoryEstimate({ config }: { config: unknown }) {
  const trpc = useTRPC();
  const [asked, setAsked] = useState<unknown>(null);
  const estimate = useQuery({
    ...trpc.runs.estimate.queryOptions({ config: asked }),
    enabled: asked !== null,
    retry: false,
    staleTime: Number.POSITIVE_INFINITY,
  });
  const stale = asked !== null && JSON.stringify(asked) !== JSON.stringify(config);
  const optimizer = (asked as { training?: { optimizer?: { name?: string } } } | null)?.training?.optimizer?.name ?? "adam";
  const e = estimate.data;
  return (
    <fieldset aria-label="Size estimate">
      <legend>Size</legend>
      <div className="row">
        <button type="button" onClick={() => setAsked(config)} disabled={config === null || estimate.isFetching}>
          {estimate.isFetching ? "Estimating…" : "Estimate size"}
        </button>
        <span className="muted">
          {config === null
            ? "Fix the configuration first."
            : "Builds the model on the prepared data (in a trainer worker) and counts parameters and memory."}
        </span>
      </div>
      {estimate.error ? (
        <p className="error-text" role="alert">
          {estimate.error.message}
        </p>
      ) : null}
      {stale && e ? (
        <p className="muted" role="status">
          The configuration changed since this estimate: estimate again.
        </p>
      ) : null}
      {e && !stale ? (
        <div role="region" aria-label="Estimate result" style={{ marginTop: 8 }}>
          <p style={{ margin: "0 0 8px" }}>
            <strong data-testid="param-count">{formatCount(e.memory.paramCount)} parameters</strong>
            {e.memory.trainableParamCount !== e.memory.paramCount ? <> ({formatCount(e.memory.trainableParamCount)} trainable)</> : null}
            <span className="muted">
              {" "}
              · input {e.featureShape.join("×")} · trains on {e.backend} · train / validation / test rows {e.partitions.train} /{" "}
              {e.partitions.validation} / {e.partitions.test}
            </span>
          </p>
          {e.fineTune ? (
            <p className="muted" style={{ margin: "0 0 8px" }}>
              frozen: {e.fineTune.frozenLayers.join(", ") || "none"} · replaced: {e.fineTune.replacedLayers.join(", ") || "none"}
            </p>
          ) : null}
          <div className="table-scroll">
            <table aria-label="Memory estimate" style={{ width: "auto" }}>
              <thead>
                <tr>
                  <th>float32 (4 bytes per value)</th>
                  <th className="num">Training</th>
                  <th className="num">Inference</th>
                </tr>
              </thead>
              <tbody>
                <tr>
                  <td>Weights ({formatCount(e.memory.paramCount)} parameters)</td>
                  <td className="num">{formatBytes(e.memory.bytes.weightsFloat32)}</td>
                  <td className="num">{formatBytes(e.memory.bytes.weightsFloat32)}</td>
                </tr>
                <tr>
                  <td>Gradients ({formatCount(e.memory.trainableParamCount)} trainable)</td>
                  <td className="num">{formatBytes(e.memory.bytes.gradientsFloat32)}</td>
                  <td className="num">–</td>
                </tr>
                <tr>
                  <td>
                    Optimizer state ({optimizer}: {OPTIMIZER_SLOTS[optimizer] ?? "?"})
                  </td>
                  <td className="num">{formatBytes(e.memory.bytes.optimizerStateFloat32)}</td>
                  <td className="num">–</td>
                </tr>
                <tr>
                  <td>Activations per batch of {e.batchSize} (training keeps them and their gradients)</td>
                  <td className="num">{formatBytes(e.memory.bytes.activationsPerBatchFloat32)}</td>
                  <td className="num">{formatBytes(e.memory.bytes.inferenceTotalFloat32 - e.memory.bytes.weightsFloat32)}</td>
                </tr>
                <tr>
                  <th>Total</th>
                  <th className="num">{formatBytes(e.memory.bytes.trainingTotalFloat32)}</th>
                  <th className="num">{formatBytes(e.memory.bytes.inferenceTotalFloat32)}</th>
                </tr>
              </tbody>
            </table>
          </div>
          <p style={{ margin: "8px 0 0" }}>
            Weights alone: float32 {formatBytes(e.memory.bytes.weightsFloat32)} · bfloat16 {formatBytes(e.memory.bytes.weightsBfloat16)} ·
            int8 {formatBytes(e.memory.bytes.weightsInt8)}
          </p>
          <p className="muted" style={{ margin: "4px 0 0" }}>
            An estimate from the model's shapes, not a measurement; the run records it again when it starts.
          </p>
        </div>
      ) : null}
    </fieldset>
  );
}
