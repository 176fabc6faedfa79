/**
 * The long-lived size-estimate worker (one per server process, driven by estimate-pool.ts; loaded through
 * estimate-worker-bootstrap.cjs). It takes {id, task} messages one at a time and answers each with exactly one
 * {id, ok: true, result} or {id, ok: false, message}. TensorFlow.js loads once, for every estimate after it.
 *
 * Invariants:
 * - The dataset and parent weights are read here from the artifact store (hash-checked) or the built-in files,
 *   never by the server's main thread, except on the PostgreSQL store (issue 16), whose artifacts the server reads and
 *   hash-checks and sends here as bytes; the result is estimateJob's, the same function the old per-request
 *   worker ran, so the numbers are unchanged.
 * - One dataset's bytes and one prepared-data result are cached, keyed by the dataset sha256 and the canonical
 *   JSON of the config's data section (prepareData is a pure function of both), so re-estimating a model with new
 *   layers does not re-parse the data.
 */
import { parentPort } from "node:worker_threads";
import { readArtifactVerified } from "@/contracts/artifact-layout";
import { canonicalJson } from "@/contracts/canonical";
import { loadBuiltin } from "./data/builtin";
import { prepareData } from "./data/prepare";
import { estimateJob, type PrepareFn } from "./tasks";
import type { PreparedData, TrainJob } from "./types";
import type { EstimateTask, EstimateWorkerIn, EstimateWorkerOut } from "./estimate-pool";

if (!parentPort) throw new Error("trainer/estimate-worker.ts must run in a worker thread");
const port = parentPort;

let cachedDataset: TrainJob["dataset"] | null = null;
let cachedPrepared: { key: string; prepared: PreparedData } | null = null;

function datasetOf(task: EstimateTask): TrainJob["dataset"] {
  if ("builtin" in task.dataset) {
    const b = loadBuiltin(task.dataset.builtin);
    return { bytes: b.bytes, schema: b.schema, sha256: b.sha256 };
  }
  const ref = task.dataset;
  const { sha256, schema } = ref;
  if (cachedDataset?.sha256 !== sha256) {
    cachedDataset = null;
    cachedPrepared = null;
    cachedDataset = { bytes: "bytes" in ref ? ref.bytes : readArtifactVerified(ref.dataDir, sha256), schema, sha256 };
  }
  return { ...cachedDataset, schema };
}

const cachedPrepare: PrepareFn = (dataset, data) => {
  const key = `${dataset.sha256}\n${canonicalJson(dataset.schema)}\n${canonicalJson(data)}`;
  if (cachedPrepared?.key !== key) {
    cachedPrepared = null;
    cachedPrepared = { key, prepared: prepareData(dataset, data) };
  }
  return cachedPrepared.prepared;
};

async function estimate(task: EstimateTask) {
  const job: TrainJob = {
    config: task.config,
    dataset: datasetOf(task),
    backend: task.backend,
    ...(task.parent
      ? {
          parent: {
            config: task.parent.config,
            weights: "weights" in task.parent ? task.parent.weights : readArtifactVerified(task.parent.dataDir, task.parent.weightsSha256),
            sha256: task.parent.weightsSha256,
          },
        }
      : {}),
  };
  return estimateJob(job, cachedPrepare);
}

// One at a time: the pool sends the next task only after this one's reply.
port.on("message", (m: EstimateWorkerIn) => {
  void estimate(m.task).then(
    (result) => port.postMessage({ id: m.id, ok: true, result } satisfies EstimateWorkerOut),
    (err: unknown) =>
      port.postMessage({ id: m.id, ok: false, message: err instanceof Error ? err.message : String(err) } satisfies EstimateWorkerOut),
  );
});
