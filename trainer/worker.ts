/**
 * Worker-thread entry for the trainer (loaded through worker-bootstrap.cjs, which registers tsx).
 * One worker does one thing, chosen by its first message:
 * - {type:"start", job}, then optionally {type:"cancel"}: trains; out: every TrainerEvent via postMessage,
 *   checkpoint weights (and resumable state) transferred (not copied). With `job.piloted`, after each epoch it
 *   posts {type:"boundary"} and waits for {type:"control", epoch} with that epoch (a control for another epoch is
 *   ignored); a cancel ends the wait, and the loop then stops as for any cancel.
 * - {type:"evaluate", job, checkpoint}: out one {type:"evaluated", ...CheckpointEvaluation} or {type:"taskFailed", message}.
 * - {type:"exportTfjs", input}: out one {type:"exportedTfjs", modelJson, weightsBin} (tfjs-export.ts) or {type:"taskFailed"}.
 * - anything else (e.g. the retired "estimate": estimates run in estimate-worker.ts): out one {type:"taskFailed"}.
 * After the terminal message the port closes so the thread can exit; the parent also terminates it.
 */
import { parentPort } from "node:worker_threads";
import { runJob } from "./run-job";
import { evaluateCheckpoint } from "./tasks";
import { exportTfjs } from "./tfjs-export";
import type { EpochBoundary, EpochControl, EpochControlFn, TrainerEvent } from "./types";
import type { WorkerMessageIn, WorkerTaskReply } from "./worker-client";

if (!parentPort) throw new Error("trainer/worker.ts must run in a worker thread");
const port = parentPort;

let cancelled = false;
let started = false;
const signal = {
  get cancelled() {
    return cancelled;
  },
};

/** The control the fit loop is waiting for (piloted jobs), by epoch. */
let pending: { epoch: number; resolve: (control: EpochControl) => void } | undefined;
const pilot: EpochControlFn = (boundary: EpochBoundary) =>
  new Promise<EpochControl>((resolve) => {
    pending = { epoch: boundary.epoch, resolve };
    const event: TrainerEvent = { type: "boundary", ...boundary };
    port.postMessage(event);
  });

// Transfer needs a buffer owned by exactly these bytes; copy if the view is a slice of something larger.
const ownBuffer = (bytes: Uint8Array) => (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice());

function emit(event: TrainerEvent): void {
  if (event.type === "checkpoint") {
    const weights = ownBuffer(event.weights);
    const state = event.state ? ownBuffer(event.state) : undefined;
    const transfer = [weights.buffer as ArrayBuffer, ...(state ? [state.buffer as ArrayBuffer] : [])];
    port.postMessage({ ...event, weights, ...(state ? { state } : {}) }, transfer);
  } else {
    port.postMessage(event);
  }
}

async function runTask(task: () => Promise<WorkerTaskReply>): Promise<void> {
  let reply: WorkerTaskReply;
  try {
    reply = await task();
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    reply = { type: "taskFailed", message: e.message, ...(e.stack ? { stack: e.stack } : {}) };
  }
  port.postMessage(reply);
}

port.on("message", (message: WorkerMessageIn) => {
  if (message.type === "cancel") {
    cancelled = true;
    pending?.resolve({});
    pending = undefined;
    return;
  }
  if (message.type === "control") {
    if (pending && pending.epoch === message.epoch) {
      const { resolve } = pending;
      pending = undefined;
      resolve(message.control);
    }
    return;
  }
  if (started) return;
  started = true;
  if (message.type === "start") {
    void runJob(message.job, emit, signal, message.job.piloted ? pilot : undefined).finally(() => port.close());
  } else if (message.type === "evaluate") {
    void runTask(async () => ({ type: "evaluated", ...(await evaluateCheckpoint(message.job, message.checkpoint)) })).finally(() =>
      port.close(),
    );
  } else if (message.type === "exportTfjs") {
    void runTask(async () => ({ type: "exportedTfjs", ...(await exportTfjs(message.input)) })).finally(() => port.close());
  } else {
    const type = String((message as { type?: unknown }).type).slice(0, 40);
    void runTask(() =>
      Promise.reject(
        new Error(`the trainer worker has no task "${type}" (it trains and evaluates; size estimates run in the estimate worker)`),
      ),
    ).finally(() => port.close());
  }
});
