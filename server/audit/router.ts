/**
 * The audit ledger in the app: browse events (filter by actor, action, entity, time), the server key and latest
 * signed checkpoint, the last verification result, "verify now", inclusion proofs, and what the auditor's report
 * can be exported for. Thin: validates input and calls ./service.ts, on either store (issue 16). Every signed-in role may read and verify (auditors included: verifying and exporting
 * record an event but change no project data). The report bundle itself is downloaded from app/api/report.
 */
import { z } from "zod";
import { router, signedInProcedure } from "@/server/trpc/init";
import { AUDIT_ACTIONS } from "@/server/audit/actions";
import {
  auditStatus,
  currentLedgerVerification,
  inclusionProof,
  listAuditEvents,
  reportSubjects,
  reportTargets,
  startLedgerVerification,
  trustedCheckpoint,
} from "@/server/audit/service";

export const eventFilterInput = z.object({
  actor: z.string().trim().max(200).optional(),
  action: z.string().trim().max(100).optional(),
  entityType: z.string().trim().max(100).optional(),
  entityId: z.string().trim().max(100).optional(),
  from: z.string().trim().optional(),
  to: z.string().trim().optional(),
  /** Events with seq below this (for "load older"). */
  beforeSeq: z.number().int().optional(),
  limit: z.number().int().min(1).max(500).default(50),
});

export const auditRouter = router({
  actions: signedInProcedure.query(() => [...AUDIT_ACTIONS]),
  events: signedInProcedure.input(eventFilterInput).query(({ ctx, input }) => listAuditEvents(ctx.services.db, input)),
  status: signedInProcedure.query(({ ctx }) => auditStatus(ctx.services)),
  /** The latest checkpoint as a file an auditor keeps outside the server (for `audit verify --trusted-checkpoint`). */
  trustedCheckpoint: signedInProcedure.query(({ ctx }) => trustedCheckpoint(ctx.services)),
  /** Starts "Verify now" in a background worker and returns at once; the job records an "audit.verify" event when it ends. */
  verify: signedInProcedure.mutation(({ ctx }) => startLedgerVerification(ctx.services, ctx.user)),
  /** The running "Verify now" job with its progress, or the last one that ended (null before the first). */
  verifyJob: signedInProcedure.query(({ ctx }) => currentLedgerVerification(ctx.services)),
  /** Inclusion proof of one event against the latest checkpoint covering it, checked against the signed root. */
  inclusionProof: signedInProcedure
    .input(z.object({ seq: z.number().int().min(1) }))
    .query(({ ctx, input }) => inclusionProof(ctx.services, input.seq)),
  /** Models and versions a report can be made for (production first), for the audit page's export list. */
  reportTargets: signedInProcedure.query(({ ctx }) => reportTargets(ctx.services.db)),
  /** What a report covers and who may write its documents: the model and the datasets in the version's lineage. */
  reportSubjects: signedInProcedure
    .input(z.object({ modelVersionId: z.number().int() }))
    .query(({ ctx, input }) => reportSubjects(ctx.services.db, input.modelVersionId)),
});
