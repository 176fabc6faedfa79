/**
 * Model-card and datasheet sections: read (every signed-in role), edit (engineers and reviewers: a new version each
 * time), sign with the password (authorship: engineers and reviewers; review: reviewers). Roles are re-checked in
 * server/documents/service.ts.
 */
import { z } from "zod";
import { router, signedInProcedure, roleProcedure } from "@/server/trpc/init";
import { DOCUMENT_EDIT_ROLES, signDocument, signDocumentInput, updateDocument, updateDocumentInput } from "@/server/documents/service";
import { readDocuments } from "@/server/documents/queries";

export const documentsRouter = router({
  get: signedInProcedure
    .input(z.object({ subjectType: z.enum(["model", "dataset"]), subjectId: z.number().int() }))
    .query(({ ctx, input }) => readDocuments(ctx.services.db, input.subjectType, input.subjectId)),
  update: roleProcedure(...DOCUMENT_EDIT_ROLES)
    .input(updateDocumentInput)
    .mutation(({ ctx, input }) => updateDocument(ctx.services, input)),
  /** Open to every signed-in role: the service names which roles may sign with which meaning. */
  sign: signedInProcedure.input(signDocumentInput).mutation(({ ctx, input }) => signDocument(ctx.services, input)),
});
