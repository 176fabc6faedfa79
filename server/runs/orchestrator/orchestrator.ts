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
 * Both stores (issue 16): every verb is awaited and runs on the store it is given (SQLite or PostgreSQL); a run's
 * training session (run-session.ts) persists its trainer events in order, one awaited step at a time.
 *
 * Training workers (run-queue.ts, server/worker/main.ts): with a `queue`, this orchestrator does not train what it
 * launches: launch() enqueues the run for the worker processes (the web server with RUNLEDGER_TRAINING=workers, `cli
 * train --enqueue`, and a worker itself for the branches its rollbacks create). A worker trains the runs it claims
 * with trainClaimed(), exactly as launch() trains here otherwise, and at SIGTERM hands them back (handBackAll: a running
 * run is recorded interrupted, its lease becomes a queue entry again, another worker resumes it from its last
 * checkpoint). Without a queue, runs queued for the workers (and runs of dead workers) are left to the workers.
 */
import { and, eq, gt, inArray, sql } from "drizzle-orm";
import type { TrainingConfig } from "@/contracts/training-config";
import type { Db } from "@/db/client";
import { asStore, isStoreOpen, reader, type Store } from "@/db/store";
import type { BackendName } from "@/trainer/types";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import type { AuditKeys } from "@/server/audit/keys";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import { applyCheckpointPolicyOn } from "@/server/audit/checkpoint-policy";
import { DomainError } from "@/server/errors";
import { rejectInterventionOn } from "@/server/runs/pilot";
import { trialStopAskedOn } from "@/server/sweeps/queries";
import { appProvenance } from "@/server/runs/app-provenance";
import { recordFinishedOn, recordInterruptedOn } from "./persist-events";
import { LeaseHolder, isWorkerLease, leaseClockMs, leaseOfOn, ownerAlive } from "./leases";
import { StoreRunQueue, type RunQueue } from "./run-queue";
import { pendingOf, startRunSession, type ActiveRun, type SessionHost } from "./run-session";

/**
 * What the orchestrator works on: either store, either artifact store, the data directory and the signing keys. A
 * training worker on PostgreSQL has no signing key (it stays on the web servers, whose timer signs the checkpoints
 * its events make due): without `auditKeys` no checkpoint is signed here.
 */
export type OrchestratorDeps = { db: Store | Db; artifacts: AnyArtifactStore; dataDir: string; auditKeys?: AuditKeys };

const FINAL_STATUSES = new Set(["completed", "failed", "cancelled"]);

export class RunOrchestrator {
  private active = new Map<number, ActiveRun>();
  private waiting: number[] = [];
  /** Runs whose launch is being decided now (an awaited status read and lease): a second launch does nothing. */
  private launching = new Set<number>();
  private finishedWaiters = new Map<number, (() => void)[]>();
  /** This process's owner leases of the runs it queues or trains (leases.ts). */
  readonly leases: LeaseHolder;
  readonly store: Store;
  /** Runs whose worker stopped at a pause that was withdrawn meanwhile: they continue from their last checkpoint. */
  private continueFromCheckpoint = new Set<number>();
  /** Runs an engineer cancelled while this process trains them: a pause taking effect meanwhile ends them cancelled. */
  private cancelRequested = new Set<number>();
  /** Per run this process holds: the ledger's last seq when it took the run (cancels asked after it count). */
  private cancelWatermark = new Map<number, number>();
  private lookingForCancels = false;
  /** What each run's session needs from this orchestrator (run-session.ts). */
  private readonly host: SessionHost;

  constructor(
    readonly deps: OrchestratorDeps,
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
    this.store = asStore(deps.db);
    this.leases = new LeaseHolder(this.store, opts.worker ? "worker" : "process");
    this.leases.onBeat = () => {
      if (this.lookingForCancels) return;
      this.lookingForCancels = true;
      this.pickUpRemoteCancels()
        .catch(() => undefined) // a busy or closed store: the next beat looks again
        .finally(() => (this.lookingForCancels = false));
    };
    this.host = {
      store: this.store,
      deps,
      backend: opts.backend,
      piloted: opts.piloted !== false,
      launch: (runId) => this.launch(runId),
      cancelAsked: (runId) => this.cancelRequested.has(runId),
      takeContinueMark: (runId) => this.continueFromCheckpoint.delete(runId),
      markContinue: (runId) => void this.continueFromCheckpoint.add(runId),
      continues: (runId) => this.continueFromCheckpoint.has(runId),
      requeueFront: (runId) => {
        this.waiting.unshift(runId);
        this.pump();
      },
      finishParkedAsCancelled: (runId) => this.finishParkedAsCancelled(runId),
      settle: (runId) => this.settle(runId),
      checkpointIfDue: () => this.checkpointIfDue(),
      storeOpen: () => this.storeOpen(),
      appProvenance,
    };
  }

  /** Whether the store can still be written: a CLI or a test may close SQLite while a worker's last event arrives. */
  private storeOpen(): boolean {
    return isStoreOpen(this.store);
  }

  private async statusOf(runId: number): Promise<string | undefined> {
    const { runs } = this.store.tables;
    const [row] = await reader(this.store).select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).limit(1);
    return row?.status;
  }

  private async ledgerHead(): Promise<number> {
    const { auditEvents } = this.store.tables;
    const [row] = await reader(this.store)
      .select({ m: sql<number>`coalesce(max(${auditEvents.seq}), 0)`.mapWith(Number) })
      .from(auditEvents);
    return row?.m ?? 0;
  }

  /**
   * A cancel asked for in another process (the web app while `cli train` or a training worker trains) is a
   * run.cancelRequest event that process recorded, or a sweep's stop of its trial; it could not stop a worker it does
   * not have. The owner looks for them at each heartbeat.
   */
  private async pickUpRemoteCancels(): Promise<void> {
    const { auditEvents } = this.store.tables;
    for (const runId of [...this.active.keys(), ...this.waiting]) {
      if (this.cancelRequested.has(runId)) continue;
      const mark = this.cancelWatermark.get(runId) ?? 0;
      const [asked] = await reader(this.store)
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
        .limit(1);
      // A sweep trial the sweep's driver stopped (ASHA, or the sweep stopped) in another process: no run.cancelRequest.
      if (asked || (await trialStopAskedOn(this.store, runId))) await this.cancel(runId);
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
   * continues from its last checkpoint); it starts as soon as a training slot is free. Resolves to false when the run
   * is not launchable here: another live process holds its lease, or its status does not allow it.
   */
  async launch(runId: number): Promise<boolean> {
    if (this.active.has(runId) || this.waiting.includes(runId) || this.launching.has(runId)) return true;
    this.launching.add(runId);
    try {
      const { runs } = this.store.tables;
      const [row] = await reader(this.store)
        .select({ status: runs.status, origin: runs.origin })
        .from(runs)
        .where(eq(runs.id, runId))
        .limit(1);
      // A run logged through the tracking API is trained by its script (a pilot's resume reaches it there), never here.
      if (!row || row.origin === "api") return false;
      if (row.status === "paused" && !(await pendingOf(this.store, runId)).some((i) => i.kind === "resume")) return false;
      if (row.status !== "queued" && row.status !== "paused" && row.status !== "interrupted") return false;
      // With training workers, the run waits in their queue; a worker claims it (trainClaimed).
      if (this.opts.queue) return await this.opts.queue.enqueue(runId);
      if (!(await this.leases.acquireOn(runId))) return false;
      this.trainHere(runId, await this.ledgerHead());
      return true;
    } finally {
      this.launching.delete(runId);
    }
  }

  /**
   * A worker trains a run it claimed from the queue (its lease is already this process's). cancelWatermark: the
   * ledger seq when the run was queued, so a cancel asked for while it waited is carried out here.
   */
  async trainClaimed(runId: number, cancelWatermark: number): Promise<boolean> {
    if (this.active.has(runId) || this.waiting.includes(runId)) return true;
    if (!(await this.leases.acquireOn(runId))) return false;
    this.trainHere(runId, cancelWatermark);
    return true;
  }

  private trainHere(runId: number, cancelWatermark: number): void {
    if (this.active.has(runId) || this.waiting.includes(runId)) return;
    this.cancelWatermark.set(runId, cancelWatermark);
    this.waiting.push(runId);
    this.pump();
  }

  /**
   * A worker stops (SIGTERM): each run it trains or holds goes back to the queue at once. A running run is recorded
   * "interrupted" (event run.interrupted with `reason`), so the next worker resumes it from its last checkpoint's
   * exact-resume state; its trainer thread is stopped without an end event, and the events it had sent and its
   * buffered points are stored first. The caller exits the process once this resolves.
   */
  async handBackAll(reason: string): Promise<number[]> {
    const queue = this.opts.queue;
    if (!queue) throw new Error("handBackAll: this process has no training workers' queue");
    const handed: number[] = [];
    const held = [...this.active.keys(), ...this.waiting];
    this.waiting = [];
    for (const runId of held) {
      const session = this.active.get(runId);
      this.active.delete(runId);
      await session?.handBack();
      if ((await this.statusOf(runId)) === "running")
        await recordInterruptedOn(this.deps, runId, {
          owner: this.leases.owner,
          lastHeartbeatAt: new Date().toISOString(),
          autoResume: true,
          reason,
        });
      await queue.giveBack(this.leases, runId, this.cancelWatermark.get(runId) ?? 0);
      this.cancelWatermark.delete(runId);
      // Whoever waits for the run here (a job queue handler) is done with it: it trains elsewhere now.
      for (const resolve of this.finishedWaiters.get(runId) ?? []) resolve();
      this.finishedWaiters.delete(runId);
      handed.push(runId);
    }
    this.continueFromCheckpoint.clear();
    await this.checkpointIfDue();
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
      if (!this.storeOpen()) return;
      const status = await this.statusOf(runId);
      if (!status || FINAL_STATUSES.has(status)) return;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  isTracking(runId: number): boolean {
    return this.active.has(runId) || this.waiting.includes(runId) || this.continueFromCheckpoint.has(runId);
  }

  /**
   * Asks the worker to stop after the current batch; a queued run is cancelled at once; a paused or interrupted run
   * (no worker anywhere) is cancelled at once, its pending interventions rejected. Resolves to false when the run is
   * not in this process (another live process holds it, or it is not in a cancellable state).
   */
  async cancel(runId: number): Promise<boolean> {
    const w = this.waiting.indexOf(runId);
    if (w >= 0) {
      this.waiting.splice(w, 1);
      this.continueFromCheckpoint.delete(runId); // it ends here: settle must release its lease and waiters
      await this.finishQueuedAsCancelled(runId);
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
    if (await (this.opts.queue ?? new StoreRunQueue(this.store)).takeOut(this.leases, runId)) {
      const status = await this.statusOf(runId);
      if (status === "queued") await this.finishQueuedAsCancelled(runId);
      else {
        if (status === "paused" || status === "interrupted") await this.finishParkedAsCancelled(runId);
        await this.leases.releaseOn(runId);
      }
      return true;
    }
    // Held by another live process: it stops the run when it sees the recorded run.cancelRequest (its heartbeat).
    if (await this.heldElsewhere(runId)) return true;
    const status = await this.statusOf(runId);
    if (status !== "paused" && status !== "interrupted") return false;
    await this.finishParkedAsCancelled(runId);
    return true;
  }

  /**
   * At a start: runs left queued or running whose owner process is dead (leases.ts) belong to no worker. A running
   * one becomes "interrupted" (event run.interrupted) and, unless RUNLEDGER_AUTO_RESUME=0, resumes from its last
   * checkpoint; a queued one is launched again. Runs a live process holds are left alone. Resolves to how many runs
   * were interrupted.
   */
  async recoverInterrupted(opts: { queuedOlderThanMs?: number } = {}): Promise<number> {
    const autoResume = process.env.RUNLEDGER_AUTO_RESUME !== "0";
    const { runs } = this.store.tables;
    const listed = await reader(this.store)
      .select({ id: runs.id, status: runs.status, createdAt: runs.createdAt, origin: runs.origin })
      .from(runs)
      .where(inArray(runs.status, ["queued", "running"]))
      .orderBy(runs.id);
    let interrupted = 0;
    for (const r of listed) {
      // A run logged through the tracking API (server/mlflow/) is trained by its script, never by a worker here.
      if (r.origin === "api" || this.isTracking(r.id)) continue;
      // Without a queue, the runs of a dead training worker are left to the workers (run-queue.ts recoverDeadWorkers).
      if (!this.opts.queue) {
        const lease = await leaseOfOn(this.store, r.id);
        if (lease && isWorkerLease(lease)) continue;
      }
      if (r.status === "queued") {
        // While serving, a run another process has just created is not taken before that process launches it.
        const settled = Date.now() - Date.parse(r.createdAt) >= (opts.queuedOlderThanMs ?? 0);
        if (settled && !(await this.heldElsewhere(r.id))) await this.launch(r.id);
        continue;
      }
      if (!(await this.interruptIfOrphaned(r.id, autoResume))) continue;
      interrupted++;
      if (autoResume) await this.launch(r.id);
    }
    if (interrupted > 0) await this.checkpointIfDue();
    return interrupted;
  }

  /**
   * While a server runs (a timer, app-services.ts): what other processes left behind since the start. Runs whose
   * training process died meanwhile are recovered as at a start (queued ones only once they are 10 s old), and paused
   * runs whose resume was asked for elsewhere (`cli pilot --resume`, no orchestrator there) are launched here.
   */
  async adoptOrphans(): Promise<void> {
    await this.recoverInterrupted({ queuedOlderThanMs: 10_000 });
    const { runs } = this.store.tables;
    const paused = await reader(this.store).select({ id: runs.id }).from(runs).where(eq(runs.status, "paused"));
    for (const r of paused) {
      if (this.isTracking(r.id) || (await this.heldElsewhere(r.id))) continue;
      if ((await pendingOf(this.store, r.id)).some((i) => i.kind === "resume")) await this.launch(r.id);
    }
  }

  /** Whether another live process holds the run's lease. */
  async heldElsewhere(runId: number): Promise<boolean> {
    const lease = await leaseOfOn(this.store, runId);
    return (
      lease !== undefined && lease.owner !== this.leases.owner && ownerAlive(lease, await leaseClockMs(this.store), this.store.dialect)
    );
  }

  /**
   * Marks a "running" run "interrupted" (event run.interrupted) when no live process holds it and this one does not
   * train it. Resolves to whether it did.
   */
  async interruptIfOrphaned(runId: number, autoResume: boolean): Promise<boolean> {
    if (this.isTracking(runId) || (await this.heldElsewhere(runId))) return false;
    const lease = await leaseOfOn(this.store, runId);
    return recordInterruptedOn(this.deps, runId, {
      owner: lease?.owner ?? null,
      lastHeartbeatAt: lease ? new Date(lease.heartbeatAt).toISOString() : null,
      autoResume,
    });
  }

  /**
   * Resumes an interrupted run (one click, or `cli resume`) from its last checkpoint, or a paused one that has a
   * pending resume intervention. Resolves to false when it cannot train here (see launch).
   */
  resumeInterrupted(runId: number): Promise<boolean> {
    return this.launch(runId);
  }

  /** Drops this process's leases as if it had died (recovery tests inside one process); workers are not stopped. */
  abandonLeasesForTest(): void {
    this.leases.abandon();
  }

  /**
   * Signs an audit checkpoint when the policy says one is due (checkpoint-policy.ts: every 100 events or 10 minutes),
   * after events written outside a request, so no event stays unsigned past the interval (`audit verify` checks it).
   * Never rejects.
   */
  private async checkpointIfDue(): Promise<void> {
    // A worker's last promise may settle after its caller closed the database (a CLI or a test that awaited the run).
    if (!this.storeOpen() || !this.deps.auditKeys) return;
    await applyCheckpointPolicyOn({ db: this.store, auditKeys: this.deps.auditKeys });
  }

  private async runConfig(runId: number): Promise<TrainingConfig | undefined> {
    const { runs } = this.store.tables;
    const [run] = await reader(this.store).select({ configJson: runs.configJson }).from(runs).where(eq(runs.id, runId)).limit(1);
    return run ? (JSON.parse(run.configJson) as TrainingConfig) : undefined;
  }

  private async finishQueuedAsCancelled(runId: number): Promise<void> {
    const config = await this.runConfig(runId);
    if (config)
      await recordFinishedOn(
        this.deps,
        runId,
        SYSTEM_ACTOR,
        { type: "finished", status: "cancelled", weightsSha256: "", epochsRun: 0, stoppedEarly: false, samplesPerSecond: 0 },
        config,
      );
    await this.checkpointIfDue();
    await this.settle(runId);
  }

  /** A paused or interrupted run is cancelled: its pending interventions are rejected, its last checkpoint is its end. */
  private async finishParkedAsCancelled(runId: number): Promise<void> {
    for (const i of await pendingOf(this.store, runId)) {
      try {
        await rejectInterventionOn(this.deps, { interventionId: i.id, reason: "the run was cancelled" });
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
      }
    }
    const config = await this.runConfig(runId);
    const { checkpoints } = this.store.tables;
    const [last] = await reader(this.store)
      .select({ sha256: checkpoints.sha256, epoch: checkpoints.epoch })
      .from(checkpoints)
      .where(eq(checkpoints.runId, runId))
      .orderBy(sql`${checkpoints.epoch} desc`)
      .limit(1);
    if (config)
      await recordFinishedOn(
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
        config,
      );
    await this.checkpointIfDue();
  }

  private async settle(runId: number): Promise<void> {
    this.active.delete(runId);
    this.cancelRequested.delete(runId);
    // A run that continues at once keeps its lease, its cancel watermark and its waiters (it has not ended).
    if (!this.continueFromCheckpoint.has(runId)) {
      this.cancelWatermark.delete(runId);
      if (this.storeOpen()) await this.leases.releaseOn(runId).catch(() => this.leases.forget(runId));
      else this.leases.forget(runId);
      for (const resolve of this.finishedWaiters.get(runId) ?? []) resolve();
      this.finishedWaiters.delete(runId);
    }
    this.pump();
    // A worker's loop claims the next queued run into the freed slot.
    this.opts.queue?.wake();
  }

  private pump(): void {
    while (this.active.size < this.maxConcurrent && this.waiting.length > 0) {
      const runId = this.waiting.shift()!;
      this.active.set(runId, startRunSession(this.host, runId));
    }
  }
}
