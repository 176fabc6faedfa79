/**
 * The run orchestrator: starts trainer workers for queued runs, persists their events, and cancels them.
 * Training never runs on the request path: each run gets a worker thread. At most `maxConcurrent` runs train
 * at once (the machine has 2 cores); the rest wait as "queued", in creation order.
 * Invariant: a run ends in exactly one of completed / cancelled / failed, even when its worker crashes.
 *
 * Live piloting: every run trains piloted and resumable. At each epoch boundary the worker waits for a control; the
 * orchestrator reads the run's pending interventions (set, pause, stop) and answers with ONE control (the merged
 * settings patch of the sets; then stop > pause > continue), asking for that boundary's checkpoint whenever anything
 * is pending, because each decision is bound to the checkpoint of the boundary where it took effect. When that
 * checkpoint is persisted, the interventions are applied in id order (server/runs/pilot.ts applyIntervention). A
 * control the trainer rejects rejects its set interventions (the trainer asks again; a pause or stop still applies).
 * A paused run (finished "paused") frees its slot and stays "paused"; a resume intervention re-queues it, it
 * continues from the resume state of its last checkpoint (server/runs/resume-states.ts) and the resume is applied
 * at its "started" event with that checkpoint. Rollback interventions are left pending (not wired here).
 */
import { desc, eq, inArray } from "drizzle-orm";
import { execFileSync } from "node:child_process";
import { checkpoints, runs, users } from "@/db/schema";
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
import type { EpochControl } from "@/contracts/training-control";
import { effectiveConfig, settingsPatchOf } from "@/contracts/pilot-config";
import { applyIntervention, rejectIntervention } from "@/server/runs/pilot";
import { pendingInterventions, runEffectiveConfig } from "@/server/runs/pilot-queries";
import { loadResumeState, storeResumeState } from "@/server/runs/resume-states";
import { applyCheckpointPolicy } from "@/server/audit/checkpoint-policy";
import { DomainError } from "@/server/errors";

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
    /** piloted: false trains without the epoch-boundary control (interventions stay pending; tests that apply them by hand). */
    private opts: { maxConcurrent?: number; backend?: BackendName | "auto"; piloted?: boolean } = {},
  ) {}

  private get maxConcurrent() {
    return this.opts.maxConcurrent ?? Number(process.env.RUNLEDGER_MAX_CONCURRENT_RUNS ?? 1);
  }

  /**
   * Queues a run that is in status "queued" (or "paused" with a pending resume intervention: it continues from its
   * last checkpoint); it starts as soon as a training slot is free.
   */
  launch(runId: number): void {
    if (this.active.has(runId) || this.waiting.includes(runId)) return;
    const row = this.deps.db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get();
    if (row?.status === "paused" && !pendingInterventions(this.deps.db, runId).some((i) => i.kind === "resume")) return;
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
    // A paused run continues from the exact-resume state of its last checkpoint (the one its pause wrote).
    let resumedFrom: { checkpointId: number; epoch: number; step: number } | undefined;
    let resume: TrainJob["resume"];
    if (run.status === "paused") {
      const last = db.select().from(checkpoints).where(eq(checkpoints.runId, runId)).orderBy(desc(checkpoints.epoch)).limit(1).get();
      const state = last ? loadResumeState(this.deps, { runId, epoch: last.epoch }) : null;
      if (!last || !state) throw new Error(`run ${runId} is paused but its last checkpoint has no resume state`);
      resume = state;
      resumedFrom = { checkpointId: last.id, epoch: last.epoch, step: last.step };
    }
    const job: TrainJob = {
      config,
      dataset: { bytes: dataset.bytes(), schema: dataset.schema, sha256: dataset.row.sha256 },
      parent,
      backend: this.opts.backend ?? (process.env.RUNLEDGER_BACKEND as BackendName | undefined) ?? "auto",
      ...(this.opts.piloted === false ? {} : { piloted: true as const }),
      resumable: true,
      ...(resume ? { resume } : {}),
    };
    /** Interventions answered at a boundary, applied when that boundary's checkpoint is persisted. */
    let inFlight: { epoch: number; step: number; ids: number[]; setIds: number[] } | undefined;
    /**
     * An intervention an engineer withdrew meanwhile is no longer pending: the service refuses it with a DomainError,
     * which must not fail the run. Any other error (the database) still propagates.
     */
    const unlessWithdrawn = (closeIntervention: () => void) => {
      try {
        closeIntervention();
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
      }
    };
    const applyOne = (input: { interventionId: number; epoch: number; step: number; checkpointId: number }) =>
      unlessWithdrawn(() => applyIntervention(this.deps, input));
    const rejectAll = (ids: number[], reason: string) => {
      for (const interventionId of ids) unlessWithdrawn(() => rejectIntervention(this.deps, { interventionId, reason }));
    };
    /** The one control of this boundary, from the run's pending interventions (set, pause, stop; oldest first). */
    const controlAt = (epoch: number, step: number): EpochControl => {
      const pending = pendingInterventions(db, runId).filter((i) => i.kind === "set" || i.kind === "pause" || i.kind === "stop");
      if (pending.length === 0) return {};
      const { effective } = runEffectiveConfig(db, runId);
      const sets = pending.filter((i) => i.kind === "set");
      const after = effectiveConfig(effective, sets);
      const apply = Object.assign({}, ...sets.map((i) => settingsPatchOf(i.changes, after))) as EpochControl["apply"];
      const then = pending.some((i) => i.kind === "stop") ? "stop" : pending.some((i) => i.kind === "pause") ? "pause" : "continue";
      inFlight = { epoch, step, ids: pending.map((i) => i.id), setIds: sets.map((i) => i.id) };
      return { ...(sets.length > 0 ? { apply } : {}), then, checkpoint: true };
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
            if (resumedFrom) {
              const from = resumedFrom;
              for (const i of pendingInterventions(db, runId).filter((p) => p.kind === "resume"))
                applyOne({ interventionId: i.id, epoch: from.epoch, step: from.step, checkpointId: from.checkpointId });
            }
            break;
          case "boundary":
            flush();
            handle.sendControl(e.epoch, controlAt(e.epoch, e.step));
            break;
          case "controlRejected":
            // The trainer changed nothing and asks again: the sets are refused with its message; a pause or stop is asked again.
            if (inFlight) rejectAll(inFlight.setIds, `the trainer refused the change: ${e.message}`);
            inFlight = undefined;
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
          case "checkpoint": {
            flush();
            if (e.state && e.stateSha256) storeResumeState(this.deps, { runId, epoch: e.epoch }, e.state, e.stateSha256);
            const checkpointId = recordCheckpoint(this.deps, runId, actor, e);
            if (inFlight && inFlight.epoch === e.epoch) {
              const { epoch, step, ids } = inFlight;
              inFlight = undefined;
              for (const interventionId of ids) applyOne({ interventionId, epoch, step, checkpointId });
            }
            break;
          }
          case "evaluation":
            recordEvaluation(this.deps, runId, actor, e);
            break;
          case "finished":
            flush();
            if (inFlight) rejectAll(inFlight.ids, `the run ended (${e.status}) before the intervention took effect`);
            // A pause already parked the run as "paused" (applyIntervention); the slot is freed, the run stays resumable.
            if (e.status !== "paused") recordFinished(this.deps, runId, actor, e, config);
            end();
            break;
          case "failed":
            if (inFlight) rejectAll(inFlight.ids, `the run failed before the intervention took effect: ${e.message}`);
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
