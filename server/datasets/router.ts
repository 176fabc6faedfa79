/**
 * Datasets: list, detail (versions and splits), a preview of the first rows, the built-in catalogue, and what the upload form needs: the upload
 * limits and the progress of an upload in flight. The CSV itself is POSTed as a stream to /api/datasets/upload
 * (server/http/dataset-upload.ts), never through tRPC: a JSON body would hold the whole file as a string.
 */
import { z } from "zod";
import { router, signedInProcedure, engineerProcedure } from "@/server/trpc/init";
import { getDatasetDetail, listDatasets } from "@/server/datasets/service";
import { BUILTIN_DATASETS } from "@/trainer/data/builtin";
import { uploadLimits } from "@/server/datasets/upload/limits";
import { readUploadProgress } from "@/server/datasets/upload/progress";
import { previewDatasetRows, previewInputSchema } from "@/server/datasets/preview";

export const datasetsRouter = router({
  list: signedInProcedure.query(({ ctx }) => listDatasets(ctx.services.db)),
  builtins: signedInProcedure.query(() => Object.values(BUILTIN_DATASETS)),
  get: signedInProcedure.input(z.object({ id: z.number().int() })).query(({ ctx, input }) => getDatasetDetail(ctx.services.db, input.id)),
  /** The first rows of the raw file (at most 50; read from a bounded prefix of it), for the dataset page's Rows panel. */
  rows: signedInProcedure.input(previewInputSchema).query(({ ctx, input }) => previewDatasetRows(ctx.services, input)),
  /** The caps the upload route enforces (bytes, rows, columns, characters per cell), for the form to show and pre-check. */
  uploadLimits: engineerProcedure.query(() => uploadLimits()),
  /** Progress of one of the caller's own uploads, by the id the browser gave it; null when unknown or expired. */
  uploadProgress: engineerProcedure
    .input(z.object({ uploadId: z.string().min(8).max(64) }))
    .query(({ ctx, input }) => readUploadProgress(ctx.user.id, input.uploadId)),
});
