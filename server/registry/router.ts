/**
 * The model registry: models and versions, aliases and their history ("what was in production at time T"),
 * promotion requests and signatures (four eyes), lineage graph and PROV-JSON export.
 * Reads are open to every signed-in role; each write names its roles here and is re-checked in its service.
 */
import { z } from "zod";
import { router, signedInProcedure, roleProcedure, engineerProcedure } from "@/server/trpc/init";
import {
  moveAlias,
  moveAliasInput,
  registerModelVersion,
  registerVersionInput,
  setApprovalsRequired,
  setApprovalsRequiredInput,
  modelNameSchema,
  aliasSchema,
} from "@/server/registry/service";
import {
  requestPromotion,
  requestPromotionInput,
  signPromotion,
  signPromotionInput,
  withdrawPromotion,
  withdrawPromotionInput,
} from "@/server/registry/promotions";
import { exportLineageProv } from "@/server/lineage/service";
import { aliasAt, aliasTimeline, getModel, listModels } from "@/server/registry/queries";
import { modelVersionLineage } from "@/server/lineage/queries";
import { reviewerInbox } from "@/server/registry/inbox";
import { documentationChecklistOf } from "@/server/registry/documentation";

const modelVersionRef = z.object({ modelName: modelNameSchema, version: z.number().int() });

export const modelsRouter = router({
  list: signedInProcedure.query(({ ctx }) => listModels(ctx.services.db)),
  get: signedInProcedure
    .input(z.object({ name: modelNameSchema }))
    .query(({ ctx, input }) => getModel(ctx.services.db, input.name, ctx.user.id)),
  /** The signed-in reviewer's pending promotion requests they may decide (empty for other roles); a read, no side effects. */
  inbox: signedInProcedure.query(({ ctx }) => reviewerInbox(ctx.services.db, ctx.user)),
  aliasAt: signedInProcedure
    /** `at` omitted: now, by the server's clock. */
    .input(z.object({ modelName: modelNameSchema, alias: aliasSchema.default("production"), at: z.string().min(1).optional() }))
    .query(({ ctx, input }) => aliasAt(ctx.services.db, input.modelName, input.alias, input.at)),
  aliasTimeline: signedInProcedure
    .input(z.object({ modelName: modelNameSchema, alias: aliasSchema.default("production") }))
    .query(({ ctx, input }) => aliasTimeline(ctx.services.db, input.modelName, input.alias)),
  /** The model-card and datasheet sections a production request is checked against, each written or missing. */
  documentationChecklist: signedInProcedure
    .input(modelVersionRef)
    .query(({ ctx, input }) => documentationChecklistOf(ctx.services.db, input.modelName, input.version)),
  lineage: signedInProcedure
    .input(modelVersionRef)
    .query(({ ctx, input }) => modelVersionLineage(ctx.services.db, input.modelName, input.version)),
  /** A mutation because the export is recorded in the audit ledger; it changes no project data. */
  exportProv: signedInProcedure
    .input(modelVersionRef)
    .mutation(({ ctx, input }) => exportLineageProv(ctx.services.db, ctx.user, input.modelName, input.version)),
  register: engineerProcedure.input(registerVersionInput).mutation(({ ctx, input }) => registerModelVersion(ctx.services, input)),
  moveAlias: engineerProcedure.input(moveAliasInput).mutation(({ ctx, input }) => moveAlias(ctx.services, input)),
  setApprovalsRequired: roleProcedure("admin")
    .input(setApprovalsRequiredInput)
    .mutation(({ ctx, input }) => setApprovalsRequired(ctx.services, input)),
  requestPromotion: engineerProcedure.input(requestPromotionInput).mutation(({ ctx, input }) => requestPromotion(ctx.services, input)),
  /** Open to every signed-in role on purpose: the service refuses and records self-approval by anyone, then requires a reviewer. */
  sign: signedInProcedure.input(signPromotionInput).mutation(({ ctx, input }) => signPromotion(ctx.services, input)),
  withdrawPromotion: engineerProcedure.input(withdrawPromotionInput).mutation(({ ctx, input }) => withdrawPromotion(ctx.services, input)),
});
