/**
 * The model registry's writes: register a checkpoint as a version of a named model, move non-protected aliases,
 * change how many approvals a production move needs.
 *
 * Invariants:
 * - A model version points at exactly one checkpoint of a completed run and copies its weights sha256; it never changes.
 * - Versions number 1, 2, 3… per model, assigned inside the write transaction.
 * - Aliases move only by appending a model_alias_events row (the current alias is the latest row); PROTECTED_ALIASES
 *   ("production") move only through an approved promotion request (registry/promotions.ts), never here.
 * - Every write lands with its audit event in one transaction; an alias move is followed by a signed audit checkpoint.
 */
import { eq, max } from "drizzle-orm";
import { z } from "zod";
import { checkpoints, modelAliasEvents, modelVersions, models, runs } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import { appendAuditEvent } from "@/server/audit/ledger";
import { now, requireRole, type ServiceContext } from "../app-context/service-context";
import { conflict, invalidInput, notFound } from "@/server/errors";
import { checkpointAfterCommit } from "../app-context/audit-checkpoint-after-commit";
import { findModel, findModelVersion } from "./queries";
import { currentAliasVersionId } from "./aliases";

/** Aliases whose moves need a promotion request with independent approvals. */
export const PROTECTED_ALIASES = ["production"] as const;
export const isProtectedAlias = (alias: string) => (PROTECTED_ALIASES as readonly string[]).includes(alias);

export const modelNameSchema = z
  .string()
  .trim()
  .min(1, "give the model a name")
  .max(80, "a model name is at most 80 characters")
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "a model name uses letters, digits, . _ - and starts with a letter or digit");
export const aliasSchema = z
  .string()
  .trim()
  .min(1, "name the alias")
  .max(40, "an alias is at most 40 characters")
  .regex(/^[a-z][a-z0-9_-]*$/, "an alias uses lower-case letters, digits, _ and -, and starts with a letter");

export const registerVersionInput = z.object({
  runId: z.number().int(),
  modelName: modelNameSchema,
  /** "best" (the run's best checkpoint), an epoch number, or an explicit checkpoint id. */
  checkpoint: z
    .union([z.literal("best"), z.object({ epoch: z.number().int().min(0) }), z.object({ checkpointId: z.number().int() })])
    .default("best"),
  description: z.string().max(2000).default(""),
});
export type RegisterVersionInput = z.input<typeof registerVersionInput>;

function resolveCheckpoint(db: DbOrTx, runId: number, choice: z.output<typeof registerVersionInput>["checkpoint"]) {
  const all = db.select().from(checkpoints).where(eq(checkpoints.runId, runId)).all();
  if (all.length === 0) invalidInput(`run ${runId} has no checkpoints to register`);
  if (choice === "best") {
    const best = all.find((c) => c.isBest);
    if (!best) invalidInput(`run ${runId} has no checkpoint marked best`);
    return best;
  }
  const found = "epoch" in choice ? all.find((c) => c.epoch === choice.epoch) : all.find((c) => c.id === choice.checkpointId);
  if (!found)
    invalidInput(
      `run ${runId} has no checkpoint ${"epoch" in choice ? `at epoch ${choice.epoch}` : `#${choice.checkpointId}`} (it has epochs ${all.map((c) => c.epoch).join(", ")})`,
    );
  return found;
}

export function registerModelVersion(ctx: ServiceContext, raw: RegisterVersionInput) {
  requireRole(ctx.actor, ["engineer"], "register model versions");
  const input = registerVersionInput.parse(raw);
  const run = ctx.db.select().from(runs).where(eq(runs.id, input.runId)).get();
  if (!run) notFound(`run ${input.runId}`);
  if (run.status !== "completed") invalidInput(`run ${run.id} is ${run.status}: only checkpoints of completed runs can be registered`);
  const ck = resolveCheckpoint(ctx.db, run.id, input.checkpoint);

  return ctx.db.transaction((tx) => {
    const at = now();
    let model = tx.select().from(models).where(eq(models.name, input.modelName)).get();
    if (!model) {
      model = tx
        .insert(models)
        .values({ name: input.modelName, description: input.description, createdBy: ctx.actor.id, createdAt: at })
        .returning()
        .get();
      appendAuditEvent(tx, {
        actor: ctx.actor,
        action: "model.create",
        entityType: "model",
        entityId: model.id,
        payload: {
          name: model.name,
          approvalsRequired: model.approvalsRequired,
          description: model.description,
          createdAt: model.createdAt,
        },
      });
    }
    const last =
      tx
        .select({ v: max(modelVersions.version) })
        .from(modelVersions)
        .where(eq(modelVersions.modelId, model.id))
        .get()?.v ?? 0;
    const version = tx
      .insert(modelVersions)
      .values({
        modelId: model.id,
        version: last + 1,
        runId: run.id,
        checkpointId: ck.id,
        weightsSha256: ck.sha256,
        createdBy: ctx.actor.id,
        createdAt: at,
      })
      .returning()
      .get();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "modelVersion.create",
      entityType: "modelVersion",
      entityId: version.id,
      payload: {
        model: model.name,
        modelId: model.id,
        version: version.version,
        runId: run.id,
        checkpointId: ck.id,
        epoch: ck.epoch,
        weightsSha256: ck.sha256,
        createdAt: version.createdAt,
      },
    });
    return {
      model: model.name,
      modelId: model.id,
      version: version.version,
      modelVersionId: version.id,
      weightsSha256: version.weightsSha256,
      checkpointId: ck.id,
      epoch: ck.epoch,
    };
  });
}

/** Appends the alias move and its audit event; callers hold the transaction and have checked permission. */
export function appendAliasMove(
  tx: DbOrTx,
  actor: ServiceContext["actor"],
  m: {
    modelId: number;
    modelName: string;
    alias: string;
    modelVersionId: number | null;
    version: number | null;
    promotionRequestId: number | null;
    rationale: string;
  },
) {
  const before = currentAliasVersionId(tx, m.modelId, m.alias);
  const row = tx
    .insert(modelAliasEvents)
    .values({
      modelId: m.modelId,
      alias: m.alias,
      modelVersionId: m.modelVersionId,
      promotionRequestId: m.promotionRequestId,
      movedBy: actor.id,
      createdAt: now(),
    })
    .returning()
    .get();
  appendAuditEvent(tx, {
    actor,
    action: "alias.move",
    entityType: "model",
    entityId: m.modelId,
    payload: {
      model: m.modelName,
      alias: m.alias,
      fromModelVersionId: before,
      toModelVersionId: m.modelVersionId,
      version: m.version,
      promotionRequestId: m.promotionRequestId,
      aliasEventId: row.id,
      rationale: m.rationale,
      createdAt: row.createdAt,
    },
  });
  return row;
}

export const moveAliasInput = z.object({
  modelName: modelNameSchema,
  alias: aliasSchema,
  /** null removes the alias. */
  version: z.number().int().nullable(),
  rationale: z.string().trim().min(1, "say why the alias moves").max(4000),
});

/** Moves an unprotected alias (e.g. staging) directly; engineers only; audited and checkpointed. */
export function moveAlias(ctx: ServiceContext, raw: z.input<typeof moveAliasInput>) {
  requireRole(ctx.actor, ["engineer"], "move model aliases");
  const input = moveAliasInput.parse(raw);
  if (isProtectedAlias(input.alias))
    invalidInput(`"${input.alias}" moves only through a promotion request approved by independent reviewers`);
  const model = findModel(ctx.db, input.modelName);
  const target = input.version === null ? null : findModelVersion(ctx.db, input.modelName, input.version).version;
  if ((target?.id ?? null) === currentAliasVersionId(ctx.db, model.id, input.alias))
    conflict(`"${input.alias}" already ${target ? `points at version ${target.version}` : "is unset"}`);
  const row = ctx.db.transaction((tx) =>
    appendAliasMove(tx, ctx.actor, {
      modelId: model.id,
      modelName: model.name,
      alias: input.alias,
      modelVersionId: target?.id ?? null,
      version: target?.version ?? null,
      promotionRequestId: null,
      rationale: input.rationale,
    }),
  );
  const auditCheckpoint = checkpointAfterCommit(
    ctx,
    `alias ${input.alias} of model ${model.name} moved to ${target ? `version ${target.version}` : "nothing"}`,
  );
  return { aliasEventId: row.id, at: row.createdAt, auditCheckpoint };
}

export const setApprovalsRequiredInput = z.object({
  modelName: modelNameSchema,
  approvalsRequired: z.number().int().min(1, "at least one approval").max(2, "at most two approvals"),
});

/** A governance setting: only an admin changes it, so the engineers who request promotions cannot lower the bar. */
export function setApprovalsRequired(ctx: ServiceContext, raw: z.input<typeof setApprovalsRequiredInput>) {
  requireRole(ctx.actor, ["admin"], "change how many approvals a promotion needs");
  const input = setApprovalsRequiredInput.parse(raw);
  const model = findModel(ctx.db, input.modelName);
  if (model.approvalsRequired === input.approvalsRequired) return model;
  return ctx.db.transaction((tx) => {
    const row = tx.update(models).set({ approvalsRequired: input.approvalsRequired }).where(eq(models.id, model.id)).returning().get();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "model.update",
      entityType: "model",
      entityId: model.id,
      payload: { field: "approvalsRequired", before: model.approvalsRequired, after: input.approvalsRequired },
    });
    return row;
  });
}
