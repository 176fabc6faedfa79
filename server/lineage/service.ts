/**
 * Exporting a model version's lineage as W3C PROV-JSON. Any signed-in role may export (auditors included); the
 * export changes nothing but is recorded in the audit ledger (lineage.export) with the sha256 of what left the server.
 * Invariant: a document that fails validateProvJson is never returned (fail loudly rather than export a broken graph).
 */
import { appendAuditEvent } from "@/server/audit/ledger";
import { sha256Canonical } from "@/contracts/canonical";
import { collectLineage } from "@/server/lineage/collect";
import { lineageToProvJson, type ProvJson } from "@/server/lineage/prov";
import { validateProvJson } from "@/server/lineage/prov-schema";
import type { Actor } from "@/server/audit/ledger";
import type { Db } from "@/db/client";
import { findModelVersion } from "../registry/queries";

export function exportLineageProv(
  db: Db,
  actor: Actor,
  modelName: string,
  version: number,
): { document: ProvJson; sha256: string; fileName: string } {
  const { model, version: v } = findModelVersion(db, modelName, version);
  const document = lineageToProvJson(collectLineage(db, v.id));
  const problems = validateProvJson(document);
  if (problems.length) throw new Error(`PROV-JSON export of ${model.name} v${v.version} is malformed: ${problems.slice(0, 5).join("; ")}`);
  const sha256 = sha256Canonical(document);
  db.transaction((tx) => {
    appendAuditEvent(tx, {
      actor,
      action: "lineage.export",
      entityType: "modelVersion",
      entityId: v.id,
      payload: { model: model.name, version: v.version, format: "PROV-JSON", sha256, entities: Object.keys(document.entity).length },
    });
  });
  return { document, sha256, fileName: `${model.name}-v${v.version}.prov.json` };
}
