/**
 * Trainer benchmark: samples/s per example config on each available backend, and the tracking overhead —
 * the same fit as a plain TensorFlow.js `model.fit` (no callbacks, nothing stored) versus a full Runledger run
 * (events, metrics/checkpoints/evaluation persisted with their audit events). Both start in a fresh worker thread,
 * so both pay the same cold start of tfjs' JavaScript; the difference is what tracking costs.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { count, eq } from "drizzle-orm";
import { Worker } from "node:worker_threads";
import { createAppServices } from "@/server/app-context/app-services";
import { ensureDemoUsersAndProject, DEMO_USERS } from "@/server/demo/seed";
import { createRun, parseConfigOrThrow } from "@/server/runs/service";
import { actorOf } from "@/server/users/service";
import { users, runs, splits, checkpoints } from "@/db/schema";
import { hasConvLayers } from "@/trainer/model";
import { startTrainingWorker } from "@/trainer/worker-client";
import type { BackendName } from "@/trainer/types";
import type { TrainingConfig } from "@/contracts/training-config";
import { median, type Figure } from "./figures";
import { builtinJob, type PlainFitReply, type PlainFitRequest } from "./plain-fit-worker";

const EXAMPLES = ["iris-mlp", "digits-cnn", "sentences-lstm"] as const;

function loadExample(name: string): TrainingConfig {
  return parseConfigOrThrow(JSON.parse(fs.readFileSync(path.join("examples", `${name}.json`), "utf8")));
}

/** Plain tfjs (see plain-fit-worker.ts): the same fit with model.fit and no callbacks, in a fresh worker thread. */
function plainFitSamplesPerSecond(config: TrainingConfig, backend: BackendName): Promise<{ samplesPerSecond: number; backend: string }> {
  const worker = new Worker(path.join(process.cwd(), "bench", "plain-fit-worker.cjs"), { stdout: false, stderr: false });
  return new Promise<{ samplesPerSecond: number; backend: string }>((resolve, reject) => {
    worker.once("message", (reply: PlainFitReply) =>
      "error" in reply ? reject(new Error(`plain fit failed: ${reply.error}`)) : resolve(reply),
    );
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`the plain-fit worker exited (code ${code}) before replying`)));
    worker.postMessage({ config, backend } satisfies PlainFitRequest);
  }).finally(() => void worker.terminate());
}

/** Full Runledger: a run through the orchestrator (worker + persistence); time from "started" to "finished" as recorded. */
async function trackedRunSamplesPerSecond(
  config: TrainingConfig,
  backend: BackendName,
): Promise<{ samplesPerSecond: number; backend: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-trainer-"));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-trainer-keys-"));
  const services = createAppServices(dir, { backend, keyDir });
  try {
    const seed = ensureDemoUsersAndProject(services);
    const engineer = services.db.select().from(users).where(eq(users.email, DEMO_USERS[1]!.email)).get()!;
    const run = createRun({ ...services, actor: actorOf(engineer) }, { experimentId: seed.experimentId, config, rationale: "benchmark" });
    await services.orchestrator.launch(run.id);
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
    fs.rmSync(keyDir, { recursive: true, force: true });
  }
}

/**
 * Runledger's training loop in a fresh worker with a consumer that stores nothing: what the trainer alone costs,
 * so persistence's share of the overhead can be read off against the tracked run. Timed from "started" to "finished".
 */
function untrackedLoopSamplesPerSecond(config: TrainingConfig, backend: BackendName): Promise<number> {
  const job = builtinJob(config, backend);
  return new Promise<number>((resolve, reject) => {
    let startedAt = 0;
    let trainCount = 0;
    startTrainingWorker(job, (e) => {
      if (e.type === "prepared") trainCount = e.split.manifest.partitions.train.count;
      else if (e.type === "started") startedAt = performance.now();
      else if (e.type === "finished") resolve((trainCount * e.epochsRun) / ((performance.now() - startedAt) / 1000));
      else if (e.type === "failed") reject(new Error(`untracked loop failed: ${e.message}`));
    });
  });
}

/** Samples/s of each example config as a full tracked run, on each backend that can train it. */
export async function benchTrainerThroughput(): Promise<Figure[]> {
  const figures: Figure[] = [];
  const backends: BackendName[] = ["wasm", "cpu"];
  for (const name of EXAMPLES) {
    const config = loadExample(name);
    for (const backend of backends) {
      if (backend === "wasm" && hasConvLayers(config.model.layers)) continue; // wasm cannot train conv layers: the run falls back to cpu
      const r = await trackedRunSamplesPerSecond(config, backend);
      figures.push({
        name: `train_${name.replace(/-/g, "_")}_${r.backend}_samples_per_s`,
        value: Math.round(r.samplesPerSecond),
        unit: "samples/s",
      });
    }
  }
  return figures;
}

export async function benchTrackingOverhead(): Promise<Figure[]> {
  const figures: Figure[] = [];
  // Tracking overhead: the same fit as plain tfjs vs a full Runledger run, each in a fresh worker thread, interleaved, median
  // of 7 each, on wasm. The headline figure uses a dense MLP on the 8×8 digits (33 batches per epoch, a checkpoint every
  // epoch). The Iris MLP is the worst case: its epochs are 7 batches (~20 ms), so most of a run is the cold start of a new
  // thread, when V8's background compiler needs the second core; persisting a checkpoint every epoch on the main thread
  // competes with it on this 2-core machine.
  const digitsMlp: TrainingConfig = {
    ...loadExample("iris-mlp"),
    data: { ...loadExample("digits-cnn").data },
    model: {
      layers: [
        { type: "flatten" },
        { type: "dense", units: 64, activation: "relu", kernelInitializer: "heNormal" },
        { type: "dense", units: 32, activation: "relu", kernelInitializer: "heNormal" },
      ],
    },
  } as TrainingConfig;
  digitsMlp.training = { ...digitsMlp.training, batchSize: 32, epochs: 30 };
  const iris = loadExample("iris-mlp");
  const cases: [string, TrainingConfig][] = [
    ["digits_mlp", digitsMlp],
    ["iris_mlp", { ...iris, training: { ...iris.training, epochs: 150 } }],
  ];
  // A third series, our loop with nothing stored, splits the overhead into the loop's share and persistence's share.
  for (const [label, config] of cases) {
    const plain: number[] = [];
    const loop: number[] = [];
    const tracked: number[] = [];
    for (let i = 0; i < 7; i++) {
      plain.push((await plainFitSamplesPerSecond(config, "wasm")).samplesPerSecond);
      loop.push(await untrackedLoopSamplesPerSecond(config, "wasm"));
      tracked.push((await trackedRunSamplesPerSecond(config, "wasm")).samplesPerSecond);
    }
    const p = median(plain);
    const l = median(loop);
    const t = median(tracked);
    const suffix = label === "digits_mlp" ? "" : `_${label}`;
    figures.push({ name: `plain_tfjs_fit_${label}_wasm_samples_per_s`, value: Math.round(p), unit: "samples/s" });
    figures.push({ name: `untracked_loop_${label}_wasm_samples_per_s`, value: Math.round(l), unit: "samples/s" });
    figures.push({ name: `tracked_run_${label}_wasm_samples_per_s`, value: Math.round(t), unit: "samples/s" });
    figures.push({ name: `persistence_overhead_pct${suffix}`, value: ((l - t) / l) * 100, unit: "%" });
    figures.push({ name: `tracking_overhead_pct${suffix}`, value: ((p - t) / p) * 100, unit: "%", ...(suffix ? {} : { target: "< 5" }) });
  }
  return figures;
}
