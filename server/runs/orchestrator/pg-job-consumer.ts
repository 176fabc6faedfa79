/**
 * A training worker's consumer of the PostgreSQL job queue (issue 16; ARCHITECTURE.md "Job queue: graphile-worker"):
 * graphile-worker on the worker's own pool, woken by LISTEN/NOTIFY when a job is added, taking jobs with SKIP LOCKED.
 *
 * Invariants:
 * - The run leases stay the single source of truth for who trains what. A `train_run` job only says "run N may be
 *   waiting": its handler claims THAT run through the queue's claim body (run-queue.ts `claimQueuedRunOn`, a lease
 *   compare-and-set), so across any number of consumers a run is claimed exactly once; a job whose run is no longer
 *   queued (claimed by another worker, ended, cancelled, taken out) completes as a no-op.
 * - Jobs are added only in the transactions that write a queue entry (run-queue.ts `addTrainJobTx`: enqueue,
 *   give-back, a dead worker's run put back), so a queued run has a job nobody holds.
 * - The handler awaits `train(claimed)` to its end, so graphile-worker's concurrency is the worker's slot count. From
 *   the claim on, the run is the caller's (the lease is adopted by `holder`, which heartbeats it): ending it, releasing
 *   its lease or giving it back is `train`'s work, as for a run claimed from SqliteRunQueue. An error of `train` is
 *   reported through `onTrainError` and the job completes: a retry would only find the run held (a no-op), while the
 *   run's state is in its lease and its status.
 * - A worker that dies mid-run keeps its job locked; recoverDeadWorkersOn puts the run back with a new job (see
 *   run-queue.ts requeueDeadWorkerRunTx for what becomes of the old one when graphile-worker's 4 h lock expires).
 * - A training longer than 4 h: graphile-worker frees its job's lock then, another consumer's handler finds the run
 *   held by this worker's (live) lease and completes the job as a no-op; the training goes on here, undisturbed.
 */
import { run, type Runner, type Task } from "graphile-worker";
import { quietJobQueueLogger } from "@/db/pg-client";
import type { Store } from "@/db/store";
import type { LeaseOwner } from "./leases";
import { claimQueuedRunOn, TRAIN_RUN_TASK, type ClaimedRun } from "./run-queue";

/** Who claims: a LeaseHolder (its heartbeat keeps the claimed runs' leases young), or any owner with the same verbs. */
export type ClaimingHolder = LeaseOwner & { adopt(runId: number): void };

export type PgJobConsumerOptions = {
  store: Store;
  holder: ClaimingHolder;
  /** How many runs this worker trains at once (graphile-worker's concurrency). */
  slots: number;
  /** Trains a claimed run; the job ends when it settles. */
  train: (claimed: ClaimedRun) => Promise<void>;
  /** A job whose run was not queued any more (a no-op), for logs and tests. */
  onSkipped?: (runId: number) => void;
  onTrainError?: (runId: number, err: unknown) => void;
};

export type PgJobConsumer = {
  /** Stops taking jobs, then waits for the handlers running now (their `train`) to settle. */
  stop(): Promise<void>;
};

function runIdOf(payload: unknown): number {
  const runId = Number((payload as { runId?: unknown } | null)?.runId);
  if (!Number.isSafeInteger(runId) || runId <= 0) throw new Error(`train_run job without a run id: ${JSON.stringify(payload)}`);
  return runId;
}

export async function startPgJobConsumer(opts: PgJobConsumerOptions): Promise<PgJobConsumer> {
  const { store, holder, train } = opts;
  if (store.dialect !== "pg") throw new Error("the job queue consumer needs the PostgreSQL store (SQLite workers poll SqliteRunQueue)");
  const trainRun: Task = async (payload) => {
    const runId = runIdOf(payload);
    const claimed = await claimQueuedRunOn(store, holder, runId);
    if (!claimed) {
      opts.onSkipped?.(runId);
      return;
    }
    holder.adopt(runId);
    try {
      await train(claimed);
    } catch (err) {
      opts.onTrainError?.(runId, err);
    }
  };
  const runner: Runner = await run({
    pgPool: store.db.$client,
    concurrency: opts.slots,
    taskList: { [TRAIN_RUN_TASK]: trainRun },
    noHandleSignals: true,
    logger: quietJobQueueLogger,
  });
  return { stop: () => runner.stop() };
}
