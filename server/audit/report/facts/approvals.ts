/**
 * Report facts, section 7: the version's promotion requests with their signatures (printed as signed) and the
 * self-approvals the four-eyes rule refused (from the ledger's "promotion.selfApprovalRefused" events), and every
 * alias move to this version.
 */
import { and, asc, eq, inArray } from "drizzle-orm";
import { auditEvents } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import type { LineageFacts } from "@/server/lineage/collect";
import { aliasMoves } from "@/server/registry/aliases";
import { signatureText } from "@/server/registry/records";

export function approvalFacts(db: DbOrTx, lineage: LineageFacts) {
  const requestIds = lineage.promotionRequests.map((r) => String(r.id));
  const refused = requestIds.length
    ? db
        .select()
        .from(auditEvents)
        .where(
          and(
            eq(auditEvents.action, "promotion.selfApprovalRefused"),
            eq(auditEvents.entityType, "promotionRequest"),
            inArray(auditEvents.entityId, requestIds),
          ),
        )
        .orderBy(asc(auditEvents.seq))
        .all()
    : [];
  return {
    approvalsRequired: lineage.model.approvalsRequired,
    requests: lineage.promotionRequests.map((p) => ({
      ...p,
      signatures: lineage.signatures.filter((s) => s.requestId === p.id).map((s) => ({ ...s, text: signatureText(s) })),
      refusedSelfApprovals: refused
        .filter((e) => e.entityId === String(p.id))
        .map((e) => ({ seq: e.seq, who: e.actorName, at: e.at, reasons: (JSON.parse(e.payload) as { reasons?: string[] }).reasons ?? [] })),
    })),
    aliasMoves: aliasMoves(db, lineage.model.id)
      .filter((a) => a.modelVersionId === lineage.version.id)
      .map((a) => ({
        id: a.id,
        alias: a.alias,
        promotionRequestId: a.promotionRequestId,
        movedBy: lineage.aliasMoves.find((m) => m.id === a.id)?.movedBy.name ?? `user #${a.movedBy}`,
        at: a.createdAt,
      })),
  };
}
