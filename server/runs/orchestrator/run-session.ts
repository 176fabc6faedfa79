/**
 * One run's training session on either store (issue 16): assembles its trainer job (dataset, parent, resume state,
 * pending changes), starts its worker thread, and persists the trainer's events in order, answering each epoch
 * boundary with the run's pending interventions (orchestrator.ts explains the piloting protocol).
 *
 * Invariants:
 * - Trainer events are handled one at a time, in the order they arrive (a promise chain): each is recorded, with its
 *   audit event, before the next one is looked at, as the synchronous SQLite orchestrator did. The metric points
 *   flushed every 500 ms go through the same chain, so a run's points are stored before its end is recorded.
 * - A run ends exactly once (`end`): its points are flushed, then the orchestrator settles it (lease, waiters, slot).
 * - A persistence error stops the trainer and records the run failed with the reason; it never leaves the run hanging.
 */
import type { AppProvenance } from "@/server/runs/app-provenance";
import { desc, eq } from "drizzle-orm";
import type { TrainingConfig } from "@/contracts/training-config";
import type { EpochControl } from "@/contracts/training-control";
import { effectiveConfig, plannedControlsOf, settingsPatchOf } from "@/contracts/pilot-config";
import type { Db } from "@/db/client";
import { reader, readPart, type Store } from "@/db/store";
import { startTrainingWorker } from "@/trainer/worker-client";
import type { BackendName, TrainerEvent, TrainJob } from "@/trainer/types";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import { DomainError } from "@/server/errors";
import { resolveDatasetOn } from "@/server/datasets/service";
import { parentForJobOn } from "@/server/runs/trainer-tasks";
import { branchJobOfOn } from "@/server/runs/branch-job";
import { applyPendingAtBoundaryOn } from "@/server/runs/replay";
import { rejectInterventionOn } from "@/server/runs/pilot";
import { pendingInterventionsIn, runEffectiveConfigIn } from "@/server/runs/pilot-queries";
import { dropResumeStatesAfterOn, loadResumeStateOn, storeResumeStateOn } from "@/server/runs/resume-states";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import {
  insertMetricPointsOn,
  recordCheckpointOn,
  recordEvaluationOn,
  recordFailedOn,
  recordFinishedOn,
  recordPreparedOn,
  recordProgressOn,
  recordStartedOn,
  trainerActor,
  type MetricPoint,
} from "./persist-events";

/** What a session reads and writes: the store, the artifact store, and the data directory (older resume-state pointers). */
export type SessionDeps = { db: Store | Db; artifacts: AnyArtifactStore; dataDir: string };

/** A session as its orchestrator holds it. */
export type ActiveRun = {
  /** Asks the trainer to stop after the current batch (before the worker started: as soon as it does). */
  cancel: () => void;
  /** Stops the worker without an end event (the run goes back to the queue); its buffered points are stored first. */
  handBack: () => Promise<void>;
};

/** What a session needs from its orchestrator. */
type TrainingWorkerHandle = ReturnType<typeof startTrainingWorker>;

export interface SessionHost {
  readonly store: Store;
  readonly deps: SessionDeps;
  readonly backend: BackendName | "auto" | undefined;
  readonly piloted: boolean;
  /** Launches a run (a rollback's branch). */
  launch(runId: number): Promise<boolean>;
  /** Whether an engineer asked to cancel the run while this process trains it. */
  cancelAsked(runId: number): boolean;
  /** Takes the run's "continue from its last checkpoint" mark (a withdrawn pause); whether it had one. */
  takeContinueMark(runId: number): boolean;
  markContinue(runId: number): void;
  continues(runId: number): boolean;
  /** The run goes to the front of this process's waiting runs (it continues at once). */
  requeueFront(runId: number): void;
  finishParkedAsCancelled(runId: number): Promise<void>;
  /** The session ended: the orchestrator frees its slot (and its lease, unless it continues). */
  settle(runId: number): Promise<void>;
  checkpointIfDue(): Promise<void>;
  /** Whether the store can still be written (a CLI or a test may close SQLite while a worker's last event arrives). */
  storeOpen(): boolean;
  appProvenance(): AppProvenance;
}

async function runOf(store: Store, runId: number) {
  const { runs } = store.tables;
  const [run] = await reader(store).select().from(runs).where(eq(runs.id, runId)).limit(1);
  return run;
}

async function statusOf(store: Store, runId: number): Promise<string | undefined> {
  return (await runOf(store, runId))?.status;
}

async function lastCheckpointOf(store: Store, runId: number) {
  const { checkpoints } = store.tables;
  const [last] = await reader(store)
    .select()
    .from(checkpoints)
    .where(eq(checkpoints.runId, runId))
    .orderBy(desc(checkpoints.epoch))
    .limit(1);
  return last;
}

export const pendingOf = (store: Store, runId: number) => readPart(store, (q) => pendingInterventionsIn(q, store.tables, runId));

/**
 * Starts a run's session. Returns at once (the slot is taken now); the job is assembled and the worker started
 * asynchronously. A job that cannot be assembled records the run failed ("could not start training").
 */
export function startRunSession(host: SessionHost, runId: number): ActiveRun {
  let handle: TrainingWorkerHandle | undefined;
  let handBackStarted: (() => Promise<void>) | undefined;
  let cancelled = false;
  const started = assembleAndStart(host, runId, (h, handBack) => {
    handle = h;
    handBackStarted = handBack;
    if (cancelled) h.cancel();
  })
    .catch(async (e: Error) => {
      if (!host.storeOpen()) return;
      await recordFailedOn(host.deps, runId, SYSTEM_ACTOR, `could not start training: ${e.message}`);
      await host.checkpointIfDue();
      await host.settle(runId);
    })
    .catch((err: Error) => console.error(`[runledger] run ${runId}: could not record its failed start: ${err.message}`));
  return {
    cancel: () => {
      cancelled = true;
      handle?.cancel();
    },
    handBack: async () => {
      await started;
      await handBackStarted?.();
    },
  };
}

/** Assembles the job and starts the worker; `onStarted` gets its handle and its hand-back. */
async function assembleAndStart(
  host: SessionHost,
  runId: number,
  onStarted: (handle: TrainingWorkerHandle, handBack: () => Promise<void>) => void,
): Promise<void> {
  const { store, deps } = host;
  const run = await runOf(store, runId);
  if (!run) throw new Error(`run ${runId} does not exist`);
  const { users } = store.tables;
  const [author] = await reader(store).select({ id: users.id, name: users.name }).from(users).where(eq(users.id, run.createdBy)).limit(1);
  if (!author) throw new Error(`run ${runId}: its author ${run.createdBy} does not exist`);
  const actor = trainerActor(author);
  const config = JSON.parse(run.configJson) as TrainingConfig;
  const dataset = await resolveDatasetOn(store, deps.artifacts, { ...actor, id: author.id }, config.data.dataset);
  // A rollback branch (branch-job.ts) builds its model like its source and starts from its parent checkpoint's state.
  const branch = await branchJobOfOn(deps, run);
  const parent = branch ? branch.parent : run.parentCheckpointId === null ? undefined : await parentForJobOn(deps, run.parentCheckpointId);
  // A paused run continues from the exact-resume state of its last checkpoint (the one its pause wrote); so does
  // an interrupted run, or one whose pause was withdrawn after its worker stopped. An interrupted run without a
  // checkpoint restarts from scratch (its run.interrupted event says so).
  let resumedFrom: { checkpointId: number; epoch: number; step: number } | undefined;
  let resume: TrainJob["resume"];
  const continuing = host.takeContinueMark(runId);
  if (run.status === "paused" || run.status === "interrupted" || continuing) {
    const last = await lastCheckpointOf(store, runId);
    // Resume-state pointers of epochs after the last checkpoint row: a crash between storing one and committing its
    // checkpoint; that epoch is retrained and stores its state again.
    await dropResumeStatesAfterOn(deps, runId, last?.epoch ?? 0);
    const state = last ? await loadResumeStateOn(deps, { runId, epoch: last.epoch }) : null;
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
    const sets = (await pendingOf(store, runId)).filter((i) => i.kind === "set");
    if (sets.length > 0) {
      const { effective } = await readPart(store, (q) => runEffectiveConfigIn(q, store.tables, runId));
      const after = effectiveConfig(effective, sets);
      const apply = Object.assign({}, ...sets.map((i) => settingsPatchOf(i.changes, after))) as NonNullable<TrainJob["resumeApply"]>;
      resumeSets = { ids: sets.map((i) => i.id), apply };
    }
  }
  const job: TrainJob = {
    config,
    dataset: { bytes: await dataset.bytes(), schema: dataset.schema, sha256: dataset.row.sha256 },
    parent,
    // A run that continues from a checkpoint asks for the backend it trained on (another process may have trained
    // it with another setting): the same backend gives the same weights as an uninterrupted run.
    backend:
      (resumedFrom && run.backend ? (run.backend as BackendName) : undefined) ??
      host.backend ??
      (process.env.RUNLEDGER_BACKEND as BackendName | undefined) ??
      "auto",
    ...(host.piloted ? { piloted: true as const } : {}),
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
  const unlessWithdrawn = async (closeIntervention: () => Promise<unknown>) => {
    try {
      await closeIntervention();
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
    }
  };
  const applyOne = (input: { interventionId: number; epoch: number; step: number; checkpointId: number }) =>
    unlessWithdrawn(async () => {
      // A rollback creates its branch run, which then trains like any queued run.
      const branchRunId = await applyPendingAtBoundaryOn(deps, input);
      if (branchRunId !== null) await host.launch(branchRunId);
    });
  const rejectAll = async (ids: number[], reason: string) => {
    for (const interventionId of ids) await unlessWithdrawn(() => rejectInterventionOn(deps, { interventionId, reason }));
  };
  /** The one control of this boundary, from the run's pending interventions (set, pause, stop; oldest first). */
  const controlAt = async (epoch: number, step: number): Promise<EpochControl> => {
    const pending = (await pendingOf(store, runId)).filter(
      (i) => i.kind === "set" || i.kind === "pause" || i.kind === "stop" || i.kind === "rollback",
    );
    if (pending.length === 0) return {};
    const { effective } = await readPart(store, (q) => runEffectiveConfigIn(q, store.tables, runId));
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
  /**
   * Every step (an event, a flush, the worker's exit) runs after the previous one has finished. A step's own errors
   * fail the run (failOnError); what is left (the store closed or gone while recording that) is reported here.
   */
  let chain: Promise<void> = Promise.resolve();
  const serially = (step: () => Promise<void>): Promise<void> =>
    (chain = chain.then(step).catch((err: Error) => {
      if (host.storeOpen()) console.error(`[runledger] run ${runId}: could not record: ${err.message}`);
    }));

  const flush = async () => {
    const points = buffer;
    buffer = [];
    await insertMetricPointsOn(store, runId, points);
  };
  const end = async () => {
    if (ended) return;
    ended = true;
    clearInterval(flushTimer);
    await flush();
    await host.settle(runId);
  };
  /** A persistence error must not leave the run hanging: stop the worker and record why. */
  const failOnError = async (step: () => Promise<void>) => {
    try {
      await step();
    } catch (err) {
      if (ended || !host.storeOpen()) return;
      handle.cancel();
      try {
        await flush();
        await recordFailedOn(deps, runId, actor, `could not record training progress: ${(err as Error).message}`);
      } finally {
        await end();
      }
    }
  };
  const flushTimer = setInterval(() => void serially(() => (ended ? Promise.resolve() : failOnError(flush))), 500);

  /** The trainer went on after "started": it accepted the changes asked for while paused (resumeSets). */
  const acceptResumeSets = async () => {
    if (!resumeSets || !resumedFrom) return;
    const { ids } = resumeSets;
    const from = resumedFrom;
    resumeSets = undefined;
    for (const interventionId of ids)
      await applyOne({ interventionId, epoch: from.epoch, step: from.step, checkpointId: from.checkpointId });
  };

  const handleEvent = async (e: TrainerEvent): Promise<void> => {
    if (e.type !== "prepared" && e.type !== "started" && e.type !== "failed") await acceptResumeSets();
    switch (e.type) {
      case "prepared":
        await recordPreparedOn(deps, runId, actor, e, dataset.row.id);
        break;
      case "started":
        epochs = e.epochs;
        await recordStartedOn(deps, runId, actor, e, host.appProvenance());
        if (resumedFrom) {
          const from = resumedFrom;
          for (const i of (await pendingOf(store, runId)).filter((p) => p.kind === "resume"))
            await applyOne({ interventionId: i.id, epoch: from.epoch, step: from.step, checkpointId: from.checkpointId });
        }
        break;
      case "boundary":
        await flush();
        handle.sendControl(e.epoch, await controlAt(e.epoch, e.step));
        break;
      case "controlRejected":
        // The trainer changed nothing and asks again: the sets are refused with its message; a pause or stop is asked again.
        if (inFlight) await rejectAll(inFlight.setIds, `the trainer refused the change: ${e.message}`);
        inFlight = undefined;
        break;
      case "batch":
        for (const [key, value] of Object.entries(e.metrics))
          buffer.push({ key, step: e.step, epoch: e.epoch - 1 + e.batch / e.batchesPerEpoch, value, wallTimeMs: e.wallTimeMs });
        if (Date.now() - lastProgressAt > 250) {
          lastProgressAt = Date.now();
          await recordProgressOn(store, runId, { epoch: e.epoch, epochs, batch: e.batch, batches: e.batchesPerEpoch });
        }
        break;
      case "epoch":
        for (const [key, value] of Object.entries(e.metrics))
          buffer.push({ key, step: e.step, epoch: e.epoch, value, wallTimeMs: e.wallTimeMs });
        await flush();
        await recordProgressOn(store, runId, {
          epoch: e.epoch,
          epochs,
          batch: 0,
          batches: 0,
          samplesPerSecond: Math.round(e.samplesPerSecond),
        });
        break;
      case "checkpoint": {
        await flush();
        if (e.state && e.stateSha256) await storeResumeStateOn(deps, { runId, epoch: e.epoch }, e.state, e.stateSha256);
        const checkpointId = await recordCheckpointOn(deps, runId, actor, e);
        if (inFlight && inFlight.epoch === e.epoch) {
          const { epoch, step, ids } = inFlight;
          inFlight = undefined;
          for (const interventionId of ids) await applyOne({ interventionId, epoch, step, checkpointId });
        }
        break;
      }
      case "evaluation":
        await recordEvaluationOn(deps, runId, actor, e);
        break;
      case "finished":
        await flush();
        if (inFlight) await rejectAll(inFlight.ids, `the run ended (${e.status}) before the intervention took effect`);
        // A pause already parked the run as "paused" (applyIntervention); the slot is freed, the run stays resumable.
        // Two races end differently: a cancel that arrived while the pause took effect cancels the run (a cancel
        // is never lost to a pause), and a pause withdrawn before its checkpoint was persisted left the run
        // "running" with no worker: it continues at once from that checkpoint. A resume asked for after the pause
        // took effect but before this end arrived found the run still tracked here (launch() did nothing): the
        // run continues at once too, its resume applied at the new worker's start.
        if (e.status === "paused" && host.cancelAsked(runId) && (await statusOf(store, runId)) === "paused") {
          await host.finishParkedAsCancelled(runId);
          await end();
          break;
        }
        if (e.status === "paused") {
          const now = await statusOf(store, runId);
          const resumeAsked = now === "paused" && (await pendingOf(store, runId)).some((i) => i.kind === "resume");
          if (now === "running" || resumeAsked) host.markContinue(runId);
        } else await recordFinishedOn(deps, runId, actor, e, config);
        await end();
        if (host.continues(runId)) host.requeueFront(runId);
        break;
      case "failed":
        if (resumeSets) {
          // The trainer refused the changes asked for while paused: they are rejected, the run continues without them.
          await rejectAll(resumeSets.ids, `the trainer refused the change at the resume point: ${e.message}`);
          resumeSets = undefined;
          host.markContinue(runId);
          await end();
          host.requeueFront(runId);
          break;
        }
        if (inFlight) await rejectAll(inFlight.ids, `the run failed before the intervention took effect: ${e.message}`);
        await flush();
        await recordFailedOn(deps, runId, actor, e.message);
        await end();
        break;
    }
  };

  const onEvent = (e: TrainerEvent) => {
    void serially(async () => {
      if (ended) return;
      await failOnError(() => handleEvent(e));
      // Trainer events arrive without a request: keep the checkpoint promise (also for a long CLI run, no timer there).
      if (e.type !== "batch" && e.type !== "epoch" && host.storeOpen()) await host.checkpointIfDue();
    });
  };
  const handle = startTrainingWorker(job, onEvent);
  onStarted(handle, async () => {
    if (ended) return;
    // No end is recorded: the run goes back to the queue (handBackAll). The events already received are recorded
    // first, then its buffered points are stored.
    handle.terminate();
    await serially(async () => {
      ended = true;
      clearInterval(flushTimer);
      await flush();
    });
  });
  void handle.done
    .then(
      () => undefined,
      (err: Error) =>
        serially(async () => {
          if (!ended && host.storeOpen()) await recordFailedOn(deps, runId, actor, `the training worker crashed: ${err.message}`);
        }),
    )
    .then(() =>
      serially(async () => {
        if (!host.storeOpen()) return;
        if (!ended) {
          await recordFailedOn(deps, runId, actor, "the training worker stopped without reporting an end");
          await end();
        }
        await host.checkpointIfDue();
      }),
    );
}
