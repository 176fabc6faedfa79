/** One short training per architecture family: conv2d on 8×8 images (cpu), embedding + LSTM, embedding + GRU. */
import { describe, expect, it } from "vitest";
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

  it("trains embedding + lstm on short token sequences (on cpu: wasm has no embedding gradient)", async () => {
    const cfg = config({ model: { layers: [{ type: "embedding", outputDim: 8 }, { type: "lstm", units: 8 }] }, training: { epochs: 6, learningRate: 0.03 } });
    const events = await trainCollect(job(cfg, { backend: "auto" }), sequences());
    expect(only(events, "started")).toMatchObject({ backend: "cpu", backendReason: "tfjs-node is not installed; wasm lacks UnsortedSegmentSum (the embedding gradient): embedding layers train on cpu" });
    expect(only(events, "finished").status).toBe("completed");
    expect(ofType(events, "epoch").at(-1)!.metrics.val_accuracy).toBeGreaterThanOrEqual(0.9);
  });

  it("trains embedding + gru (returning sequences) + global pooling", async () => {
    const cfg = config({ model: { layers: [{ type: "embedding", outputDim: 8 }, { type: "gru", units: 8, returnSequences: true }, { type: "globalAveragePooling1d" }] }, training: { epochs: 6, learningRate: 0.03 } });
    const events = await trainCollect(job(cfg), sequences());
    expect(only(events, "finished").status).toBe("completed");
    expect(ofType(events, "epoch").at(-1)!.metrics.val_accuracy).toBeGreaterThanOrEqual(0.9);
  });
});
