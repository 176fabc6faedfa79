/**
 * The reviewer's inbox: the pending promotion requests a signed-in reviewer may decide now, for the count in the
 * navigation and on the home page and for the inbox page.
 *
 * Invariants:
 * - Reads only (served by a tRPC query, i.e. HTTP GET): nothing here writes, not even the audit ledger.
 * - "May decide" is the same rule the signing service enforces (./promotions.ts): the request is pending, the viewer
 *   is a reviewer, outside the version's lineage and not the requester (conflictsOfInterest, the four-eyes set), and has
 *   not already signed it with an approval or a rejection. A request the viewer may not sign never counts.
 * - Any other role has an empty inbox (count 0): only reviewers sign promotion requests.
 */
import { and, asc, eq, inArray } from "drizzle-orm";
import { modelVersions, models, promotionRequests, signatures, users } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import type { Role } from "@/contracts/user-fields";
import { conflictsOfInterest } from "./queries";
import { approvalsRequiredFor } from "./approval-rule";

export type InboxViewer = { id: number; role: Role };

export function reviewerInbox(db: DbOrTx, viewer: InboxViewer) {
  if (viewer.role !== "reviewer") return { count: 0, requests: [] };
  const pending = db
    .select({
      request: promotionRequests,
      version: modelVersions.version,
      modelName: models.name,
      currentRule: models.approvalsRequired,
      requestedBy: users.name,
    })
    .from(promotionRequests)
    .innerJoin(modelVersions, eq(modelVersions.id, promotionRequests.modelVersionId))
    .innerJoin(models, eq(models.id, modelVersions.modelId))
    .innerJoin(users, eq(users.id, promotionRequests.requestedBy))
    .where(eq(promotionRequests.status, "pending"))
    .orderBy(asc(promotionRequests.createdAt), asc(promotionRequests.id))
    .all();
  const ids = pending.map((p) => p.request.id);
  const sigs = ids.length
    ? db
        .select({ recordId: signatures.recordId, userId: signatures.userId, meaning: signatures.meaning })
        .from(signatures)
        .where(and(eq(signatures.recordType, "promotion_request"), inArray(signatures.recordId, ids)))
        .all()
    : [];
  const requests = pending
    .filter(
      (p) =>
        !sigs.some((s) => s.recordId === p.request.id && s.userId === viewer.id && (s.meaning === "approval" || s.meaning === "rejection")),
    )
    .filter((p) => conflictsOfInterest(db, p.request.id, viewer.id).length === 0)
    .map((p) => ({
      id: p.request.id,
      modelName: p.modelName,
      version: p.version,
      alias: p.request.alias,
      rationale: p.request.rationale,
      requestedBy: p.requestedBy,
      createdAt: p.request.createdAt,
      approvals: new Set(sigs.filter((s) => s.recordId === p.request.id && s.meaning === "approval").map((s) => s.userId)).size,
      approvalsRequired: approvalsRequiredFor(p.request, p.currentRule),
    }));
  return { count: requests.length, requests };
}
export type ReviewerInbox = ReturnType<typeof reviewerInbox>;
