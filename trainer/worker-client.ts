/**
 * Spawns a training worker thread and relays its events. This module imports no TensorFlow.js, so the
 * web server can use it without loading the trainer; the worker loads TypeScript through a tiny tsx bootstrap.
 * Invariant: `onEvent` receives exactly one terminal event ("finished" or "failed"), even when the worker crashes.
 */
import { Worker } from "node:worker_threads";
import path from "node:path";
import type { TrainerEvent, TrainJob } from "./types";

// Resolved from the project root at run time (Next.js bundles server code, so __dirname is not the source folder).
export const WORKER_BOOTSTRAP = path.join(process.cwd(), "trainer", "worker-bootstrap.cjs");

export type WorkerMessageIn = { type: "start"; job: TrainJob } | { type: "cancel" };

export function startTrainingWorker(job: TrainJob, onEvent: (e: TrainerEvent) => void): { cancel: () => void; done: Promise<void> } {
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
    done,
  };
}
