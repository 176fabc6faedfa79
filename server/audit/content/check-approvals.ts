/**
 * Content check of four-eyes approvals: promotion requests (model version, alias, cited evaluation, rationale, the
 * record sha256 against its event AND recomputed from the current model version and evaluation rows; status and
 * decision time against the latest promotion event) and signatures (printed name, meaning, signer, record signed,
 * record sha256, comment, time; the signed record's current hash must still be the one signed).
 */
import { sha256Canonical } from "@/contracts/canonical";
import { promotionRecord } from "@/server/registry/records";
import { type ContentChecker, parsePayload } from "./checker";
import { changedLater, checkCreations, compareActor } from "./creations";
import type { EventSource } from "./ledger-events";
import type { PromotionRequestRow, Tables } from "./tables";

type PromotionArgs = Parameters<typeof promotionRecord>;

/** The sha256 reviewers sign, recomputed from the rows (null when a row it needs is missing). */
export function promotionRecordSha256(t: Tables, r: PromotionRequestRow): string | null {
  const v = t.modelVersions.get(r.modelVersionId);
  const e = t.evaluations.get(r.evaluationId);
  const m = v ? t.models.get(v.modelId) : undefined;
  if (!v || !e || !m) return null;
  try {
    return sha256Canonical(promotionRecord(m.name, r.alias, v as PromotionArgs[2], e as PromotionArgs[3]));
  } catch {
    return "(the evaluation's metrics are not valid JSON)";
  }
}

const STATUS_OF: Record<string, string> = { "promotion.reject": "rejected", "promotion.withdraw": "withdrawn" };

export function checkApprovals(c: ContentChecker, events: EventSource, t: Tables): void {
  const requested = checkCreations(c, events, {
    entityType: "promotionRequest",
    action: "promotion.request",
    rows: t.promotionRequests,
    complete: t.complete,
    check: (r, ev, p) => {
      c.compareFields("promotionRequest", r.id, ev, p, [
        ["modelVersionId", r.modelVersionId, "model version"],
        ["alias", r.alias, "alias"],
        ["evaluationId", r.evaluationId, "cited evaluation"],
        ["rationale", r.rationale, "rationale"],
        ["recordSha256", r.recordSha256, "record sha256"],
        ["createdAt", r.createdAt, "request time"],
      ]);
      // The rule a request is judged by (server/registry/approval-rule.ts): lowering it in the table would let a
      // request through on fewer signatures. Facts of bundles exported before the column existed do not carry it.
      if (r.approvalsRequired !== undefined)
        c.compareFields("promotionRequest", r.id, ev, p, [
          ["approvalsRequired", r.approvalsRequired, "approvals required at request time"],
        ]);
      const recomputed = promotionRecordSha256(t, r);
      if (recomputed !== null)
        c.compare(
          "promotionRequest",
          r.id,
          "record under review (model version and evaluation, recomputed)",
          p.recordSha256,
          recomputed,
          ev.seq,
        );
      compareActor(c, "promotionRequest", r.id, ev, r.requestedBy, "requested by");
    },
  });

  // Status: pending after the request; then the latest reject / withdraw / approve (approved once approvals suffice).
  const status = new Map<number, { status: string; decidedAt: unknown; seq: number; action: string }>();
  for (const [id, { ev }] of requested) status.set(id, { status: "pending", decidedAt: null, seq: ev.seq, action: ev.action });
  const decisions = ["promotion.approve", "promotion.reject", "promotion.withdraw"]
    .flatMap((a) => events.byAction(a))
    .sort((a, b) => a.seq - b.seq);
  for (const ev of decisions) {
    const id = Number(ev.entityId);
    if (!status.has(id)) continue;
    const p = parsePayload(c, "promotionRequest", id, ev);
    if (!p) continue;
    const s =
      ev.action === "promotion.approve"
        ? "status" in p
          ? String(p.status)
          : Number(p.approvals) >= Number(p.approvalsRequired)
            ? "approved"
            : "pending"
        : STATUS_OF[ev.action]!;
    if (s === "pending") continue;
    status.set(id, { status: s, decidedAt: "decidedAt" in p ? p.decidedAt : undefined, seq: ev.seq, action: ev.action });
  }
  for (const [id, s] of status) {
    const r = t.promotionRequests.get(id);
    if (!r || changedLater(events, ["promotion.approve", "promotion.reject", "promotion.withdraw"], id)) continue;
    c.compare("promotionRequest", id, "status", s.status, r.status, s.seq);
    if (s.decidedAt === undefined) c.gap(s.action, "promotion decision time", s.seq, "promotionRequest", id);
    else c.compare("promotionRequest", id, "decision time", s.decidedAt, r.decidedAt, s.seq);
  }

  checkCreations(c, events, {
    entityType: "signature",
    action: "signature.create",
    rows: t.signatures,
    complete: t.complete,
    check: (g, ev, p) => {
      c.compareFields("signature", g.id, ev, p, [
        ["printedName", g.printedName, "printed name"],
        ["meaning", g.meaning, "meaning"],
        ["recordType", g.recordType, "record type"],
        ["recordId", g.recordId, "record signed"],
        ["recordSha256", g.recordSha256, "record sha256"],
        ["comment", g.comment, "comment"],
        ["createdAt", g.createdAt, "signing time"],
      ]);
      compareActor(c, "signature", g.id, ev, g.userId, "signer");
      const signedNow =
        g.recordType === "promotion_request"
          ? t.promotionRequests.get(g.recordId)?.recordSha256
          : g.recordType === "document"
            ? t.documents.get(g.recordId)?.sha256
            : undefined;
      if (signedNow !== undefined)
        c.compare(
          "signature",
          g.id,
          `${g.recordType.replace("_", " ")} ${g.recordId} as signed (its sha256 now)`,
          p.recordSha256,
          signedNow,
          ev.seq,
        );
    },
  });
}
