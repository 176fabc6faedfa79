/**
 * Worker thread for `verifyDatabase`: checks one range of events completely (verify-range.ts) in its own
 * read-only connection, and posts back the range's result. It never writes. It imports nothing that loads the
 * database schema, so it starts in tens of milliseconds.
 */
import Database from "better-sqlite3";
import { parentPort, workerData } from "node:worker_threads";
import type { RangeWorkerInput, RangeWorkerOutput } from "./verify-parallel";
import { scanDatabaseRangeFast } from "./native-range";
import { scanWorkerRange, VERIFY_MMAP_BYTES } from "./verify-range";

const input = workerData as RangeWorkerInput;
let out: RangeWorkerOutput;
try {
  const db = new Database(input.file, { readonly: true, fileMustExist: true });
  db.pragma(`mmap_size = ${VERIFY_MMAP_BYTES}`); // read pages in place instead of copying them (read-only connection)
  try {
    out = { ok: true, result: scanWorkerRange(db, input.spec, input.maxSeq, scanDatabaseRangeFast) };
  } finally {
    db.close();
  }
} catch (err) {
  out = { ok: false, error: (err as Error).message };
}
parentPort?.postMessage(out);
