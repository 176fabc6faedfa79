/**
 * The training loop on tiny synthetic data: event shapes and keys, accuracy, determinism,
 * learning-rate schedules, early stopping, class weights, checkpoint cadence, cancellation, errors.
 */
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { deserializeWeights, loadWeightsInto, serializeWeights, weightsSha256 } from "../checkpoint";
import { buildModel } from "../model";
import { blobs, config, job, linear } from "./synthetic";
import { only, ofType, trainCollect } from "./collect";

const data = blobs();

describe("[trainer/fit] dense classification", () => {
  it("reaches high test accuracy and reports events with the contract's keys", async () => {
    const events = await trainCollect(job(config({ training: { epochs: 8 } })), data);
    expect(events[0]!.type).toBe("started");
    const started = only(events, "started");
    expect(started).toMatchObject({ backend: "cpu", epochs: 8, batchesPerEpoch: 6 });
    expect(started.memory.paramCount).toBe(4 * 16 + 16 + 16 * 3 + 3);
    expect(started.environment.node).toBe(process.version);

    const batches = ofType(events, "batch");
    expect(batches).toHaveLength(48);
    expect(batches.map((b) => b.step)).toEqual(Array.from({ length: 48 }, (_, i) => i + 1));
    expect(Object.keys(batches[0]!.metrics).sort()).toEqual(["batch_accuracy", "batch_loss"]);
    expect(batches[0]).toMatchObject({ epoch: 1, batch: 1, batchesPerEpoch: 6 });

    const epochs = ofType(events, "epoch");
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(epochs[0]!.step).toBe(6);
    expect(Object.keys(epochs[0]!.metrics).sort()).toEqual(["accuracy", "loss", "lr", "val_accuracy", "val_loss"]);
    expect(epochs.at(-1)!.metrics.val_accuracy).toBeGreaterThanOrEqual(0.9);

    const checkpoints = ofType(events, "checkpoint");
    expect(checkpoints.map((c) => c.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const c of checkpoints) expect(weightsSha256(c.weights)).toBe(c.sha256);
    const bests = checkpoints.filter((c) => c.isBest);
    expect(bests[0]!.epoch).toBe(1);
    const bestVal = Math.min(...checkpoints.map((c) => c.metrics.val_loss!));
    expect(bests.at(-1)!.metrics.val_loss).toBe(bestVal);

    const evaluation = only(events, "evaluation");
    expect(evaluation.checkpointSha256).toBe(bests.at(-1)!.sha256);
    expect(evaluation.partition).toBe("test");
    expect(evaluation.result.task === "classification" && evaluation.result.accuracy).toBeGreaterThanOrEqual(0.9);

    const finished = only(events, "finished");
    expect(finished).toMatchObject({ status: "completed", epochsRun: 8, stoppedEarly: false, weightsSha256: checkpoints.at(-1)!.sha256 });
    expect(finished.samplesPerSecond).toBeGreaterThan(0);
    expect(events.at(-1)).toBe(finished);
  });

  it("checkpoints every N epochs and always at the last epoch", async () => {
    const events = await trainCollect(job(config({ training: { epochs: 7, checkpointEvery: 3 } })), data);
    expect(ofType(events, "checkpoint").map((c) => c.epoch)).toEqual([3, 6, 7]);
  });
});

describe("[trainer/fit] determinism", () => {
  const cfg = (seed: number) =>
    config({
      model: {
        layers: [
          { type: "dense", units: 12 },
          { type: "dropout", rate: 0.3 },
        ],
      },
      training: { epochs: 3, seed, shuffle: true },
    });
  it("gives the same weights hash for the same seed and a different one for another seed", async () => {
    const a = only(await trainCollect(job(cfg(11)), data), "finished").weightsSha256;
    const b = only(await trainCollect(job(cfg(11)), data), "finished").weightsSha256;
    const c = only(await trainCollect(job(cfg(12)), data), "finished").weightsSha256;
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });

  it("is deterministic on wasm too, and leaks no tensors", async () => {
    const before = tf.memory().numTensors;
    const a = only(await trainCollect(job(cfg(5), { backend: "wasm" }), data), "finished");
    const b = only(await trainCollect(job(cfg(5), { backend: "wasm" }), data), "finished");
    expect(b.weightsSha256).toBe(a.weightsSha256);
    expect(tf.getBackend()).toBe("wasm");
    await tf.setBackend("cpu");
    const c = only(await trainCollect(job(cfg(5), { backend: "cpu" }), data), "finished");
    expect(c.status).toBe("completed");
    expect(tf.memory().numTensors).toBe(before);
  });

  it("round-trips weights through the checkpoint format byte for byte", async () => {
    await tf.setBackend("cpu");
    const spec = {
      layers: [{ type: "dense" as const, units: 5, activation: "relu" as const, kernelInitializer: "glorotUniform" as const }],
      featureShape: [4],
      task: "classification" as const,
      outputs: 3,
    };
    const source = buildModel({ ...spec, seed: 1 });
    const target = buildModel({ ...spec, seed: 2 });
    const bytes = serializeWeights(source);
    expect(serializeWeights(target)).not.toEqual(bytes);
    loadWeightsInto(target, deserializeWeights(bytes));
    expect(serializeWeights(target)).toEqual(bytes);
    source.dispose();
    target.dispose();
  });
});

describe("[trainer/fit] schedules, early stopping, class weights", () => {
  it("applies a step learning-rate schedule per epoch", async () => {
    const events = await trainCollect(
      job(config({ training: { epochs: 5, learningRate: 0.1, lrSchedule: { type: "step", everyEpochs: 2, factor: 0.5 } } })),
      data,
    );
    expect(ofType(events, "epoch").map((e) => e.metrics.lr)).toEqual([0.1, 0.1, 0.05, 0.05, 0.025]);
  });

  it("applies an exponential schedule", async () => {
    const events = await trainCollect(
      job(config({ training: { epochs: 3, learningRate: 0.1, lrSchedule: { type: "exponential", decayRate: 0.5, decayEpochs: 1 } } })),
      data,
    );
    expect(ofType(events, "epoch").map((e) => e.metrics.lr)).toEqual([0.1, 0.05, 0.025]);
  });

  it("stops early when the metric does not improve by minDelta within patience", async () => {
    const events = await trainCollect(
      job(config({ training: { epochs: 10, earlyStopping: { metric: "val_loss", mode: "min", patience: 2, minDelta: 100 } } })),
      data,
    );
    const finished = only(events, "finished");
    expect(finished).toMatchObject({ epochsRun: 3, stoppedEarly: true, status: "completed" });
    expect(ofType(events, "checkpoint").at(-1)!.epoch).toBe(3);
  });

  it("weights each sample's loss by its class weight", async () => {
    const plain = await trainCollect(job(config({ training: { epochs: 1 } })), data);
    const doubled = await trainCollect(job(config({ training: { epochs: 1, classWeights: { a: 2, b: 2, c: 2 } } })), data);
    const first = (events: typeof plain) => ofType(events, "batch")[0]!.metrics.batch_loss!;
    expect(first(doubled)).toBeCloseTo(2 * first(plain), 5);
    const balanced = await trainCollect(job(config({ training: { epochs: 1, classWeights: "balanced" } })), data);
    expect(only(balanced, "finished").status).toBe("completed");
  });

  it("rejects class weights for an unknown class and unknown metric names", async () => {
    const bad = await trainCollect(job(config({ training: { classWeights: { dog: 2 } } })), data);
    expect(only(bad, "failed").message).toBe('training.classWeights: unknown class "dog"; classes are a, b, c');
    const badMetric = await trainCollect(job(config({ training: { bestMetric: { metric: "val_f1", mode: "max" } } })), data);
    expect(only(badMetric, "failed").message).toMatch(
      /^training\.bestMetric\.metric: unknown metric "val_f1"; choose one of loss, accuracy, lr, val_loss, val_accuracy$/,
    );
  });
});

describe("[trainer/fit] optimizers and regularization", () => {
  for (const name of ["sgd", "momentum", "adam", "rmsprop"] as const) {
    it(`${name} lowers the training loss`, async () => {
      const events = await trainCollect(
        job(config({ training: { epochs: 3, learningRate: name === "sgd" ? 0.2 : 0.02, optimizer: { name } } })),
        data,
      );
      const losses = ofType(events, "epoch").map((e) => e.metrics.loss!);
      expect(losses.at(-1)).toBeLessThan(losses[0]!);
    });
  }

  it("adds the L1/L2 penalty to the loss", async () => {
    const first = async (l2?: number) =>
      ofType(
        await trainCollect(
          job(config({ model: { layers: [{ type: "dense", units: 16, ...(l2 ? { l2 } : {}) }] }, training: { epochs: 1 } })),
          data,
        ),
        "batch",
      )[0]!.metrics.batch_loss!;
    const plain = await first();
    const penalised = await first(0.5);
    expect(penalised).toBeGreaterThan(plain + 0.5);
  });
});

describe("[trainer/fit] regression", () => {
  it("reports loss/mae keys and a regression evaluation", async () => {
    const events = await trainCollect(
      job(
        config({
          data: { task: "regression" },
          model: { layers: [{ type: "dense", units: 8, activation: "linear" }] },
          training: { epochs: 30, learningRate: 0.05 },
        }),
      ),
      linear(),
    );
    const epoch = ofType(events, "epoch")[0]!;
    expect(Object.keys(epoch.metrics).sort()).toEqual(["loss", "lr", "mae", "val_loss", "val_mae"]);
    expect(Object.keys(ofType(events, "batch")[0]!.metrics).sort()).toEqual(["batch_loss", "batch_mae"]);
    const result = only(events, "evaluation").result;
    expect(result.task).toBe("regression");
    if (result.task === "regression") expect(result.r2).toBeGreaterThan(0.95);
  });
});

describe("[trainer/fit] cancellation and errors", () => {
  it("stops within one batch, checkpoints the current weights and finishes as cancelled", async () => {
    let cancelled = false;
    const signal = {
      get cancelled() {
        return cancelled;
      },
    };
    const events = await trainCollect(job(config({ training: { epochs: 5 } })), data, signal, (e) => {
      if (e.type === "batch" && e.step === 8) cancelled = true;
    });
    const batches = ofType(events, "batch");
    expect(batches.at(-1)!.step).toBe(8);
    const checkpoint = ofType(events, "checkpoint").at(-1)!;
    expect(checkpoint).toMatchObject({ epoch: 2, step: 8 });
    expect(ofType(events, "evaluation")).toHaveLength(0);
    expect(only(events, "finished")).toMatchObject({ status: "cancelled", weightsSha256: checkpoint.sha256, epochsRun: 1 });
  });

  it("honours a cancel that arrived before training: checkpoint of the initial weights", async () => {
    const events = await trainCollect(job(config()), data, { cancelled: true });
    expect(ofType(events, "batch")).toHaveLength(0);
    const checkpoint = only(events, "checkpoint");
    expect(checkpoint).toMatchObject({ epoch: 0, step: 0 });
    expect(only(events, "finished")).toMatchObject({ status: "cancelled", epochsRun: 0, weightsSha256: checkpoint.sha256 });
  });

  it("fails with a message naming the layer for an invalid stack", async () => {
    const events = await trainCollect(
      job(
        config({
          model: {
            layers: [
              { type: "dense", units: 8 },
              { type: "lstm", units: 4 },
            ],
          },
        }),
      ),
      data,
    );
    expect(only(events, "failed").message).toBe("model.layers.1 (lstm) needs a sequence input; put an embedding layer before it");
    expect(events).toHaveLength(1);
  });

  it("fails clearly when a conv layer meets tabular data", async () => {
    const events = await trainCollect(job(config({ model: { layers: [{ type: "conv2d", filters: 2, kernelSize: 3 }] } })), data);
    expect(only(events, "failed").message).toBe(
      "model.layers.0 (conv2d) needs an image input [height, width, channels]; its input has shape [4]",
    );
  });

  it("fails when the stack ends unflattened", async () => {
    const events = await trainCollect(job(config({ model: { layers: [{ type: "embedding", outputDim: 4, vocabularySize: 10 }] } })), data);
    expect(only(events, "failed").message).toBe(
      "the output head needs a flat input but model.layers.0 (embedding) outputs shape [4, 4]; add a flatten or global pooling layer before the head",
    );
  });
});
