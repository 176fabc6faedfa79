/**
 * Read side of the model registry: models with their current aliases, one model in full (versions, evaluations,
 * alias history, promotion requests with human-readable signatures), and "which version did alias A point at, at time T".
 *
 * Invariant used throughout: an alias's value at time T is its latest model_alias_events row with created_at ≤ T
 * (ties broken by id); a row with a null version means the alias was unset.
 */
import { and, asc, desc, eq, inArray, lte } from "drizzle-orm";
import { auditEvents, checkpoints, evaluations, modelAliasEvents, modelVersions, models, promotionRequests, runs, signatures, users } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import { invalidInput } from "@/server/errors";
import { findModel } from "@/server/registry/service";
import { conflictsOfInterest, signatureText, TEST_PARTITION } from "@/server/registry/promotions";

function userNames(db: DbOrTx, ids: number[]): Map<number, string> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  return new Map(db.select({ id: users.id, name: users.name }).from(users).where(inArray(users.id, unique)).all().map((u) => [u.id, u.name]));
}

/** Current alias → version number for each alias a model has ever had (unset aliases omitted). */
function currentAliases(events: (typeof modelAliasEvents.$inferSelect)[], versionNumber: Map<number, number>): Record<string, number> {
  const latest = new Map<string, typeof modelAliasEvents.$inferSelect>();
  for (const e of [...events].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id - b.id)) latest.set(e.alias, e);
  const out: Record<string, number> = {};
  for (const [alias, e] of latest) if (e.modelVersionId !== null) out[alias] = versionNumber.get(e.modelVersionId) ?? -1;
  return out;
}

export function listModels(db: DbOrTx) {
  const all = db.select().from(models).orderBy(asc(models.name)).all();
  const versions = db.select({ id: modelVersions.id, modelId: modelVersions.modelId, version: modelVersions.version }).from(modelVersions).all();
  const events = db.select().from(modelAliasEvents).all();
  const vnum = new Map(versions.map((v) => [v.id, v.version]));
  const names = userNames(db, all.map((m) => m.createdBy));
  return all.map((m) => ({
    id: m.id,
    name: m.name,
    description: m.description,
    approvalsRequired: m.approvalsRequired,
    versionCount: versions.filter((v) => v.modelId === m.id).length,
    aliases: currentAliases(events.filter((e) => e.modelId === m.id), vnum),
    createdBy: names.get(m.createdBy) ?? "?",
    createdAt: m.createdAt,
  }));
}

function describeSignature(s: typeof signatures.$inferSelect) {
  return { id: s.id, userId: s.userId, printedName: s.printedName, meaning: s.meaning, recordSha256: s.recordSha256, comment: s.comment, createdAt: s.createdAt, text: signatureText(s) };
}

/** One model in full. `viewerId` adds, per pending request, why the viewer may not sign it (empty: they may). */
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
  const events = db.select().from(modelAliasEvents).where(eq(modelAliasEvents.modelId, model.id)).orderBy(asc(modelAliasEvents.createdAt), asc(modelAliasEvents.id)).all();
  const current = currentAliases(events, vnum);
  const ckIds = versions.map((x) => x.v.checkpointId);
  const evals = ckIds.length ? db.select().from(evaluations).where(inArray(evaluations.checkpointId, ckIds)).all() : [];
  const requests = versions.length ? db.select().from(promotionRequests).where(inArray(promotionRequests.modelVersionId, versions.map((x) => x.v.id))).orderBy(desc(promotionRequests.id)).all() : [];
  const sigs = requests.length ? db.select().from(signatures).where(and(eq(signatures.recordType, "promotion_request"), inArray(signatures.recordId, requests.map((r) => r.id)))).orderBy(asc(signatures.id)).all() : [];
  const names = userNames(db, [...versions.map((x) => x.v.createdBy), ...events.map((e) => e.movedBy), ...requests.map((r) => r.requestedBy)]);
  // Refused self-approvals live only in the audit ledger (the refused call writes nothing else); show them with the request.
  const refused = requests.length
    ? db.select().from(auditEvents).where(and(eq(auditEvents.action, "promotion.selfApprovalRefused"), eq(auditEvents.entityType, "promotionRequest"), inArray(auditEvents.entityId, requests.map((r) => String(r.id))))).orderBy(asc(auditEvents.seq)).all()
    : [];

  return {
    id: model.id,
    name: model.name,
    description: model.description,
    approvalsRequired: model.approvalsRequired,
    createdAt: model.createdAt,
    aliases: current,
    versions: versions.map(({ v, runName, runStatus, epoch, isBest }) => {
      const testEvals = evals.filter((e) => e.checkpointId === v.checkpointId && e.partition === TEST_PARTITION).sort((a, b) => b.id - a.id);
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
        aliases: Object.entries(current).filter(([, n]) => n === v.version).map(([a]) => a),
        testEvaluation: latest ? { id: latest.id, dataSha256: latest.dataSha256, metrics: JSON.parse(latest.metricsJson) as Record<string, unknown>, createdAt: latest.createdAt } : null,
      };
    }),
    aliasHistory: events.map((e) => ({ id: e.id, alias: e.alias, version: e.modelVersionId === null ? null : (vnum.get(e.modelVersionId) ?? null), modelVersionId: e.modelVersionId, promotionRequestId: e.promotionRequestId, movedBy: names.get(e.movedBy) ?? "?", at: e.createdAt })),
    promotionRequests: requests.map((r) => {
      const mine = sigs.filter((s) => s.recordId === r.id);
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
        signatures: mine.map(describeSignature),
        refusedSelfApprovals: refused.filter((e) => e.entityId === String(r.id)).map((e) => ({ seq: e.seq, who: e.actorName, at: e.at, reasons: ((JSON.parse(e.payload) as { reasons?: string[] }).reasons ?? []).join("; ") })),
        viewerConflicts: viewerId !== undefined && r.status === "pending" ? conflictsOfInterest(db, r.id, viewerId) : [],
      };
    }),
  };
}
export type ModelDetail = ReturnType<typeof getModel>;

/** Which version `alias` of model `name` pointed at, at time `at` (any ISO-8601 time); null if it pointed at nothing. */
export function aliasAt(db: DbOrTx, name: string, alias: string, at: string) {
  const t = new Date(at);
  if (Number.isNaN(t.getTime())) invalidInput(`"${at}" is not a time: use ISO-8601, e.g. 2026-01-31T12:00:00Z`);
  const model = findModel(db, name);
  const event = db
    .select({ e: modelAliasEvents, version: modelVersions.version, weightsSha256: modelVersions.weightsSha256, movedBy: users.name })
    .from(modelAliasEvents)
    .leftJoin(modelVersions, eq(modelVersions.id, modelAliasEvents.modelVersionId))
    .innerJoin(users, eq(users.id, modelAliasEvents.movedBy))
    .where(and(eq(modelAliasEvents.modelId, model.id), eq(modelAliasEvents.alias, alias), lte(modelAliasEvents.createdAt, t.toISOString())))
    .orderBy(desc(modelAliasEvents.createdAt), desc(modelAliasEvents.id))
    .limit(1)
    .get();
  return {
    model: model.name,
    alias,
    at: t.toISOString(),
    version: event?.version ?? null,
    modelVersionId: event?.e.modelVersionId ?? null,
    weightsSha256: event?.weightsSha256 ?? null,
    since: event?.e.createdAt ?? null,
    movedBy: event?.movedBy ?? null,
    promotionRequestId: event?.e.promotionRequestId ?? null,
  };
}

/** The alias's history as intervals: version v from `from` until `to` (null: still current). */
export function aliasTimeline(db: DbOrTx, name: string, alias: string) {
  const detail = getModel(db, name);
  const events = detail.aliasHistory.filter((e) => e.alias === alias);
  return events.map((e, i) => ({ ...e, from: e.at, to: events[i + 1]?.at ?? null }));
}
