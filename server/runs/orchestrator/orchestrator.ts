/**
 * The run orchestrator: starts trainer workers for queued runs, persists their events, and cancels them.
 * Training never runs on the request path: each run gets a worker thread. At most `maxConcurrent` runs train
 * at once (the machine has 2 cores); the rest wait as "queued", in creation order.
 * Invariant: a run ends in exactly one of completed / cancelled / failed, even when its worker crashes.
 */
import { eq, inArray } from "drizzle-orm";
import { execFileSync } from "node:child_process";
import { runs, users } from "@/db/schema";
import type { TrainingConfig } from "@/contracts/training-config";
import { startTrainingWorker } from "@/trainer/worker-client";
import type { BackendName, TrainerEvent, TrainJob } from "@/trainer/types";
import { resolveDataset } from "@/server/datasets/service";
import { parentForJob } from "@/server/runs/trainer-tasks";
import type { ServiceDeps } from "@/server/app-context/service-context";
import {
  insertMetricPoints,
  recordCheckpoint,
  recordEvaluation,
  recordFailed,
  recordFinished,
  recordPrepared,
  recordProgress,
  recordStarted,
  trainerActor,
  type MetricPoint,
} from "./persist-events";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import { applyCheckpointPolicy } from "@/server/audit/checkpoint-policy";

type Active = { cancel: () => void; done: Promise<void> };

let cachedCommit: string | undefined;
export function appCommit(): string {
  if (cachedCommit === undefined) {
    try {
      cachedCommit =
        process.env.RUNLEDGER_COMMIT ??
        execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      cachedCommit = "unknown";
    }
  }
  return cachedCommit;
}

export class RunOrchestrator {
  private active = new Map<number, Active>();
  private waiting: number[] = [];
  private finishedWaiters = new Map<number, (() => void)[]>();

  constructor(
    private deps: ServiceDeps,
    private opts: { maxConcurrent?: number; backend?: BackendName | "auto" } = {},
  ) {}

  private get maxConcurrent() {
    return this.opts.maxConcurrent ?? Number(process.env.RUNLEDGER_MAX_CONCURRENT_RUNS ?? 1);
  }

  /** Queues a run that is in status "queued"; it starts as soon as a training slot is free. */
  launch(runId: number): void {
    if (this.active.has(runId) || this.waiting.includes(runId)) return;
    this.waiting.push(runId);
    this.pump();
  }

  /** Resolves when the run has reached a final status (or immediately when it is not known to this process). */
  waitFor(runId: number): Promise<void> {
    if (!this.active.has(runId) && !this.waiting.includes(runId)) return Promise.resolve();
    return new Promise((resolve) => this.finishedWaiters.set(runId, [...(this.finishedWaiters.get(runId) ?? []), resolve]));
  }

  isTracking(runId: number): boolean {
    return this.active.has(runId) || this.waiting.includes(runId);
  }

  /** Asks the worker to stop after the current batch; a queued run is cancelled at once. Returns false when the run is not in this process. */
  cancel(runId: number): boolean {
    const w = this.waiting.indexOf(runId);
    if (w >= 0) {
      this.waiting.splice(w, 1);
      this.finishQueuedAsCancelled(runId);
      return true;
    }
    const a = this.active.get(runId);
    if (!a) return false;
    a.cancel();
    return true;
  }

  /** After a restart, runs left queued or running belong to no worker: mark them failed and say why. */
  recoverInterrupted(): number {
    const orphaned = this.deps.db
      .select({ id: runs.id })
      .from(runs)
      .where(inArray(runs.status, ["queued", "running"]))
      .all()
      .filter((r) => !this.isTracking(r.id));
    for (const r of orphaned)
      recordFailed(
        this.deps,
        r.id,
        SYSTEM_ACTOR,
        "the server stopped while this run was queued or training; start a re-run to train it again",
      );
    if (orphaned.length > 0) this.checkpointIfDue();
    return orphaned.length;
  }

  /**
   * Signs an audit checkpoint when the policy says one is due (checkpoint-policy.ts: every 100 events or 10 minutes),
   * after events written outside a request, so no event stays unsigned past the interval (`audit verify` checks it).
   * Never throws.
   */
  private checkpointIfDue(): void {
    applyCheckpointPolicy(this.deps);
  }

  private finishQueuedAsCancelled(runId: number) {
    const { db } = this.deps;
    const run = db.select().from(runs).where(eq(runs.id, runId)).get();
    if (run)
      recordFinished(
        this.deps,
        runId,
        SYSTEM_ACTOR,
        { type: "finished", status: "cancelled", weightsSha256: "", epochsRun: 0, stoppedEarly: false, samplesPerSecond: 0 },
        JSON.parse(run.configJson) as TrainingConfig,
      );
    this.checkpointIfDue();
    this.settle(runId);
  }

  private settle(runId: number) {
    this.active.delete(runId);
    for (const resolve of this.finishedWaiters.get(runId) ?? []) resolve();
    this.finishedWaiters.delete(runId);
    this.pump();
  }

  private pump() {
    while (this.active.size < this.maxConcurrent && this.waiting.length > 0) {
      const runId = this.waiting.shift()!;
      try {
        this.start(runId);
      } catch (e) {
        recordFailed(this.deps, runId, SYSTEM_ACTOR, `could not start training: ${(e as Error).message}`);
        this.checkpointIfDue();
        this.settle(runId);
      }
    }
  }

  private start(runId: number) {
    const { db, artifacts } = this.deps;
    const run = db.select().from(runs).where(eq(runs.id, runId)).get();
    if (!run) throw new Error(`run ${runId} does not exist`);
    const author = db.select({ id: users.id, name: users.name }).from(users).where(eq(users.id, run.createdBy)).get()!;
    const actor = trainerActor(author);
    const config = JSON.parse(run.configJson) as TrainingConfig;
    const dataset = resolveDataset(db, artifacts, { ...actor, id: author.id }, config.data.dataset);
    const parent = run.parentCheckpointId === null ? undefined : parentForJob(this.deps, run.parentCheckpointId);
    const job: TrainJob = {
      config,
      dataset: { bytes: dataset.bytes(), schema: dataset.schema, sha256: dataset.row.sha256 },
      parent,
      backend: this.opts.backend ?? (process.env.RUNLEDGER_BACKEND as BackendName | undefined) ?? "auto",
    };

    let buffer: MetricPoint[] = [];
    let epochs = config.training.epochs;
    let lastProgressAt = 0;
    let ended = false;
    const flush = () => {
      const points = buffer;
      buffer = [];
      insertMetricPoints(db, runId, points);
    };
    const flushTimer = setInterval(flush, 500);
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(flushTimer);
      flush();
      this.settle(runId);
    };

    const onEvent = (e: TrainerEvent) => {
      if (ended) return;
      try {
        switch (e.type) {
          case "prepared":
            recordPrepared(this.deps, runId, actor, e, dataset.row.id);
            break;
          case "started":
            epochs = e.epochs;
            recordStarted(this.deps, runId, actor, e, appCommit());
            break;
          case "batch":
            for (const [key, value] of Object.entries(e.metrics))
              buffer.push({ key, step: e.step, epoch: e.epoch - 1 + e.batch / e.batchesPerEpoch, value, wallTimeMs: e.wallTimeMs });
            if (Date.now() - lastProgressAt > 250) {
              lastProgressAt = Date.now();
              recordProgress(db, runId, { epoch: e.epoch, epochs, batch: e.batch, batches: e.batchesPerEpoch });
            }
            break;
          case "epoch":
            for (const [key, value] of Object.entries(e.metrics))
              buffer.push({ key, step: e.step, epoch: e.epoch, value, wallTimeMs: e.wallTimeMs });
            flush();
            recordProgress(db, runId, { epoch: e.epoch, epochs, batch: 0, batches: 0, samplesPerSecond: Math.round(e.samplesPerSecond) });
            break;
          case "checkpoint":
            flush();
            recordCheckpoint(this.deps, runId, actor, e);
            break;
          case "evaluation":
            recordEvaluation(this.deps, runId, actor, e);
            break;
          case "finished":
            flush();
            recordFinished(this.deps, runId, actor, e, config);
            end();
            break;
          case "failed":
            flush();
            recordFailed(this.deps, runId, actor, e.message);
            end();
            break;
        }
      } catch (err) {
        // A persistence error must not leave the run hanging: stop the worker and record why.
        handle.cancel();
        flush();
        recordFailed(this.deps, runId, actor, `could not record training progress: ${(err as Error).message}`);
        end();
      }
      // Trainer events arrive without a request: keep the checkpoint promise (also for a long CLI run, no timer there).
      if (e.type !== "batch" && e.type !== "epoch") this.checkpointIfDue();
    };
    const handle = startTrainingWorker(job, onEvent);
    this.active.set(runId, { cancel: handle.cancel, done: handle.done });
    handle.done
      .catch((err: Error) => recordFailed(this.deps, runId, actor, `the training worker crashed: ${err.message}`))
      .finally(() => {
        if (!ended) {
          recordFailed(this.deps, runId, actor, "the training worker stopped without reporting an end");
          end();
        }
        this.checkpointIfDue();
      });
  }
}
