/**
 * A training worker on the PostgreSQL store (issue 16; `DATABASE_URL=postgres://… npm run worker`): it may run on any
 * machine that reaches the database.
 *
 * - Work arrives as graphile-worker jobs (pg-job-consumer.ts): each `train_run` job claims its run through the lease
 *   compare-and-set, so a run is trained exactly once across workers; the job lasts as long as the training.
 * - Every RUNLEDGER_WORKER_RECOVERY_MS (default 5 s) the worker puts the runs of dead workers back in the queue
 *   (recoverDeadWorkersOn: a lease whose heartbeat, on the database's clock, is older than RUNLEDGER_LEASE_TIMEOUT_S;
 *   a running run is recorded interrupted and the next claimer resumes it from its last checkpoint). Every worker
 *   does this; the lease compare-and-set makes a second recovery of the same run a no-op.
 * - SIGTERM or SIGINT: no new job is taken, the runs held here go back to the queue (handBackAll: a running one is
 *   recorded interrupted, its events and points stored first), and the process exits 0.
 * - The worker holds no audit signing key: checkpoints its events make due are signed by a web server's timer.
 */
import path from "node:path";
import { RunOrchestrator } from "@/server/runs/orchestrator/orchestrator";
import { StoreRunQueue } from "@/server/runs/orchestrator/run-queue";
import { startPgJobConsumer } from "@/server/runs/orchestrator/pg-job-consumer";
import { openPgStoreServices } from "@/server/app-context/pg-store-services";
import type { BackendName } from "@/trainer/types";
import { countOf } from "@/contracts/count-text";

export async function runPgWorker(opts: {
  url: string;
  concurrency: number;
  backend: BackendName | "auto";
  dataDir?: string;
}): Promise<number> {
  const pg = await openPgStoreServices(opts.url, { poolSize: opts.concurrency + 4 });
  const { store } = pg;
  const queue = new StoreRunQueue(store);
  const dataDir = path.resolve(opts.dataDir ?? process.env.RUNLEDGER_DATA_DIR ?? "./data");
  const orchestrator = new RunOrchestrator(
    { db: store, artifacts: pg.artifacts, dataDir },
    { queue, worker: true, maxConcurrent: opts.concurrency, backend: opts.backend },
  );
  const me = orchestrator.leases.owner;
  const say = (line: string) => process.stdout.write(`[worker ${me}] ${line}\n`);

  let stopping = false;
  const consumer = await startPgJobConsumer({
    store,
    holder: orchestrator.leases,
    slots: opts.concurrency,
    train: async (claimed) => {
      if (stopping) {
        await queue.giveBack(orchestrator.leases, claimed.runId, claimed.enqueuedSeq);
        return;
      }
      say(`claimed run ${claimed.runId} (queued ${Date.now() - claimed.enqueuedAt} ms ago)`);
      if (!(await orchestrator.trainClaimed(claimed.runId, claimed.enqueuedSeq))) return;
      await orchestrator.waitFor(claimed.runId);
    },
    onTrainError: (runId, err) => process.stderr.write(`worker: run ${runId}: ${(err as Error).message}\n`),
  });
  say(`ready: ${countOf(opts.concurrency, "slot")}, PostgreSQL store ${pg.where}, jobs from graphile-worker`);

  const recoverEvery = Number(process.env.RUNLEDGER_WORKER_RECOVERY_MS ?? 5000);
  let recovering = false;
  const recovery = setInterval(() => {
    if (recovering || stopping) return;
    recovering = true;
    queue
      .recoverDeadWorkers()
      .then((moved) => {
        if (moved > 0) say(`${countOf(moved, "run")} of a dead worker back in the queue`);
      })
      .catch((err: Error) => process.stderr.write(`worker: recovery: ${err.message}\n`))
      .finally(() => (recovering = false));
  }, recoverEvery);

  return new Promise<number>((resolve) => {
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      clearInterval(recovery);
      try {
        // No new job from now on; the handlers running now return once their runs are handed back.
        const consumerStopped = consumer.stop();
        const handed = await orchestrator.handBackAll(`the training worker ${me} stopped (${signal}) and handed the run back to the queue`);
        for (const runId of handed) say(`handed run ${runId} back to the queue`);
        await consumerStopped;
        await pg.close();
        say(`stopped (${signal})`);
        resolve(0);
      } catch (err) {
        process.stderr.write(`worker: stopping failed: ${(err as Error).message}\n`);
        resolve(1);
      }
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
  });
}
