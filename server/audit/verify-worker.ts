/**
 * Worker thread for `verifyDatabase`: checks one range of events completely (verify-range.ts) in its own
 * read-only connection, and posts back the range's result. It never writes. It imports nothing that loads the
 * database schema, so it starts in tens of milliseconds.
 */
import Database from "better-sqlite3";
import os from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import type { RangeWorkerInput, RangeWorkerOutput } from "./verify-parallel";
import { scanDatabaseRangeFast } from "./native-range";
import { scanWorkerRange, VERIFY_MMAP_BYTES } from "./verify-range";

const RANGE_WORKER_NICE = 10;

const input = workerData as RangeWorkerInput;
// The chain is the shorter job; the main thread's content check is the longest path of a full verification. On
// Linux a nice value is per thread (pid 0 = this thread), so this lowers only the range worker's priority: the
// scheduler gives spare time to it and the main thread keeps its core (~0.2 s of a million events' 7 s, measured in
// alternating runs). Elsewhere (macOS, Windows) the call would lower the whole process, so it is not made.
if (process.platform === "linux") {
  try {
    os.setPriority(RANGE_WORKER_NICE);
  } catch {
    // not permitted: the same work at the same priority
  }
}
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
