/**
 * Worker thread entry for checking an uploaded CSV off the server's main thread: reads the file named in
 * workerData in 1 MiB chunks through CsvScanner and replies with progress messages, then exactly one "done"
 * (the profile, whose sha256 is of the bytes on disk) or "failed" (a DatasetError's code and message, or an
 * unexpected error). Spawned by server/datasets/upload/scan-client.ts through csv-scan-worker-bootstrap.cjs.
 */
import fs from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { CsvScanner, tooLargeError, type CsvCapSettings, type CsvCaps, type CsvProfile, type CsvScanProgress } from "./csv-scan";
import { DatasetError } from "./errors";

export type CsvScanWorkerInput = { file: string; caps: CsvCaps; settings?: CsvCapSettings };
export type CsvScanWorkerReply =
  | ({ type: "progress" } & CsvScanProgress)
  | { type: "done"; profile: CsvProfile }
  | { type: "failed"; code: string | null; message: string; row?: number; column?: string };

const CHUNK_BYTES = 1024 * 1024;

function scanFile(input: CsvScanWorkerInput, post: (r: CsvScanWorkerReply) => void): CsvProfile {
  const fd = fs.openSync(input.file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    if (size > input.caps.maxBytes) throw tooLargeError(size, input.caps.maxBytes, input.settings?.maxBytes);
    const scanner = new CsvScanner(input.caps, { settings: input.settings, onProgress: (p) => post({ type: "progress", ...p }) });
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK_BYTES, null);
      if (n === 0) break;
      scanner.push(buf.subarray(0, n));
    }
    return scanner.finish();
  } finally {
    fs.closeSync(fd);
  }
}

const port = parentPort;
if (port) {
  const post = (r: CsvScanWorkerReply) => port.postMessage(r);
  try {
    post({ type: "done", profile: scanFile(workerData as CsvScanWorkerInput, post) });
  } catch (e) {
    if (e instanceof DatasetError)
      post({
        type: "failed",
        code: e.code,
        message: e.message,
        ...(e.row !== undefined ? { row: e.row } : {}),
        ...(e.column !== undefined ? { column: e.column } : {}),
      });
    else post({ type: "failed", code: null, message: (e as Error).message ?? String(e) });
  }
}
