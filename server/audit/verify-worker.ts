/**
 * Worker thread for `verifyDatabase`: checks seq, leaf hash and chain hash of one range of events in its own
 * read-only connection, and posts back the first problem (or null). It never writes.
 */
import Database from "better-sqlite3";
import { parentPort, workerData } from "node:worker_threads";
import { checkEventRange, type RangeWorkerInput, type RangeWorkerOutput } from "./verify-parallel";

const input = workerData as RangeWorkerInput;
let out: RangeWorkerOutput;
try {
  const db = new Database(input.file, { readonly: true, fileMustExist: true });
  try {
    out = { ok: true, problem: checkEventRange(db, input.from, input.to, input.maxSeq) };
  } finally {
    db.close();
  }
} catch (err) {
  out = { ok: false, error: (err as Error).message };
}
parentPort?.postMessage(out);
