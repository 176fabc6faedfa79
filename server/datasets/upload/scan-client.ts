/**
 * Runs the CSV check of an uploaded file in a worker thread (trainer/data/csv-scan-worker.ts), so parsing never
 * runs on the server's main thread. One worker per upload; uploads at once are bounded by the caller.
 * Invariants: the promise settles exactly once: the profile, a DatasetError (the file's problem, for the user), or
 * an Error (worker crash, out of memory, timeout); the worker is terminated afterwards in every case.
 */
import path from "node:path";
import { Worker } from "node:worker_threads";
import { DatasetError, type DatasetErrorCode } from "@/trainer/data/errors";
import type { CsvCapSettings, CsvCaps, CsvProfile, CsvScanProgress } from "@/trainer/data/csv-scan";
import type { CsvScanWorkerInput, CsvScanWorkerReply } from "@/trainer/data/csv-scan-worker";

// Resolved from the project root at run time (Next.js bundles server code, so __dirname is not the source folder).
const SCAN_WORKER_BOOTSTRAP = path.join(process.cwd(), "trainer", "data", "csv-scan-worker-bootstrap.cjs");

/** Heap cap of one scan worker: the scan needs a chunk and one row, far below this; a runaway is stopped. */
const WORKER_HEAP_MB = 256;

export function scanCsvInWorker(
  file: string,
  caps: CsvCaps,
  opts: { settings?: CsvCapSettings; onProgress?: (p: CsvScanProgress) => void; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<CsvProfile> {
  const input: CsvScanWorkerInput = { file, caps, ...(opts.settings ? { settings: opts.settings } : {}) };
  const worker = new Worker(SCAN_WORKER_BOOTSTRAP, {
    workerData: input,
    stdout: false,
    stderr: false,
    resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
  });
  const timeoutMs = opts.timeoutMs ?? 10 * 60 * 1000;
  return new Promise<CsvProfile>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      fn();
      void worker.terminate();
    };
    const onAbort = () => settle(() => reject(new Error("the upload was cancelled")));
    opts.signal?.addEventListener("abort", onAbort);
    const timer = setTimeout(
      () => settle(() => reject(new Error(`checking the file took longer than ${Math.round(timeoutMs / 1000)} s and was stopped`))),
      timeoutMs,
    );
    worker.on("message", (m: CsvScanWorkerReply) => {
      if (m.type === "progress") opts.onProgress?.({ bytes: m.bytes, rows: m.rows });
      else if (m.type === "done") settle(() => resolve(m.profile));
      else if (m.code) settle(() => reject(new DatasetError(m.code as DatasetErrorCode, m.message, { row: m.row, column: m.column })));
      else settle(() => reject(new Error(`checking the file failed: ${m.message}`)));
    });
    worker.on("error", (err: Error & { code?: string }) =>
      settle(() =>
        reject(
          new Error(
            err.code === "ERR_WORKER_OUT_OF_MEMORY"
              ? `checking the file needed more than ${WORKER_HEAP_MB} MB of memory and was stopped`
              : `the CSV check crashed: ${err.message}`,
          ),
        ),
      ),
    );
    worker.on("exit", (code) => settle(() => reject(new Error(`the CSV check exited (code ${code}) before replying`))));
  });
}
