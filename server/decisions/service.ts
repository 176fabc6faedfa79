/**
 * Human decisions after a run exists: notes and corrections. Change and initial decisions are written by
 * createRun (server/runs/service.ts) in the run's own transaction.
 *
 * Invariants: decisions are immutable. A correction is a new row of kind "correction" whose
 * corrects_decision_id points at a decision of the same run; the corrected row is never edited.
 * Each note is written with its audit event in one transaction. Authoring a note on a run makes its author
 * part of that run's lineage (see server/lineage/ancestry.ts): they can no longer approve models built on it.
 */
import { eq } from "drizzle-orm";
import { z } from "zod";
import { decisions, runs } from "@/db/schema";
import { appendAuditEvent } from "@/server/audit/ledger";
import { decisionRecordSha256 } from "@/server/audit/content/records";
import { now, requireRole, type ServiceContext } from "../app-context/service-context";
import { invalidInput, notFound } from "@/server/errors";

/** Who may write decision notes: engineers (their own reasoning) and reviewers (review remarks on a run). */
export const DECISION_NOTE_ROLES = ["engineer", "reviewer"] as const;

export const addDecisionNoteInput = z.object({
  runId: z.number().int(),
  rationale: z.string().trim().min(1, "write the note: what you decided or observed, and why").max(4000),
  /** When set, the note corrects this earlier decision of the same run. */
  correctsDecisionId: z.number().int().optional(),
});
export type AddDecisionNoteInput = z.input<typeof addDecisionNoteInput>;

export function addDecisionNote(ctx: ServiceContext, raw: AddDecisionNoteInput) {
  requireRole(ctx.actor, DECISION_NOTE_ROLES, "add decision notes");
  const input = addDecisionNoteInput.parse(raw);
  const run = ctx.db.select({ id: runs.id }).from(runs).where(eq(runs.id, input.runId)).get();
  if (!run) notFound(`run ${input.runId}`);
  let corrected: typeof decisions.$inferSelect | undefined;
  if (input.correctsDecisionId !== undefined) {
    corrected = ctx.db.select().from(decisions).where(eq(decisions.id, input.correctsDecisionId)).get();
    if (!corrected) notFound(`decision ${input.correctsDecisionId}`);
    if (corrected.runId !== input.runId)
      invalidInput(
        `decision ${corrected.id} belongs to run ${corrected.runId}, not run ${input.runId}: a correction stays on the run of the decision it corrects`,
      );
  }
  const kind = corrected ? ("correction" as const) : ("note" as const);
  return ctx.db.transaction((tx) => {
    const row = tx
      .insert(decisions)
      .values({
        runId: input.runId,
        kind,
        path: corrected?.path ?? "",
        oldValueJson: null,
        newValueJson: null,
        rationale: input.rationale,
        correctsDecisionId: corrected?.id ?? null,
        authorId: ctx.actor.id,
        createdAt: now(),
      })
      .returning()
      .get();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: corrected ? "decision.correct" : "decision.create",
      entityType: "decision",
      entityId: row.id,
      // sha256 covers every column of the row (values, author, time); the content verifier recomputes it.
      payload: {
        runId: input.runId,
        kind,
        path: row.path,
        correctsDecisionId: row.correctsDecisionId,
        rationale: row.rationale,
        createdAt: row.createdAt,
        sha256: decisionRecordSha256(row),
      },
    });
    return row;
  });
}
