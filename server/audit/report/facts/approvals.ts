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
import { approvalsRequiredFor } from "@/server/registry/approval-rule";
import type { DocumentationRecord } from "@/server/registry/documentation";
import { requestDocumentation } from "@/server/registry/request-documentation";

export function approvalFacts(db: DbOrTx, lineage: LineageFacts) {
  const requestIds = lineage.promotionRequests.map((r) => String(r.id));
  const eventsOf = (action: string) =>
    requestIds.length
      ? db
          .select()
          .from(auditEvents)
          .where(
            and(eq(auditEvents.action, action), eq(auditEvents.entityType, "promotionRequest"), inArray(auditEvents.entityId, requestIds)),
          )
          .orderBy(asc(auditEvents.seq))
          .all()
      : [];
  const refused = eventsOf("promotion.selfApprovalRefused");
  // The bar an approved request was decided by is in its last promotion.approve event (the signing service records
  // approvalsRequired there); it can exceed the rule at request time when the rule was raised while it was pending.
  // The model card and datasheet sections when each request was made, as its promotion.request event recorded them.
  const documentationOf = new Map(
    eventsOf("promotion.request").map((e) => [
      e.entityId,
      requestDocumentation((JSON.parse(e.payload) as { documentation?: DocumentationRecord }).documentation),
    ]),
  );
  const decidedBar = new Map<string, number>();
  for (const e of eventsOf("promotion.approve")) {
    const bar = (JSON.parse(e.payload) as { approvalsRequired?: number }).approvalsRequired;
    if (typeof bar === "number") decidedBar.set(e.entityId, bar);
  }
  return {
    approvalsRequired: lineage.model.approvalsRequired,
    requests: lineage.promotionRequests.map((p) => ({
      ...p,
      // The bar this request is (pending) or was (approved) judged by: its rule at request time, raised by a stricter
      // model rule set while it was pending (server/registry/approval-rule.ts).
      approvalsRequired:
        p.status === "pending"
          ? approvalsRequiredFor(p, lineage.model.approvalsRequired)
          : (decidedBar.get(String(p.id)) ?? p.approvalsRequired),
      approvalsRequiredAtRequest: p.approvalsRequired,
      documentation: documentationOf.get(String(p.id)) ?? null,
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
