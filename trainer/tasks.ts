/**
 * Short trainer tasks besides training, run in a worker thread like training (never on a request thread;
 * estimateJob in the long-lived estimate worker, estimate-worker.ts; evaluateCheckpoint in a trainer worker):
 * - estimateJob: prepare the data, build the model exactly as training would (fine-tunes: the parent's
 *   topology, frozen layers, replaced head), refuse class weights the data cannot take (the config's and its
 *   schedule entries': an unknown class, any on a regression) and return the parameter count and memory estimate.
 * - evaluateCheckpoint: prepare the same data from the run's config, load a checkpoint's weights into the
 *   model built from that config, and evaluate the test partition.
 *
 * Invariants:
 * - Same pipeline as runJob/train (prepareData, selectBackend, buildForJob, evaluateTestPartition), so an
 *   on-demand evaluation of a checkpoint on the run's backend equals the one the trainer made at the end,
 *   and dataSha256 is computed exactly as fit.ts computes it.
 * - Every tfjs model built here is disposed before returning, also on error.
 * - estimateJob may be given a cache of prepareData (the long-lived estimate worker, estimate-worker.ts); the
 *   prepared data must then be exactly prepareData's for the same dataset bytes and data section.
 * - The data the evaluation ran on is identified by the split and version sha256 it prepared, so the
 *   caller can check them against what the run recorded before trusting the numbers.
 */
import { selectBackend } from "./backend";
import { deserializeWeights, loadWeightsInto, weightsSha256 } from "./checkpoint";
import { prepareData } from "./data/prepare";
import { checkClassWeights, checkWatchedMetrics, evaluateTestPartition } from "./fit";
import { estimateMemory } from "./memory";
import { buildForJob, hasConvLayers } from "./model";
import type { BackendName, EvaluationResult, MemoryEstimate, PreparedData, TrainJob } from "./types";

export type EstimateResult = {
  memory: MemoryEstimate;
  /** The backend this job would train on, and why. */
  backend: BackendName;
  backendReason: string;
  /** The batch size the estimate used: the configured one, capped at the train partition's size (as fit.ts does). */
  batchSize: number;
  featureShape: number[];
  partitions: { train: number; validation: number; test: number };
  fineTune?: { frozenLayers: string[]; replacedLayers: string[] };
};

export type CheckpointEvaluation = {
  result: EvaluationResult;
  dataSha256: string;
  partition: "test";
  testCount: number;
  /** What the data pipeline produced this time: to compare with the run's recorded version and split. */
  versionSha256: string;
  splitSha256: string;
  backend: BackendName;
};

/** How a task gets its prepared data: prepareData by default; the estimate worker passes a cached one. */
export type PrepareFn = (dataset: TrainJob["dataset"], data: TrainJob["config"]["data"]) => PreparedData;

async function prepareAndBuild(
  job: TrainJob,
  prepare: PrepareFn = prepareData,
): Promise<{ prepared: PreparedData; built: ReturnType<typeof buildForJob>; backend: Awaited<ReturnType<typeof selectBackend>> }> {
  const prepared = prepare(job.dataset, job.config.data);
  const layers = job.parent?.config.model.layers ?? job.config.model.layers;
  const backend = await selectBackend(job.backend ?? "auto", { needsConvGradients: hasConvLayers(layers) });
  const built = buildForJob(job, prepared);
  return { prepared, built, backend };
}

export async function estimateJob(job: TrainJob, prepare?: PrepareFn): Promise<EstimateResult> {
  const { prepared, built, backend } = await prepareAndBuild(job, prepare);
  try {
    const train = prepared.partitions.train.count;
    if (train === 0) throw new Error("the train partition is empty; use more data or a larger train ratio");
    checkClassWeights(job.config.training.classWeights, prepared);
    checkWatchedMetrics(job.config, prepared);
    for (const [i, entry] of (job.config.schedule ?? []).entries()) {
      const set = entry.set ?? {};
      if ("training.classWeights" in set)
        checkClassWeights(
          set["training.classWeights"] as TrainJob["config"]["training"]["classWeights"],
          prepared,
          `schedule.${i} (atEpoch ${entry.atEpoch}): training.classWeights`,
        );
    }
    const batchSize = Math.min(job.config.training.batchSize, train);
    return {
      memory: estimateMemory(built.model, batchSize, job.config.training.optimizer.name),
      backend: backend.name,
      backendReason: backend.reason,
      batchSize,
      featureShape: prepared.featureShape,
      partitions: { train, validation: prepared.partitions.validation.count, test: prepared.partitions.test.count },
      ...(job.parent ? { fineTune: { frozenLayers: built.frozenLayers, replacedLayers: built.replacedLayers } } : {}),
    };
  } finally {
    built.model.dispose();
  }
}

export async function evaluateCheckpoint(
  job: TrainJob,
  checkpoint: { weights: Uint8Array; sha256: string },
): Promise<CheckpointEvaluation> {
  const actual = weightsSha256(checkpoint.weights);
  if (actual !== checkpoint.sha256) throw new Error(`the checkpoint weights hash to ${actual}, not the recorded ${checkpoint.sha256}`);
  const { prepared, built, backend } = await prepareAndBuild(job);
  try {
    if (prepared.partitions.test.count === 0)
      throw new Error("the split's test partition is empty (test ratio 0); there is nothing to evaluate on");
    // Every layer, the head included, takes the checkpoint's weights: it is the state training reached.
    loadWeightsInto(built.model, deserializeWeights(checkpoint.weights));
    const { result, dataSha256 } = evaluateTestPartition(built.model, prepared);
    return {
      result,
      dataSha256,
      partition: "test",
      testCount: prepared.partitions.test.count,
      versionSha256: prepared.version.sha256,
      splitSha256: prepared.split.sha256,
      backend: backend.name,
    };
  } finally {
    built.model.dispose();
  }
}
