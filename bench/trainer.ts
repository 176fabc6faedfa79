/**
 * Trainer benchmark: samples/s per example config on each available backend, and the tracking overhead —
 * the same fit as a plain TensorFlow.js `model.fit` (no callbacks, nothing stored) versus a full Runledger run
 * (worker thread, events, metrics/checkpoints/evaluation persisted with their audit events).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { count, eq } from "drizzle-orm";
import * as tf from "@tensorflow/tfjs";
import { createAppServices } from "@/server/app-services";
import { ensureDemoUsersAndProject, DEMO_USERS } from "@/server/seed";
import { createRun, parseConfigOrThrow } from "@/server/services/runs";
import { actorOf } from "@/server/services/users";
import { users, runs, splits, checkpoints } from "@/db/schema";
import { loadBuiltin } from "@/trainer/data/builtin";
import { prepareData } from "@/trainer/data/prepare";
import { selectBackend } from "@/trainer/backend";
import { buildForJob, hasConvLayers, makeOptimizer } from "@/trainer/model";
import type { BackendName, TrainJob } from "@/trainer/types";
import type { TrainingConfig } from "@/contracts/training-config";
import { median, type Figure } from "./figures";

const EXAMPLES = ["iris-mlp", "digits-cnn", "sentences-lstm"] as const;

function loadExample(name: string): TrainingConfig {
  return parseConfigOrThrow(JSON.parse(fs.readFileSync(path.join("examples", `${name}.json`), "utf8")));
}

function jobFor(config: TrainingConfig, backend: BackendName): TrainJob {
  if (!("builtin" in config.data.dataset)) throw new Error("benchmarks use built-in datasets");
  const b = loadBuiltin(config.data.dataset.builtin);
  return { config, dataset: { bytes: b.bytes, schema: b.schema, sha256: b.sha256 }, backend };
}

/** Plain tfjs: the same model, data, optimizer, batch size and epochs, with model.fit and no callbacks. */
async function plainFitSamplesPerSecond(config: TrainingConfig, backend: BackendName): Promise<{ samplesPerSecond: number; backend: string }> {
  const job = jobFor(config, backend);
  const prepared = prepareData(job.dataset, config.data);
  const chosen = await selectBackend(backend, { needsConvGradients: hasConvLayers(config.model.layers) });
  const { model } = buildForJob(job, prepared);
  model.compile({ optimizer: makeOptimizer(config.training), loss: prepared.task === "classification" ? "categoricalCrossentropy" : "meanSquaredError", metrics: prepared.task === "classification" ? ["accuracy"] : ["mae"] });
  const shape = (n: number) => [n, ...prepared.featureShape];
  const out = prepared.task === "classification" ? prepared.classes!.length : 1;
  const tr = prepared.partitions.train;
  const va = prepared.partitions.validation;
  const [x, y, vx, vy] = [tf.tensor(tr.x, shape(tr.count)), tf.tensor2d(tr.y, [tr.count, out]), tf.tensor(va.x, shape(va.count)), tf.tensor2d(va.y, [va.count, out])];
  const t0 = performance.now();
  await model.fit(x, y, { epochs: config.training.epochs, batchSize: config.training.batchSize, shuffle: false, validationData: [vx, vy], verbose: 0 });
  const seconds = (performance.now() - t0) / 1000;
  tf.dispose([x, y, vx, vy]);
  model.dispose();
  return { samplesPerSecond: (tr.count * config.training.epochs) / seconds, backend: chosen.name };
}

/** Full Runledger: a run through the orchestrator (worker + persistence); time from "started" to "finished" as recorded. */
async function trackedRunSamplesPerSecond(config: TrainingConfig, backend: BackendName): Promise<{ samplesPerSecond: number; backend: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-trainer-"));
  const services = createAppServices(dir, { backend });
  try {
    const seed = ensureDemoUsersAndProject(services);
    const engineer = services.db.select().from(users).where(eq(users.email, DEMO_USERS[1]!.email)).get()!;
    const run = createRun({ ...services, actor: actorOf(engineer) }, { experimentId: seed.experimentId, config, rationale: "benchmark" });
    services.orchestrator.launch(run.id);
    await services.orchestrator.waitFor(run.id);
    const done = services.db.select().from(runs).where(eq(runs.id, run.id)).get()!;
    if (done.status !== "completed") throw new Error(`benchmark run ended ${done.status}: ${done.error}`);
    const seconds = (Date.parse(done.finishedAt!) - Date.parse(done.startedAt!)) / 1000;
    const split = services.db.select().from(splits).where(eq(splits.id, done.splitId!)).get()!;
    const trainCount = (JSON.parse(split.manifestJson) as { partitions: { train: { count: number } } }).partitions.train.count;
    const epochsRun = services.db.select({ n: count() }).from(checkpoints).where(eq(checkpoints.runId, run.id)).get()!.n; // one checkpoint per epoch in these configs
    return { samplesPerSecond: (trainCount * epochsRun) / seconds, backend: done.backend ?? "?" };
  } finally {
    services.db.$client.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchTrainer(): Promise<Figure[]> {
  const figures: Figure[] = [];
  const backends: BackendName[] = ["wasm", "cpu"];
  for (const name of EXAMPLES) {
    const config = loadExample(name);
    for (const backend of backends) {
      if (backend === "wasm" && hasConvLayers(config.model.layers)) continue; // wasm cannot train conv layers: the run falls back to cpu
      const r = await trackedRunSamplesPerSecond(config, backend);
      figures.push({ name: `train_${name.replace(/-/g, "_")}_${r.backend}_samples_per_s`, value: Math.round(r.samplesPerSecond), unit: "samples/s" });
    }
  }
  // Tracking overhead: the same fit as plain tfjs vs a full Runledger run, interleaved, median of 5 each, on wasm. The headline
  // figure uses a dense MLP on the 8×8 digits (33 batches per epoch, a checkpoint every epoch); the Iris MLP, whose
  // epochs are only 7 batches (~20 ms), shows the worst case, where per-epoch checkpointing weighs most.
  const digitsMlp: TrainingConfig = { ...loadExample("iris-mlp"), data: { ...loadExample("digits-cnn").data }, model: { layers: [{ type: "flatten" }, { type: "dense", units: 64, activation: "relu", kernelInitializer: "heNormal" }, { type: "dense", units: 32, activation: "relu", kernelInitializer: "heNormal" }] } } as TrainingConfig;
  digitsMlp.training = { ...digitsMlp.training, batchSize: 32, epochs: 30 };
  const iris = loadExample("iris-mlp");
  const cases: [string, TrainingConfig][] = [["digits_mlp", digitsMlp], ["iris_mlp", { ...iris, training: { ...iris.training, epochs: 150 } }]];
  for (const [label, config] of cases) {
    const plain: number[] = [];
    const tracked: number[] = [];
    for (let i = 0; i < 5; i++) {
      plain.push((await plainFitSamplesPerSecond(config, "wasm")).samplesPerSecond);
      tracked.push((await trackedRunSamplesPerSecond(config, "wasm")).samplesPerSecond);
    }
    const p = median(plain);
    const t = median(tracked);
    const suffix = label === "digits_mlp" ? "" : `_${label}`;
    figures.push({ name: `plain_tfjs_fit_${label}_wasm_samples_per_s`, value: Math.round(p), unit: "samples/s" });
    figures.push({ name: `tracked_run_${label}_wasm_samples_per_s`, value: Math.round(t), unit: "samples/s" });
    figures.push({ name: `tracking_overhead_pct${suffix}`, value: ((p - t) / p) * 100, unit: "%", ...(suffix ? {} : { target: "< 5" }) });
  }
  return figures;
}
