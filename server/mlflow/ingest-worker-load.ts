/**
 * Loads the ingest worker in its thread: the esbuild bundle of ingest-worker.ts (server/audit/worker-script.ts
 * bundledWorker: cached under node_modules/.cache, rebuilt when a source changed; built here, off the main thread),
 * else the TypeScript through tsx (RUNLEDGER_WORKER_BUNDLE=0, or no esbuild).
 */
import { createRequire } from "node:module";
import path from "node:path";
import { bundledWorker } from "@/server/audit/worker-script";

const root = process.cwd();
const entry = path.join(root, "server", "mlflow", "ingest-worker.ts");
let script = entry;
if (process.env.RUNLEDGER_WORKER_BUNDLE !== "0")
  try {
    script = bundledWorker(entry, root);
  } catch {
    /* the TypeScript, through tsx */
  }
createRequire(path.join(root, "package.json"))(script);
