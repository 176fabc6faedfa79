/**
 * Phase 1 of a report export (reads only; the heavy part): from one read snapshot, the content check over the whole
 * ledger, the report's facts labelled with its result, facts.json's records, the PROV document, and the payload the
 * "audit.export" event will record (sha256 of the facts, of the PROV document and of facts.json).
 *
 * Invariant: writes nothing (the export worker runs it on a read-only connection); a malformed PROV document fails
 * the export before anything is recorded.
 */
import type { Db } from "@/db/client";
import { sha256Canonical, sha256Hex } from "@/contracts/canonical";
import { maxAuditSeq } from "@/server/audit/ledger-reads";
import { factsFileText } from "@/server/audit/content/facts-file";
import { contentForExport } from "@/server/audit/content/report-content";
import { collectLineage } from "@/server/lineage/collect";
import { lineageToProvJson } from "@/server/lineage/prov";
import { validateProvJson } from "@/server/lineage/prov-schema";
import type { ExportPayload } from "./bundle-layout";
import { collectReportFacts, type ReportFacts } from "./collect-report";

/** What phase 1 gathers for phases 2 (the payload) and 3 (everything written into the bundle). */
export type PreparedReport = {
  modelVersionId: number;
  facts: ReportFacts;
  contentFacts: ReturnType<ReturnType<typeof contentForExport>["factsFor"]>;
  prov: ReturnType<typeof lineageToProvJson>;
  factsSha256: string;
  payload: ExportPayload;
};

export function prepareReport(db: Db, modelVersionId: number): PreparedReport {
  // One read: the content check (every row and file against the ledger), the report's facts labelled with its
  // result, and facts.json (the printed records with their covering events).
  const { facts, contentFacts } = db.$client.transaction(() => {
    const content = contentForExport(db.$client, maxAuditSeq(db));
    const facts = collectReportFacts(db, modelVersionId, content.result);
    return { facts, contentFacts: content.factsFor(facts) };
  })();
  const prov = lineageToProvJson(collectLineage(db, modelVersionId));
  const provProblems = validateProvJson(prov);
  if (provProblems.length)
    throw new Error(`PROV-JSON of ${facts.model.name} v${facts.version.version} is malformed: ${provProblems.slice(0, 5).join("; ")}`);
  const factsSha256 = sha256Canonical(facts);
  const payload: ExportPayload = {
    model: facts.model.name,
    version: facts.version.version,
    modelVersionId,
    weightsSha256: facts.version.weightsSha256,
    format: facts.format,
    factsSha256,
    provSha256: sha256Canonical(prov),
    citedEvents: facts.citedEvents.length,
    contentFactsSha256: sha256Hex(factsFileText(contentFacts)),
  };
  return { modelVersionId, facts, contentFacts, prov, factsSha256, payload };
}
