/**
 * One training job end to end: prepare the data → "prepared" → choose a backend, build the model
 * → "started" → train (batches, epochs, checkpoints, evaluation) → "finished"; a compression run (config.compression)
 * → "started" → compress (trainer/compress.ts: [epochs], one checkpoint, evaluation) → "finished".
 *
 * Invariant: runJob never throws and always ends with exactly one terminal event
 * ("finished" or "failed"); a data problem becomes a "failed" event with the pipeline's message.
 */
import { compress } from "./compress";
import { prepareData } from "./data/prepare";
import { train, type Emit } from "./fit";
import type { CancelSignal, EpochControlFn, TrainJob } from "./types";

export async function runJob(job: TrainJob, emit: Emit, signal: CancelSignal, control?: EpochControlFn): Promise<void> {
  let prepared;
  try {
    prepared = prepareData(job.dataset, job.config.data);
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    emit({ type: "failed", message: `data: ${e.message}`, ...(e.stack ? { stack: e.stack } : {}) });
    return;
  }
  emit({ type: "prepared", datasetSha256: prepared.datasetSha256, version: prepared.version, split: prepared.split });
  // A compression run derives its model from its source checkpoint (trainer/compress.ts) instead of training one.
  if (job.config.compression) return compress(job, prepared, emit, signal);
  // A cancel that arrived already is honoured by train() before its first batch (checkpoint + "finished" cancelled).
  await train(job, prepared, emit, signal, control);
}
