/** One short training per architecture family: conv2d on 8×8 images (cpu), embedding + LSTM, embedding + GRU. */
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { buildModel } from "../model";
import { bars, config, job, sequences } from "./synthetic";
import { only, ofType, trainCollect } from "./collect";

describe("[trainer/architectures]", () => {
  it("trains conv2d + pooling on 8×8 images, on cpu even when wasm is asked for", async () => {
    const cfg = config({
      model: { layers: [{ type: "conv2d", filters: 4, kernelSize: 3 }, { type: "maxPooling2d", poolSize: 2 }, { type: "flatten" }] },
      training: { epochs: 12, learningRate: 0.03 },
    });
    const events = await trainCollect(job(cfg, { backend: "wasm" }), bars());
    const started = only(events, "started");
    expect(started.backend).toBe("cpu");
    expect(started.backendReason).toBe("wasm lacks Conv2DBackpropFilter: conv layers train on cpu");
    expect(ofType(events, "epoch").at(-1)!.metrics.val_accuracy).toBeGreaterThanOrEqual(0.9);
  });

  it("trains embedding + lstm on short token sequences, on wasm", async () => {
    const cfg = config({
      model: {
        layers: [
          { type: "embedding", outputDim: 8 },
          { type: "lstm", units: 8 },
        ],
      },
      training: { epochs: 6, learningRate: 0.03 },
    });
    const events = await trainCollect(job(cfg, { backend: "auto" }), sequences());
    expect(only(events, "started")).toMatchObject({ backend: "wasm", backendReason: "tfjs-node is not installed; using WebAssembly" });
    expect(only(events, "finished").status).toBe("completed");
    expect(ofType(events, "epoch").at(-1)!.metrics.val_accuracy).toBeGreaterThanOrEqual(0.9);
  });

  it("trains embedding + gru (returning sequences) + global pooling", async () => {
    const cfg = config({
      model: {
        layers: [{ type: "embedding", outputDim: 8 }, { type: "gru", units: 8, returnSequences: true }, { type: "globalAveragePooling1d" }],
      },
      training: { epochs: 6, learningRate: 0.03 },
    });
    const events = await trainCollect(job(cfg), sequences());
    expect(only(events, "finished").status).toBe("completed");
    expect(ofType(events, "epoch").at(-1)!.metrics.val_accuracy).toBeGreaterThanOrEqual(0.9);
  });

  it("computes the same embedding gradient as tf.layers.embedding (scatter-add instead of segment sum)", async () => {
    await tf.setBackend("cpu");
    const ids = tf.tensor2d([
      [1, 2, 2],
      [0, 4, 1],
    ]);
    const ours = buildModel({
      layers: [{ type: "embedding", outputDim: 3, vocabularySize: 5 }, { type: "flatten" }],
      featureShape: [3],
      task: "regression",
      outputs: 1,
      seed: 3,
    });
    const reference = tf.sequential({
      layers: [tf.layers.embedding({ inputDim: 5, outputDim: 3, inputLength: 3 }), tf.layers.flatten(), tf.layers.dense({ units: 1 })],
    });
    reference.setWeights(ours.getWeights());
    const gradients = (model: tf.LayersModel) => {
      const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(model.apply(ids) as tf.Tensor)) as tf.Scalar, variables);
      const out = variables.map((v) => Array.from(grads[v.name]!.dataSync()));
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const [a, b] = [gradients(ours), gradients(reference)];
    expect(a).toHaveLength(3);
    a.forEach((g, i) => g.forEach((x, j) => expect(x).toBeCloseTo(b[i]![j]!, 5)));
    expect(a[0]!.some((x) => x !== 0)).toBe(true);
    tf.dispose([ids]);
    ours.dispose();
    reference.dispose();
  });
});
