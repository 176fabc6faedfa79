/**
 * Report facts: the ledger events that back the records the report prints (cited by seq, each proven by an
 * inclusion proof in the integrity appendix), and the ids of those records.
 *
 * Invariant: ascending seq, each event once; alias moves of the model only when they involve this version.
 */
import { and, eq, inArray } from "drizzle-orm";
import { auditEvents, runInterventions } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import type { DocumentSection } from "@/server/documents/queries";

/** The ids of every record the report prints, by kind. */
export type ReportedIds = {
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
};

export function documentIdsOf(sections: DocumentSection[]): number[] {
  return sections.flatMap((s) => (s.latest ? [s.latest.id] : []));
}
export function signatureIdsOf(sections: DocumentSection[]): number[] {
  return sections.flatMap((s) => s.latest?.signatures.map((x) => x.id) ?? []);
}

export type CitedEvent = {
  seq: number;
  at: string;
  action: string;
  entityType: string;
  entityId: string;
  actorName: string;
  leafHash: string;
};

/** Ledger events about the entities the report shows (ascending seq). Alias moves are kept only when they involve this version. */
export function citedEvents(db: DbOrTx, ids: ReportedIds): CitedEvent[] {
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
    // A decision made while the run trained is recorded by its intervention's events (request, then applied).
    [
      "intervention",
      ids.decisionIds.length
        ? db
            .select({ id: runInterventions.id })
            .from(runInterventions)
            .where(inArray(runInterventions.decisionId, ids.decisionIds))
            .all()
            .map((r) => r.id)
        : [],
    ],
  ];
  const rows: (typeof auditEvents.$inferSelect)[] = [];
  for (const [type, list] of byType) {
    if (list.length === 0) continue;
    rows.push(
      ...db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.entityType, type), inArray(auditEvents.entityId, [...new Set(list)].map(String))))
        .all(),
    );
  }
  const modelEvents = db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.entityType, "model"), eq(auditEvents.entityId, String(ids.modelId))))
    .all();
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
    .map((r) => ({
      seq: r.seq,
      at: r.at,
      action: r.action,
      entityType: r.entityType,
      entityId: r.entityId,
      actorName: r.actorName,
      leafHash: r.leafHash,
    }));
}
