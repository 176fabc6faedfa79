/**
 * Worker-thread entry for one training job (loaded through worker-bootstrap.cjs, which registers tsx).
 *
 * Protocol: in {type:"start", job} once, then optionally {type:"cancel"}; out: every TrainerEvent
 * via postMessage, checkpoint weights transferred (not copied). After the terminal event the port
 * closes so the thread can exit; the parent also terminates it on the terminal event.
 */
import { parentPort } from "node:worker_threads";
import { runJob } from "./run-job";
import type { TrainerEvent } from "./types";
import type { WorkerMessageIn } from "./worker-client";

if (!parentPort) throw new Error("trainer/worker.ts must run in a worker thread");
const port = parentPort;

let cancelled = false;
let started = false;
const signal = {
  get cancelled() {
    return cancelled;
  },
};

function emit(event: TrainerEvent): void {
  if (event.type === "checkpoint") {
    // Transfer needs a buffer owned by exactly these bytes; copy if the view is a slice of something larger.
    const weights = event.weights.byteOffset === 0 && event.weights.byteLength === event.weights.buffer.byteLength ? event.weights : event.weights.slice();
    port.postMessage({ ...event, weights }, [weights.buffer as ArrayBuffer]);
  } else {
    port.postMessage(event);
  }
}

port.on("message", (message: WorkerMessageIn) => {
  if (message.type === "cancel") {
    cancelled = true;
  } else if (message.type === "start" && !started) {
    started = true;
    void runJob(message.job, emit, signal).finally(() => port.close());
  }
});
