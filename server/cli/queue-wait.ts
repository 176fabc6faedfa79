/**
 * `train --enqueue` waits for the end of a run queued for the training workers (server/runs/orchestrator/run-queue.ts),
 * and says so when no worker takes it: after NOTICE_AFTER_MS in the queue, one line on stderr (the run is queued, no
 * worker has taken it, whether live workers are busy with other runs (their leases, leases.ts busyWorkers), and how
 * to start one). With a timeout, it gives up once the run has waited that long in the queue without a worker and
 * answers "still-queued": the run stays queued as it is (this reads only), for the next worker to take.
 *
 * "Waiting for a worker": the run's lease is a queue entry, or its holder is dead (a killed worker's run goes back to
 * the queue when a live worker next looks), or it has no lease while queued or interrupted. The clock restarts
 * whenever a worker holds the run, so a run handed back after hours of training is not given up at once. A paused run
 * waits for a resume, not for a worker: it never times out here.
 *
 * On either store (issue 16): on PostgreSQL the workers run on any machine and their liveness is their heartbeat's age
 * on the database's clock (leases.ts runHolderOn, busyWorkersOn).
 */
import { eq } from "drizzle-orm";
import type { Db } from "@/db/client";
import { asStore, reader, type Store } from "@/db/store";
import { busyWorkersOn, runHolderOn } from "@/server/runs/orchestrator/leases";
import { pollIntervalMs } from "@/server/runs/orchestrator/run-queue";

export const NOTICE_AFTER_MS = 5_000;
const FINAL = new Set(["completed", "failed", "cancelled"]);

async function waitingForWorker(store: Store, runId: number, status: string): Promise<boolean> {
  if (status === "paused") return false;
  const holder = await runHolderOn(store, runId);
  if (holder === null) return status === "queued" || status === "interrupted";
  return holder.kind === "queue" || !holder.alive;
}

/** What the notice says about the workers: busy ones (with their runs), or none seen. */
async function workersNow(store: Store, workerCommand: string): Promise<string> {
  const busy = await busyWorkersOn(store);
  const where = store.dialect === "pg" ? "on this database" : "on this data directory";
  if (busy.length === 0)
    return `no training worker is running ${where} (none holds a run, and an idle one would have taken it). Start one: ${workerCommand}`;
  const list = busy.map((w) => `pid ${w.pid} on run${w.runIds.length > 1 ? "s" : ""} ${w.runIds.join(", ")}`).join("; ");
  return `${busy.length} training worker(s) are busy (${list}); it starts when a slot frees up, or start another: ${workerCommand}`;
}

export async function waitForQueuedRun(
  db: Store | Db,
  runId: number,
  opts: { timeoutMs: number | null; workerCommand: string; say: (line: string) => void; noticeAfterMs?: number },
): Promise<"ended" | "still-queued"> {
  const store = asStore(db);
  const { runs } = store.tables;
  const noticeAfterMs = opts.noticeAfterMs ?? NOTICE_AFTER_MS;
  let waitingSince: number | null = null;
  let noticed = false;
  for (;;) {
    // A test or a signal closed the SQLite handle meanwhile: nothing left to wait on.
    if (store.dialect === "sqlite" && !store.db.$client.open) return "ended";
    const [found] = await reader(store).select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).limit(1);
    const status = found?.status;
    if (!status || FINAL.has(status)) return "ended";
    const now = Date.now();
    if (await waitingForWorker(store, runId, status)) {
      waitingSince ??= now;
      const waited = now - waitingSince;
      if (opts.timeoutMs !== null && waited >= opts.timeoutMs) return "still-queued";
      if (!noticed && waited >= noticeAfterMs) {
        noticed = true;
        opts.say(
          `run ${runId} ${status === "queued" ? "is queued" : `is ${status}, back for the workers`}: no training worker has taken it after ${Math.round(waited / 1000)} s; ${await workersNow(store, opts.workerCommand)}. ` +
            (opts.timeoutMs === null
              ? "Still waiting (Ctrl-C stops waiting; the run stays queued, and --wait-timeout SECONDS gives up by itself)."
              : `Still waiting, up to ${Math.round(opts.timeoutMs / 1000)} s in the queue.`),
        );
      }
    } else {
      const holder = await runHolderOn(store, runId);
      if (noticed && holder?.kind === "worker") opts.say(`run ${runId} taken by the training worker pid ${holder.pid} on ${holder.host}`);
      waitingSince = null;
      noticed = false;
    }
    await new Promise((r) => setTimeout(r, pollIntervalMs()));
  }
}
