/**
 * Gathers every fact the auditor's report shows for one model version, in one read, as plain data (report.json).
 * Builds on the lineage facts (server/lineage/collect.ts) and adds what only the report needs: the model card and
 * datasheets written by people, cleaning reports and split manifests, training environments and curves, confusion
 * matrices, refused self-approvals, the changes since the previous production version, and the ledger events that
 * back each fact (cited by seq, proven in the integrity appendix).
 *
 * Invariants: reads only; deterministic for the same database state except `generatedAt`; never includes raw
 * data rows (hashes, counts, recipes and statistics only).
 */
import { and, asc, eq, inArray } from "drizzle-orm";
import { auditEvents, datasets, datasetVersions, evaluations, metrics, runs, splits, users } from "@/db/schema";
import { aliasesOfVersion, aliasMoves } from "@/server/registry/aliases";
import type { DbOrTx } from "@/db/client";
import { diffConfigs, type TrainingConfig } from "@/contracts/training-config";
import type { CleaningReport, DatasetSchema, SplitManifest } from "@/trainer/types";
import { collectLineage } from "@/server/lineage/collect";
import { documentsFor, type DocumentSection } from "@/server/documents/queries";
import { signatureText } from "@/server/registry/records";
import type { ContentCheckResult } from "@/server/audit/content/verify-content";
import { reportContentStatus, reportedEntityKeys } from "@/server/audit/content/report-content";

export const REPORT_FORMAT = "runledger-auditors-report/1";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const parse = <T>(s: string | null): T | null => (s === null ? null : (JSON.parse(s) as T));

/**
 * The configuration changes between two runs, in the report's shape (before/after). One diff for the whole app:
 * contracts/training-config.ts, the same one the fork dialog and the run service use to record decisions.
 */
function reportConfigChanges(before: unknown, after: unknown): { path: string; before: unknown; after: unknown }[] {
  return diffConfigs(before, after).map((d) => ({ path: d.path, before: d.oldValue, after: d.newValue }));
}

const CURVE_KEYS = ["loss", "val_loss", "accuracy", "val_accuracy", "mae", "val_mae", "lr"] as const;

/** Previous production version: what production pointed at before this version's latest move there, or the current production when this version never got there. */
function previousProductionVersionId(db: DbOrTx, modelId: number, versionId: number): number | null {
  const moves = aliasMoves(db, modelId).filter((m) => m.alias === "production");
  const lastHere = moves.map((m, i) => ({ m, i })).filter(({ m }) => m.modelVersionId === versionId).at(-1);
  const candidates = lastHere ? moves.slice(0, lastHere.i) : moves;
  for (let i = candidates.length - 1; i >= 0; i--) {
    const v = candidates[i]!.modelVersionId;
    if (v !== null && v !== versionId) return v;
  }
  return null;
}

/** `content`: the content check run at export (ledger-wide); the report labels each record it prints with its result. */
export function collectReportFacts(db: DbOrTx, modelVersionId: number, content: ContentCheckResult | null = null) {
  const lineage = collectLineage(db, modelVersionId);
  const runIds = lineage.runs.map((r) => r.id);
  const runRows = runIds.length ? db.select().from(runs).where(inArray(runs.id, runIds)).all() : [];
  const runById = new Map(runRows.map((r) => [r.id, r]));
  const dvRows = lineage.datasetVersions.length ? db.select().from(datasetVersions).where(inArray(datasetVersions.id, lineage.datasetVersions.map((v) => v.id))).all() : [];
  const splitRows = lineage.splits.length ? db.select().from(splits).where(inArray(splits.id, lineage.splits.map((s) => s.id))).all() : [];
  const evalRows = db
    .select({ e: evaluations, createdByName: users.name })
    .from(evaluations)
    .innerJoin(users, eq(users.id, evaluations.createdBy))
    .where(eq(evaluations.checkpointId, lineage.version.checkpointId))
    .orderBy(asc(evaluations.id))
    .all();
  const curvePoints = runIds.length
    ? db.select({ runId: metrics.runId, key: metrics.key, epoch: metrics.epoch, value: metrics.value }).from(metrics).where(and(inArray(metrics.runId, runIds), inArray(metrics.key, [...CURVE_KEYS]))).orderBy(asc(metrics.step)).all()
    : [];
  const allAliases = aliasMoves(db, lineage.model.id);
  const aliasesNow = aliasesOfVersion(db, lineage.model.id, lineage.version.id);

  const modelCard = documentsFor(db, "model", lineage.model.id).sections;

  const checkpoint = lineage.checkpoints.find((c) => c.id === lineage.version.checkpointId)!;
  const trainingRuns = lineage.runs.map((r) => {
    const row = runById.get(r.id)!;
    const config = JSON.parse(row.configJson) as TrainingConfig;
    const curves: Record<string, { x: number; y: number }[]> = {};
    for (const p of curvePoints.filter((p) => p.runId === r.id)) (curves[p.key] ??= []).push({ x: p.epoch, y: p.value });
    return {
      ...r,
      backendReason: row.backendReason,
      environment: parse<Record<string, Json>>(row.environmentJson),
      paramCount: row.paramCount,
      memory: parse<Record<string, Json>>(row.memoryJson),
      config,
      curves,
    };
  });

  const schemaRows = lineage.datasets.length ? db.select({ id: datasets.id, schemaJson: datasets.schemaJson }).from(datasets).where(inArray(datasets.id, lineage.datasets.map((d) => d.id))).all() : [];
  const datasheets = lineage.datasets.map((d) => ({
    ...d,
    /** Column names in file order (the split manifest's statistics are keyed by name, sorted). */
    columns: (JSON.parse(schemaRows.find((r) => r.id === d.id)?.schemaJson ?? '{"columns":[]}') as DatasetSchema).columns.map((c) => c.name),
    documents: documentsFor(db, "dataset", d.id).sections,
    versions: dvRows
      .filter((v) => v.datasetId === d.id)
      .map((v) => ({
        id: v.id,
        recipe: JSON.parse(v.recipeJson) as Json,
        recipeSha256: v.recipeSha256,
        report: JSON.parse(v.reportJson) as CleaningReport,
        sha256: v.sha256,
        rowCount: v.rowCount,
        createdAt: v.createdAt,
        splits: splitRows.filter((s) => s.datasetVersionId === v.id).map((s) => ({ id: s.id, spec: JSON.parse(s.specJson) as Json, manifest: JSON.parse(s.manifestJson) as SplitManifest, sha256: s.sha256, createdAt: s.createdAt })),
      })),
  }));

  const evaluationsOut = evalRows.map(({ e, createdByName }) => ({ id: e.id, runId: e.runId, partition: e.partition, splitId: e.splitId, dataSha256: e.dataSha256, source: e.source, createdBy: createdByName, metrics: JSON.parse(e.metricsJson) as Record<string, Json>, confusion: parse<{ labels: string[]; matrix: number[][] }>(e.confusionJson), createdAt: e.createdAt }));

  const requestIds = lineage.promotionRequests.map((r) => String(r.id));
  const refused = requestIds.length
    ? db.select().from(auditEvents).where(and(eq(auditEvents.action, "promotion.selfApprovalRefused"), eq(auditEvents.entityType, "promotionRequest"), inArray(auditEvents.entityId, requestIds))).orderBy(asc(auditEvents.seq)).all()
    : [];
  const approvals = {
    approvalsRequired: lineage.model.approvalsRequired,
    requests: lineage.promotionRequests.map((p) => ({
      ...p,
      signatures: lineage.signatures.filter((s) => s.requestId === p.id).map((s) => ({ ...s, text: signatureText(s) })),
      refusedSelfApprovals: refused.filter((e) => e.entityId === String(p.id)).map((e) => ({ seq: e.seq, who: e.actorName, at: e.at, reasons: (JSON.parse(e.payload) as { reasons?: string[] }).reasons ?? [] })),
    })),
    aliasMoves: allAliases.filter((a) => a.modelVersionId === lineage.version.id).map((a) => ({ id: a.id, alias: a.alias, promotionRequestId: a.promotionRequestId, movedBy: lineage.aliasMoves.find((m) => m.id === a.id)?.movedBy.name ?? `user #${a.movedBy}`, at: a.createdAt })),
  };

  const prevId = previousProductionVersionId(db, lineage.model.id, lineage.version.id);
  let changes: null | {
    previous: { id: number; version: number; weightsSha256: string; runId: number; configSha256: string };
    weightsChanged: boolean;
    configChanges: ReturnType<typeof reportConfigChanges>;
    dataChanged: { datasetVersion: boolean; split: boolean; before: { datasetVersionId: number | null; splitId: number | null }; after: { datasetVersionId: number | null; splitId: number | null } };
    testMetrics: { key: string; before: number | null; after: number | null }[];
    newDecisionIds: number[];
    /** The previous version's evaluations (the "before" test metrics come from its latest test one). */
    previousEvaluationIds: number[];
  } = null;
  const previousKeys: string[] = [];
  if (prevId !== null) {
    const prev = collectLineage(db, prevId);
    previousKeys.push(`modelVersion:${prev.version.id}`, `run:${prev.version.runId}`, ...prev.evaluations.map((e) => `evaluation:${e.id}`));
    const prevRun = db.select().from(runs).where(eq(runs.id, prev.version.runId)).get()!;
    const thisRun = runById.get(lineage.version.runId)!;
    const testOf = (rows: { partition: string; metrics: Record<string, unknown> }[]) => rows.filter((e) => e.partition === "test").at(-1)?.metrics ?? {};
    const before = testOf(prev.evaluations), after = testOf(evaluationsOut);
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => typeof before[k] === "number" || typeof after[k] === "number").sort();
    const prevDecisionIds = new Set(prev.decisions.map((d) => d.id));
    changes = {
      previous: { id: prev.version.id, version: prev.version.version, weightsSha256: prev.version.weightsSha256, runId: prev.version.runId, configSha256: prevRun.configSha256 },
      weightsChanged: prev.version.weightsSha256 !== lineage.version.weightsSha256,
      configChanges: reportConfigChanges(JSON.parse(prevRun.configJson), JSON.parse(thisRun.configJson)),
      dataChanged: {
        datasetVersion: prevRun.datasetVersionId !== thisRun.datasetVersionId,
        split: prevRun.splitId !== thisRun.splitId,
        before: { datasetVersionId: prevRun.datasetVersionId, splitId: prevRun.splitId },
        after: { datasetVersionId: thisRun.datasetVersionId, splitId: thisRun.splitId },
      },
      testMetrics: keys.map((k) => ({ key: k, before: typeof before[k] === "number" ? before[k] : null, after: typeof after[k] === "number" ? after[k] : null })),
      newDecisionIds: lineage.decisions.filter((d) => !prevDecisionIds.has(d.id)).map((d) => d.id),
      previousEvaluationIds: prev.evaluations.map((e) => e.id),
    };
  }

  const reported = {
    modelId: lineage.model.id,
    modelVersionId: lineage.version.id,
    runIds,
    decisionIds: lineage.decisions.map((d) => d.id),
    datasetIds: lineage.datasets.map((d) => d.id),
    datasetVersionIds: lineage.datasetVersions.map((v) => v.id),
    splitIds: lineage.splits.map((s) => s.id),
    checkpointIds: lineage.checkpoints.map((c) => c.id),
    evaluationIds: evaluationsOut.map((e) => e.id),
    requestIds: lineage.promotionRequests.map((r) => r.id),
    signatureIds: [...lineage.signatures.map((s) => s.id), ...signatureIdsOf(modelCard), ...datasheets.flatMap((d) => signatureIdsOf(d.documents))],
    documentIds: [...documentIdsOf(modelCard), ...datasheets.flatMap((d) => documentIdsOf(d.documents))],
  };
  const cited = citedEvents(db, reported);

  return {
    format: REPORT_FORMAT,
    model: { id: lineage.model.id, name: lineage.model.name, approvalsRequired: lineage.model.approvalsRequired },
    version: { ...lineage.version, aliases: aliasesNow, checkpoint: { id: checkpoint.id, runId: checkpoint.runId, epoch: checkpoint.epoch, step: checkpoint.step, bytes: checkpoint.bytes, sha256: checkpoint.sha256, isBest: checkpoint.isBest, metrics: checkpoint.metrics, createdAt: checkpoint.createdAt } },
    modelCard,
    decisions: lineage.decisions.map((d) => ({ ...d, runName: lineage.runs.find((r) => r.id === d.runId)?.name ?? `run #${d.runId}` })),
    datasheets,
    training: trainingRuns,
    evaluations: evaluationsOut,
    approvals,
    changes,
    citedEvents: cited,
    content: reportContentStatus(content, [...reportedEntityKeys({ ...reported, aliasMoveIds: approvals.aliasMoves.map((a) => a.id) }), ...previousKeys]),
  };
}
export type ReportFacts = ReturnType<typeof collectReportFacts>;

function documentIdsOf(sections: DocumentSection[]): number[] {
  return sections.flatMap((s) => (s.latest ? [s.latest.id] : []));
}
function signatureIdsOf(sections: DocumentSection[]): number[] {
  return sections.flatMap((s) => s.latest?.signatures.map((x) => x.id) ?? []);
}

export type CitedEvent = { seq: number; at: string; action: string; entityType: string; entityId: string; actorName: string; leafHash: string };

/** Ledger events about the entities the report shows (ascending seq). Alias moves are kept only when they involve this version. */
function citedEvents(
  db: DbOrTx,
  ids: { modelId: number; modelVersionId: number; runIds: number[]; decisionIds: number[]; datasetIds: number[]; datasetVersionIds: number[]; splitIds: number[]; checkpointIds: number[]; evaluationIds: number[]; requestIds: number[]; signatureIds: number[]; documentIds: number[] },
): CitedEvent[] {
  const byType: [string, number[]][] = [
    ["modelVersion", [ids.modelVersionId]],
    ["run", ids.runIds],
    ["decision", ids.decisionIds],
    ["dataset", ids.datasetIds],
    ["datasetVersion", ids.datasetVersionIds],
    ["split", ids.splitIds],
    ["checkpoint", ids.checkpointIds],
    ["evaluation", ids.evaluationIds],
    ["promotionRequest", ids.requestIds],
    ["signature", ids.signatureIds],
    ["document", ids.documentIds],
  ];
  const rows: (typeof auditEvents.$inferSelect)[] = [];
  for (const [type, list] of byType) {
    if (list.length === 0) continue;
    rows.push(...db.select().from(auditEvents).where(and(eq(auditEvents.entityType, type), inArray(auditEvents.entityId, [...new Set(list)].map(String)))).all());
  }
  const modelEvents = db.select().from(auditEvents).where(and(eq(auditEvents.entityType, "model"), eq(auditEvents.entityId, String(ids.modelId)))).all();
  for (const e of modelEvents) {
    if (e.action !== "alias.move") {
      rows.push(e);
      continue;
    }
    const p = JSON.parse(e.payload) as { toModelVersionId?: number | null; fromModelVersionId?: number | null };
    if (p.toModelVersionId === ids.modelVersionId || p.fromModelVersionId === ids.modelVersionId) rows.push(e);
  }
  const seen = new Set<number>();
  return rows
    .filter((r) => (seen.has(r.seq) ? false : (seen.add(r.seq), true)))
    .sort((a, b) => a.seq - b.seq)
    .map((r) => ({ seq: r.seq, at: r.at, action: r.action, entityType: r.entityType, entityId: r.entityId, actorName: r.actorName, leafHash: r.leafHash }));
}
