/**
 * Worker thread for a "Verify now" job (verify-jobs.ts): verifies the live ledger of one data directory in one
 * pass on its own read-only connection, posting progress about every 200 ms and then the full result. It never
 * writes; the main thread records the outcome.
 */
import { parentPort, workerData } from "node:worker_threads";
import { verifyDatabase } from "./verify";
import type { VerifyJobWorkerInput, VerifyJobWorkerMessage } from "./verify-jobs";

const input = workerData as VerifyJobWorkerInput;
const post = (m: VerifyJobWorkerMessage) => parentPort?.postMessage(m);
let lastPost = 0;

verifyDatabase(input.dataDir, {
  ...input.options,
  workers: 0,
  onProgress: (checked, total) => {
    const now = Date.now();
    if (now - lastPost < 200) return;
    lastPost = now;
    post({ type: "progress", checked, total });
  },
})
  .then((result) => post({ type: "done", result }))
  .catch((err: unknown) => post({ type: "error", error: err instanceof Error ? err.message : String(err) }));
