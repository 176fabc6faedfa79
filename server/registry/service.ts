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
 * - On the store (issue 16, db/store.ts): each write is one transaction body under the ledger lock (PostgreSQL's
 *   advisory lock; SQLite's IMMEDIATE), its checks read inside it. The checkpoint after an alias move is signed on
 *   either store (./on-store.ts).
 */
import { asc, eq, max } from "drizzle-orm";
import { z } from "zod";
import type { checkpoints, modelAliasEvents, models } from "@/db/schema";
import * as schema from "@/db/schema";
import type { Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, row, rows, runOnSqliteTx, transact, type StoreTables, type TxBody } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
import { now, requireRole, type ServiceDeps, type SignedInActor } from "../app-context/service-context";
import type { StoreServiceContext } from "../app-context/store-context";
import type { CheckpointOutcome } from "../app-context/audit-checkpoint-after-commit";
import { conflict, invalidInput, notFound, wrongState } from "@/server/errors";
import { findModelIn, findModelVersionIn } from "./queries";
import { currentAliasVersionIdIn } from "./aliases";
import { checkpointAfterChange } from "./on-store";

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

type CheckpointRow = typeof checkpoints.$inferSelect;

/** The run's checkpoint the choice names, from all its checkpoints (in id order). */
function resolveCheckpoint(
  all: CheckpointRow[],
  runId: number,
  choice: z.output<typeof registerVersionInput>["checkpoint"],
): CheckpointRow {
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

export type RegisteredVersion = {
  model: string;
  modelId: number;
  version: number;
  modelVersionId: number;
  weightsSha256: string;
  checkpointId: number;
  epoch: number;
};

/**
 * A part of a store transaction body: checks the run and its checkpoint, creates the model on its first version, and
 * numbers the version after the model's last one, with their events. Under the ledger lock on PostgreSQL, so two
 * registrations at once never take one number or create one name twice.
 */
export function* insertModelVersion(
  tx: Tx,
  t: StoreTables,
  actor: SignedInActor,
  input: z.output<typeof registerVersionInput>,
): TxBody<RegisteredVersion> {
  const run = yield* row(tx.select().from(t.runs).where(eq(t.runs.id, input.runId)));
  if (!run) notFound(`run ${input.runId}`);
  if (run.status !== "completed") wrongState(`run ${run.id} is ${run.status}: only checkpoints of completed runs can be registered`);
  const ck = resolveCheckpoint(
    yield* rows(tx.select().from(t.checkpoints).where(eq(t.checkpoints.runId, run.id)).orderBy(asc(t.checkpoints.id))),
    run.id,
    input.checkpoint,
  );
  const at = now();
  let model = yield* row(tx.select().from(t.models).where(eq(t.models.name, input.modelName)));
  if (!model) {
    model = (yield* row(
      tx.insert(t.models).values({ name: input.modelName, description: input.description, createdBy: actor.id, createdAt: at }).returning(),
    ))!;
    yield* appendEvent({
      actor,
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
    (yield* row(
      tx
        .select({ v: max(t.modelVersions.version).mapWith(Number) })
        .from(t.modelVersions)
        .where(eq(t.modelVersions.modelId, model.id)),
    ))?.v ?? 0;
  const version = (yield* row(
    tx
      .insert(t.modelVersions)
      .values({
        modelId: model.id,
        version: last + 1,
        runId: run.id,
        checkpointId: ck.id,
        weightsSha256: ck.sha256,
        createdBy: actor.id,
        createdAt: at,
      })
      .returning(),
  ))!;
  yield* appendEvent({
    actor,
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
}

export async function registerModelVersion(ctx: StoreServiceContext, raw: RegisterVersionInput): Promise<RegisteredVersion> {
  requireRole(ctx.actor, ["engineer"], "register model versions");
  const input = registerVersionInput.parse(raw);
  const store = asStore(ctx.db);
  const actor = ctx.actor;
  return transact(store, (tx) => insertModelVersion(tx, store.tables, actor, input), { pgLock: PG_LOCK_KEYS.ledger });
}

/** registerModelVersion inside a synchronous SQLite transaction the caller holds (the MLflow-compatible API's). */
export function registerModelVersionInSqliteTx(tx: Tx, actor: SignedInActor, raw: RegisterVersionInput): RegisteredVersion {
  requireRole(actor, ["engineer"], "register model versions");
  return runOnSqliteTx(tx, insertModelVersion(tx, schema, actor, registerVersionInput.parse(raw)));
}

type AliasMoveRow = typeof modelAliasEvents.$inferSelect;

/** Appends the alias move and its audit event: a part of a store transaction body whose caller has checked permission. */
export function* appendAliasMove(
  tx: Tx,
  t: StoreTables,
  actor: SignedInActor,
  m: {
    modelId: number;
    modelName: string;
    alias: string;
    modelVersionId: number | null;
    version: number | null;
    promotionRequestId: number | null;
    rationale: string;
  },
): TxBody<AliasMoveRow> {
  const before = yield* currentAliasVersionIdIn(tx, t, m.modelId, m.alias);
  const moved = (yield* row(
    tx
      .insert(t.modelAliasEvents)
      .values({
        modelId: m.modelId,
        alias: m.alias,
        modelVersionId: m.modelVersionId,
        promotionRequestId: m.promotionRequestId,
        movedBy: actor.id,
        createdAt: now(),
      })
      .returning(),
  ))!;
  yield* appendEvent({
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
      aliasEventId: moved.id,
      rationale: m.rationale,
      createdAt: moved.createdAt,
    },
  });
  return moved;
}

/** What writes followed by a signed audit checkpoint need: the store, the actor and the audit signing keys. */
export type CheckpointedServiceContext = StoreServiceContext & Pick<ServiceDeps, "auditKeys">;

export const moveAliasInput = z.object({
  modelName: modelNameSchema,
  alias: aliasSchema,
  /** null removes the alias. */
  version: z.number().int().nullable(),
  rationale: z.string().trim().min(1, "say why the alias moves").max(4000),
});

/**
 * Moves an unprotected alias (e.g. staging) directly; engineers only; audited and checkpointed. The model, the target
 * and "already points there" are read inside the transaction (under the ledger lock on PostgreSQL), so one move sent
 * twice at once moves once and the other is a conflict.
 */
export async function moveAlias(
  ctx: CheckpointedServiceContext,
  raw: z.input<typeof moveAliasInput>,
): Promise<{ aliasEventId: number; at: string; auditCheckpoint: CheckpointOutcome }> {
  requireRole(ctx.actor, ["engineer"], "move model aliases");
  const input = moveAliasInput.parse(raw);
  if (isProtectedAlias(input.alias))
    invalidInput(`"${input.alias}" moves only through a promotion request approved by independent reviewers`);
  const store = asStore(ctx.db);
  const t = store.tables;
  const actor = ctx.actor;
  const { moved, model, target } = await transact(
    store,
    function* (tx) {
      const model = yield* findModelIn(tx, t, input.modelName);
      const target = input.version === null ? null : (yield* findModelVersionIn(tx, t, input.modelName, input.version)).version;
      if ((target?.id ?? null) === (yield* currentAliasVersionIdIn(tx, t, model.id, input.alias)))
        conflict(`"${input.alias}" already ${target ? `points at version ${target.version}` : "is unset"}`);
      const moved = yield* appendAliasMove(tx, t, actor, {
        modelId: model.id,
        modelName: model.name,
        alias: input.alias,
        modelVersionId: target?.id ?? null,
        version: target?.version ?? null,
        promotionRequestId: null,
        rationale: input.rationale,
      });
      return { moved, model, target };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  const auditCheckpoint = await checkpointAfterChange(
    store,
    ctx.auditKeys,
    `alias ${input.alias} of model ${model.name} moved to ${target ? `version ${target.version}` : "nothing"}`,
  );
  return { aliasEventId: moved.id, at: moved.createdAt, auditCheckpoint };
}

export const setApprovalsRequiredInput = z.object({
  modelName: modelNameSchema,
  approvalsRequired: z.number().int().min(1, "at least one approval").max(2, "at most two approvals"),
});

/** A governance setting: only an admin changes it, so the engineers who request promotions cannot lower the bar. */
export async function setApprovalsRequired(
  ctx: StoreServiceContext,
  raw: z.input<typeof setApprovalsRequiredInput>,
): Promise<typeof models.$inferSelect> {
  requireRole(ctx.actor, ["admin"], "change how many approvals a promotion needs");
  const input = setApprovalsRequiredInput.parse(raw);
  const store = asStore(ctx.db);
  const t = store.tables;
  const actor = ctx.actor;
  return transact(
    store,
    function* (tx) {
      const model = yield* findModelIn(tx, t, input.modelName);
      if (model.approvalsRequired === input.approvalsRequired) return model;
      const updated = (yield* row(
        tx.update(t.models).set({ approvalsRequired: input.approvalsRequired }).where(eq(t.models.id, model.id)).returning(),
      ))!;
      yield* appendEvent({
        actor,
        action: "model.update",
        entityType: "model",
        entityId: model.id,
        payload: { field: "approvalsRequired", before: model.approvalsRequired, after: input.approvalsRequired },
      });
      return updated;
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}
