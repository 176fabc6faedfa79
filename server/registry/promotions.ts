/**
 * Four-eyes promotion: an engineer requests that a model version take a protected alias (production), citing the
 * test-partition evaluation it relies on; independent reviewers sign (approve or reject) with their password.
 *
 * Invariants (all enforced here, on the server):
 * - A request cites an evaluation on the "test" partition of the version's own checkpoint; without one it is refused.
 * - record_sha256 = sha256(canonical JSON of { model, alias, modelVersion, evaluation }); every signature binds to it,
 *   and it is recomputed before each signature so a changed record cannot be signed.
 * - Signers re-enter their password, checked asynchronously and throttled per account like sign-in
 *   (signature-password.ts) BEFORE the signing transaction, which re-reads everything it relies on (status,
 *   conflicts, earlier signatures, record hash). Nobody in the version's lineage may sign: the requester, and everyone
 *   lineageAuthors (server/lineage/ancestry.ts) names (registrant; authors of runs, decisions, datasets, data
 *   versions, splits, model-card and datasheet sections in the ancestry through parent runs AND parent checkpoints);
 *   such attempts are refused AND recorded
 *   (promotion.selfApprovalRefused) in a transaction of their own, which commits although the request fails.
 * - A request records the documentation it was made with (./documentation.ts: each model-card and datasheet section's
 *   version and sha256, or missing) in its promotion.request event; with sections missing it is refused unless the
 *   requester acknowledges them (acknowledgeMissingDocumentation), and the acknowledgement is recorded too.
 * - A request records the model's approval rule when it is made (promotion_requests.approvals_required, also in its
 *   promotion.request event). When distinct approvals reach the rule it is judged by (./approval-rule.ts: that rule, or
 *   the model's current one if raised since), the request is approved and the alias moves in the same transaction as
 *   the last signature; one rejection closes the request. A signed audit checkpoint follows each signature.
 */
import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { evaluations, type modelVersions, models, promotionRequests, signatures } from "@/db/schema";
import * as schema from "@/db/schema";
import type { DbOrTx, Tx } from "@/db/client";
import { runOnSqliteTx } from "@/db/store";
import { appendAuditEvent } from "@/server/audit/ledger";
import { sha256Canonical } from "@/contracts/canonical";
import { PASSWORD_MAX } from "@/contracts/user-fields";
import { now, requireRole, type ServiceContext } from "../app-context/service-context";
import { conflict, forbidden, invalidInput, notFound } from "@/server/errors";
import { aliasSchema, appendAliasMove, modelNameSchema } from "./service";
import { conflictsOfInterest, findModelVersion, loadPromotionRequest } from "./queries";
import { promotionRecord, signatureText, TEST_PARTITION } from "./records";
import { checkpointAfterCommit } from "../app-context/audit-checkpoint-after-commit";
import { approvalsRequiredFor } from "./approval-rule";
import { refuseSigning, requireSignerPassword, rereadSigner } from "../auth/signature-password";
import { describeMissing, documentationChecklist, documentationRecord } from "./documentation";

type VersionRow = typeof modelVersions.$inferSelect;
type EvaluationRow = typeof evaluations.$inferSelect;

/** Test-partition evaluations of exactly this version's checkpoint, newest first. */
export function eligibleEvaluations(db: DbOrTx, v: VersionRow): EvaluationRow[] {
  return db
    .select()
    .from(evaluations)
    .where(and(eq(evaluations.checkpointId, v.checkpointId), eq(evaluations.partition, TEST_PARTITION)))
    .all()
    .sort((a, b) => b.id - a.id);
}

export const requestPromotionInput = z.object({
  modelName: modelNameSchema,
  version: z.number().int(),
  alias: aliasSchema.default("production"),
  /** Defaults to the newest test evaluation of the version's checkpoint. */
  evaluationId: z.number().int().optional(),
  rationale: z.string().trim().min(1, "say why this version should be promoted").max(4000),
  /**
   * The requester saw that model-card or datasheet sections are missing (./documentation.ts) and requests anyway;
   * without it a request with missing sections is refused. Recorded in the promotion.request event with the checklist.
   */
  acknowledgeMissingDocumentation: z.boolean().default(false),
});

export function requestPromotion(ctx: ServiceContext, raw: z.input<typeof requestPromotionInput>) {
  requireRole(ctx.actor, ["engineer"], "request promotions");
  const input = requestPromotionInput.parse(raw);
  const { model, version } = findModelVersion(ctx.db, input.modelName, input.version);
  const candidates = eligibleEvaluations(ctx.db, version);
  let evaluation: EvaluationRow | undefined;
  if (input.evaluationId !== undefined) {
    evaluation = ctx.db.select().from(evaluations).where(eq(evaluations.id, input.evaluationId)).get();
    if (!evaluation) notFound(`evaluation ${input.evaluationId}`);
    if (evaluation.checkpointId !== version.checkpointId)
      invalidInput(
        `evaluation ${evaluation.id} is of checkpoint #${evaluation.checkpointId}, not of version ${version.version}'s checkpoint #${version.checkpointId}`,
      );
    if (evaluation.partition !== TEST_PARTITION)
      invalidInput(`evaluation ${evaluation.id} is on the "${evaluation.partition}" partition; a promotion relies on the test partition`);
  } else {
    evaluation = candidates[0];
    if (!evaluation)
      invalidInput(
        `version ${version.version} of "${model.name}" cannot be promoted: its checkpoint (#${version.checkpointId}, weights ${version.weightsSha256.slice(0, 12)}…) has no evaluation on the test partition. Register the run's evaluated (best) checkpoint instead.`,
      );
  }
  const pending = ctx.db
    .select({ id: promotionRequests.id })
    .from(promotionRequests)
    .where(
      and(
        eq(promotionRequests.modelVersionId, version.id),
        eq(promotionRequests.alias, input.alias),
        eq(promotionRequests.status, "pending"),
      ),
    )
    .get();
  if (pending) conflict(`promotion request #${pending.id} for version ${version.version} to "${input.alias}" is already pending`);
  const recordSha256 = sha256Canonical(promotionRecord(model.name, input.alias, version, evaluation));
  return ctx.db.transaction((tx) => {
    // The rule in force now, read in this transaction: the request is judged by it (and by any higher rule later).
    const approvalsRequired = tx.select({ n: models.approvalsRequired }).from(models).where(eq(models.id, model.id)).get()!.n;
    // The documentation as it is now, read in this transaction (a section may have been written a moment ago).
    const checklist = documentationChecklist(tx, version.id);
    if (checklist.missing.length > 0 && !input.acknowledgeMissingDocumentation)
      invalidInput(
        `${checklist.missing.length} of ${checklist.total} documentation sections of version ${version.version} are not written (${describeMissing(checklist)}): write them, or acknowledge that you request production without them (the request records which are missing and reviewers see it)`,
      );
    const documentation = documentationRecord(checklist, checklist.missing.length > 0);
    const row = tx
      .insert(promotionRequests)
      .values({
        modelVersionId: version.id,
        alias: input.alias,
        evaluationId: evaluation.id,
        rationale: input.rationale,
        recordSha256,
        approvalsRequired,
        status: "pending",
        requestedBy: ctx.actor.id,
        createdAt: now(),
      })
      .returning()
      .get();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "promotion.request",
      entityType: "promotionRequest",
      entityId: row.id,
      payload: {
        model: model.name,
        version: version.version,
        modelVersionId: version.id,
        alias: input.alias,
        evaluationId: evaluation.id,
        recordSha256,
        rationale: input.rationale,
        approvalsRequired,
        createdAt: row.createdAt,
        documentation,
      },
    });
    return row;
  });
}

export const signPromotionInput = z.object({
  requestId: z.number().int(),
  meaning: z.enum(["approval", "rejection", "review"]),
  password: z.string().max(PASSWORD_MAX, `a password is at most ${PASSWORD_MAX} characters`).min(1, "re-enter your password to sign"),
  comment: z.string().trim().max(4000).default(""),
});

/**
 * A reviewer signs a promotion request (approval, rejection or review), in steps: independence (recorded when
 * refused), role, signability, the password (asynchronous, before the transaction), then one transaction that
 * re-checks and records the signature and applies its decision; a signed audit checkpoint follows.
 */
export async function signPromotion(ctx: ServiceContext, raw: z.input<typeof signPromotionInput>) {
  const input = signPromotionInput.parse(raw);
  const loaded = loadPromotionRequest(ctx.db, input.requestId);
  const { request, version, model } = loaded;
  // Independence first, for every role: a self-approval attempt is recorded even when it would also fail later.
  await refuseConflictedSigner(ctx, request, input.meaning);
  requireRole(ctx.actor, ["reviewer"], "sign promotion requests");
  assertSignable(ctx.db, ctx.actor, input.meaning, request.id);
  // The password: asynchronous and throttled, before the (synchronous) transaction. Throttled attempts write nothing.
  const signer = await requireSignerPassword(ctx, input.password, {
    entityType: "promotionRequest",
    entityId: request.id,
    payload: { meaning: input.meaning },
  });
  const result = ctx.db.transaction((tx) => {
    const signature = recordPromotionSignature(tx, ctx.actor, request.id, input);
    return { signature, ...applyPromotionDecision(tx, ctx.actor, loaded, signature, input.comment) };
  });
  const auditCheckpoint = checkpointAfterCommit(
    ctx,
    `${input.meaning} of promotion request #${request.id} by ${signer.name}${result.aliasMoved ? `; ${request.alias} of ${model.name} → version ${version.version}` : ""}`,
  );
  return {
    signatureId: result.signature.id,
    status: result.status,
    aliasMoved: result.aliasMoved,
    text: signatureText(result.signature),
    auditCheckpoint,
  };
}

type PromotionRequestRow = typeof promotionRequests.$inferSelect;
type SignatureRow = typeof signatures.$inferSelect;
type SignInput = z.output<typeof signPromotionInput>;

/** Four eyes: the requester and everyone in the version's lineage may not sign; the attempt is recorded, then refused. */
async function refuseConflictedSigner(ctx: ServiceContext, request: PromotionRequestRow, meaning: SignInput["meaning"]): Promise<void> {
  const reasons = conflictsOfInterest(ctx.db, request.id, ctx.actor.id);
  if (reasons.length === 0) return;
  await refuseSigning(
    ctx,
    {
      action: "promotion.selfApprovalRefused",
      entityType: "promotionRequest",
      entityId: request.id,
      payload: { meaning, reasons, recordSha256: request.recordSha256 },
    },
    `${ctx.actor.name} cannot sign promotion request #${request.id}: they ${reasons.join("; ")}. Four eyes: another reviewer must sign.`,
  );
}

/** Inside the signing transaction: re-reads what the checks relied on (it may have changed during the password check), then records the signature and its event. */
function recordPromotionSignature(tx: Tx, actor: ServiceContext["actor"], requestId: number, input: SignInput): SignatureRow {
  // rereadSigner is a store transaction part (auth is on the store); this transaction is still synchronous SQLite.
  const user = runOnSqliteTx(tx, rereadSigner(tx, schema, actor, ["reviewer"]));
  if (conflictsOfInterest(tx, requestId, user.id).length > 0)
    forbidden(`${user.name} became part of this version's lineage while signing: another reviewer must sign`);
  assertSignable(tx, actor, input.meaning, requestId);
  const request = tx.select().from(promotionRequests).where(eq(promotionRequests.id, requestId)).get()!;
  const signature = tx
    .insert(signatures)
    .values({
      userId: user.id,
      printedName: user.name,
      meaning: input.meaning,
      recordType: "promotion_request",
      recordId: requestId,
      recordSha256: request.recordSha256,
      comment: input.comment,
      createdAt: now(),
    })
    .returning()
    .get();
  appendAuditEvent(tx, {
    actor,
    action: "signature.create",
    entityType: "signature",
    entityId: signature.id,
    payload: {
      printedName: signature.printedName,
      meaning: signature.meaning,
      recordType: signature.recordType,
      recordId: requestId,
      recordSha256: signature.recordSha256,
      comment: signature.comment,
      createdAt: signature.createdAt,
    },
  });
  return signature;
}

/**
 * What a recorded signature decides, in the same transaction: a review changes nothing; a rejection closes the
 * request; an approval counts distinct approvers and, at the request's rule (approvalsRequiredFor), approves and moves
 * the alias.
 */
function applyPromotionDecision(
  tx: DbOrTx,
  actor: ServiceContext["actor"],
  loaded: ReturnType<typeof loadPromotionRequest>,
  signature: SignatureRow,
  comment: string,
): { status: "pending" | "rejected" | "approved"; aliasMoved: boolean } {
  const { request, version, model } = loaded;
  const at = signature.createdAt;
  if (signature.meaning === "review") return { status: "pending", aliasMoved: false };
  if (signature.meaning === "rejection") {
    tx.update(promotionRequests).set({ status: "rejected", decidedAt: at }).where(eq(promotionRequests.id, request.id)).run();
    appendAuditEvent(tx, {
      actor,
      action: "promotion.reject",
      entityType: "promotionRequest",
      entityId: request.id,
      payload: { signatureId: signature.id, comment, status: "rejected", decidedAt: at },
    });
    return { status: "rejected", aliasMoved: false };
  }
  const approvers = new Set(
    tx
      .select({ userId: signatures.userId })
      .from(signatures)
      .where(and(eq(signatures.recordType, "promotion_request"), eq(signatures.recordId, request.id), eq(signatures.meaning, "approval")))
      .all()
      .map((s) => s.userId),
  );
  const currentRule = tx.select({ n: models.approvalsRequired }).from(models).where(eq(models.id, model.id)).get()!.n;
  const required = approvalsRequiredFor(request, currentRule);
  const approved = approvers.size >= required;
  appendAuditEvent(tx, {
    actor,
    action: "promotion.approve",
    entityType: "promotionRequest",
    entityId: request.id,
    payload: {
      signatureId: signature.id,
      approvals: approvers.size,
      approvalsRequired: required,
      status: approved ? "approved" : "pending",
      decidedAt: approved ? at : null,
    },
  });
  if (!approved) return { status: "pending", aliasMoved: false };
  tx.update(promotionRequests).set({ status: "approved", decidedAt: at }).where(eq(promotionRequests.id, request.id)).run();
  appendAliasMove(tx, actor, {
    modelId: model.id,
    modelName: model.name,
    alias: request.alias,
    modelVersionId: version.id,
    version: version.version,
    promotionRequestId: request.id,
    rationale: request.rationale,
  });
  return { status: "approved", aliasMoved: true };
}

/** Pending, not already signed by this person (approval/rejection once), and its record still hashes to what is signed. */
function assertSignable(
  db: DbOrTx,
  actor: { id: number; name: string },
  meaning: "approval" | "rejection" | "review",
  requestId: number,
): void {
  const { request, version, model, evaluation } = loadPromotionRequest(db, requestId);
  if (request.status !== "pending") conflict(`promotion request #${request.id} is ${request.status}; only a pending request can be signed`);
  const already = db
    .select()
    .from(signatures)
    .where(and(eq(signatures.recordType, "promotion_request"), eq(signatures.recordId, request.id), eq(signatures.userId, actor.id)))
    .all();
  if (meaning !== "review" && already.some((s) => s.meaning === "approval" || s.meaning === "rejection"))
    conflict(`${actor.name} has already signed promotion request #${request.id}`);
  const recomputed = sha256Canonical(promotionRecord(model.name, request.alias, version, evaluation));
  if (recomputed !== request.recordSha256)
    conflict(
      `the record of promotion request #${request.id} no longer matches its sha256 (${request.recordSha256.slice(0, 12)}… ≠ ${recomputed.slice(0, 12)}…): it cannot be signed`,
    );
}

export const withdrawPromotionInput = z.object({
  requestId: z.number().int(),
  reason: z.string().trim().min(1, "say why the request is withdrawn").max(4000),
});

export function withdrawPromotion(ctx: ServiceContext, raw: z.input<typeof withdrawPromotionInput>) {
  requireRole(ctx.actor, ["engineer"], "withdraw promotion requests");
  const input = withdrawPromotionInput.parse(raw);
  const { request } = loadPromotionRequest(ctx.db, input.requestId);
  if (request.requestedBy !== ctx.actor.id) forbidden(`only the requester can withdraw promotion request #${request.id}`);
  if (request.status !== "pending") conflict(`promotion request #${request.id} is ${request.status}`);
  ctx.db.transaction((tx) => {
    const decidedAt = now();
    tx.update(promotionRequests).set({ status: "withdrawn", decidedAt }).where(eq(promotionRequests.id, request.id)).run();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "promotion.withdraw",
      entityType: "promotionRequest",
      entityId: request.id,
      payload: { reason: input.reason, status: "withdrawn", decidedAt },
    });
  });
  return { ok: true };
}
