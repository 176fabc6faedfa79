/**
 * Creating runs: validate the config with the shared zod schema, resolve its dataset (and parent checkpoint when
 * fine-tuning), then write the run, its flattened params, its decisions and the audit event in one transaction.
 * A run's config is immutable from here on; a change is a fork (a new run whose changed paths become decisions).
 *
 * On the store (issue 16, db/store.ts): the run's lineage checks and writes are one transaction part (insertRun),
 * under the ledger lock on PostgreSQL, which re-reads the experiment, the checkpoints and the parent run, and counts
 * the experiment's runs for a default name inside it (two runs created at once get distinct names). launchRun
 * (createRunOnStore, also for sweeps' trials with their sweep_trials link), tags, cancelling and resuming take a
 * store. Still SQLite only: createRun (synchronous, the same part through runOnSqliteTx) for its synchronous callers
 * (pilot.ts's rollback branches inside their own transaction, replay, the demo seed, the CLI, benches). Piloting
 * (requestPilotInterventionOn, a rollback's branch with branchRunOnStore) and the orchestrator that launchRun,
 * cancelRun and resumeInterruptedRun hand the run to after their transaction run on either store.
 */
import { and, count, eq } from "drizzle-orm";
import { z } from "zod";
import type { Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, exec, reader, row, rows, runOnSqliteTx, sqliteStore, transact, type StoreTables, type TxBody } from "@/db/store";
import { trainingConfigSchema, describeConfigIssues, diffConfigs, flattenConfig, type TrainingConfig } from "@/contracts/training-config";
import type { Actor } from "@/server/audit/ledger";
import { appendEvent } from "@/server/audit/ledger-pg";
import { canonicalJson, sha256Canonical } from "@/contracts/canonical";
import { runParamValue as paramValue } from "@/server/audit/content/records";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { resolveDataset, resolveDatasetRow } from "../datasets/service";
import { insertDecision, type DecisionRef } from "../decisions/service";
import { now, requireRole, type ServiceContext, type SignedInActor } from "../app-context/service-context";
import type { StoreServiceContext } from "../app-context/store-context";
import { conflict, invalidInput, notFound, wrongState } from "@/server/errors";
import {
  applyRollbackOn,
  refuseCompressionPilotOn,
  refuseScriptPilotKindOn,
  requestInterventionOn,
  type BranchRunOnStore,
  type RequestInterventionInput,
} from "./pilot";
import { scheduleSteps, validateSchedule } from "@/contracts/pilot-config";
import { proposedForkName, RUN_NAME_MAX } from "@/contracts/fork-name";
import { loadResumeStateOn } from "./resume-states";
import { countOf } from "@/contracts/count-text";

export const createRunInput = z.object({
  experimentId: z.number().int(),
  name: z.string().trim().max(RUN_NAME_MAX).optional(),
  /** Validated against trainingConfigSchema below, so errors name the config path at fault. */
  config: z.unknown(),
  rationale: z.string().trim().min(1, "a rationale is required: say why you chose this configuration").max(4000),
  /** Per changed path, when a fork explains each change separately; falls back to `rationale`. */
  changeRationales: z.record(z.string(), z.string().trim().max(4000)).default({}),
  origin: z.enum(["new", "fork", "rerun"]).default("new"),
  parentRunId: z.number().int().optional(),
});
export type CreateRunInput = z.input<typeof createRunInput>;

export function parseConfigOrThrow(config: unknown): TrainingConfig {
  const r = trainingConfigSchema.safeParse(config);
  if (!r.success) invalidInput(`invalid configuration: ${describeConfigIssues(r.error)}`);
  // Planned interventions follow a live pilot's rules (pilotable paths, valid values, reachable epochs).
  const schedule = validateSchedule(r.data);
  if (!schedule.ok) invalidInput(`invalid configuration: ${schedule.message}`);
  return r.data;
}

/**
 * A rollback branch (server/runs/pilot.ts applyRollback): the new run continues checkpoint `checkpointId` of another
 * run; `base` is that run's effective config at the checkpoint, so the branch's decisions are its changes from there.
 */
export type BranchOf = { checkpointId: number; base: TrainingConfig };

/**
 * A sweep's trial (server/sweeps/): the run has origin "sweep", its run.create event is written by the sweep (actor
 * `actor`: the system acting for the engineer who set the sweep up) and names the sweep and the trial index, and
 * two transaction parts (either store) run in the run's transaction: `check` re-checks the sweep before anything is
 * written (a refused trial leaves no gap in PostgreSQL's id sequences), `link` writes the sweep_trials row before the
 * run.create event.
 */
export type SweepTrialOf = {
  sweepId: number;
  trialIndex: number;
  actor: Actor;
  check: (tx: Tx, tables: StoreTables) => TxBody<void>;
  link: (tx: Tx, tables: StoreTables, runId: number) => TxBody<void>;
};

type Run = StoreTables["runs"]["$inferSelect"];
type ParsedRunInput = z.output<typeof createRunInput>;

/** The checks that need no database: role, input, config. */
function parseRunRequest(actor: SignedInActor, raw: CreateRunInput): { input: ParsedRunInput; config: TrainingConfig } {
  requireRole(actor, ["engineer"], "launch runs");
  const input = createRunInput.parse(raw);
  return { input, config: parseConfigOrThrow(input.config) };
}

/**
 * The name of a run launched without one: its config's name, except that a fork whose config has no name of its own
 * (none, or still its parent's: a fork made through the API from the parent's config) is named as the Fork form
 * proposes, "‹parent› · fork of #N", so a list of runs says what a fork came from and never shows a parent and its
 * fork under one name. Undefined: the caller numbers it ("run N").
 */
function defaultRunName(config: TrainingConfig, origin: string, parent: { id: number; name: string } | undefined): string | undefined {
  const own = config.name?.trim() || undefined;
  if (origin === "fork" && parent && (own === undefined || own === parent.name.trim())) return proposedForkName(parent);
  return own;
}

/**
 * The run's transaction: its lineage checked against the rows as they are now, then the run, its params, its
 * decisions, a sweep trial's link and the run.create event. Its reads precede its writes, so on PostgreSQL it runs
 * under the ledger lock (the default name counts the experiment's runs).
 */
function* insertRun(
  tx: Tx,
  t: StoreTables,
  actor: SignedInActor,
  { input, config }: { input: ParsedRunInput; config: TrainingConfig },
  branch?: BranchOf,
  trial?: SweepTrialOf,
): TxBody<Run> {
  const { runs, runParams, experiments, checkpoints } = t;
  const experiment = yield* row(tx.select({ id: experiments.id }).from(experiments).where(eq(experiments.id, input.experimentId)));
  if (!experiment) notFound(`experiment ${input.experimentId}`);

  // Lineage, decided here and never by the caller: a fine-tune's parent run IS the run of its parent checkpoint (a
  // different parentRunId is refused, so no run can hide where its weights came from); a fork's or re-run's parent
  // is the named run, and when its config starts from a checkpoint, ancestry follows that checkpoint's run as well.
  let origin: "new" | "fork" | "finetune" | "rerun" | "branch" | "sweep" = input.origin;
  let parentRunId = input.parentRunId ?? null;
  let parentCheckpointId: number | null = null;
  if (config.fineTune) {
    const ckId = Number(config.fineTune.parentCheckpointId);
    // SQLite finds no row for an id that is not a number; PostgreSQL would refuse the parameter instead.
    const ck = Number.isSafeInteger(ckId) ? yield* row(tx.select().from(checkpoints).where(eq(checkpoints.id, ckId))) : undefined;
    if (!ck) invalidInput(`fineTune.parentCheckpointId: checkpoint ${config.fineTune.parentCheckpointId} does not exist`);
    parentCheckpointId = ck.id;
    // The trainer builds a fine-tune from its parent checkpoint's layers (trainer/model.ts buildForJob), so a config
    // naming other layers would record an architecture that was never trained. A branch continues its own run's record.
    if (!branch && !config.compression) {
      const ckRun = yield* row(tx.select({ configJson: runs.configJson }).from(runs).where(eq(runs.id, ck.runId)));
      const parentConfig = ckRun ? trainingConfigSchema.safeParse(JSON.parse(ckRun.configJson)) : null;
      const layerChanges = parentConfig?.success ? diffConfigs(parentConfig.data.model, config.model) : [];
      if (layerChanges.length > 0)
        invalidInput(
          `a fine-tune keeps the architecture of its parent checkpoint (run #${ck.runId}'s model.layers), but ${layerChanges
            .slice(0, 3)
            .map((c) => `model.${c.path} is ${JSON.stringify(c.oldValue)} there, ${JSON.stringify(c.newValue)} here`)
            .join(
              "; ",
            )}${layerChanges.length > 3 ? ` (and ${layerChanges.length - 3} more)` : ""}; change layers in a fork or a new run instead`,
        );
    }
    if (origin === "new") {
      if (parentRunId !== null && parentRunId !== ck.runId)
        invalidInput(
          `a fine-tune's parent run is the run of its parent checkpoint: checkpoint #${ck.id} belongs to run #${ck.runId}, but parentRunId names run #${parentRunId}; omit parentRunId or name run #${ck.runId}`,
        );
      parentRunId = ck.runId;
      origin = "finetune";
    }
  }
  if (trial) {
    if (input.origin !== "new" || branch || config.fineTune) invalidInput("a sweep trial is a new run (no fork, branch or fine-tune)");
    origin = "sweep";
    yield* trial.check(tx, t);
  }
  if (branch) {
    // A branch's parent is the checkpoint it continues (and that checkpoint's run), even when it is a fine-tune.
    const ck = yield* row(tx.select().from(checkpoints).where(eq(checkpoints.id, branch.checkpointId)));
    if (!ck) notFound(`checkpoint ${branch.checkpointId}`);
    origin = "branch";
    parentCheckpointId = ck.id;
    parentRunId = ck.runId;
  }
  const parent = parentRunId === null ? undefined : yield* row(tx.select().from(runs).where(eq(runs.id, parentRunId)));
  if (parentRunId !== null && !parent) notFound(`parent run ${parentRunId}`);
  if (parent?.origin === "api")
    invalidInput(`run ${parent.id} was logged through the tracking API: it has no training config to fork or re-run`);
  if (input.origin !== "new" && !parent) invalidInput(`a ${input.origin} needs parentRunId`);

  const configJson = canonicalJson(config);
  const configSha256 = sha256Canonical(config);
  const changes = branch ? diffConfigs(branch.base, config) : parent ? diffConfigs(JSON.parse(parent.configJson), config) : [];
  if (input.origin === "fork" && changes.length === 0)
    invalidInput("a fork must change at least one setting; use re-run to repeat a run exactly");
  // A re-run may differ only in its schedule: replaying the parent's live interventions makes them planned entries.
  const settingChanges = changes.filter((c) => c.path !== "schedule" && !c.path.startsWith("schedule."));
  if (input.origin === "rerun" && settingChanges.length > 0)
    invalidInput(
      `a re-run repeats the parent's exact configuration, but ${countOf(settingChanges.length, "setting")} ${settingChanges.length === 1 ? "differs" : "differ"}`,
    );

  const n = (yield* row(tx.select({ n: count() }).from(runs).where(eq(runs.experimentId, experiment.id))))?.n ?? 0;
  const at = now();
  const run = (yield* row(
    tx
      .insert(runs)
      .values({
        experimentId: experiment.id,
        name: input.name || defaultRunName(config, origin, parent) || `run ${n + 1}`,
        status: "queued",
        configJson,
        configSha256,
        seed: config.training.seed,
        origin,
        parentRunId,
        parentCheckpointId,
        createdBy: actor.id,
        createdAt: at,
      })
      .returning(),
  ))!;
  const flat = flattenConfig(config);
  const paramRows = Object.entries(flat).map(([key, v]) => ({ runId: run.id, key, ...paramValue(v) }));
  for (let i = 0; i < paramRows.length; i += 200) yield* exec(tx.insert(runParams).values(paramRows.slice(i, i + 200)));

  type DecisionDraft = {
    kind: "initial" | "change" | "planned";
    path: string;
    oldValueJson: string | null;
    newValueJson: string | null;
    rationale: string;
  };
  const decisionRows: DecisionDraft[] =
    parent && origin !== "rerun" && changes.length > 0
      ? changes.map((c) => ({
          kind: "change" as const,
          path: c.path,
          oldValueJson: JSON.stringify(c.oldValue),
          newValueJson: JSON.stringify(c.newValue),
          rationale: input.changeRationales[c.path] || input.rationale,
        }))
      : [
          {
            kind: "initial" as const,
            path: "",
            oldValueJson: branch ? canonicalJson(branch.base) : parent ? parent.configJson : null,
            newValueJson: configJson,
            rationale: input.rationale,
          },
        ];
  // One planned decision per schedule entry, in schedule order (show and the timeline pair them by that order).
  for (const step of scheduleSteps(config)) {
    const paths = step.changes.map((c) => c.path);
    decisionRows.push({
      kind: "planned",
      path: (step.stop ? ["stop", ...paths] : paths).join(", "),
      oldValueJson: step.changes.length ? canonicalJson(Object.fromEntries(step.changes.map((c) => [c.path, c.oldValue]))) : null,
      newValueJson: step.changes.length ? canonicalJson(Object.fromEntries(step.changes.map((c) => [c.path, c.newValue]))) : null,
      rationale: step.rationale,
    });
  }
  // run.create binds every decision by its reference (the sha256 of all its columns; the content verifier recomputes it).
  const decisionRefs: DecisionRef[] = [];
  for (const d of decisionRows)
    decisionRefs.push((yield* insertDecision(tx, t, { ...d, runId: run.id, authorId: actor.id, createdAt: at })).ref);

  if (trial) yield* trial.link(tx, t, run.id);
  yield* appendEvent({
    actor: trial?.actor ?? actor,
    action: "run.create",
    entityType: "run",
    entityId: run.id,
    payload: {
      experimentId: experiment.id,
      name: run.name,
      configSha256,
      origin,
      parentRunId,
      parentCheckpointId,
      createdAt: at,
      decisions: decisionRefs,
      // Machine-generated: the sweep made this run; the engineer's decision is the sweep's sweep.create event.
      ...(trial ? { sweepId: trial.sweepId, trialIndex: trial.trialIndex, generatedBy: "sweep" } : {}),
    },
  });
  return run;
}

/**
 * Creates a run on SQLite, synchronously, for callers that are not on the store yet (see the header); inside a caller's
 * SQLite transaction (a rollback's branch) its own transaction is a savepoint of that one.
 */
export function createRun(ctx: ServiceContext, raw: CreateRunInput, branch?: BranchOf, trial?: SweepTrialOf): Run {
  const request = parseRunRequest(ctx.actor, raw);
  // Checked before the dataset, so an unknown experiment registers no built-in dataset; checked again inside.
  const { experiments } = sqliteStore(ctx.db).tables;
  if (!ctx.db.select({ id: experiments.id }).from(experiments).where(eq(experiments.id, request.input.experimentId)).get())
    notFound(`experiment ${request.input.experimentId}`);
  resolveDataset(ctx.db, ctx.artifacts, ctx.actor, request.config.data.dataset);
  const tables = sqliteStore(ctx.db).tables;
  return ctx.db.transaction((tx) => runOnSqliteTx(tx, insertRun(tx, tables, ctx.actor, request, branch, trial)));
}

/** Creates a run on either store (a new run, a fork, a re-run, a fine-tune, a sweep's trial): createRun's checks and rows. */
export async function createRunOnStore(
  ctx: StoreServiceContext & { artifacts: AnyArtifactStore },
  raw: CreateRunInput,
  trial?: SweepTrialOf,
): Promise<Run> {
  const request = parseRunRequest(ctx.actor, raw);
  const store = asStore(ctx.db);
  const { experiments } = store.tables;
  const [experiment] = await reader(store)
    .select({ id: experiments.id })
    .from(experiments)
    .where(eq(experiments.id, request.input.experimentId))
    .limit(1);
  if (!experiment) notFound(`experiment ${request.input.experimentId}`);
  await resolveDatasetRow(store, ctx.artifacts, ctx.actor, request.config.data.dataset);
  return transact(store, (tx) => insertRun(tx, store.tables, ctx.actor, request, undefined, trial), { pgLock: PG_LOCK_KEYS.ledger });
}

export const tagInput = z.object({
  runId: z.number().int(),
  tag: z
    .string()
    .trim()
    .min(1, "a tag must not be empty")
    .max(40, "a tag is at most 40 characters")
    .regex(/^[\w.\-: ]+$/, "a tag may use letters, digits, space, _ . - :"),
});

export async function addRunTag(ctx: StoreServiceContext, raw: z.input<typeof tagInput>): Promise<void> {
  requireRole(ctx.actor, ["engineer"], "tag runs");
  const { runId, tag } = tagInput.parse(raw);
  const store = asStore(ctx.db);
  const { runs, runTags } = store.tables;
  // The tag is looked up inside the transaction (under the ledger lock on PostgreSQL): the same tag added at once
  // from two servers gives one row and a conflict, not a primary-key violation.
  await transact(
    store,
    function* (tx) {
      if (!(yield* row(tx.select({ id: runs.id }).from(runs).where(eq(runs.id, runId))))) notFound(`run ${runId}`);
      const existing = yield* row(
        tx
          .select({ tag: runTags.tag })
          .from(runTags)
          .where(and(eq(runTags.runId, runId), eq(runTags.tag, tag))),
      );
      if (existing) conflict(`run ${runId} already has the tag "${tag}"`);
      yield* exec(tx.insert(runTags).values({ runId, tag, createdBy: ctx.actor.id, createdAt: now() }));
      yield* appendEvent({ actor: ctx.actor, action: "run.tag", entityType: "run", entityId: runId, payload: { tag } });
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

export async function removeRunTag(ctx: StoreServiceContext, raw: z.input<typeof tagInput>): Promise<void> {
  requireRole(ctx.actor, ["engineer"], "untag runs");
  const { runId, tag } = tagInput.parse(raw);
  const store = asStore(ctx.db);
  const { runTags } = store.tables;
  await transact(
    store,
    function* (tx) {
      const removed = yield* rows(
        tx
          .delete(runTags)
          .where(and(eq(runTags.runId, runId), eq(runTags.tag, tag)))
          .returning({ tag: runTags.tag }),
      );
      if (removed.length === 0) notFound(`tag "${tag}" on run ${runId}`);
      yield* appendEvent({ actor: ctx.actor, action: "run.untag", entityType: "run", entityId: runId, payload: { tag } });
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

/** What launching and cancelling need from the run orchestrator (server/runs/orchestrator). */
export type RunLauncher = { launch(runId: number): Promise<boolean> | boolean };
export type RunCanceller = { cancel(runId: number): Promise<boolean> | boolean };
export type RunResumer = { resumeInterrupted(runId: number): Promise<boolean> | boolean };

/**
 * An engineer resumes an interrupted run (its training process died) from its last checkpoint, in this process.
 * The status is checked here and again by the orchestrator (which takes the run's lease); the resume itself is
 * recorded by the run.start event of the resumed training.
 */
export async function resumeInterruptedRun(ctx: StoreServiceContext, orchestrator: RunResumer, runId: number): Promise<{ ok: true }> {
  requireRole(ctx.actor, ["engineer"], "resume runs");
  const store = asStore(ctx.db);
  const { runs } = store.tables;
  const [run] = await reader(store).select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).limit(1);
  if (!run) notFound(`run ${runId}`);
  if (run.status !== "interrupted") wrongState(`run ${runId} is ${run.status}; only an interrupted run can be resumed this way`);
  if (!(await orchestrator.resumeInterrupted(runId))) conflict(`run ${runId} is held by another live process`);
  return { ok: true };
}

/**
 * Creates the run (createRunOnStore: validated, written with its decisions and audit event) and hands it to the
 * orchestrator, which queues or starts it.
 */
export async function launchRun(
  ctx: StoreServiceContext & { artifacts: AnyArtifactStore },
  orchestrator: RunLauncher,
  raw: CreateRunInput,
): Promise<{ id: number; name: string }> {
  const run = await createRunOnStore(ctx, raw);
  await orchestrator.launch(run.id);
  return { id: run.id, name: run.name };
}

/** The orchestrator as piloting needs it: launching a run (a resumed one, a rollback's branch). */
type PilotLauncher = { launch(runId: number): boolean | Promise<boolean> };

/**
 * An engineer pilots a run (server/runs/pilot.ts: queued as a pending intervention), on either store. A resume of a
 * paused run is also handed to the orchestrator, which re-queues the run; it continues from its last checkpoint and
 * applies the resume. A rollback of a paused or completed run is applied at once (applyRollbackOn, its branch created
 * by branchRunOnStore) and its branch launched; a running run's rollback waits for its next boundary.
 */
export async function requestPilotInterventionOn(
  ctx: StoreServiceContext & { artifacts: AnyArtifactStore; dataDir: string },
  orchestrator: PilotLauncher,
  raw: RequestInterventionInput,
) {
  const store = asStore(ctx.db);
  const { runs, checkpoints } = store.tables;
  const read = reader(store);
  // Ids that are not integers are refused by requestInterventionOn's schema (PostgreSQL would refuse the parameter).
  if (raw.kind === "rollback" && Number.isSafeInteger(raw.runId) && Number.isSafeInteger(raw.fromCheckpointId)) {
    // A compression or a script's run is refused for that first; a checkpoint without a resume state before anything
    // is recorded (a branch continues the checkpoint's exact-resume state).
    await refuseCompressionPilotOn(store, raw.runId);
    await refuseScriptPilotKindOn(store, raw.runId, raw.kind);
    const [ck] = await read.select().from(checkpoints).where(eq(checkpoints.id, raw.fromCheckpointId!)).limit(1);
    if (ck && ck.runId === raw.runId && (await loadResumeStateOn(ctx, { runId: ck.runId, epoch: ck.epoch })) === null)
      invalidInput(
        `fromCheckpointId: checkpoint ${ck.id} (epoch ${ck.epoch}) has no resume state to continue from (written before live piloting, or mid-epoch by a cancel); pick another checkpoint`,
      );
  }
  const out = await requestInterventionOn(ctx, raw);
  if (out.kind === "resume") await orchestrator.launch(out.runId);
  if (out.kind === "rollback") {
    // A paused or completed run has no next boundary: its rollback takes effect now, at its own checkpoint, and the run
    // stays as it is.
    const [run] = await read.select({ status: runs.status }).from(runs).where(eq(runs.id, out.runId)).limit(1);
    if (run?.status === "paused" || run?.status === "completed") {
      const [from] = await read.select().from(checkpoints).where(eq(checkpoints.id, out.fromCheckpointId!)).limit(1);
      const applied = await applyRollbackOn(
        ctx,
        { interventionId: out.id, epoch: from!.epoch, step: from!.step, checkpointId: from!.id },
        branchRunOnStore,
      );
      await orchestrator.launch(applied.branchRunId);
      return { ...out, status: applied.intervention.status, branchRunId: applied.branchRunId };
    }
  }
  return out;
}

/**
 * A rollback's branch run on either store, for pilot.ts applyRollbackOn: createRunOnStore's work before its transaction
 * (the checks without a lock, the dataset), then its transaction part (insertRun with the branch) inside the
 * rollback's transaction. The same rows and run.create as createRun gives applyRollback on SQLite.
 */
export const branchRunOnStore: BranchRunOnStore = {
  async prepare(store, artifacts, actor, raw) {
    const request = parseRunRequest(actor, raw);
    const { experiments } = store.tables;
    const [experiment] = await reader(store)
      .select({ id: experiments.id })
      .from(experiments)
      .where(eq(experiments.id, request.input.experimentId))
      .limit(1);
    if (!experiment) notFound(`experiment ${request.input.experimentId}`);
    await resolveDatasetRow(store, artifacts, actor, request.config.data.dataset);
  },
  insertIn: (tx, t, actor, raw, branch) => insertRun(tx, t, actor, parseRunRequest(actor, raw), branch),
};

/** At most this many characters of reason for a cancellation (it is recorded in the ledger as given). */
export const CANCEL_REASON_MAX = 4000;

export const cancelRunInput = z.object({
  id: z.number().int(),
  reason: z.string().max(CANCEL_REASON_MAX, `reason: at most ${CANCEL_REASON_MAX} characters`),
});

/**
 * An engineer asks to cancel a queued or running run, saying why: the role and the run's state are re-checked inside
 * the transaction that records the request with its reason (`run.cancelRequest`), so a run that ended meanwhile is
 * refused with nothing recorded; then the orchestrator stops it (the `run.cancel` event comes from the orchestrator
 * when it has stopped). A cancellation is a decision about the run like a pilot's stop: it needs a reason too.
 */
export async function cancelRun(
  ctx: StoreServiceContext,
  orchestrator: RunCanceller,
  runId: number,
  reason: string,
): Promise<{ ok: true }> {
  const store = asStore(ctx.db);
  const { runs } = store.tables;
  const why = reason.trim();
  if (!why) invalidInput(`a reason is required: say why run ${runId} is cancelled`);
  if (why.length > CANCEL_REASON_MAX) invalidInput(`reason: at most ${CANCEL_REASON_MAX} characters`);
  await transact(
    store,
    function* (tx) {
      requireRole(ctx.actor, ["engineer"], "cancel runs");
      const run = yield* row(tx.select({ status: runs.status, origin: runs.origin }).from(runs).where(eq(runs.id, runId)));
      if (!run) notFound(`run ${runId}`);
      if (run.origin === "api")
        invalidInput(`run ${runId} is logged by a script through the tracking API: the script ends it (runs/update with status KILLED)`);
      if (run.status !== "queued" && run.status !== "running" && run.status !== "paused" && run.status !== "interrupted")
        wrongState(`run ${runId} is ${run.status}; only a queued, running, paused or interrupted run can be cancelled`);
      yield* appendEvent({
        actor: ctx.actor,
        action: "run.cancelRequest",
        entityType: "run",
        entityId: runId,
        payload: { statusAtRequest: run.status, reason: why },
      });
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  if (!(await orchestrator.cancel(runId))) conflict(`run ${runId} is not training in this server process`);
  return { ok: true };
}
