/** Decisions: the timeline of a run (with ancestors and children), and notes/corrections (immutable; a correction is a new row). */
import { z } from "zod";
import { router, signedInProcedure, roleProcedure } from "@/server/trpc/init";
import { addDecisionNote, addDecisionNoteInput, DECISION_NOTE_ROLES } from "@/server/decisions/service";
import { decisionTimeline } from "@/server/lineage/queries";

export const decisionsRouter = router({
  timeline: signedInProcedure
    .input(z.object({ runId: z.number().int() }))
    .query(({ ctx, input }) => decisionTimeline(ctx.services.db, input.runId)),
  addNote: roleProcedure(...DECISION_NOTE_ROLES)
    .input(addDecisionNoteInput)
    .mutation(({ ctx, input }) => addDecisionNote(ctx.services, input)),
});
