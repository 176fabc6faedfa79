/**
 * Gathers every fact the auditor's report shows for one model version, in one read, as plain data (report.json).
 * Builds on the lineage facts (server/lineage/collect.ts) and adds what only the report needs, one module per
 * report section in facts/: the model card and datasheets written by people, cleaning reports and split manifests
 * (datasheets.ts), training environments and curves (training-runs.ts), evaluations with confusion matrices
 * (evaluations.ts), signatures and refused self-approvals (approvals.ts), the changes since the previous production
 * version (changes.ts), the in-flight decisions of piloted runs (interventions.ts), and the ledger events that back
 * each fact (cited-events.ts).
 *
 * Invariants: reads only; deterministic for the same database state except `generatedAt`; never includes raw
 * data rows (hashes, counts, recipes and statistics only). The keys of the returned object keep their order
 * (report.json is written in it; its sha256 in the ledger is over canonical JSON).
 */
import type { DbOrTx } from "@/db/client";
import { collectLineage } from "@/server/lineage/collect";
import { documentsFor } from "@/server/documents/queries";
import { aliasesOfVersion } from "@/server/registry/aliases";
import type { ContentCheckResult } from "@/server/audit/content/verify-content";
import { reportContentStatus, reportedEntityKeys } from "@/server/audit/content/report-content";
import { approvalFacts } from "./facts/approvals";
import { changesSincePreviousProduction } from "./facts/changes";
import { citedEvents, documentIdsOf, signatureIdsOf, type ReportedIds } from "./facts/cited-events";
import { datasheetFacts } from "./facts/datasheets";
import { evaluationFacts } from "./facts/evaluations";
import { trainingRunFacts } from "./facts/training-runs";
import { interventionFacts } from "./facts/interventions";

export const REPORT_FORMAT = "runledger-auditors-report/1";

/** `content`: the content check run at export (ledger-wide); the report labels each record it prints with its result. */
export function collectReportFacts(db: DbOrTx, modelVersionId: number, content: ContentCheckResult | null = null) {
  const lineage = collectLineage(db, modelVersionId);
  const { runById, training } = trainingRunFacts(db, lineage);
  const evaluations = evaluationFacts(db, lineage.version.checkpointId);
  const modelCard = documentsFor(db, "model", lineage.model.id).sections;
  const datasheets = datasheetFacts(db, lineage);
  const approvals = approvalFacts(db, lineage);
  const { changes, previousKeys } = changesSincePreviousProduction(db, lineage, runById.get(lineage.version.runId)!, evaluations);
  const checkpoint = lineage.checkpoints.find((c) => c.id === lineage.version.checkpointId)!;

  const reported: ReportedIds = {
    modelId: lineage.model.id,
    modelVersionId: lineage.version.id,
    runIds: lineage.runs.map((r) => r.id),
    decisionIds: lineage.decisions.map((d) => d.id),
    datasetIds: lineage.datasets.map((d) => d.id),
    datasetVersionIds: lineage.datasetVersions.map((v) => v.id),
    splitIds: lineage.splits.map((s) => s.id),
    checkpointIds: lineage.checkpoints.map((c) => c.id),
    evaluationIds: evaluations.map((e) => e.id),
    requestIds: lineage.promotionRequests.map((r) => r.id),
    signatureIds: [
      ...lineage.signatures.map((s) => s.id),
      ...signatureIdsOf(modelCard),
      ...datasheets.flatMap((d) => signatureIdsOf(d.documents)),
    ],
    documentIds: [...documentIdsOf(modelCard), ...datasheets.flatMap((d) => documentIdsOf(d.documents))],
  };

  return {
    format: REPORT_FORMAT,
    model: { id: lineage.model.id, name: lineage.model.name, approvalsRequired: lineage.model.approvalsRequired },
    version: {
      ...lineage.version,
      aliases: aliasesOfVersion(db, lineage.model.id, lineage.version.id),
      checkpoint: {
        id: checkpoint.id,
        runId: checkpoint.runId,
        epoch: checkpoint.epoch,
        step: checkpoint.step,
        bytes: checkpoint.bytes,
        sha256: checkpoint.sha256,
        isBest: checkpoint.isBest,
        metrics: checkpoint.metrics,
        createdAt: checkpoint.createdAt,
      },
    },
    modelCard,
    decisions: lineage.decisions.map((d) => ({ ...d, runName: lineage.runs.find((r) => r.id === d.runId)?.name ?? `run #${d.runId}` })),
    /** In-flight decisions (interventions applied while a run trained). Absent from report.json of older bundles. */
    interventions: interventionFacts(db, lineage) as ReturnType<typeof interventionFacts> | undefined,
    datasheets,
    training,
    evaluations,
    approvals,
    changes,
    citedEvents: citedEvents(db, reported),
    content: reportContentStatus(content, [
      ...reportedEntityKeys({ ...reported, aliasMoveIds: approvals.aliasMoves.map((a) => a.id) }),
      ...previousKeys,
    ]),
  };
}
export type ReportFacts = ReturnType<typeof collectReportFacts>;
