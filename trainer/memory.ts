/**
 * A memory estimate for training versus inference, reported in the "started" event so that a
 * user sees what a configuration costs before it runs long.
 *
 * It is an estimate from the model's shapes, not a measurement:
 * - weights: every parameter as float32 (4 bytes); gradients: trainable parameters only;
 * - optimizer state slots per trainable parameter as tfjs allocates them: sgd 0, momentum 1,
 *   adam 2 (first and second moments), rmsprop 2 (tfjs always keeps mean square and moments);
 * - activations per batch: the sum of every layer's output size × batch × 4 bytes, × 2 because
 *   backpropagation keeps the forward activations and their gradients;
 * - inference: weights + one forward pass's activations for a batch (no gradients, no slots);
 * - weightsBfloat16 / weightsInt8: the weights alone at 2 and 1 byte per parameter (quantized export).
 */
import type * as tfType from "@tensorflow/tfjs";
import type { MemoryEstimate } from "./types";
import type { TrainingConfig } from "../contracts/training-config";

export type OptimizerName = TrainingConfig["training"]["optimizer"]["name"];

export const OPTIMIZER_SLOTS: Record<OptimizerName, number> = { sgd: 0, momentum: 1, adam: 2, rmsprop: 2 };

const sizeOf = (shape: readonly (number | null)[]) => shape.reduce<number>((n, d) => n * (d ?? 1), 1);

/** Per-sample element count of every layer's output (batch dimension dropped). */
export function activationElementsPerSample(model: tfType.LayersModel): number {
  let total = 0;
  for (const layer of model.layers) {
    const out = layer.outputShape;
    const shapes = (Array.isArray(out[0]) ? out : [out]) as (number | null)[][];
    for (const shape of shapes) total += sizeOf(shape.slice(1));
  }
  return total;
}

export function estimateMemory(model: tfType.LayersModel, batchSize: number, optimizerName: OptimizerName): MemoryEstimate {
  const paramCount = model.countParams();
  const trainableParamCount = model.trainableWeights.reduce((n, w) => n + sizeOf(w.shape), 0);
  const activationsOneSample = activationElementsPerSample(model) * 4;
  const weightsFloat32 = paramCount * 4;
  const gradientsFloat32 = trainableParamCount * 4;
  const optimizerStateFloat32 = trainableParamCount * 4 * OPTIMIZER_SLOTS[optimizerName];
  const activationsPerBatchFloat32 = activationsOneSample * batchSize * 2;
  return {
    paramCount,
    trainableParamCount,
    bytes: {
      weightsFloat32,
      gradientsFloat32,
      optimizerStateFloat32,
      activationsPerBatchFloat32,
      trainingTotalFloat32: weightsFloat32 + gradientsFloat32 + optimizerStateFloat32 + activationsPerBatchFloat32,
      inferenceTotalFloat32: weightsFloat32 + activationsOneSample * batchSize,
      weightsBfloat16: paramCount * 2,
      weightsInt8: paramCount,
    },
  };
}
