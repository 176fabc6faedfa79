/**
 * The trainer's public surface for the server. Only modules that do NOT load TensorFlow.js are
 * re-exported here, so importing this from Next.js server code stays light; the training itself
 * runs in a worker thread (startTrainingWorker). Code that needs tfjs in-process (tests, CLI,
 * benchmarks) imports trainer/run-job.ts or trainer/fit.ts directly.
 */
export { startTrainingWorker, WORKER_BOOTSTRAP, type WorkerMessageIn } from "./worker-client";
export { classificationReport, confusionMatrix, regressionReport, reportFromConfusion } from "./evaluate";
export type { BackendName, CancelSignal, EvaluationResult, MemoryEstimate, PreparedData, TrainerEvent, TrainJob } from "./types";
