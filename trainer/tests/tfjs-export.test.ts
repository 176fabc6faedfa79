/**
 * exportTfjs (trainer/tfjs-export.ts) for architectures beyond a dense stack: a text model (our ScatterEmbedding,
 * written as the stock Embedding, + LSTM) and an image model (conv2d, pooling, flatten) load in stock TF.js
 * (strict) with exactly the checkpoint's weights and give the same predictions as the model that was saved; a
 * weights file that does not hash to the given SHA-256 is refused.
 */
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import type { LayerSpec } from "@/contracts/training-config";
import { serializeWeights, weightsSha256 } from "../checkpoint";
import { buildModel } from "../model";
import { exportTfjs } from "../tfjs-export";

async function roundTrip(layers: LayerSpec[], featureShape: number[], input: tf.Tensor, vocabularySize?: number) {
  await tf.setBackend("cpu");
  const original = buildModel({
    layers,
    featureShape,
    task: "classification",
    outputs: 3,
    seed: 5,
    ...(vocabularySize ? { vocabularySize } : {}),
  });
  const weights = serializeWeights(original);
  const out = await exportTfjs({ layers, task: "classification", seed: 5, weights, sha256: weightsSha256(weights) });
  const json = JSON.parse(out.modelJson) as {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  };
  expect(out.modelJson).not.toContain("Runledger" + "ScatterEmbedding");
  const loaded = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0]!.weights,
      weightData: out.weightsBin.buffer.slice(
        out.weightsBin.byteOffset,
        out.weightsBin.byteOffset + out.weightsBin.byteLength,
      ) as ArrayBuffer,
    }),
  );
  const expected = Array.from((original.predict(input) as tf.Tensor).dataSync());
  const actual = Array.from((loaded.predict(input) as tf.Tensor).dataSync());
  actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
  original.dispose();
  loaded.dispose();
}

describe("exportTfjs", () => {
  it("a text model (embedding + LSTM) loads in stock TF.js and predicts as the original", async () => {
    await roundTrip(
      [
        { type: "embedding", outputDim: 4 },
        { type: "lstm", units: 3, returnSequences: false },
      ] as LayerSpec[],
      [6],
      tf.tensor2d([[1, 2, 3, 4, 0, 0]]),
      20,
    );
  });

  it("an image model (conv2d, pooling, flatten) loads in stock TF.js and predicts as the original", async () => {
    await roundTrip(
      [
        { type: "conv2d", filters: 2, kernelSize: 3, activation: "relu" },
        { type: "maxPooling2d", poolSize: 2 },
        { type: "flatten" },
      ] as LayerSpec[],
      [8, 8, 1],
      tf.ones([1, 8, 8, 1]),
    );
  });

  it("refuses weights that do not hash to the given SHA-256", async () => {
    const layers = [{ type: "dense", units: 2, activation: "relu" }] as LayerSpec[];
    const model = buildModel({ layers, featureShape: [4], task: "classification", outputs: 3, seed: 1 });
    const weights = serializeWeights(model);
    model.dispose();
    await expect(exportTfjs({ layers, task: "classification", seed: 1, weights, sha256: "0".repeat(64) })).rejects.toThrow(
      /refusing to export/,
    );
  });
});
