/**
 * The registry's signed records and their human-readable signature lines: pure functions of rows, no database.
 * Shared by the promotion service, the registry and document reads, the auditor's report and the content verifier,
 * so the record a reviewer signs and the one a verifier recomputes are built by the same code.
 *
 * Invariant: promotionRecord's shape is what record_sha256 hashes (canonical JSON); changing it breaks every
 * existing signature's binding, so it changes only with a migration of the verifier.
 */
import type { evaluations, modelVersions } from "@/db/schema";

/** The partition a promotion relies on: evaluations on held-out test data only. */
export const TEST_PARTITION = "test";

type VersionRow = typeof modelVersions.$inferSelect;
type EvaluationRow = typeof evaluations.$inferSelect;

/** The record reviewers sign: what is being promoted, where to, and the evidence it relies on. */
export function promotionRecord(modelName: string, alias: string, v: VersionRow, e: EvaluationRow) {
  return {
    model: modelName,
    alias,
    modelVersion: {
      id: v.id,
      version: v.version,
      runId: v.runId,
      checkpointId: v.checkpointId,
      weightsSha256: v.weightsSha256,
      createdBy: v.createdBy,
      createdAt: v.createdAt,
    },
    evaluation: {
      id: e.id,
      runId: e.runId,
      checkpointId: e.checkpointId,
      splitId: e.splitId,
      partition: e.partition,
      dataSha256: e.dataSha256,
      metrics: JSON.parse(e.metricsJson) as unknown,
      confusion: e.confusionJson ? (JSON.parse(e.confusionJson) as unknown) : null,
      createdAt: e.createdAt,
    },
  };
}

const MEANING_VERB = { approval: "Approved", rejection: "Rejected", review: "Reviewed", authorship: "Authored" } as const;

/** The human-readable form shown wherever a signed record is shown. */
export function signatureText(s: {
  printedName: string;
  meaning: keyof typeof MEANING_VERB;
  createdAt: string;
  recordSha256: string;
}): string {
  return `${MEANING_VERB[s.meaning]} by ${s.printedName} on ${s.createdAt.replace(/\.\d+Z$/, "Z")} — meaning: ${s.meaning} — record sha256 ${s.recordSha256.slice(0, 12)}…`;
}
