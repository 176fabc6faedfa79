/**
 * A bounded pool of ONE long-lived worker thread for size estimates (runs.estimate), with a FIFO queue. Request
 * handlers only enqueue and await: no TensorFlow.js, no dataset bytes and no parsing on the server's main thread,
 * and no new worker per request. This module imports no TensorFlow.js.
 *
 * Invariants:
 * - At most one worker exists and it runs one task at a time; at most `maxQueued` tasks wait, further calls are
 *   refused at once with EstimatorBusyError (the caller answers 429).
 * - Every call settles exactly once: the result, TrainerTaskError (the task failed: its message is for the user;
 *   also a timeout or a worker crash, after which the next task starts a fresh worker), or EstimatorBusyError.
 * - The worker is unref'd while idle (it never keeps a process alive) and exits after `idleMs` without work.
 * - One pool per process, on globalThis (Next.js may load this module once per route bundle).
 */
import { Worker } from "node:worker_threads";
import path from "node:path";
import type { TrainingConfig } from "@/contracts/training-config";
import type { BuiltinName } from "./data/builtin";
import type { EstimateResult } from "./tasks";
import type { BackendName, DatasetSchema } from "./types";
import { TrainerTaskError } from "./worker-client";

/**
 * What the worker needs to estimate: references to bytes, which it reads itself from the file artifact store of a data
 * directory; or, when the artifacts are not files it can read (the PostgreSQL store's, issue 16), the bytes themselves,
 * already hash-checked by the artifact store that returned them.
 */
export type EstimateTask = {
  config: TrainingConfig;
  dataset:
    | { builtin: BuiltinName }
    | { dataDir: string; sha256: string; schema: DatasetSchema }
    | { bytes: Uint8Array; sha256: string; schema: DatasetSchema };
  parent?: { config: TrainingConfig; weightsSha256: string } & ({ dataDir: string } | { weights: Uint8Array });
  backend: BackendName | "auto";
};
export type EstimateWorkerIn = { id: number; task: EstimateTask };
export type EstimateWorkerOut = { id: number; ok: true; result: EstimateResult } | { id: number; ok: false; message: string };

export class EstimatorBusyError extends Error {}

// Resolved from the project root at run time (Next.js bundles server code, so __dirname is not the source folder).
const BOOTSTRAP = path.join(process.cwd(), "trainer", "estimate-worker-bootstrap.cjs");

type Pending = { id: number; task: EstimateTask; resolve: (r: EstimateResult) => void; reject: (e: Error) => void };
export type EstimatePoolOptions = { maxQueued: number; timeoutMs: number; idleMs: number };
export type EstimatePoolStats = { workersStarted: number; tasksDone: number; queued: number; running: boolean; alive: boolean };

export class EstimatePool {
  private worker: Worker | null = null;
  private queue: Pending[] = [];
  private current: Pending | null = null;
  private timer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private nextId = 1;
  private workersStarted = 0;
  private tasksDone = 0;

  constructor(private readonly opts: EstimatePoolOptions = { maxQueued: 16, timeoutMs: 120_000, idleMs: 5 * 60_000 }) {}

  run(task: EstimateTask): Promise<EstimateResult> {
    if (this.queue.length >= this.opts.maxQueued) {
      return Promise.reject(
        new EstimatorBusyError(`the size estimator is busy (${this.queue.length} estimates waiting); try again in a moment`),
      );
    }
    return new Promise<EstimateResult>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, task, resolve, reject });
      this.pump();
    });
  }

  stats(): EstimatePoolStats {
    return {
      workersStarted: this.workersStarted,
      tasksDone: this.tasksDone,
      queued: this.queue.length,
      running: this.current !== null,
      alive: this.worker !== null,
    };
  }

  /** Stops the worker (tests, shutdown); queued and running tasks are rejected. */
  async close(): Promise<void> {
    const w = this.worker;
    this.failAll(new TrainerTaskError("the size estimator was stopped"));
    if (w) await w.terminate();
  }

  private spawn(): Worker {
    const w = new Worker(BOOTSTRAP, { stdout: false, stderr: false });
    this.workersStarted++;
    w.on("message", (m: EstimateWorkerOut) => this.onReply(w, m));
    w.on("error", (err) => this.onWorkerGone(w, new TrainerTaskError(`the estimate worker crashed: ${err.message}`)));
    w.on("exit", (code) => this.onWorkerGone(w, new TrainerTaskError(`the estimate worker exited (code ${code}) before replying`)));
    return w;
  }

  private pump(): void {
    if (this.current || this.queue.length === 0) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const next = this.queue.shift()!;
    this.current = next;
    this.worker ??= this.spawn();
    this.worker.ref();
    this.timer = setTimeout(() => {
      this.detachWorker();
      this.finish(next, () =>
        next.reject(new TrainerTaskError(`the estimate took longer than ${Math.round(this.opts.timeoutMs / 1000)} s and was stopped`)),
      );
    }, this.opts.timeoutMs);
    this.worker.postMessage({ id: next.id, task: next.task } satisfies EstimateWorkerIn);
  }

  private onReply(w: Worker, m: EstimateWorkerOut): void {
    const cur = this.current;
    if (w !== this.worker || !cur || cur.id !== m.id) return;
    this.finish(cur, () => (m.ok ? cur.resolve(m.result) : cur.reject(new TrainerTaskError(m.message))));
  }

  private onWorkerGone(w: Worker, err: Error): void {
    if (w !== this.worker) return;
    this.worker = null;
    const cur = this.current;
    if (cur) this.finish(cur, () => cur.reject(err));
  }

  private finish(p: Pending, settle: () => void): void {
    if (this.current !== p) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.current = null;
    this.tasksDone++;
    settle();
    if (this.queue.length) return this.pump();
    this.worker?.unref();
    this.idleTimer = setTimeout(() => {
      if (!this.current) this.detachWorker();
    }, this.opts.idleMs);
    this.idleTimer.unref();
  }

  /** Forgets the worker and terminates it; its exit event is then ignored (it is no longer this.worker). */
  private detachWorker(): void {
    const w = this.worker;
    this.worker = null;
    if (w) void w.terminate();
  }

  private failAll(err: Error): void {
    const all = [...(this.current ? [this.current] : []), ...this.queue];
    this.queue = [];
    this.current = null;
    if (this.timer) clearTimeout(this.timer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.timer = this.idleTimer = null;
    this.detachWorker();
    for (const p of all) p.reject(err);
  }
}

const g = globalThis as unknown as { __runledgerEstimatePool?: EstimatePool };
/** The process's estimate pool. */
export function estimatePool(): EstimatePool {
  return (g.__runledgerEstimatePool ??= new EstimatePool());
}
