/**
 * Read side of the model registry: models with their current aliases, one model in full (versions, evaluations,
 * alias history, promotion requests with human-readable signatures), and "which version did alias A point at, at time T".
 *
 * Reads only, and imports no service: the services build on these lookups (findModel, conflictsOfInterest), not the
 * other way round. Where an alias points (now or at T) is decided in ./aliases.ts.
 *
 * On the store (issue 16): each read is a part over given tables (./on-store.ts), awaited by the routers on SQLite or
 * PostgreSQL and used inside the services' transaction bodies (the `…In` forms).
 */
import { and, asc, desc, eq, inArray } from "drizzle-orm";
import type { signatures } from "@/db/schema";
import type { Db, DbOrTx, Tx } from "@/db/client";
import { asStore, row, rows, type Store, type StoreTables, type TxBody } from "@/db/store";
import { invalidInput, notFound } from "@/server/errors";
import { lineageAuthorsIn } from "@/server/lineage/ancestry";
import { aliasMoveAtIn, aliasMovesIn, currentAliasTargets, type AliasMove } from "./aliases";
import { signatureText, TEST_PARTITION } from "./records";
import { approvalsRequiredFor } from "./approval-rule";
import type { DocumentationRecord } from "./documentation";
import { requestDocumentation } from "./request-documentation";
import { onSqlite, readOnStore } from "./on-store";

function* userNamesIn(q: Tx, t: StoreTables, ids: number[]): TxBody<Map<number, string>> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  const { users } = t;
  return new Map(
    (yield* rows(q.select({ id: users.id, name: users.name }).from(users).where(inArray(users.id, unique)))).map((u) => [u.id, u.name]),
  );
}

export function* findModelIn(q: Tx, t: StoreTables, name: string) {
  const model = yield* row(q.select().from(t.models).where(eq(t.models.name, name)));
  if (!model) notFound(`model "${name}"`);
  return model;
}

export function* findModelVersionIn(q: Tx, t: StoreTables, modelName: string, version: number) {
  const model = yield* findModelIn(q, t, modelName);
  const { modelVersions } = t;
  const v = yield* row(
    q
      .select()
      .from(modelVersions)
      .where(and(eq(modelVersions.modelId, model.id), eq(modelVersions.version, version))),
  );
  if (!v) notFound(`version ${version} of model "${modelName}"`);
  return { model, version: v };
}

/** findModelVersionIn, synchronously on SQLite (lineage, not on the store yet). */
export function findModelVersion(db: DbOrTx, modelName: string, version: number) {
  return onSqlite(db, (q, t) => findModelVersionIn(q, t, modelName, version));
}

/** A promotion request with the version, model and evaluation it cites. */
export function* loadPromotionRequestIn(q: Tx, t: StoreTables, requestId: number) {
  const { promotionRequests, modelVersions, models, evaluations } = t;
  const request = yield* row(q.select().from(promotionRequests).where(eq(promotionRequests.id, requestId)));
  if (!request) notFound(`promotion request ${requestId}`);
  const version = (yield* row(q.select().from(modelVersions).where(eq(modelVersions.id, request.modelVersionId))))!;
  const model = (yield* row(q.select().from(models).where(eq(models.id, version.modelId))))!;
  const evaluation = (yield* row(q.select().from(evaluations).where(eq(evaluations.id, request.evaluationId))))!;
  return { request, version, model, evaluation };
}
export type LoadedPromotionRequest = Awaited<ReturnType<typeof readPromotionRequest>>;

export function readPromotionRequest(store: Store, requestId: number) {
  return readOnStore(store, (q, t) => loadPromotionRequestIn(q, t, requestId));
}

/** Why this user may not sign this request (empty when they may): the requester, and everyone in the version's lineage. */
export function* conflictsOfInterestIn(q: Tx, t: StoreTables, requestId: number, userId: number): TxBody<string[]> {
  const { request, version } = yield* loadPromotionRequestIn(q, t, requestId);
  const reasons = (yield* lineageAuthorsIn(q, t, version.id)).filter((a) => a.userId === userId).map((a) => a.why);
  if (request.requestedBy === userId) reasons.unshift("requested this promotion");
  return [...new Set(reasons)];
}

/** Current alias → version number of one model, for each alias it has ever had (unset aliases omitted). */
function currentAliases(moves: AliasMove[], modelId: number, versionNumber: Map<number, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [alias, versionId] of currentAliasTargets(moves).get(modelId) ?? [])
    if (versionId !== null) out[alias] = versionNumber.get(versionId) ?? -1;
  return out;
}

/** Byte order of ASCII names (model names are ASCII), the same on both stores whatever PostgreSQL's collation. */
const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function* listModelsIn(q: Tx, t: StoreTables) {
  const { models, modelVersions } = t;
  const all = (yield* rows(q.select().from(models))).sort(byName);
  const versions = yield* rows(
    q.select({ id: modelVersions.id, modelId: modelVersions.modelId, version: modelVersions.version }).from(modelVersions),
  );
  const events = yield* aliasMovesIn(q, t);
  const vnum = new Map(versions.map((v) => [v.id, v.version]));
  const names = yield* userNamesIn(
    q,
    t,
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

export function listModels(store: Store | Db) {
  return readOnStore(asStore(store), listModelsIn);
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

/** getModel's reads, as one part. */
function* getModelIn(q: Tx, t: StoreTables, name: string, viewerId?: number) {
  const { modelVersions, runs, checkpoints, evaluations, promotionRequests, auditEvents } = t;
  const model = yield* findModelIn(q, t, name);
  const versions = yield* rows(
    q
      .select({ v: modelVersions, runName: runs.name, runStatus: runs.status, epoch: checkpoints.epoch, isBest: checkpoints.isBest })
      .from(modelVersions)
      .innerJoin(runs, eq(runs.id, modelVersions.runId))
      .innerJoin(checkpoints, eq(checkpoints.id, modelVersions.checkpointId))
      .where(eq(modelVersions.modelId, model.id))
      .orderBy(desc(modelVersions.version)),
  );
  const vnum = new Map(versions.map((x) => [x.v.id, x.v.version]));
  const events = yield* aliasMovesIn(q, t, model.id);
  const current = currentAliases(events, model.id, vnum);
  const ckIds = versions.map((x) => x.v.checkpointId);
  const evals = ckIds.length ? yield* rows(q.select().from(evaluations).where(inArray(evaluations.checkpointId, ckIds))) : [];
  const requests = versions.length
    ? yield* rows(
        q
          .select()
          .from(promotionRequests)
          .where(
            inArray(
              promotionRequests.modelVersionId,
              versions.map((x) => x.v.id),
            ),
          )
          .orderBy(desc(promotionRequests.id)),
      )
    : [];
  const sigs = yield* promotionSignaturesIn(
    q,
    t,
    requests.map((r) => r.id),
  );
  const names = yield* userNamesIn(q, t, [
    ...versions.map((x) => x.v.createdBy),
    ...events.map((e) => e.movedBy),
    ...requests.map((r) => r.requestedBy),
  ]);
  /** The ledger events of one action about these requests, oldest first. */
  function* requestEventsOf(action: string) {
    return requests.length
      ? yield* rows(
          q
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
            .orderBy(asc(auditEvents.seq)),
        )
      : [];
  }
  // Refused self-approvals live only in the audit ledger (the refused call writes nothing else); show them with the request.
  const refused = yield* requestEventsOf("promotion.selfApprovalRefused");
  // The documentation each request was made with lives in its promotion.request event (null: recorded before it did).
  const requestEvents = yield* requestEventsOf("promotion.request");
  // The bar an approved request was decided by is recorded in its last promotion.approve event; it exceeds the rule at
  // request time when the rule was raised while the request was pending.
  const decidedBar = new Map<string, number>();
  for (const e of yield* requestEventsOf("promotion.approve")) {
    const bar = (JSON.parse(e.payload) as { approvalsRequired?: number }).approvalsRequired;
    if (typeof bar === "number") decidedBar.set(e.entityId, bar);
  }
  const documentationOf = new Map(
    requestEvents.map((e) => [e.entityId, (JSON.parse(e.payload) as { documentation?: DocumentationRecord }).documentation ?? null]),
  );
  // Why the viewer may not sign each pending request (read here: the mapping below cannot query).
  const viewerConflictsOf = new Map<number, string[]>();
  if (viewerId !== undefined)
    for (const r of requests) if (r.status === "pending") viewerConflictsOf.set(r.id, yield* conflictsOfInterestIn(q, t, r.id, viewerId));

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
        viewerConflicts: viewerConflictsOf.get(r.id) ?? [],
        /** The model-card and datasheet sections when requested (from its promotion.request event); null for older requests. */
        documentation: requestDocumentation(documentationOf.get(String(r.id)) ?? null),
      };
    }),
  };
}

/**
 * One model in full. `viewerId` adds, per pending request, why the viewer may not sign it (empty: they may), and per
 * request the viewer's own approval or rejection if they signed one (then there is nothing left for them to sign).
 */
export function getModel(store: Store | Db, name: string, viewerId?: number) {
  return readOnStore(asStore(store), (q, t) => getModelIn(q, t, name, viewerId));
}
export type ModelDetail = Awaited<ReturnType<typeof getModel>>;

/**
 * Which version `alias` of model `name` pointed at, at time `at` (any ISO-8601 time); null if it pointed at nothing.
 * Without `at`: now, by the server's clock when the question is answered (a browser's clock or its page-load time may
 * lag behind a move that just happened).
 */
export async function aliasAt(store: Store | Db, name: string, alias: string, at?: string) {
  const t = at === undefined ? new Date() : new Date(at);
  if (Number.isNaN(t.getTime())) invalidInput(`"${at}" is not a time: use ISO-8601, e.g. 2026-01-31T12:00:00Z`);
  return readOnStore(asStore(store), function* (q, tables) {
    const { modelVersions, users } = tables;
    const model = yield* findModelIn(q, tables, name);
    const move = yield* aliasMoveAtIn(q, tables, model.id, alias, t.toISOString());
    const version =
      move?.modelVersionId == null
        ? undefined
        : yield* row(
            q
              .select({ version: modelVersions.version, weightsSha256: modelVersions.weightsSha256 })
              .from(modelVersions)
              .where(eq(modelVersions.id, move.modelVersionId)),
          );
    const movedBy = move ? (yield* row(q.select({ name: users.name }).from(users).where(eq(users.id, move.movedBy))))?.name : undefined;
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
  });
}

/** The alias's history as intervals: version v from `from` until `to` (null: still current). */
export async function aliasTimeline(store: Store | Db, name: string, alias: string) {
  const detail = await getModel(store, name);
  const events = detail.aliasHistory.filter((e) => e.alias === alias);
  return events.map((e, i) => ({ ...e, from: e.at, to: events[i + 1]?.at ?? null }));
}

/** The signatures (approvals and rejections) on these promotion requests, oldest first. */
export function* promotionSignaturesIn(q: Tx, t: StoreTables, requestIds: readonly number[]): TxBody<(typeof signatures.$inferSelect)[]> {
  if (requestIds.length === 0) return [];
  const { signatures: s } = t;
  return yield* rows(
    q
      .select()
      .from(s)
      .where(and(eq(s.recordType, "promotion_request"), inArray(s.recordId, [...requestIds])))
      .orderBy(asc(s.id)),
  );
}
