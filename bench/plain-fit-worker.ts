/**
 * The baseline of `tracking_overhead_pct`: a plain TensorFlow.js `model.fit` of a training config (same data
 * preparation, model, optimizer, batch size, epochs and validation data; no callbacks, nothing stored), run in a
 * fresh worker thread like a tracked run's trainer. A fresh thread matters: tfjs' JavaScript is cold in a new
 * thread (the first epochs run up to 4× slower until V8 has optimised it), and a tracked run always pays that.
 * In: {config, backend}. Out: {samplesPerSecond, backend} or {error}. Timed from just before fit to its end.
 */
import { parentPort } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import { loadBuiltin } from "../trainer/data/builtin";
import { prepareData } from "../trainer/data/prepare";
import { selectBackend } from "../trainer/backend";
import { buildForJob, hasConvLayers, makeOptimizer } from "../trainer/model";
import type { BackendName, TrainJob } from "../trainer/types";
import type { TrainingConfig } from "../contracts/training-config";

export type PlainFitRequest = { config: TrainingConfig; backend: BackendName };
export type PlainFitReply = { samplesPerSecond: number; backend: string } | { error: string };

/** A training job over a built-in dataset (the benchmarks use only those). */
export function builtinJob(config: TrainingConfig, backend: BackendName): TrainJob {
  if (!("builtin" in config.data.dataset)) throw new Error("benchmarks use built-in datasets");
  const b = loadBuiltin(config.data.dataset.builtin);
  return { config, dataset: { bytes: b.bytes, schema: b.schema, sha256: b.sha256 }, backend };
}

async function plainFit({ config, backend }: PlainFitRequest): Promise<PlainFitReply> {
  const job = builtinJob(config, backend);
  const prepared = prepareData(job.dataset, config.data);
  const chosen = await selectBackend(backend, { needsConvGradients: hasConvLayers(config.model.layers) });
  const { model } = buildForJob(job, prepared);
  const classification = prepared.task === "classification";
  model.compile({
    optimizer: makeOptimizer(config.training),
    loss: classification ? "categoricalCrossentropy" : "meanSquaredError",
    metrics: classification ? ["accuracy"] : ["mae"],
  });
  const shape = (n: number) => [n, ...prepared.featureShape];
  const out = classification ? prepared.classes!.length : 1;
  const tr = prepared.partitions.train;
  const va = prepared.partitions.validation;
  const [x, y, vx, vy] = [
    tf.tensor(tr.x, shape(tr.count)),
    tf.tensor2d(tr.y, [tr.count, out]),
    tf.tensor(va.x, shape(va.count)),
    tf.tensor2d(va.y, [va.count, out]),
  ];
  const t0 = performance.now();
  await model.fit(x, y, {
    epochs: config.training.epochs,
    batchSize: config.training.batchSize,
    shuffle: false,
    validationData: [vx, vy],
    verbose: 0,
  });
  const seconds = (performance.now() - t0) / 1000;
  tf.dispose([x, y, vx, vy]);
  model.dispose();
  return { samplesPerSecond: (tr.count * config.training.epochs) / seconds, backend: chosen.name };
}

if (parentPort) {
  const port = parentPort;
  port.once("message", (request: PlainFitRequest) => {
    plainFit(request)
      .catch((e: unknown) => ({ error: e instanceof Error ? e.message : String(e) }))
      .then((reply) => port.postMessage(reply))
      .finally(() => port.close());
  });
}
