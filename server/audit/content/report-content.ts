/**
 * What the auditor's report says about content verification: the overall result of the content check run at
 * export (ledger-wide), and for each record the report prints whether it was checked against the ledger (and by
 * which event), failed (and why), or is not covered (and which of its facts). Pure data, part of the report's facts
 * (so it is bound by the export event's factsSha256 like everything else the page prints).
 */
import path from "node:path";
import type Database from "better-sqlite3";
import type { ReportFacts } from "@/server/audit/report/collect-report";
import { checkContent, type ContentCheckResult } from "./verify-content";
import { collectFactsFile, type FactIds, type FactsFile } from "./facts-file";
import { loadTables } from "./tables";

export const MAX_REPORTED_PROBLEMS = 50;

export type EntityContentStatus = {
  status: "checked" | "failed" | "not covered";
  seq: number | null;
  notCovered: string[];
  problems: string[];
};

export type ReportContent = {
  ok: boolean;
  checked: number;
  skipped: string | null;
  problems: { entityType: string; entityId: string; field: string; seq: number | null; message: string }[];
  problemCount: number;
  notCovered: string[];
  /** `${entityType}:${id}` → status, for every record the report prints. */
  entities: Record<string, EntityContentStatus>;
};

export function reportContentStatus(result: ContentCheckResult | null, keys: Iterable<string>): ReportContent | null {
  if (!result) return null;
  const { level, coverage } = result;
  const byEntity = new Map<string, string[]>();
  for (const p of level.problems) {
    const k = `${p.entityType}:${p.entityId}`;
    byEntity.set(k, [...(byEntity.get(k) ?? []), p.message]);
  }
  const entities: Record<string, EntityContentStatus> = {};
  for (const key of [...new Set(keys)].sort()) {
    const cov = coverage.get(key);
    const problems = byEntity.get(key) ?? [];
    entities[key] = problems.length
      ? { status: "failed", seq: cov?.seq ?? null, notCovered: cov?.notCovered ?? [], problems }
      : cov
        ? { status: "checked", seq: cov.seq, notCovered: [...cov.notCovered], problems: [] }
        : { status: "not covered", seq: null, notCovered: [], problems: [] };
  }
  return {
    ok: level.ok,
    checked: level.checked,
    skipped: level.skipped ?? null,
    problems: level.problems
      .slice(0, MAX_REPORTED_PROBLEMS)
      .map(({ entityType, entityId, field, seq, message }) => ({ entityType, entityId, field, seq, message })),
    problemCount: level.problems.length,
    notCovered: level.notCovered,
    entities,
  };
}

/** The entity keys of everything the report prints, from the ids it cites. */
export function reportedEntityKeys(ids: {
  modelId: number;
  modelVersionId: number;
  runIds: number[];
  decisionIds: number[];
  datasetIds: number[];
  datasetVersionIds: number[];
  splitIds: number[];
  checkpointIds: number[];
  evaluationIds: number[];
  requestIds: number[];
  signatureIds: number[];
  documentIds: number[];
  aliasMoveIds: number[];
}): string[] {
  const keys = [`model:${ids.modelId}`, `modelVersion:${ids.modelVersionId}`];
  const add = (type: string, list: number[]) => keys.push(...list.map((id) => `${type}:${id}`));
  add("run", ids.runIds);
  add("decision", ids.decisionIds);
  add("dataset", ids.datasetIds);
  add("datasetVersion", ids.datasetVersionIds);
  add("split", ids.splitIds);
  add("checkpoint", ids.checkpointIds);
  add("evaluation", ids.evaluationIds);
  add("promotionRequest", ids.requestIds);
  add("signature", ids.signatureIds);
  add("document", ids.documentIds);
  add("aliasMove", ids.aliasMoveIds);
  return keys;
}

/** The ids of every record the report prints (for facts.json), from the report's facts. */
export function reportFactIds(f: ReportFacts): FactIds {
  const docs = (sections: { latest: { id: number; signatures: { id: number }[] } | null }[]) =>
    sections.flatMap((s) => (s.latest ? [s.latest] : []));
  const documents = [...docs(f.modelCard), ...f.datasheets.flatMap((d) => docs(d.documents))];
  return {
    model: [f.model.id],
    modelVersion: [f.version.id, ...(f.changes ? [f.changes.previous.id] : [])],
    run: [...f.training.map((r) => r.id), ...(f.changes ? [f.changes.previous.runId] : [])],
    decision: f.decisions.map((d) => d.id),
    checkpoint: [f.version.checkpoint.id, ...f.training.flatMap((r) => (r.parentCheckpointId !== null ? [r.parentCheckpointId] : []))],
    evaluation: [...f.evaluations.map((e) => e.id), ...(f.changes?.previousEvaluationIds ?? [])],
    dataset: f.datasheets.map((d) => d.id),
    datasetVersion: f.datasheets.flatMap((d) => d.versions.map((v) => v.id)),
    split: f.datasheets.flatMap((d) => d.versions.flatMap((v) => v.splits.map((s) => s.id))),
    document: documents.map((d) => d.id),
    signature: [
      ...f.approvals.requests.flatMap((r) => r.signatures.map((s) => s.id)),
      ...documents.flatMap((d) => d.signatures.map((s) => s.id)),
    ],
    promotionRequest: f.approvals.requests.map((r) => r.id),
    aliasMove: f.approvals.aliasMoves.map((a) => a.id),
  };
}

/**
 * For an export: runs the content check (ledger-wide, up to `uptoSeq`) and returns it with a function that, given the
 * report's facts, builds facts.json. Call inside one read transaction with collectReportFacts.
 */
export function contentForExport(
  sqlite: Database.Database,
  uptoSeq: number,
): { result: ContentCheckResult; factsFor: (f: ReportFacts) => FactsFile } {
  const artifactsDir = artifactsDirOf(sqlite);
  const result = checkContent(sqlite, { artifactsDir, uptoSeq, coverage: true });
  return {
    result,
    factsFor: (f) =>
      collectFactsFile(sqlite, result.tables ?? loadTables(sqlite), result.coverage, f.version.id, reportFactIds(f), artifactsDir, uptoSeq),
  };
}

export function artifactsDirOf(sqlite: Database.Database): string {
  return path.join(path.dirname(sqlite.name), "artifacts");
}
