/**
 * Parallel verification for `verifyDatabase`: the log is split into seq ranges, and each worker thread checks
 * its range completely (verify-range.ts: seq, leaf hash, chain hash, the range's Merkle nodes, checkpoint
 * events) in its own read-only connection, while the calling thread checks signatures and content. A range
 * starts from the stored chain hash of the row before it, which the previous range verifies link by link, so
 * the ranges together check exactly what one pass checks; the verifier joins their Merkle nodes in order.
 */
import type { RangeResult, RangeSpec } from "./verify-range";
import { startWorker, workerScript } from "./worker-script";

export function splitRange(n: number, parts: number): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  const size = Math.ceil(n / Math.max(1, parts));
  for (let from = 1; from <= n; from += size) out.push({ from, to: Math.min(n, from + size - 1) });
  return out;
}

export type RangeWorkerInput = { file: string; spec: Omit<RangeSpec, "prevChainHex">; maxSeq: number };
export type RangeWorkerOutput = { ok: true; result: RangeResult } | { ok: false; error: string };

/** Starts a worker on one range; resolves with its result, rejects when the worker cannot run. */
export function runRangeWorker(input: RangeWorkerInput): Promise<RangeResult> {
  return new Promise((resolve, reject) => {
    // The precompiled bundle of verify-worker.ts (or its tsx bootstrap): worker-script.ts.
    const script = workerScript("verify-worker");
    const worker = startWorker(script, {
      workerData: input,
      stdout: false,
      stderr: false,
      resourceLimits: { maxYoungGenerationSizeMb: 48 },
    });
    let settled = false;
    worker.once("message", (m: RangeWorkerOutput) => {
      settled = true;
      if (m.ok) resolve(m.result);
      else reject(new Error(m.error));
      void worker.terminate();
    });
    worker.once("error", (err) => {
      if (!settled) reject(err);
    });
    worker.once("exit", (code) => {
      if (!settled) reject(new Error(`verify worker exited with code ${code}`));
    });
  });
}
