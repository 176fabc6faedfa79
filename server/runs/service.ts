/**
 * Creating runs: validate the config with the shared zod schema, resolve its dataset (and parent checkpoint when
 * fine-tuning), then write the run, its flattened params, its decisions and the audit event in one transaction.
 * A run's config is immutable from here on; a change is a fork (a new run whose changed paths become decisions).
 */
import { and, count, eq } from "drizzle-orm";
import { z } from "zod";
import { runs, runParams, decisions, experiments, checkpoints, runTags } from "@/db/schema";
import { trainingConfigSchema, describeConfigIssues, diffConfigs, flattenConfig, type TrainingConfig } from "@/contracts/training-config";
import { appendAuditEvent, type Actor } from "@/server/audit/ledger";
import type { DbOrTx } from "@/db/client";
import { canonicalJson, sha256Canonical } from "@/contracts/canonical";
import { decisionRecordSha256, runParamValue as paramValue } from "@/server/audit/content/records";
import { resolveDataset } from "../datasets/service";
import { now, requireRole, type ServiceContext } from "../app-context/service-context";
import { conflict, invalidInput, notFound } from "@/server/errors";
import { applyRollback, refuseCompressionPilot, refuseScriptPilotKind, requestIntervention, type RequestInterventionInput } from "./pilot";
import { scheduleSteps, validateSchedule } from "@/contracts/pilot-config";
import { loadResumeState } from "./resume-states";

export const createRunInput = z.object({
  experimentId: z.number().int(),
  name: z.string().trim().max(120).optional(),
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
 * `link` writes the sweep_trials row in the same transaction.
 */
export type SweepTrialOf = {
  sweepId: number;
  trialIndex: number;
  actor: Actor;
  link: (tx: DbOrTx, runId: number) => void;
};

export function createRun(ctx: ServiceContext, raw: CreateRunInput, branch?: BranchOf, trial?: SweepTrialOf) {
  requireRole(ctx.actor, ["engineer"], "launch runs");
  const input = createRunInput.parse(raw);
  const config = parseConfigOrThrow(input.config);
  const experiment = ctx.db.select().from(experiments).where(eq(experiments.id, input.experimentId)).get();
  if (!experiment) notFound(`experiment ${input.experimentId}`);
  resolveDataset(ctx.db, ctx.artifacts, ctx.actor, config.data.dataset);

  // Lineage, decided here and never by the caller: a fine-tune's parent run IS the run of its parent checkpoint (a
  // different parentRunId is refused, so no run can hide where its weights came from); a fork's or re-run's parent
  // is the named run, and when its config starts from a checkpoint, ancestry follows that checkpoint's run as well.
  let origin: "new" | "fork" | "finetune" | "rerun" | "branch" | "sweep" = input.origin;
  let parentRunId = input.parentRunId ?? null;
  let parentCheckpointId: number | null = null;
  if (config.fineTune) {
    const ck = ctx.db
      .select()
      .from(checkpoints)
      .where(eq(checkpoints.id, Number(config.fineTune.parentCheckpointId)))
      .get();
    if (!ck) invalidInput(`fineTune.parentCheckpointId: checkpoint ${config.fineTune.parentCheckpointId} does not exist`);
    parentCheckpointId = ck.id;
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
  }
  if (branch) {
    // A branch's parent is the checkpoint it continues (and that checkpoint's run), even when it is a fine-tune.
    const ck = ctx.db.select().from(checkpoints).where(eq(checkpoints.id, branch.checkpointId)).get();
    if (!ck) notFound(`checkpoint ${branch.checkpointId}`);
    origin = "branch";
    parentCheckpointId = ck.id;
    parentRunId = ck.runId;
  }
  const parent = parentRunId === null ? null : ctx.db.select().from(runs).where(eq(runs.id, parentRunId)).get();
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
    invalidInput(`a re-run repeats the parent's exact configuration, but ${settingChanges.length} setting(s) differ`);

  return ctx.db.transaction((tx) => {
    const n = tx.select({ n: count() }).from(runs).where(eq(runs.experimentId, experiment.id)).get()?.n ?? 0;
    const at = now();
    const run = tx
      .insert(runs)
      .values({
        experimentId: experiment.id,
        name: input.name || config.name || `run ${n + 1}`,
        status: "queued",
        configJson,
        configSha256,
        seed: config.training.seed,
        origin,
        parentRunId,
        parentCheckpointId,
        createdBy: ctx.actor.id,
        createdAt: at,
      })
      .returning()
      .get();
    const flat = flattenConfig(config);
    const paramRows = Object.entries(flat).map(([key, v]) => ({ runId: run.id, key, ...paramValue(v) }));
    for (let i = 0; i < paramRows.length; i += 200)
      tx.insert(runParams)
        .values(paramRows.slice(i, i + 200))
        .run();

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
    // Each decision's sha256 covers all its columns (rationale, old/new values, author, time): the content verifier recomputes it.
    const decisionRefs = decisionRows.map((d) => {
      const row = tx
        .insert(decisions)
        .values({ ...d, runId: run.id, authorId: ctx.actor.id, createdAt: at })
        .returning()
        .get();
      return { id: row.id, path: row.path, kind: row.kind, sha256: decisionRecordSha256(row) };
    });

    trial?.link(tx, run.id);
    appendAuditEvent(tx, {
      actor: trial?.actor ?? ctx.actor,
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
  });
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

export function addRunTag(ctx: ServiceContext, raw: z.input<typeof tagInput>) {
  requireRole(ctx.actor, ["engineer"], "tag runs");
  const { runId, tag } = tagInput.parse(raw);
  if (!ctx.db.select({ id: runs.id }).from(runs).where(eq(runs.id, runId)).get()) notFound(`run ${runId}`);
  if (
    ctx.db
      .select()
      .from(runTags)
      .where(and(eq(runTags.runId, runId), eq(runTags.tag, tag)))
      .get()
  )
    conflict(`run ${runId} already has the tag "${tag}"`);
  ctx.db.transaction((tx) => {
    tx.insert(runTags).values({ runId, tag, createdBy: ctx.actor.id, createdAt: now() }).run();
    appendAuditEvent(tx, { actor: ctx.actor, action: "run.tag", entityType: "run", entityId: runId, payload: { tag } });
  });
}

export function removeRunTag(ctx: ServiceContext, raw: z.input<typeof tagInput>) {
  requireRole(ctx.actor, ["engineer"], "untag runs");
  const { runId, tag } = tagInput.parse(raw);
  ctx.db.transaction((tx) => {
    const removed = tx
      .delete(runTags)
      .where(and(eq(runTags.runId, runId), eq(runTags.tag, tag)))
      .run();
    if (removed.changes === 0) notFound(`tag "${tag}" on run ${runId}`);
    appendAuditEvent(tx, { actor: ctx.actor, action: "run.untag", entityType: "run", entityId: runId, payload: { tag } });
  });
}

/** What launching and cancelling need from the run orchestrator (server/runs/orchestrator). */
export type RunLauncher = { launch(runId: number): void };
export type RunCanceller = { cancel(runId: number): boolean };
export type RunResumer = { resumeInterrupted(runId: number): boolean };

/**
 * An engineer resumes an interrupted run (its training process died) from its last checkpoint, in this process.
 * The status is checked here and again by the orchestrator (which takes the run's lease); the resume itself is
 * recorded by the run.start event of the resumed training.
 */
export function resumeInterruptedRun(ctx: ServiceContext, orchestrator: RunResumer, runId: number): { ok: true } {
  requireRole(ctx.actor, ["engineer"], "resume runs");
  const run = ctx.db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get();
  if (!run) notFound(`run ${runId}`);
  if (run.status !== "interrupted") invalidInput(`run ${runId} is ${run.status}; only an interrupted run can be resumed this way`);
  if (!orchestrator.resumeInterrupted(runId)) conflict(`run ${runId} is held by another live process`);
  return { ok: true };
}

/** Creates the run (createRun: validated, written with its decisions and audit event) and hands it to the orchestrator, which queues or starts it. */
export function launchRun(ctx: ServiceContext, orchestrator: RunLauncher, raw: CreateRunInput): { id: number; name: string } {
  const run = createRun(ctx, raw);
  orchestrator.launch(run.id);
  return { id: run.id, name: run.name };
}

/**
 * An engineer pilots a run (server/runs/pilot.ts: queued as a pending intervention). A resume of a paused run is also
 * handed to the orchestrator, which re-queues the run; it continues from its last checkpoint and applies the resume.
 */
export function requestPilotIntervention(ctx: ServiceContext, orchestrator: RunLauncher, raw: RequestInterventionInput) {
  if (raw.kind === "rollback" && raw.fromCheckpointId !== undefined) {
    // A compression or a run logged by a script is refused for that reason first, not for its checkpoint's missing
    // resume state.
    refuseCompressionPilot(ctx.db, raw.runId);
    refuseScriptPilotKind(ctx.db, raw.runId, raw.kind);
    // A branch continues the checkpoint's exact-resume state: refuse a checkpoint without one before recording anything.
    const ck = ctx.db.select().from(checkpoints).where(eq(checkpoints.id, raw.fromCheckpointId)).get();
    if (ck && ck.runId === raw.runId && loadResumeState(ctx, { runId: ck.runId, epoch: ck.epoch }) === null)
      invalidInput(
        `fromCheckpointId: checkpoint ${ck.id} (epoch ${ck.epoch}) has no resume state to continue from (written before live piloting, or mid-epoch by a cancel); pick another checkpoint`,
      );
  }
  const out = requestIntervention(ctx, raw);
  if (out.kind === "resume") orchestrator.launch(out.runId);
  if (out.kind === "rollback") {
    // A paused or completed run has no next boundary: the rollback takes effect now, at its own checkpoint, and the
    // run stays as it is. A running run's rollback waits for its next boundary (the orchestrator stops it there).
    const status = ctx.db.select({ status: runs.status }).from(runs).where(eq(runs.id, out.runId)).get()?.status;
    if (status === "paused" || status === "completed") {
      const from = ctx.db.select().from(checkpoints).where(eq(checkpoints.id, out.fromCheckpointId!)).get()!;
      const applied = applyRollback(ctx, { interventionId: out.id, epoch: from.epoch, step: from.step, checkpointId: from.id }, createRun);
      orchestrator.launch(applied.branchRunId);
      return { ...out, status: applied.intervention.status, branchRunId: applied.branchRunId };
    }
  }
  return out;
}

/**
 * An engineer asks to cancel a queued or running run: the role and the run's state are re-checked inside the
 * transaction that records the request (`run.cancelRequest`), so a run that ended meanwhile is refused with nothing
 * recorded; then the orchestrator stops it (the `run.cancel` event comes from the orchestrator when it has stopped).
 */
export function cancelRun(ctx: ServiceContext, orchestrator: RunCanceller, runId: number): { ok: true } {
  ctx.db.transaction((tx) => {
    requireRole(ctx.actor, ["engineer"], "cancel runs");
    const run = tx.select({ status: runs.status, origin: runs.origin }).from(runs).where(eq(runs.id, runId)).get();
    if (!run) notFound(`run ${runId}`);
    if (run.origin === "api")
      invalidInput(`run ${runId} is logged by a script through the tracking API: the script ends it (runs/update with status KILLED)`);
    if (run.status !== "queued" && run.status !== "running" && run.status !== "paused" && run.status !== "interrupted")
      invalidInput(`run ${runId} is ${run.status}; only a queued, running, paused or interrupted run can be cancelled`);
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "run.cancelRequest",
      entityType: "run",
      entityId: runId,
      payload: { statusAtRequest: run.status },
    });
  });
  if (!orchestrator.cancel(runId)) conflict(`run ${runId} is not training in this server process`);
  return { ok: true };
}
