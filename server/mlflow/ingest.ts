/**
 * log-batch off the main thread: the server's main thread reads the request, checks the token and role, and hands
 * the body (its bytes, transferred, not copied) to the ingest worker (ingest-worker.ts), which parses, validates,
 * hashes and writes it by group commit (ingest-group.ts) on a SQLite connection of its own, then answers. The main
 * thread is free for the next request meanwhile, so ingest uses both cores.
 *
 * Invariants:
 * - A call is answered 200 only after the COMMIT that holds its points and its run.log event (the worker posts the
 *   answer after the COMMIT); if the worker dies, every call it had not answered is answered 500 INTERNAL_ERROR
 *   (not acknowledged: the client retries, and a retry of the same points is accepted, logging.ts).
 * - Answers are the dispatcher's (same body parsing, call-body.ts; same handler, logging.ts logBatch).
 * - One worker per data directory, started at the first call and closed after IDLE_MS without calls (it closes its
 *   connection). If it cannot start (its script fails before opening the database), the calls it held and the
 *   following ones are answered on the main thread as before (dispatch.ts), so ingest never stops working.
 * - RUNLEDGER_INGEST_WORKER=0 keeps log-batch on the main thread.
 */
import path from "node:path";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import type { AnyAppServices } from "@/server/app-context/app-services";
import type { MlflowAnswer } from "./call-body";
import type { MlflowCtx } from "./common";
import type { IngestJob } from "./ingest-group";
import { countOf } from "@/contracts/count-text";

const IDLE_MS = 30_000;

type Pending = { job: IngestJob; resolve: (a: MlflowAnswer) => void };
type IngestWorker = { worker: Worker; port: MessagePort; pending: Map<number, Pending>; ready: boolean; idle?: NodeJS.Timeout };

// On globalThis: Next.js may evaluate this module more than once in one server process.
const g = globalThis as unknown as { __runledgerIngest?: { workers: Map<string, IngestWorker>; broken: boolean; nextId: number } };
const state = (g.__runledgerIngest ??= { workers: new Map(), broken: false, nextId: 1 });

/** Whether a worker is serving `dataDir` now (tests). */
export function ingestWorkerRunning(dataDir: string): boolean {
  return state.workers.get(dataDir)?.ready === true;
}

export function ingestWorkerEnabled(): boolean {
  return process.env.RUNLEDGER_INGEST_WORKER !== "0" && !state.broken;
}

/** A fixed path (Next.js bundles this file); the bootstrap loads the worker's esbuild bundle (ingest-worker-load.ts). */
const INGEST_WORKER_BOOTSTRAP = path.join(process.cwd(), "server", "mlflow", "ingest-worker-bootstrap.cjs");

const failure = (message: string): MlflowAnswer => ({ status: 500, body: { error_code: "INTERNAL_ERROR", message } });

function start(services: AnyAppServices, onMainThread: (job: IngestJob) => Promise<MlflowAnswer>): IngestWorker {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(INGEST_WORKER_BOOTSTRAP, { workerData: { dataDir: services.dataDir, port: port2 }, transferList: [port2] });
  const w: IngestWorker = { worker, port: port1, pending: new Map(), ready: false };
  worker.unref();
  port1.unref();
  const ended = (why: string) => {
    if (state.workers.get(services.dataDir) === w) state.workers.delete(services.dataDir);
    clearTimeout(w.idle);
    port1.close();
    const pending = [...w.pending.values()];
    w.pending.clear();
    if (!w.ready) {
      // It never opened the database, so it wrote nothing: answer its calls here, and keep ingest on this thread.
      state.broken = true;
      console.error(`mlflow ingest worker could not start (${why}); log-batch runs on the main thread`);
      for (const p of pending) void onMainThread(p.job).then(p.resolve); // dispatchMlflow answers errors, never rejects
      return;
    }
    if (pending.length) console.error(`mlflow ingest worker: ${why}; ${countOf(pending.length, "call")} answered 500 (not acknowledged)`);
    for (const p of pending)
      p.resolve(failure(`the ingest worker stopped before answering (${why}); nothing of this call is acknowledged`));
  };
  port1.on("message", (m: { ready: true } | { answers: { id: number; answer: MlflowAnswer }[] }) => {
    if ("ready" in m) {
      w.ready = true;
      return;
    }
    for (const { id, answer } of m.answers) {
      const p = w.pending.get(id);
      if (!p) continue;
      w.pending.delete(id);
      p.resolve(answer);
    }
    if (w.pending.size === 0) armIdle(services, w);
  });
  worker.on("error", (err) => ended(err.message));
  worker.on("exit", (code) => ended(`it exited with code ${code}`));
  return w;
}

function armIdle(services: AnyAppServices, w: IngestWorker): void {
  clearTimeout(w.idle);
  w.idle = setTimeout(() => {
    if (w.pending.size > 0) return;
    // Calls arriving from now on start a new worker; this one closes its connection and ends.
    if (state.workers.get(services.dataDir) === w) state.workers.delete(services.dataDir);
    w.port.postMessage({ close: true });
  }, IDLE_MS);
  w.idle.unref();
}

/**
 * Answers one log-batch call of `actor` (authenticated, a writer) with `body` (the request's bytes, in an ArrayBuffer
 * of their own: it is transferred to the worker). `onMainThread` answers it here when the worker cannot start.
 */
export function logBatchInWorker(
  services: AnyAppServices,
  actor: MlflowCtx["actor"],
  body: Uint8Array<ArrayBuffer>,
  onMainThread: (job: IngestJob) => Promise<MlflowAnswer>,
): Promise<MlflowAnswer> {
  let w = state.workers.get(services.dataDir);
  if (!w) state.workers.set(services.dataDir, (w = start(services, onMainThread)));
  clearTimeout(w.idle);
  const job: IngestJob = { id: state.nextId++, actor, body };
  const worker = w;
  return new Promise((resolve) => {
    // Until the worker has opened the database, keep a copy to answer here should it fail to start.
    worker.pending.set(job.id, { job: worker.ready ? { ...job, body: new Uint8Array(0) } : { ...job, body: body.slice() }, resolve });
    worker.port.postMessage(job, [body.buffer]);
  });
}
