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
 *   the last signature; one rejection closes the request, and it must say why (a non-blank comment; an approval may
 *   have none): a blank rejection is refused as invalid input before anything is recorded. A signed audit
 *   checkpoint follows each signature.
 * - On the store (issue 16, db/store.ts): a request, a signature's re-checks and decision, and a withdrawal are each
 *   one transaction body under the ledger lock (PostgreSQL's advisory lock; SQLite's IMMEDIATE), their checks read
 *   inside it: one request made twice at once is made once, and two reviewers approving at once count each other
 *   (one alias move, never two; no approval lost). The checkpoint after a signature is signed on either
 *   store (./on-store.ts).
 */
import { and, eq } from "drizzle-orm";
import { z } from "zod";
import type { evaluations, modelVersions, promotionRequests, signatures } from "@/db/schema";
import type { Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, exec, row, rows, transact, type StoreTables, type TxBody } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
import { sha256Canonical } from "@/contracts/canonical";
import { PASSWORD_MAX } from "@/contracts/user-fields";
import { now, requireRole, type SignedInActor } from "../app-context/service-context";
import type { StoreServiceContext } from "../app-context/store-context";
import { conflict, forbidden, invalidInput, notFound, wrongState } from "@/server/errors";
import { aliasSchema, appendAliasMove, modelNameSchema, type CheckpointedServiceContext } from "./service";
import {
  conflictsOfInterestIn,
  findModelVersionIn,
  loadPromotionRequestIn,
  readPromotionRequest,
  type LoadedPromotionRequest,
} from "./queries";
import { promotionRecord, signatureText, TEST_PARTITION } from "./records";
import { approvalsRequiredFor } from "./approval-rule";
import { refuseSigning, requireSignerPassword, rereadSigner } from "../auth/signature-password";
import { describeMissing, documentationChecklistIn, documentationRecord } from "./documentation";
import { checkpointAfterChange, readOnStore } from "./on-store";

type VersionRow = typeof modelVersions.$inferSelect;
type EvaluationRow = typeof evaluations.$inferSelect;

/** Test-partition evaluations of exactly this version's checkpoint, newest first. */
export function* eligibleEvaluationsIn(q: Tx, t: StoreTables, v: VersionRow): TxBody<EvaluationRow[]> {
  const { evaluations } = t;
  return (yield* rows(
    q
      .select()
      .from(evaluations)
      .where(and(eq(evaluations.checkpointId, v.checkpointId), eq(evaluations.partition, TEST_PARTITION))),
  )).sort((a, b) => b.id - a.id);
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
type RequestInput = z.output<typeof requestPromotionInput>;
type PromotionRequestRow = typeof promotionRequests.$inferSelect;

/** The evaluation a request cites: the one named (checked), or the newest test evaluation of the version's checkpoint. */
function* citedEvaluation(q: Tx, t: StoreTables, modelName: string, version: VersionRow, input: RequestInput): TxBody<EvaluationRow> {
  const candidates = yield* eligibleEvaluationsIn(q, t, version);
  if (input.evaluationId === undefined) {
    const newest = candidates[0];
    if (!newest)
      wrongState(
        `version ${version.version} of "${modelName}" cannot be promoted: its checkpoint (#${version.checkpointId}, weights ${version.weightsSha256.slice(0, 12)}…) has no evaluation on the test partition. Register the run's evaluated (best) checkpoint instead.`,
      );
    return newest;
  }
  const evaluation = yield* row(q.select().from(t.evaluations).where(eq(t.evaluations.id, input.evaluationId)));
  if (!evaluation) notFound(`evaluation ${input.evaluationId}`);
  if (evaluation.checkpointId !== version.checkpointId)
    invalidInput(
      `evaluation ${evaluation.id} is of checkpoint #${evaluation.checkpointId}, not of version ${version.version}'s checkpoint #${version.checkpointId}`,
    );
  if (evaluation.partition !== TEST_PARTITION)
    invalidInput(`evaluation ${evaluation.id} is on the "${evaluation.partition}" partition; a promotion relies on the test partition`);
  return evaluation;
}

/**
 * A part of a store transaction body: the whole request, every check read inside it (the version, the evidence, a
 * pending request of the same version and alias, the rule in force, the documentation as it is now).
 */
function* insertPromotionRequest(tx: Tx, t: StoreTables, actor: SignedInActor, input: RequestInput): TxBody<PromotionRequestRow> {
  const { promotionRequests, models } = t;
  const { model, version } = yield* findModelVersionIn(tx, t, input.modelName, input.version);
  const evaluation = yield* citedEvaluation(tx, t, model.name, version, input);
  const pending = yield* row(
    tx
      .select({ id: promotionRequests.id })
      .from(promotionRequests)
      .where(
        and(
          eq(promotionRequests.modelVersionId, version.id),
          eq(promotionRequests.alias, input.alias),
          eq(promotionRequests.status, "pending"),
        ),
      )
      .limit(1),
  );
  if (pending) conflict(`promotion request #${pending.id} for version ${version.version} to "${input.alias}" is already pending`);
  const recordSha256 = sha256Canonical(promotionRecord(model.name, input.alias, version, evaluation));
  // The rule in force now, read in this transaction: the request is judged by it (and by any higher rule later).
  const approvalsRequired = (yield* row(tx.select({ n: models.approvalsRequired }).from(models).where(eq(models.id, model.id))))!.n;
  // The documentation as it is now, read in this transaction (a section may have been written a moment ago).
  const checklist = yield* documentationChecklistIn(tx, t, version.id);
  if (checklist.missing.length > 0 && !input.acknowledgeMissingDocumentation)
    wrongState(
      `${checklist.missing.length} of ${checklist.total} documentation sections of version ${version.version} are not written (${describeMissing(checklist)}): write them, or acknowledge that you request production without them (the request records which are missing and reviewers see it)`,
    );
  const documentation = documentationRecord(checklist, checklist.missing.length > 0);
  const created = (yield* row(
    tx
      .insert(promotionRequests)
      .values({
        modelVersionId: version.id,
        alias: input.alias,
        evaluationId: evaluation.id,
        rationale: input.rationale,
        recordSha256,
        approvalsRequired,
        status: "pending",
        requestedBy: actor.id,
        createdAt: now(),
      })
      .returning(),
  ))!;
  yield* appendEvent({
    actor,
    action: "promotion.request",
    entityType: "promotionRequest",
    entityId: created.id,
    payload: {
      model: model.name,
      version: version.version,
      modelVersionId: version.id,
      alias: input.alias,
      evaluationId: evaluation.id,
      recordSha256,
      rationale: input.rationale,
      approvalsRequired,
      createdAt: created.createdAt,
      documentation,
    },
  });
  return created;
}

export async function requestPromotion(ctx: StoreServiceContext, raw: z.input<typeof requestPromotionInput>): Promise<PromotionRequestRow> {
  requireRole(ctx.actor, ["engineer"], "request promotions");
  const input = requestPromotionInput.parse(raw);
  const store = asStore(ctx.db);
  const actor = ctx.actor;
  return transact(store, (tx) => insertPromotionRequest(tx, store.tables, actor, input), { pgLock: PG_LOCK_KEYS.ledger });
}

/** What a blank rejection is told; the sign form says the same before it is sent. */
export const REJECTION_NEEDS_REASON = "a rejection needs a reason: say in the comment what must change before this version can be promoted";

export const signPromotionInput = z
  .object({
    requestId: z.number().int(),
    meaning: z.enum(["approval", "rejection", "review"]),
    password: z.string().max(PASSWORD_MAX, `a password is at most ${PASSWORD_MAX} characters`).min(1, "re-enter your password to sign"),
    comment: z.string().trim().max(4000).default(""),
  })
  // A rejection closes the request, so the record must say why; an approval or a review may go without a comment.
  // Checked in parsing, before anything is read or recorded (no refusal event, no password attempt, no signature).
  .superRefine((input, ctx) => {
    if (input.meaning === "rejection" && input.comment === "")
      ctx.addIssue({ code: "custom", path: ["comment"], message: REJECTION_NEEDS_REASON });
  });

/**
 * A reviewer signs a promotion request (approval, rejection or review), in steps: independence (recorded when
 * refused), role, signability, the password (asynchronous, before the transaction), then one transaction that
 * re-checks and records the signature and applies its decision; a signed audit checkpoint follows.
 */
export async function signPromotion(ctx: CheckpointedServiceContext, raw: z.input<typeof signPromotionInput>) {
  const input = signPromotionInput.parse(raw);
  const store = asStore(ctx.db);
  const t = store.tables;
  const actor = ctx.actor;
  const loaded = await readPromotionRequest(store, input.requestId);
  const { request, version, model } = loaded;
  // Independence first, for every role: a self-approval attempt is recorded even when it would also fail later.
  await refuseConflictedSigner(ctx, request, input.meaning);
  requireRole(actor, ["reviewer"], "sign promotion requests");
  await readOnStore(store, (q) => assertSignable(q, t, actor, input.meaning, request.id));
  // The password: asynchronous and throttled, before the transaction (no awaits inside one). Throttled attempts write nothing.
  const signer = await requireSignerPassword(ctx, input.password, {
    entityType: "promotionRequest",
    entityId: request.id,
    payload: { meaning: input.meaning },
  });
  const result = await transact(
    store,
    function* (tx) {
      const signature = yield* recordPromotionSignature(tx, t, actor, request.id, input);
      return { signature, ...(yield* applyPromotionDecision(tx, t, actor, loaded, signature, input.comment)) };
    },
    // The ledger lock also makes the re-checks, the count of approvals and the alias move one step across servers.
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  const auditCheckpoint = await checkpointAfterChange(
    store,
    ctx.auditKeys,
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

type SignatureRow = typeof signatures.$inferSelect;
type SignInput = z.output<typeof signPromotionInput>;

/** Four eyes: the requester and everyone in the version's lineage may not sign; the attempt is recorded, then refused. */
async function refuseConflictedSigner(
  ctx: StoreServiceContext,
  request: PromotionRequestRow,
  meaning: SignInput["meaning"],
): Promise<void> {
  const reasons = await readOnStore(asStore(ctx.db), (q, t) => conflictsOfInterestIn(q, t, request.id, ctx.actor.id));
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
function* recordPromotionSignature(
  tx: Tx,
  t: StoreTables,
  actor: SignedInActor,
  requestId: number,
  input: SignInput,
): TxBody<SignatureRow> {
  const user = yield* rereadSigner(tx, t, actor, ["reviewer"]);
  if ((yield* conflictsOfInterestIn(tx, t, requestId, user.id)).length > 0)
    forbidden(`${user.name} became part of this version's lineage while signing: another reviewer must sign`);
  yield* assertSignable(tx, t, actor, input.meaning, requestId);
  const request = (yield* row(tx.select().from(t.promotionRequests).where(eq(t.promotionRequests.id, requestId))))!;
  const signature = (yield* row(
    tx
      .insert(t.signatures)
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
      .returning(),
  ))!;
  yield* appendEvent({
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
function* applyPromotionDecision(
  tx: Tx,
  t: StoreTables,
  actor: SignedInActor,
  loaded: LoadedPromotionRequest,
  signature: SignatureRow,
  comment: string,
): TxBody<{ status: "pending" | "rejected" | "approved"; aliasMoved: boolean }> {
  const { promotionRequests, signatures, models } = t;
  const { request, version, model } = loaded;
  const at = signature.createdAt;
  if (signature.meaning === "review") return { status: "pending", aliasMoved: false };
  if (signature.meaning === "rejection") {
    yield* exec(tx.update(promotionRequests).set({ status: "rejected", decidedAt: at }).where(eq(promotionRequests.id, request.id)));
    yield* appendEvent({
      actor,
      action: "promotion.reject",
      entityType: "promotionRequest",
      entityId: request.id,
      payload: { signatureId: signature.id, comment, status: "rejected", decidedAt: at },
    });
    return { status: "rejected", aliasMoved: false };
  }
  const approvers = new Set(
    (yield* rows(
      tx
        .select({ userId: signatures.userId })
        .from(signatures)
        .where(
          and(eq(signatures.recordType, "promotion_request"), eq(signatures.recordId, request.id), eq(signatures.meaning, "approval")),
        ),
    )).map((s) => s.userId),
  );
  const currentRule = (yield* row(tx.select({ n: models.approvalsRequired }).from(models).where(eq(models.id, model.id))))!.n;
  const required = approvalsRequiredFor(request, currentRule);
  const approved = approvers.size >= required;
  yield* appendEvent({
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
  yield* exec(tx.update(promotionRequests).set({ status: "approved", decidedAt: at }).where(eq(promotionRequests.id, request.id)));
  yield* appendAliasMove(tx, t, actor, {
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
function* assertSignable(
  q: Tx,
  t: StoreTables,
  actor: { id: number; name: string },
  meaning: "approval" | "rejection" | "review",
  requestId: number,
): TxBody<void> {
  const { signatures } = t;
  const { request, version, model, evaluation } = yield* loadPromotionRequestIn(q, t, requestId);
  if (request.status !== "pending")
    wrongState(`promotion request #${request.id} is ${request.status}; only a pending request can be signed`);
  const already = yield* rows(
    q
      .select()
      .from(signatures)
      .where(and(eq(signatures.recordType, "promotion_request"), eq(signatures.recordId, request.id), eq(signatures.userId, actor.id))),
  );
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

export async function withdrawPromotion(ctx: StoreServiceContext, raw: z.input<typeof withdrawPromotionInput>): Promise<{ ok: true }> {
  requireRole(ctx.actor, ["engineer"], "withdraw promotion requests");
  const input = withdrawPromotionInput.parse(raw);
  const store = asStore(ctx.db);
  const t = store.tables;
  const actor = ctx.actor;
  await transact(
    store,
    function* (tx) {
      const { request } = yield* loadPromotionRequestIn(tx, t, input.requestId);
      if (request.requestedBy !== actor.id) forbidden(`only the requester can withdraw promotion request #${request.id}`);
      if (request.status !== "pending") wrongState(`promotion request #${request.id} is ${request.status}`);
      const decidedAt = now();
      yield* exec(tx.update(t.promotionRequests).set({ status: "withdrawn", decidedAt }).where(eq(t.promotionRequests.id, request.id)));
      yield* appendEvent({
        actor,
        action: "promotion.withdraw",
        entityType: "promotionRequest",
        entityId: request.id,
        payload: { reason: input.reason, status: "withdrawn", decidedAt },
      });
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return { ok: true };
}
