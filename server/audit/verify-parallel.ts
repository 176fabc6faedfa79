/**
 * Parallel event checks for `verifyDatabase`: the log is split into seq ranges, and each worker thread checks
 * its range (gapless seq, leaf hash from content, chain hash) in its own read-only connection, while the
 * calling thread builds the Merkle tree. A range starts from the stored chain hash of the row before it, which
 * the previous range verifies link by link, so the ranges together check exactly what one pass checks.
 */
import path from "node:path";
import { Worker } from "node:worker_threads";
import { EventChainChecker, type EventProblem } from "./event-hashing";
import { type AuditDbSource, chainHashAt, iterateAuditEvents } from "./ledger-reads";

export function splitRange(n: number, parts: number): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  const size = Math.ceil(n / Math.max(1, parts));
  for (let from = 1; from <= n; from += size) out.push({ from, to: Math.min(n, from + size - 1) });
  return out;
}

// Resolved from the project root at run time, like the trainer's worker (Next.js bundles server code).
const RANGE_WORKER_BOOTSTRAP = path.join(process.cwd(), "server", "audit", "verify-worker-bootstrap.cjs");

export type RangeWorkerInput = { file: string; from: number; to: number; maxSeq: number };
export type RangeWorkerOutput = { ok: true; problem: EventProblem | null } | { ok: false; error: string };

export function runRangeWorker(file: string, from: number, to: number, maxSeq: number): Promise<EventProblem | null> {
  return new Promise((resolve, reject) => {
    const input: RangeWorkerInput = { file, from, to, maxSeq };
    const worker = new Worker(RANGE_WORKER_BOOTSTRAP, { workerData: input, stdout: false, stderr: false });
    let settled = false;
    worker.once("message", (m: RangeWorkerOutput) => {
      settled = true;
      if (m.ok) resolve(m.problem);
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

/** The range check a worker runs: events from..to (reading one past `to` to name a gap at the end). */
export function checkEventRange(db: AuditDbSource, from: number, to: number, maxSeq: number): EventProblem | null {
  let checker: EventChainChecker;
  if (from === 1) checker = new EventChainChecker();
  else {
    const prev = chainHashAt(db, from - 1);
    // A missing or garbled previous row is reported by the range that owns it.
    if (prev === undefined || !/^[0-9a-f]{64}$/.test(prev)) return null;
    checker = new EventChainChecker(from, prev);
  }
  for (const row of iterateAuditEvents(db, from, maxSeq)) {
    if (checker.nextSeq > to) break;
    const p = checker.check(row);
    if (p) return p;
  }
  return checker.nextSeq > to ? null : { seq: checker.nextSeq, problem: `seq ${checker.nextSeq} missing (deleted row?)` };
}
