/**
 * Worker thread for a "Verify now" job (verify-jobs.ts): verifies the live ledger of one data directory in one
 * pass on its own read-only connection, or a PostgreSQL store as `audit verify --database` does (verify-pg.ts: a
 * snapshot copied into a temporary SQLite file, proved equal, then the same pass), posting progress about every
 * 200 ms and then the full result. It never writes to the record; the main thread records the outcome.
 */
import { parentPort, workerData } from "node:worker_threads";
import { verifyDatabase } from "./verify";
import { verifyPgStore } from "./verify-pg";
import type { VerifyJobWorkerInput, VerifyJobWorkerMessage } from "./verify-jobs";

const input = workerData as VerifyJobWorkerInput;
const post = (m: VerifyJobWorkerMessage) => parentPort?.postMessage(m);
let lastPost = 0;

const onProgress = (checked: number, total: number) => {
  const now = Date.now();
  if (now - lastPost < 200) return;
  lastPost = now;
  post({ type: "progress", checked, total });
};

("databaseUrl" in input
  ? verifyPgStore(input.databaseUrl, { ...input.options, workers: 0, onProgress })
  : verifyDatabase(input.dataDir, { ...input.options, workers: 0, onProgress })
)
  .then((result) => post({ type: "done", result }))
  .catch((err: unknown) => post({ type: "error", error: err instanceof Error ? err.message : String(err) }));
