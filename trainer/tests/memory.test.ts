/** Memory estimate on a tiny known model: Dense(4→8) + head Dense(8→3). */
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { estimateMemory } from "../memory";
import { buildModel } from "../model";

describe("[trainer/memory] estimateMemory", () => {
  it("counts parameters, gradients, optimizer slots and activations", async () => {
    await tf.setBackend("cpu");
    const model = buildModel({
      layers: [{ type: "dense", units: 8, activation: "relu", kernelInitializer: "glorotUniform" }],
      featureShape: [4],
      task: "classification",
      outputs: 3,
      seed: 1,
    });
    // params: 4·8 + 8 = 40, 8·3 + 3 = 27 → 67. Activations per sample: 8 + 3 = 11 floats = 44 bytes.
    const adam = estimateMemory(model, 10, "adam");
    expect(adam).toEqual({
      paramCount: 67,
      trainableParamCount: 67,
      bytes: {
        weightsFloat32: 268,
        gradientsFloat32: 268,
        optimizerStateFloat32: 536,
        activationsPerBatchFloat32: 880,
        trainingTotalFloat32: 268 + 268 + 536 + 880,
        inferenceTotalFloat32: 268 + 440,
        weightsBfloat16: 134,
        weightsInt8: 67,
      },
    });
    expect(estimateMemory(model, 10, "sgd").bytes.optimizerStateFloat32).toBe(0);
    expect(estimateMemory(model, 10, "momentum").bytes.optimizerStateFloat32).toBe(268);
    model.layers[0]!.trainable = false;
    const frozen = estimateMemory(model, 10, "adam");
    expect(frozen.trainableParamCount).toBe(27);
    expect(frozen.bytes.gradientsFloat32).toBe(108);
    model.dispose();
  });
});
