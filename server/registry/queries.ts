/**
 * Read side of the model registry: models with their current aliases, one model in full (versions, evaluations,
 * alias history, promotion requests with human-readable signatures), and "which version did alias A point at, at time T".
 *
 * Reads only, and imports no service: the services build on these lookups (findModel, conflictsOfInterest), not the
 * other way round. Where an alias points (now or at T) is decided in ./aliases.ts.
 */
import { and, asc, desc, eq, inArray } from "drizzle-orm";
import { auditEvents, checkpoints, evaluations, modelVersions, models, promotionRequests, runs, signatures, users } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import { invalidInput, notFound } from "@/server/errors";
import { lineageAuthors } from "@/server/lineage/ancestry";
import { aliasMoveAt, aliasMoves, currentAliasTargets } from "./aliases";
import { signatureText, TEST_PARTITION } from "./records";
import { approvalsRequiredFor } from "./approval-rule";
import type { DocumentationRecord } from "./documentation";
import { requestDocumentation } from "./request-documentation";

function userNames(db: DbOrTx, ids: number[]): Map<number, string> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  return new Map(
    db
      .select({ id: users.id, name: users.name })
      .from(users)
      .where(inArray(users.id, unique))
      .all()
      .map((u) => [u.id, u.name]),
  );
}

export function findModel(db: DbOrTx, name: string) {
  const model = db.select().from(models).where(eq(models.name, name)).get();
  if (!model) notFound(`model "${name}"`);
  return model;
}

export function findModelVersion(db: DbOrTx, modelName: string, version: number) {
  const model = findModel(db, modelName);
  const v = db
    .select()
    .from(modelVersions)
    .where(and(eq(modelVersions.modelId, model.id), eq(modelVersions.version, version)))
    .get();
  if (!v) notFound(`version ${version} of model "${modelName}"`);
  return { model, version: v };
}

/** A promotion request with the version, model and evaluation it cites. */
export function loadPromotionRequest(db: DbOrTx, requestId: number) {
  const request = db.select().from(promotionRequests).where(eq(promotionRequests.id, requestId)).get();
  if (!request) notFound(`promotion request ${requestId}`);
  const version = db.select().from(modelVersions).where(eq(modelVersions.id, request.modelVersionId)).get()!;
  const model = db.select().from(models).where(eq(models.id, version.modelId)).get()!;
  const evaluation = db.select().from(evaluations).where(eq(evaluations.id, request.evaluationId)).get()!;
  return { request, version, model, evaluation };
}

/** Why this user may not sign this request (empty when they may): the requester, and everyone in the version's lineage. */
export function conflictsOfInterest(db: DbOrTx, requestId: number, userId: number): string[] {
  const { request, version } = loadPromotionRequest(db, requestId);
  const reasons = lineageAuthors(db, version.id)
    .filter((a) => a.userId === userId)
    .map((a) => a.why);
  if (request.requestedBy === userId) reasons.unshift("requested this promotion");
  return [...new Set(reasons)];
}

/** Current alias → version number of one model, for each alias it has ever had (unset aliases omitted). */
function currentAliases(moves: ReturnType<typeof aliasMoves>, modelId: number, versionNumber: Map<number, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [alias, versionId] of currentAliasTargets(moves).get(modelId) ?? [])
    if (versionId !== null) out[alias] = versionNumber.get(versionId) ?? -1;
  return out;
}

export function listModels(db: DbOrTx) {
  const all = db.select().from(models).orderBy(asc(models.name)).all();
  const versions = db
    .select({ id: modelVersions.id, modelId: modelVersions.modelId, version: modelVersions.version })
    .from(modelVersions)
    .all();
  const events = aliasMoves(db);
  const vnum = new Map(versions.map((v) => [v.id, v.version]));
  const names = userNames(
    db,
    all.map((m) => m.createdBy),
  );
  return all.map((m) => ({
    id: m.id,
    name: m.name,
    description: m.description,
    approvalsRequired: m.approvalsRequired,
    versionCount: versions.filter((v) => v.modelId === m.id).length,
    aliases: currentAliases(events, m.id, vnum),
    createdBy: names.get(m.createdBy) ?? "?",
    createdAt: m.createdAt,
  }));
}

function describeSignature(s: typeof signatures.$inferSelect) {
  return {
    id: s.id,
    userId: s.userId,
    printedName: s.printedName,
    meaning: s.meaning,
    recordSha256: s.recordSha256,
    comment: s.comment,
    createdAt: s.createdAt,
    text: signatureText(s),
  };
}

/**
 * One model in full. `viewerId` adds, per pending request, why the viewer may not sign it (empty: they may), and per
 * request the viewer's own approval or rejection if they signed one (then there is nothing left for them to sign).
 */
export function getModel(db: DbOrTx, name: string, viewerId?: number) {
  const model = findModel(db, name);
  const versions = db
    .select({ v: modelVersions, runName: runs.name, runStatus: runs.status, epoch: checkpoints.epoch, isBest: checkpoints.isBest })
    .from(modelVersions)
    .innerJoin(runs, eq(runs.id, modelVersions.runId))
    .innerJoin(checkpoints, eq(checkpoints.id, modelVersions.checkpointId))
    .where(eq(modelVersions.modelId, model.id))
    .orderBy(desc(modelVersions.version))
    .all();
  const vnum = new Map(versions.map((x) => [x.v.id, x.v.version]));
  const events = aliasMoves(db, model.id);
  const current = currentAliases(events, model.id, vnum);
  const ckIds = versions.map((x) => x.v.checkpointId);
  const evals = ckIds.length ? db.select().from(evaluations).where(inArray(evaluations.checkpointId, ckIds)).all() : [];
  const requests = versions.length
    ? db
        .select()
        .from(promotionRequests)
        .where(
          inArray(
            promotionRequests.modelVersionId,
            versions.map((x) => x.v.id),
          ),
        )
        .orderBy(desc(promotionRequests.id))
        .all()
    : [];
  const sigs = requests.length
    ? db
        .select()
        .from(signatures)
        .where(
          and(
            eq(signatures.recordType, "promotion_request"),
            inArray(
              signatures.recordId,
              requests.map((r) => r.id),
            ),
          ),
        )
        .orderBy(asc(signatures.id))
        .all()
    : [];
  const names = userNames(db, [
    ...versions.map((x) => x.v.createdBy),
    ...events.map((e) => e.movedBy),
    ...requests.map((r) => r.requestedBy),
  ]);
  /** The ledger events of one action about these requests, oldest first. */
  const requestEventsOf = (action: string) =>
    requests.length
      ? db
          .select()
          .from(auditEvents)
          .where(
            and(
              eq(auditEvents.action, action),
              eq(auditEvents.entityType, "promotionRequest"),
              inArray(
                auditEvents.entityId,
                requests.map((r) => String(r.id)),
              ),
            ),
          )
          .orderBy(asc(auditEvents.seq))
          .all()
      : [];
  // Refused self-approvals live only in the audit ledger (the refused call writes nothing else); show them with the request.
  const refused = requestEventsOf("promotion.selfApprovalRefused");
  // The documentation each request was made with lives in its promotion.request event (null: recorded before it did).
  const requestEvents = requestEventsOf("promotion.request");
  // The bar an approved request was decided by is recorded in its last promotion.approve event; it exceeds the rule at
  // request time when the rule was raised while the request was pending.
  const decidedBar = new Map<string, number>();
  for (const e of requestEventsOf("promotion.approve")) {
    const bar = (JSON.parse(e.payload) as { approvalsRequired?: number }).approvalsRequired;
    if (typeof bar === "number") decidedBar.set(e.entityId, bar);
  }
  const documentationOf = new Map(
    requestEvents.map((e) => [e.entityId, (JSON.parse(e.payload) as { documentation?: DocumentationRecord }).documentation ?? null]),
  );

  return {
    id: model.id,
    name: model.name,
    description: model.description,
    approvalsRequired: model.approvalsRequired,
    createdAt: model.createdAt,
    aliases: current,
    versions: versions.map(({ v, runName, runStatus, epoch, isBest }) => {
      const testEvals = evals
        .filter((e) => e.checkpointId === v.checkpointId && e.partition === TEST_PARTITION)
        .sort((a, b) => b.id - a.id);
      const latest = testEvals[0];
      return {
        id: v.id,
        version: v.version,
        runId: v.runId,
        runName,
        runStatus,
        checkpointId: v.checkpointId,
        epoch,
        isBest,
        weightsSha256: v.weightsSha256,
        createdBy: names.get(v.createdBy) ?? "?",
        createdAt: v.createdAt,
        aliases: Object.entries(current)
          .filter(([, n]) => n === v.version)
          .map(([a]) => a),
        testEvaluation: latest
          ? {
              id: latest.id,
              dataSha256: latest.dataSha256,
              metrics: JSON.parse(latest.metricsJson) as Record<string, unknown>,
              createdAt: latest.createdAt,
            }
          : null,
      };
    }),
    aliasHistory: events.map((e) => ({
      id: e.id,
      alias: e.alias,
      version: e.modelVersionId === null ? null : (vnum.get(e.modelVersionId) ?? null),
      modelVersionId: e.modelVersionId,
      promotionRequestId: e.promotionRequestId,
      movedBy: names.get(e.movedBy) ?? "?",
      at: e.createdAt,
    })),
    promotionRequests: requests.map((r) => {
      const mine = sigs.filter((s) => s.recordId === r.id);
      const viewerDecision =
        viewerId === undefined
          ? undefined
          : mine.find((s) => s.userId === viewerId && (s.meaning === "approval" || s.meaning === "rejection"));
      return {
        id: r.id,
        version: vnum.get(r.modelVersionId) ?? null,
        modelVersionId: r.modelVersionId,
        alias: r.alias,
        evaluationId: r.evaluationId,
        rationale: r.rationale,
        recordSha256: r.recordSha256,
        status: r.status,
        requestedBy: names.get(r.requestedBy) ?? "?",
        createdAt: r.createdAt,
        decidedAt: r.decidedAt,
        approvals: new Set(mine.filter((s) => s.meaning === "approval").map((s) => s.userId)).size,
        /** The model's rule when the request was made: what a decided request was judged by. */
        approvalsRequiredAtRequest: r.approvalsRequired,
        /** Pending: what it needs now (its rule, or the model's if raised since). Approved: the bar its deciding
         *  approval recorded. Otherwise: its rule at request time. */
        approvalsRequired:
          r.status === "pending" ? approvalsRequiredFor(r, model.approvalsRequired) : (decidedBar.get(String(r.id)) ?? r.approvalsRequired),
        signatures: mine.map(describeSignature),
        viewerSignature: viewerDecision ? describeSignature(viewerDecision) : null,
        refusedSelfApprovals: refused
          .filter((e) => e.entityId === String(r.id))
          .map((e) => ({
            seq: e.seq,
            who: e.actorName,
            at: e.at,
            reasons: ((JSON.parse(e.payload) as { reasons?: string[] }).reasons ?? []).join("; "),
          })),
        viewerConflicts: viewerId !== undefined && r.status === "pending" ? conflictsOfInterest(db, r.id, viewerId) : [],
        /** The model-card and datasheet sections when requested (from its promotion.request event); null for older requests. */
        documentation: requestDocumentation(documentationOf.get(String(r.id)) ?? null),
      };
    }),
  };
}
export type ModelDetail = ReturnType<typeof getModel>;

/**
 * Which version `alias` of model `name` pointed at, at time `at` (any ISO-8601 time); null if it pointed at nothing.
 * Without `at`: now, by the server's clock when the question is answered (a browser's clock or its page-load time may
 * lag behind a move that just happened).
 */
export function aliasAt(db: DbOrTx, name: string, alias: string, at?: string) {
  const t = at === undefined ? new Date() : new Date(at);
  if (Number.isNaN(t.getTime())) invalidInput(`"${at}" is not a time: use ISO-8601, e.g. 2026-01-31T12:00:00Z`);
  const model = findModel(db, name);
  const move = aliasMoveAt(db, model.id, alias, t.toISOString());
  const version =
    move?.modelVersionId == null
      ? undefined
      : db
          .select({ version: modelVersions.version, weightsSha256: modelVersions.weightsSha256 })
          .from(modelVersions)
          .where(eq(modelVersions.id, move.modelVersionId))
          .get();
  const movedBy = move ? db.select({ name: users.name }).from(users).where(eq(users.id, move.movedBy)).get()?.name : undefined;
  return {
    model: model.name,
    alias,
    at: t.toISOString(),
    version: version?.version ?? null,
    modelVersionId: move?.modelVersionId ?? null,
    weightsSha256: version?.weightsSha256 ?? null,
    since: move?.createdAt ?? null,
    movedBy: movedBy ?? null,
    promotionRequestId: move?.promotionRequestId ?? null,
  };
}

/** The alias's history as intervals: version v from `from` until `to` (null: still current). */
export function aliasTimeline(db: DbOrTx, name: string, alias: string) {
  const detail = getModel(db, name);
  const events = detail.aliasHistory.filter((e) => e.alias === alias);
  return events.map((e, i) => ({ ...e, from: e.at, to: events[i + 1]?.at ?? null }));
}
