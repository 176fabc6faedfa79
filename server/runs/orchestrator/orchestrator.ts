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
 * at its "started" event with that checkpoint. A rollback stops a running run at its next boundary and creates its
 * branch (replay.ts), launched here; a branch starts from its parent checkpoint's resume state. A config's schedule
 * (planned interventions, a re-run's replay) goes to the trainer as planned controls.
 *
 * Several processes share a data directory (web server, `cli train`, `cli resume`): a process takes a run's owner
 * lease (leases.ts) before it queues or trains it and drops it when the run settles, so no two processes train one
 * run. recoverInterrupted (at a web start) turns runs whose owner died into "interrupted" (event run.interrupted) and
 * resumes them from their last checkpoint's resume state (or from scratch before the first checkpoint) unless
 * RUNLEDGER_AUTO_RESUME=0; queued runs whose owner died are launched again. Points and checkpoints the dead process
 * committed stay; the retrained partial epoch re-sends its points, which are stored once (insertMetricPoints).
 *
 * Training workers (run-queue.ts, server/worker/main.ts): with a `queue`, this orchestrator does not train what it
 * launches: launch() enqueues the run for the worker processes (the web server with RUNLEDGER_TRAINING=workers, `cli
 * train --enqueue`, and a worker itself for the branches its rollbacks create). A worker trains the runs it claims
 * with trainClaimed(), exactly as launch() trains here otherwise, and at SIGTERM hands them back (handBackAll: a running
 * run is recorded interrupted, its lease becomes a queue entry again, another worker resumes it from its last
 * checkpoint). Without a queue, runs queued for the workers (and runs of dead workers) are left to the workers.
 */
import { and, desc, eq, gt, inArray, max } from "drizzle-orm";
import { execFileSync } from "node:child_process";
import { auditEvents, checkpoints, runs, users } from "@/db/schema";
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
  recordInterrupted,
  recordStarted,
  trainerActor,
  type MetricPoint,
} from "./persist-events";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import type { EpochControl } from "@/contracts/training-control";
import { effectiveConfig, plannedControlsOf, settingsPatchOf } from "@/contracts/pilot-config";
import { rejectIntervention } from "@/server/runs/pilot";
import { applyPendingAtBoundary, branchJobOf } from "@/server/runs/replay";
import { pendingInterventions, runEffectiveConfig } from "@/server/runs/pilot-queries";
import { dropResumeStatesAfter, loadResumeState, storeResumeState } from "@/server/runs/resume-states";
import { LeaseHolder, isWorkerLease, leaseOf, ownerAlive } from "./leases";
import { SqliteRunQueue, type RunQueue } from "./run-queue";
import { applyCheckpointPolicy } from "@/server/audit/checkpoint-policy";
import { DomainError } from "@/server/errors";
import { trialStopAsked } from "@/server/sweeps/queries";

type Active = { cancel: () => void; done: Promise<void>; handBack: () => void };

const FINAL_STATUSES = new Set(["completed", "failed", "cancelled"]);

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
  /** This process's owner leases of the runs it queues or trains (leases.ts). */
  readonly leases: LeaseHolder;
  /** Runs whose worker stopped at a pause that was withdrawn meanwhile: they continue from their last checkpoint. */
  private continueFromCheckpoint = new Set<number>();
  /** Runs an engineer cancelled while this process trains them: a pause taking effect meanwhile ends them cancelled. */
  private cancelRequested = new Set<number>();

  constructor(
    private deps: ServiceDeps,
    /** piloted: false trains without the epoch-boundary control (interventions stay pending; tests that apply them by hand). */
    private opts: {
      maxConcurrent?: number;
      backend?: BackendName | "auto";
      piloted?: boolean;
      /** Runs launched here go to the training workers' queue (run-queue.ts) instead of training in this process. */
      queue?: RunQueue;
      /** This process is a training worker (`npm run worker`): its lease owner id says so (leases.ts). */
      worker?: boolean;
    } = {},
  ) {
    this.leases = new LeaseHolder(deps.db, opts.worker ? "worker" : "process");
    this.leases.onBeat = () => this.pickUpRemoteCancels();
  }

  /** Per run this process holds: the ledger's last seq when it took the run (cancels asked after it count). */
  private cancelWatermark = new Map<number, number>();

  /**
   * A cancel asked for in another process (the web app while `cli train` or a training worker trains) is a
   * run.cancelRequest event that process recorded, or a sweep's stop of its trial; it could not stop a worker it does
   * not have. The owner looks for them at each heartbeat.
   */
  private pickUpRemoteCancels(): void {
    for (const runId of [...this.active.keys(), ...this.waiting]) {
      if (this.cancelRequested.has(runId)) continue;
      const mark = this.cancelWatermark.get(runId) ?? 0;
      const asked = this.deps.db
        .select({ seq: auditEvents.seq })
        .from(auditEvents)
        .where(
          and(
            eq(auditEvents.entityType, "run"),
            eq(auditEvents.entityId, String(runId)),
            eq(auditEvents.action, "run.cancelRequest"),
            gt(auditEvents.seq, mark),
          ),
        )
        .limit(1)
        .get();
      // A sweep trial the sweep's driver stopped (ASHA, or the sweep stopped) in another process: no run.cancelRequest.
      if (asked || trialStopAsked(this.deps.db, runId)) this.cancel(runId);
    }
  }

  /** The training workers' queue, when this process hands its runs to workers (or is one). */
  get queue(): RunQueue | undefined {
    return this.opts.queue;
  }

  /** How many more runs this process can start now (a worker claims that many). */
  freeSlots(): number {
    return Math.max(0, this.maxConcurrent - this.active.size - this.waiting.length);
  }

  /** Runs this process trains or holds waiting for a slot. */
  trackedRuns(): number[] {
    return [...this.active.keys(), ...this.waiting];
  }

  private get maxConcurrent() {
    return this.opts.maxConcurrent ?? Number(process.env.RUNLEDGER_MAX_CONCURRENT_RUNS ?? 1);
  }

  /**
   * Queues a run that is in status "queued" (or "paused" with a pending resume intervention, or "interrupted": it
   * continues from its last checkpoint); it starts as soon as a training slot is free. Returns false when the run
   * is not launchable here: another live process holds its lease, or its status does not allow it.
   */
  launch(runId: number): boolean {
    if (this.active.has(runId) || this.waiting.includes(runId)) return true;
    const row = this.deps.db.select({ status: runs.status, origin: runs.origin }).from(runs).where(eq(runs.id, runId)).get();
    // A run logged through the tracking API is trained by its script (a pilot's resume reaches it there), never here.
    if (!row || row.origin === "api") return false;
    if (row.status === "paused" && !pendingInterventions(this.deps.db, runId).some((i) => i.kind === "resume")) return false;
    if (row.status !== "queued" && row.status !== "paused" && row.status !== "interrupted") return false;
    // With training workers, the run waits in their queue; a worker claims it (trainClaimed).
    if (this.opts.queue) return this.opts.queue.enqueue(runId);
    if (!this.leases.acquire(runId)) return false;
    return this.trainHere(
      runId,
      this.deps.db
        .select({ m: max(auditEvents.seq) })
        .from(auditEvents)
        .get()?.m ?? 0,
    );
  }

  /**
   * A worker trains a run it claimed from the queue (its lease is already this process's). cancelWatermark: the
   * ledger seq when the run was queued, so a cancel asked for while it waited is carried out here.
   */
  trainClaimed(runId: number, cancelWatermark: number): boolean {
    if (this.active.has(runId) || this.waiting.includes(runId)) return true;
    if (!this.leases.acquire(runId)) return false;
    return this.trainHere(runId, cancelWatermark);
  }

  private trainHere(runId: number, cancelWatermark: number): boolean {
    this.cancelWatermark.set(runId, cancelWatermark);
    this.waiting.push(runId);
    this.pump();
    return true;
  }

  /**
   * A worker stops (SIGTERM): each run it trains or holds goes back to the queue at once. A running run is recorded
   * "interrupted" (event run.interrupted with `reason`), so the next worker resumes it from its last checkpoint's
   * exact-resume state; its trainer thread is stopped without an end event and its buffered points are stored first.
   * Synchronous: the caller exits the process right after, before any further trainer event.
   */
  handBackAll(reason: string): number[] {
    const queue = this.opts.queue;
    if (!queue) throw new Error("handBackAll: this process has no training workers' queue");
    const handed: number[] = [];
    for (const runId of [...this.active.keys(), ...this.waiting]) {
      this.active.get(runId)?.handBack();
      this.active.delete(runId);
      const status = this.deps.db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get()?.status;
      if (status === "running")
        recordInterrupted(this.deps, runId, {
          owner: this.leases.owner,
          lastHeartbeatAt: new Date().toISOString(),
          autoResume: true,
          reason,
        });
      queue.giveBack(this.leases, runId, this.cancelWatermark.get(runId) ?? 0);
      handed.push(runId);
    }
    this.waiting = [];
    this.continueFromCheckpoint.clear();
    this.checkpointIfDue();
    return handed;
  }

  /** Resolves when the run has reached a final status (or immediately when it is not known to this process). */
  waitFor(runId: number): Promise<void> {
    // Queued for the workers: wait on the database until the run has ended (completed, failed or cancelled). A pause
    // does not end it: whoever resumes it, a worker continues it (a paused run is cancelled, not abandoned, to stop).
    if (this.opts.queue && !this.isTracking(runId)) return this.waitForElsewhere(runId);
    if (!this.isTracking(runId)) return Promise.resolve();
    return new Promise((resolve) => this.finishedWaiters.set(runId, [...(this.finishedWaiters.get(runId) ?? []), resolve]));
  }

  private async waitForElsewhere(runId: number): Promise<void> {
    const pollMs = Number(process.env.RUNLEDGER_WORKER_POLL_MS ?? 200);
    for (;;) {
      if (!this.deps.db.$client.open) return;
      const row = this.deps.db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get();
      if (!row || FINAL_STATUSES.has(row.status)) return;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  isTracking(runId: number): boolean {
    return this.active.has(runId) || this.waiting.includes(runId) || this.continueFromCheckpoint.has(runId);
  }

  /**
   * Asks the worker to stop after the current batch; a queued run is cancelled at once; a paused or interrupted run
   * (no worker anywhere) is cancelled at once, its pending interventions rejected. Returns false when the run is not
   * in this process (another live process holds it, or it is not in a cancellable state).
   */
  cancel(runId: number): boolean {
    const w = this.waiting.indexOf(runId);
    if (w >= 0) {
      this.waiting.splice(w, 1);
      this.continueFromCheckpoint.delete(runId); // it ends here: settle must release its lease and waiters
      this.finishQueuedAsCancelled(runId);
      return true;
    }
    const a = this.active.get(runId);
    if (a) {
      this.cancelRequested.add(runId);
      a.cancel();
      return true;
    }
    // Waiting in the workers' queue: taken out (in the transaction that takes its lease, so no worker claims it), then
    // cancelled here like a run waiting for a slot. Also from a server that trains in-process (the queue is in the
    // database: `cli train --enqueue` may have queued it).
    if ((this.opts.queue ?? new SqliteRunQueue(this.deps)).takeOut(this.leases, runId)) {
      const status = this.deps.db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get()?.status;
      if (status === "queued") this.finishQueuedAsCancelled(runId);
      else {
        if (status === "paused" || status === "interrupted") this.finishParkedAsCancelled(runId);
        this.leases.release(runId);
      }
      return true;
    }
    // Held by another live process: it stops the run when it sees the recorded run.cancelRequest (its heartbeat).
    if (this.heldElsewhere(runId)) return true;
    const row = this.deps.db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get();
    if (row?.status !== "paused" && row?.status !== "interrupted") return false;
    this.finishParkedAsCancelled(runId);
    return true;
  }

  /**
   * At a start: runs left queued or running whose owner process is dead (leases.ts) belong to no worker. A running
   * one becomes "interrupted" (event run.interrupted) and, unless RUNLEDGER_AUTO_RESUME=0, resumes from its last
   * checkpoint; a queued one is launched again. Runs a live process holds are left alone. Returns how many runs
   * were interrupted.
   */
  recoverInterrupted(opts: { queuedOlderThanMs?: number } = {}): number {
    const { db } = this.deps;
    const autoResume = process.env.RUNLEDGER_AUTO_RESUME !== "0";
    const candidates = db
      .select({ id: runs.id, status: runs.status, createdAt: runs.createdAt, origin: runs.origin })
      .from(runs)
      .where(inArray(runs.status, ["queued", "running"]))
      .orderBy(runs.id)
      .all()
      // A run logged through the tracking API (server/mlflow/) is trained by its script, never by a worker here.
      .filter((r) => r.origin !== "api" && !this.isTracking(r.id))
      // Without a queue, the runs of a dead training worker are left to the workers (run-queue.ts recoverDeadWorkers).
      .filter((r) => {
        if (this.opts.queue) return true;
        const lease = leaseOf(db, r.id);
        return !lease || !isWorkerLease(lease);
      });
    let interrupted = 0;
    for (const r of candidates) {
      if (r.status === "queued") {
        // While serving, a run another process has just created is not taken before that process launches it.
        const settled = Date.now() - Date.parse(r.createdAt) >= (opts.queuedOlderThanMs ?? 0);
        if (settled && !this.heldElsewhere(r.id)) this.launch(r.id);
        continue;
      }
      if (!this.interruptIfOrphaned(r.id, autoResume)) continue;
      interrupted++;
      if (autoResume) this.launch(r.id);
    }
    if (interrupted > 0) this.checkpointIfDue();
    return interrupted;
  }

  /**
   * While a server runs (a timer, app-services.ts): what other processes left behind since the start. Runs whose
   * training process died meanwhile are recovered as at a start (queued ones only once they are 10 s old), and paused
   * runs whose resume was asked for elsewhere (`cli pilot --resume`, no orchestrator there) are launched here.
   */
  adoptOrphans(): void {
    this.recoverInterrupted({ queuedOlderThanMs: 10_000 });
    const paused = this.deps.db.select({ id: runs.id }).from(runs).where(eq(runs.status, "paused")).all();
    for (const r of paused) {
      if (this.isTracking(r.id) || this.heldElsewhere(r.id)) continue;
      if (pendingInterventions(this.deps.db, r.id).some((i) => i.kind === "resume")) this.launch(r.id);
    }
  }

  /** Whether another live process holds the run's lease. */
  heldElsewhere(runId: number): boolean {
    const lease = leaseOf(this.deps.db, runId);
    return lease !== undefined && lease.owner !== this.leases.owner && ownerAlive(lease);
  }

  /**
   * Marks a "running" run "interrupted" (event run.interrupted) when no live process holds it and this one does not
   * train it. Returns whether it did.
   */
  interruptIfOrphaned(runId: number, autoResume: boolean): boolean {
    if (this.isTracking(runId) || this.heldElsewhere(runId)) return false;
    const lease = leaseOf(this.deps.db, runId);
    return recordInterrupted(this.deps, runId, {
      owner: lease?.owner ?? null,
      lastHeartbeatAt: lease ? new Date(lease.heartbeatAt).toISOString() : null,
      autoResume,
    });
  }

  /**
   * Resumes an interrupted run (one click, or `cli resume`) from its last checkpoint, or a paused one that has a
   * pending resume intervention. Returns false when it cannot train here (see launch).
   */
  resumeInterrupted(runId: number): boolean {
    return this.launch(runId);
  }

  /** Drops this process's leases as if it had died (recovery tests inside one process); workers are not stopped. */
  abandonLeasesForTest(): void {
    this.leases.abandon();
  }

  /**
   * Signs an audit checkpoint when the policy says one is due (checkpoint-policy.ts: every 100 events or 10 minutes),
   * after events written outside a request, so no event stays unsigned past the interval (`audit verify` checks it).
   * Never throws.
   */
  private checkpointIfDue(): void {
    // A worker's last promise may settle after its caller closed the database (a CLI or a test that awaited the run).
    if (!this.deps.db.$client.open) return;
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

  /** A paused or interrupted run is cancelled: its pending interventions are rejected, its last checkpoint is its end. */
  private finishParkedAsCancelled(runId: number) {
    const { db } = this.deps;
    for (const i of pendingInterventions(db, runId)) {
      try {
        rejectIntervention(this.deps, { interventionId: i.id, reason: "the run was cancelled" });
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
      }
    }
    const run = db.select().from(runs).where(eq(runs.id, runId)).get();
    const last = db.select().from(checkpoints).where(eq(checkpoints.runId, runId)).orderBy(desc(checkpoints.epoch)).limit(1).get();
    if (run)
      recordFinished(
        this.deps,
        runId,
        SYSTEM_ACTOR,
        {
          type: "finished",
          status: "cancelled",
          weightsSha256: last?.sha256 ?? "",
          epochsRun: last?.epoch ?? 0,
          stoppedEarly: false,
          samplesPerSecond: 0,
        },
        JSON.parse(run.configJson) as TrainingConfig,
      );
    this.checkpointIfDue();
  }

  private settle(runId: number) {
    this.active.delete(runId);
    this.cancelRequested.delete(runId);
    // A run that continues at once keeps its lease, its cancel watermark and its waiters (it has not ended).
    if (!this.continueFromCheckpoint.has(runId)) {
      this.cancelWatermark.delete(runId);
      this.leases.release(runId);
      for (const resolve of this.finishedWaiters.get(runId) ?? []) resolve();
      this.finishedWaiters.delete(runId);
    }
    this.pump();
    // A worker's loop claims the next queued run into the freed slot.
    this.opts.queue?.wake();
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
    // A rollback branch (replay.ts branchJobOf) builds its model like its source and starts from its parent checkpoint's state.
    const branch = branchJobOf(this.deps, run);
    const parent = branch ? branch.parent : run.parentCheckpointId === null ? undefined : parentForJob(this.deps, run.parentCheckpointId);
    // A paused run continues from the exact-resume state of its last checkpoint (the one its pause wrote); so does
    // an interrupted run, or one whose pause was withdrawn after its worker stopped. An interrupted run without a
    // checkpoint restarts from scratch (its run.interrupted event says so).
    let resumedFrom: { checkpointId: number; epoch: number; step: number } | undefined;
    let resume: TrainJob["resume"];
    const continuing = this.continueFromCheckpoint.delete(runId);
    if (run.status === "paused" || run.status === "interrupted" || continuing) {
      const last = db.select().from(checkpoints).where(eq(checkpoints.runId, runId)).orderBy(desc(checkpoints.epoch)).limit(1).get();
      // Resume-state pointers of epochs after the last checkpoint row: a crash between storing one and committing its
      // checkpoint; that epoch is retrained and stores its state again.
      dropResumeStatesAfter(this.deps, runId, last?.epoch ?? 0);
      const state = last ? loadResumeState(this.deps, { runId, epoch: last.epoch }) : null;
      if (last && state) {
        resume = state;
        resumedFrom = { checkpointId: last.id, epoch: last.epoch, step: last.step };
      } else if (run.status !== "interrupted" || last)
        throw new Error(`run ${runId} is ${run.status} but its last checkpoint has no resume state`);
    }
    // Changes asked for while the run was paused take effect at the resume point (the pause's checkpoint), as a
    // control at that boundary would: the trainer applies them before the next epoch (resumeApply). They are applied
    // as interventions once the trainer has accepted them (its first event after "started"); if it refuses them, they
    // are rejected with its message and the run continues without them.
    let resumeSets: { ids: number[]; apply: NonNullable<TrainJob["resumeApply"]> } | undefined;
    if (resumedFrom && run.status === "paused") {
      const sets = pendingInterventions(db, runId).filter((i) => i.kind === "set");
      if (sets.length > 0) {
        const after = effectiveConfig(runEffectiveConfig(db, runId).effective, sets);
        const apply = Object.assign({}, ...sets.map((i) => settingsPatchOf(i.changes, after))) as NonNullable<TrainJob["resumeApply"]>;
        resumeSets = { ids: sets.map((i) => i.id), apply };
      }
    }
    const job: TrainJob = {
      config,
      dataset: { bytes: dataset.bytes(), schema: dataset.schema, sha256: dataset.row.sha256 },
      parent,
      // A run that continues from a checkpoint asks for the backend it trained on (another process may have trained
      // it with another setting): the same backend gives the same weights as an uninterrupted run.
      backend:
        (resumedFrom && run.backend ? (run.backend as BackendName) : undefined) ??
        this.opts.backend ??
        (process.env.RUNLEDGER_BACKEND as BackendName | undefined) ??
        "auto",
      ...(this.opts.piloted === false ? {} : { piloted: true as const }),
      resumable: true,
      ...(resume
        ? { resume, ...(resumeSets ? { resumeApply: resumeSets.apply } : {}) }
        : branch?.resume
          ? { resume: branch.resume, resumeApply: branch.resumeApply }
          : {}),
      // The config's schedule (planned interventions, or a re-run's replayed ones), applied by the trainer itself.
      ...(config.schedule?.length ? { plannedControls: plannedControlsOf(config) } : {}),
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
      unlessWithdrawn(() => {
        // A rollback creates its branch run, which then trains here like any queued run.
        const branchRunId = applyPendingAtBoundary(this.deps, input);
        if (branchRunId !== null) this.launch(branchRunId);
      });
    const rejectAll = (ids: number[], reason: string) => {
      for (const interventionId of ids) unlessWithdrawn(() => rejectIntervention(this.deps, { interventionId, reason }));
    };
    /** The one control of this boundary, from the run's pending interventions (set, pause, stop; oldest first). */
    const controlAt = (epoch: number, step: number): EpochControl => {
      const pending = pendingInterventions(db, runId).filter(
        (i) => i.kind === "set" || i.kind === "pause" || i.kind === "stop" || i.kind === "rollback",
      );
      if (pending.length === 0) return {};
      const { effective } = runEffectiveConfig(db, runId);
      const sets = pending.filter((i) => i.kind === "set");
      const after = effectiveConfig(effective, sets);
      const apply = Object.assign({}, ...sets.map((i) => settingsPatchOf(i.changes, after))) as EpochControl["apply"];
      // A rollback stops this run: training goes on in its branch.
      const then = pending.some((i) => i.kind === "stop" || i.kind === "rollback")
        ? "stop"
        : pending.some((i) => i.kind === "pause")
          ? "pause"
          : "continue";
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

    /** The trainer went on after "started": it accepted the changes asked for while paused (resumeSets). */
    const acceptResumeSets = () => {
      if (!resumeSets || !resumedFrom) return;
      const { ids } = resumeSets;
      const from = resumedFrom;
      resumeSets = undefined;
      for (const interventionId of ids) applyOne({ interventionId, epoch: from.epoch, step: from.step, checkpointId: from.checkpointId });
    };
    const onEvent = (e: TrainerEvent) => {
      if (ended) return;
      try {
        if (e.type !== "prepared" && e.type !== "started" && e.type !== "failed") acceptResumeSets();
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
            // Two races end differently: a cancel that arrived while the pause took effect cancels the run (a cancel
            // is never lost to a pause), and a pause withdrawn before its checkpoint was persisted left the run
            // "running" with no worker: it continues at once from that checkpoint. A resume asked for after the pause
            // took effect but before this end arrived found the run still tracked here (launch() did nothing): the
            // run continues at once too, its resume applied at the new worker's start.
            if (e.status === "paused" && this.cancelRequested.has(runId)) {
              const paused = db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get();
              if (paused?.status === "paused") {
                this.finishParkedAsCancelled(runId);
                end();
                break;
              }
            }
            if (e.status === "paused") {
              const now = db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get();
              const resumeAsked = now?.status === "paused" && pendingInterventions(db, runId).some((i) => i.kind === "resume");
              if (now?.status === "running" || resumeAsked) this.continueFromCheckpoint.add(runId);
            } else recordFinished(this.deps, runId, actor, e, config);
            end();
            if (this.continueFromCheckpoint.has(runId)) {
              this.waiting.unshift(runId);
              this.pump();
            }
            break;
          case "failed":
            if (resumeSets) {
              // The trainer refused the changes asked for while paused: they are rejected, the run continues without them.
              rejectAll(resumeSets.ids, `the trainer refused the change at the resume point: ${e.message}`);
              resumeSets = undefined;
              flush();
              this.continueFromCheckpoint.add(runId);
              end();
              this.waiting.unshift(runId);
              this.pump();
              break;
            }
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
    const handBack = () => {
      // No end is recorded: the run goes back to the queue (handBackAll). Its buffered points are stored now.
      ended = true;
      clearInterval(flushTimer);
      flush();
      handle.terminate();
    };
    this.active.set(runId, { cancel: handle.cancel, done: handle.done, handBack });
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
