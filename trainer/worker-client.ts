/**
 * Spawns trainer worker threads: training (relaying its events) and the short tasks "evaluate" and "exportTfjs"
 * (one reply each).
 * Size estimates do not come here: they go to the one long-lived estimate worker (estimate-pool.ts). This module imports no TensorFlow.js, so the web server can use it without
 * loading the trainer; the worker loads TypeScript through a tiny tsx bootstrap.
 * Invariants: `onEvent` receives exactly one terminal event ("finished" or "failed"), even when the worker
 * crashes; a task's promise settles exactly once (its reply, or an error when the worker fails or exits first),
 * and its worker is terminated afterwards.
 */
import { Worker } from "node:worker_threads";
import path from "node:path";
import type { EpochControl, TrainerEvent, TrainJob } from "./types";
import type { CheckpointEvaluation } from "./tasks";
import type { TfjsExport, TfjsExportInput } from "./tfjs-export";

// Resolved from the project root at run time (Next.js bundles server code, so __dirname is not the source folder).
export const WORKER_BOOTSTRAP = path.join(process.cwd(), "trainer", "worker-bootstrap.cjs");

export type WorkerMessageIn =
  | { type: "start"; job: TrainJob }
  | { type: "cancel" }
  /** Piloted jobs: the answer to the "boundary" event of `epoch`. */
  | { type: "control"; epoch: number; control: EpochControl }
  | { type: "evaluate"; job: TrainJob; checkpoint: { weights: Uint8Array; sha256: string } }
  | { type: "exportTfjs"; input: TfjsExportInput };

export type WorkerTaskReply =
  | ({ type: "evaluated" } & CheckpointEvaluation)
  | ({ type: "exportedTfjs" } & TfjsExport)
  | { type: "taskFailed"; message: string; stack?: string };

/** The task failed inside the trainer (bad data, topology mismatch…): its message is meant for the user. */
export class TrainerTaskError extends Error {}

/** Runs one short task in its own worker thread and resolves with its reply; rejects with TrainerTaskError on failure. */
function runWorkerTask<T extends WorkerTaskReply["type"]>(
  message: WorkerMessageIn,
  expected: T,
  timeoutMs: number,
): Promise<Extract<WorkerTaskReply, { type: T }>> {
  const worker = new Worker(WORKER_BOOTSTRAP, { stdout: false, stderr: false });
  return new Promise<Extract<WorkerTaskReply, { type: T }>>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
      void worker.terminate();
    };
    const timer = setTimeout(
      () =>
        settle(() =>
          reject(
            new TrainerTaskError(`the trainer task "${message.type}" took longer than ${Math.round(timeoutMs / 1000)} s and was stopped`),
          ),
        ),
      timeoutMs,
    );
    worker.on("message", (reply: WorkerTaskReply) => {
      if (reply.type === expected) settle(() => resolve(reply as Extract<WorkerTaskReply, { type: T }>));
      else if (reply.type === "taskFailed") settle(() => reject(new TrainerTaskError(reply.message)));
    });
    worker.on("error", (err) => settle(() => reject(new TrainerTaskError(`the trainer worker crashed: ${err.message}`))));
    worker.on("exit", (code) => settle(() => reject(new TrainerTaskError(`the trainer worker exited (code ${code}) before replying`))));
    worker.postMessage(message);
  });
}

/** Evaluates a checkpoint on the test partition of the job's data, in a worker. */
export function evaluateInWorker(job: TrainJob, checkpoint: { weights: Uint8Array; sha256: string }, timeoutMs = 300_000) {
  return runWorkerTask({ type: "evaluate", job, checkpoint }, "evaluated", timeoutMs);
}

/** A checkpoint's weights as a TF.js Layers model (model.json + weights.bin), built in a worker (tfjs-export.ts). */
export function exportTfjsInWorker(input: TfjsExportInput, timeoutMs = 120_000) {
  return runWorkerTask({ type: "exportTfjs", input }, "exportedTfjs", timeoutMs);
}

/**
 * Trains `job` in a worker thread. With `job.piloted`, the worker stops at each "boundary" event until
 * `sendControl(epoch, control)` answers it (or `cancel()` is called).
 */
export function startTrainingWorker(
  job: TrainJob,
  onEvent: (e: TrainerEvent) => void,
): {
  cancel: () => void;
  sendControl: (epoch: number, control: EpochControl) => void;
  /** Stops the worker thread at once, without a terminal event (a training worker process handing its run back). */
  terminate: () => void;
  done: Promise<void>;
} {
  const worker = new Worker(WORKER_BOOTSTRAP, { stdout: false, stderr: false });
  let terminal = false;
  const deliver = (e: TrainerEvent) => {
    if (terminal) return;
    if (e.type === "finished" || e.type === "failed") terminal = true;
    onEvent(e);
  };
  const done = new Promise<void>((resolve) => {
    worker.on("message", (e: TrainerEvent) => {
      deliver(e);
      if (terminal) void worker.terminate();
    });
    worker.on("error", (err) => deliver({ type: "failed", message: `the training worker crashed: ${err.message}`, stack: err.stack }));
    worker.on("exit", (code) => {
      deliver({ type: "failed", message: `the training worker exited (code ${code}) before the run ended` });
      resolve();
    });
  });
  const start: WorkerMessageIn = { type: "start", job };
  worker.postMessage(start);
  return {
    cancel: () => {
      const msg: WorkerMessageIn = { type: "cancel" };
      worker.postMessage(msg);
    },
    sendControl: (epoch: number, control: EpochControl) => {
      const msg: WorkerMessageIn = { type: "control", epoch, control };
      worker.postMessage(msg);
    },
    terminate: () => {
      terminal = true;
      void worker.terminate();
    },
    done,
  };
}
