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
 * - On the store (issue 16): one read part (./on-store.ts), on SQLite or PostgreSQL.
 */
import { and, asc, eq, inArray } from "drizzle-orm";
import type { Db } from "@/db/client";
import { asStore, rows, type Store } from "@/db/store";
import type { Role } from "@/contracts/user-fields";
import { conflictsOfInterestIn } from "./queries";
import { approvalsRequiredFor } from "./approval-rule";
import { readOnStore } from "./on-store";

export type InboxViewer = { id: number; role: Role };
type InboxRequest = {
  id: number;
  modelName: string;
  version: number;
  alias: string;
  rationale: string;
  requestedBy: string;
  createdAt: string;
  approvals: number;
  approvalsRequired: number;
};

export async function reviewerInbox(store: Store | Db, viewer: InboxViewer): Promise<{ count: number; requests: InboxRequest[] }> {
  if (viewer.role !== "reviewer") return { count: 0, requests: [] };
  return readOnStore(asStore(store), function* (q, t) {
    const { promotionRequests, modelVersions, models, users, signatures } = t;
    const pending = yield* rows(
      q
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
        .orderBy(asc(promotionRequests.createdAt), asc(promotionRequests.id)),
    );
    const ids = pending.map((p) => p.request.id);
    const sigs = ids.length
      ? yield* rows(
          q
            .select({ recordId: signatures.recordId, userId: signatures.userId, meaning: signatures.meaning })
            .from(signatures)
            .where(and(eq(signatures.recordType, "promotion_request"), inArray(signatures.recordId, ids))),
        )
      : [];
    const requests: InboxRequest[] = [];
    for (const p of pending) {
      const decided = sigs.some(
        (s) => s.recordId === p.request.id && s.userId === viewer.id && (s.meaning === "approval" || s.meaning === "rejection"),
      );
      if (decided || (yield* conflictsOfInterestIn(q, t, p.request.id, viewer.id)).length > 0) continue;
      requests.push({
        id: p.request.id,
        modelName: p.modelName,
        version: p.version,
        alias: p.request.alias,
        rationale: p.request.rationale,
        requestedBy: p.requestedBy,
        createdAt: p.request.createdAt,
        approvals: new Set(sigs.filter((s) => s.recordId === p.request.id && s.meaning === "approval").map((s) => s.userId)).size,
        approvalsRequired: approvalsRequiredFor(p.request, p.currentRule),
      });
    }
    return { count: requests.length, requests };
  });
}
export type ReviewerInbox = Awaited<ReturnType<typeof reviewerInbox>>;
