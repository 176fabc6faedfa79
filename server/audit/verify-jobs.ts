/**
 * "Verify now" as a background job: the whole ledger is verified in a worker thread (its own read-only
 * connection), so the request that starts it returns at once and the server keeps answering meanwhile.
 *
 * Invariants:
 * - At most one job runs per data directory; starting one while another runs returns the running job.
 * - Progress (events checked / events in the log) comes from the worker about every 200 ms and is polled by the page.
 * - When the worker finishes, its bounded summary (verify-summary.ts) is recorded as an "audit.verify" event by the
 *   user who started the job, on this thread in one short transaction; the job then carries that event's seq.
 *   A job whose worker could not run ends "failed" with the error and records nothing (nothing was verified).
 * - The trusted key is the one the caller passes: for the app, the server's current public key. That makes it the
 *   operator's own check; an auditor's independent check is the CLI or the bundle's standalone verifier with a
 *   key, trusted checkpoint or witness key of their own.
 * Jobs live in memory on globalThis (one registry per process, shared by every bundle Next.js makes of this file).
 *
 * On the PostgreSQL store (issue 16) several web servers share the record, so a job there is a row every server sees
 * (verify-jobs-pg.ts: one running job across all servers, its progress and heartbeat, the outcome recorded with the
 * row in one transaction); the worker verifies the store as `audit verify --database` does (verify-pg.ts). The `…On`
 * forms below take either store and choose.
 */
import path from "node:path";
import { Worker } from "node:worker_threads";
import type { Db } from "@/db/client";
import { asStore, type Store } from "@/db/store";
import { appendAuditEvent, type Actor } from "./ledger";
import { maxAuditSeq } from "./ledger-reads";
import type { VerifyDatabaseOptions, VerifyResult } from "./verify";
import { summarizeVerifyResult, type VerifySummary } from "./verify-summary";
import { currentPgVerifyJob, startPgVerifyJob } from "./verify-jobs-pg";

export type VerifyJob = {
  id: number;
  status: "running" | "finished" | "failed";
  startedAt: string;
  startedBy: string;
  finishedAt: string | null;
  checked: number;
  total: number;
  /** Set when finished: what was recorded. */
  summary: VerifySummary | null;
  /** Seq of the "audit.verify" event that recorded the outcome. */
  seq: number | null;
  error: string | null;
};

/** Options the worker passes on to verifyDatabase (structured-cloneable: keys as PEM text, no callbacks). */
export type VerifyJobOptions = Omit<
  VerifyDatabaseOptions,
  "onProgress" | "workers" | "onSnapshotAttempt" | "onLaterReads" | "contentWorkerFirst"
>;
/** A data directory's live database, or a PostgreSQL store (its URL) verified through a snapshot copy (verify-pg.ts). */
export type VerifyJobWorkerInput = { dataDir: string; options: VerifyJobOptions } | { databaseUrl: string; options: VerifyJobOptions };
export type VerifyJobWorkerMessage =
  { type: "progress"; checked: number; total: number } | { type: "done"; result: VerifyResult } | { type: "error"; error: string };

export type VerifyJobDeps = { db: Db; dataDir: string };

type Registry = { nextId: number; byDir: Map<string, { job: VerifyJob; done: Promise<VerifyJob> }> };
const g = globalThis as unknown as { __runledgerVerifyJobs?: Registry };
const registry: Registry = (g.__runledgerVerifyJobs ??= { nextId: 1, byDir: new Map() });

// Resolved from the project root at run time, like the range workers (Next.js bundles server code).
const JOB_WORKER_BOOTSTRAP = path.join(process.cwd(), "server", "audit", "verify-job-worker-bootstrap.cjs");

const copy = (job: VerifyJob): VerifyJob => ({ ...job });

/** The running job, or the last one that ended, for this data directory (null before the first). */
export function currentVerifyJob(dataDir: string): VerifyJob | null {
  const entry = registry.byDir.get(path.resolve(dataDir));
  return entry ? copy(entry.job) : null;
}

/** Resolves when the current job (if any) has ended; for tests and the CLI. */
export async function waitForVerifyJob(dataDir: string): Promise<VerifyJob | null> {
  const entry = registry.byDir.get(path.resolve(dataDir));
  return entry ? copy(await entry.done) : null;
}

/**
 * Starts verifying the live ledger in a worker thread, or returns the job already running.
 * `trustedKey` says in words which key `options` trusts; it is recorded with the outcome.
 */
export function startVerifyJob(
  deps: VerifyJobDeps,
  actor: Actor,
  options: VerifyJobOptions,
  trustedKey: string,
): { job: VerifyJob; alreadyRunning: boolean } {
  const dir = path.resolve(deps.dataDir);
  const running = registry.byDir.get(dir);
  if (running && running.job.status === "running") return { job: copy(running.job), alreadyRunning: true };

  const job: VerifyJob = {
    id: registry.nextId++,
    status: "running",
    startedAt: new Date().toISOString(),
    startedBy: actor.name,
    finishedAt: null,
    checked: 0,
    total: maxAuditSeq(deps.db),
    summary: null,
    seq: null,
    error: null,
  };
  const done = runVerifyWorker({ dataDir: dir, options }, (checked, total) => Object.assign(job, { checked, total }))
    .then((result) => {
      const summary = summarizeVerifyResult(result, trustedKey);
      const event = deps.db.transaction((tx) =>
        appendAuditEvent(tx, { actor, action: "audit.verify", entityType: "auditLedger", entityId: "live", payload: summary }),
      );
      Object.assign(job, {
        status: "finished",
        summary,
        seq: event.seq,
        checked: result.eventsChecked,
        total: Math.max(job.total, result.eventsChecked),
      });
    })
    .catch((err: unknown) => {
      Object.assign(job, { status: "failed", error: err instanceof Error ? err.message : String(err) });
    })
    .then(() => {
      job.finishedAt = new Date().toISOString();
      return job;
    });
  registry.byDir.set(dir, { job, done });
  return { job: copy(job), alreadyRunning: false };
}

/** Runs one verification in a worker thread; resolves to its result, rejects when the worker fails or stops. */
export function runVerifyWorker(input: VerifyJobWorkerInput, onProgress: (checked: number, total: number) => void): Promise<VerifyResult> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const worker = new Worker(JOB_WORKER_BOOTSTRAP, { workerData: input, stdout: false, stderr: false });
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
      void worker.terminate();
    };
    worker.on("message", (m: VerifyJobWorkerMessage) => {
      if (m.type === "progress") onProgress(m.checked, m.total);
      else if (m.type === "done") settle(() => resolve(m.result));
      else settle(() => reject(new Error(m.error)));
    });
    worker.once("error", (err) => settle(() => reject(err)));
    worker.once("exit", (code) =>
      settle(() => reject(new Error(`the verification worker stopped (exit code ${code}) before it finished`))),
    );
  });
}

/** Where a "Verify now" job runs: the services' store and this machine's directory (SQLite: the installation's). */
export type VerifyJobOnDeps = { db: Store | Db; dataDir: string };

/** startVerifyJob on either store: on PostgreSQL the job is a row every web server sees (verify-jobs-pg.ts). */
export async function startVerifyJobOn(
  deps: VerifyJobOnDeps,
  actor: Actor,
  options: VerifyJobOptions,
  trustedKey: string,
): Promise<{ job: VerifyJob; alreadyRunning: boolean }> {
  const s = asStore(deps.db);
  if (s.dialect === "sqlite") return startVerifyJob({ db: s.db, dataDir: deps.dataDir }, actor, options, trustedKey);
  return startPgVerifyJob(s, actor, options, trustedKey);
}

/** currentVerifyJob on either store. */
export async function currentVerifyJobOn(deps: VerifyJobOnDeps): Promise<VerifyJob | null> {
  const s = asStore(deps.db);
  if (s.dialect === "sqlite") return currentVerifyJob(deps.dataDir);
  return currentPgVerifyJob(s);
}
