/**
 * `npm run worker -- [--concurrency N] [--data-dir DIR] [--key-dir DIR] [--backend auto|tensorflow|wasm|cpu]`: a training worker
 * (issue 16). A long-running process that takes queued runs from the training workers' queue
 * (server/runs/orchestrator/run-queue.ts), trains them with the same orchestrator, trainer and services as the web
 * server (the backend is chosen on this machine and recorded on the run), heartbeats its owner leases, and reads each
 * run's pilot interventions at its epoch boundaries, whichever process recorded them.
 *
 * Loop: give the runs of dead workers back to the queue (a running one is recorded interrupted: the next claimer
 * resumes it from its last checkpoint), claim as many queued runs as there are free slots (one transaction: a run is
 * taken exactly once across workers), train them, then wait for a wake-up (a slot freed here) or the poll interval
 * (RUNLEDGER_WORKER_POLL_MS, default 200 ms; on PostgreSQL graphile-worker's LISTEN/NOTIFY will replace the poll).
 *
 * SIGTERM (or SIGINT): the runs this worker holds go back to the queue at once (handBackAll: running ones recorded
 * interrupted with the reason), the due audit checkpoint is signed, and the process exits 0. Another worker resumes
 * them from their last checkpoint's exact-resume state, so the final weights equal an uninterrupted run's.
 *
 * Stores: on SQLite (no DATABASE_URL) every worker runs on the machine of the data directory (one file, same-host pid
 * liveness) and polls the queue. With `DATABASE_URL=postgres://…` a worker runs on any machine that reaches the
 * database (pg-worker.ts): graphile-worker's jobs wake it (LISTEN/NOTIFY), the run leases decide who trains what,
 * artifacts live in PostgreSQL, and the worker holds no audit signing key (the web servers sign checkpoints). stdout
 * carries one line per claim, `claimed run N (queued M ms ago)`, and per handed-back run.
 */
import { parseArgs } from "node:util";
import { createAppServices } from "@/server/app-context/app-services";
import { postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import { runPgWorker } from "./pg-worker";
import { pollIntervalMs } from "@/server/runs/orchestrator/run-queue";
import { checkpointAfterCliWrite } from "@/server/cli/checkpoint-after-write";
import type { BackendName } from "@/trainer/types";
import { BACKEND_USAGE, unknownBackendRefusal } from "@/server/cli/backend-option";
import { countOf } from "@/contracts/count-text";

const USAGE = `usage: npm run worker -- [--concurrency N] [--data-dir DIR] [--key-dir DIR] [--backend ${BACKEND_USAGE}]`;

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        concurrency: { type: "string", default: process.env.RUNLEDGER_MAX_CONCURRENT_RUNS ?? "1" },
        "data-dir": { type: "string" },
        "key-dir": { type: "string" },
        backend: { type: "string", default: process.env.RUNLEDGER_BACKEND ?? "auto" },
        help: { type: "boolean", default: false },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`worker: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    process.stderr.write(`worker: --concurrency must be a whole number from 1 to 64, got "${values.concurrency}"\n`);
    return 2;
  }
  const unknownBackend = unknownBackendRefusal("worker", values.backend);
  if (unknownBackend) {
    process.stderr.write(unknownBackend);
    return 2;
  }
  const backend = values.backend as BackendName | "auto";
  const pgUrl = postgresUrlFromEnv();
  if (pgUrl) {
    // A PostgreSQL worker has no data directory of its own and holds no signing key: options naming them are a mistake.
    if (values["data-dir"] !== undefined || values["key-dir"] !== undefined) {
      process.stderr.write("worker: --data-dir and --key-dir name a SQLite installation; with DATABASE_URL=postgres://… leave them out\n");
      return 2;
    }
    return runPgWorker({ url: pgUrl, concurrency, backend });
  }
  const services = createAppServices(values["data-dir"], {
    training: "worker",
    maxConcurrent: concurrency,
    backend,
    keyDir: values["key-dir"],
  });
  const { orchestrator } = services;
  const queue = orchestrator.queue!;
  const me = orchestrator.leases.owner;
  const say = (line: string) => process.stdout.write(`[worker ${me}] ${line}\n`);
  say(
    `ready: ${countOf(concurrency, "slot")}, data directory ${services.dataDir}, ${queue.store} queue polled every ${pollIntervalMs()} ms`,
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    try {
      const handed = await orchestrator.handBackAll(`the training worker ${me} stopped (${signal}) and handed the run back to the queue`);
      for (const runId of handed) say(`handed run ${runId} back to the queue`);
      checkpointAfterCliWrite(services.db, { dataDir: services.dataDir, auditKeys: services.auditKeys });
      services.db.$client.close();
      say(`stopped (${signal})`);
      process.exit(0);
    } catch (err) {
      process.stderr.write(`worker: stopping failed: ${(err as Error).message}\n`);
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));

  while (!stopping) {
    try {
      const recovered = await queue.recoverDeadWorkers();
      if (recovered > 0) say(`${countOf(recovered, "run")} of a dead worker back in the queue`);
      if (stopping) break;
      const claimed = await queue.claim(orchestrator.leases, orchestrator.freeSlots());
      const now = Date.now();
      for (const c of claimed) {
        // A SIGTERM that arrived during the claim: handBackAll has taken its snapshot, so the run goes back from here.
        if (stopping) {
          await queue.giveBack(orchestrator.leases, c.runId, c.enqueuedSeq);
          continue;
        }
        say(`claimed run ${c.runId} (queued ${now - c.enqueuedAt} ms ago)`);
        await orchestrator.trainClaimed(c.runId, c.enqueuedSeq);
      }
    } catch (err) {
      // A busy database (another process's long write): the next round tries again.
      process.stderr.write(`worker: ${(err as Error).message}\n`);
    }
    await queue.waitForWork(pollIntervalMs());
  }
  return 0;
}

main(process.argv.slice(2)).then(
  // A PostgreSQL worker resolves once it has stopped (its pool closed): exit even if a timer of a library lingers.
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`worker: ${err.message}\n`);
    process.exit(1);
  },
);
