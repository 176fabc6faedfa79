/** Datasets: list, detail (versions and splits), CSV upload, and the built-in catalogue. */
import { z } from "zod";
import { router, signedInProcedure, engineerProcedure } from "@/server/trpc/init";
import { getDatasetDetail, listDatasets, uploadDataset, MAX_UPLOAD_BYTES } from "@/server/services/datasets";
import { BUILTIN_DATASETS } from "@/trainer/data/builtin";

export const datasetsRouter = router({
  list: signedInProcedure.query(({ ctx }) => listDatasets(ctx.services.db)),
  builtins: signedInProcedure.query(() => Object.values(BUILTIN_DATASETS)),
  get: signedInProcedure.input(z.object({ id: z.number().int() })).query(({ ctx, input }) => getDatasetDetail(ctx.services.db, input.id)),
  upload: engineerProcedure
    .input(
      z.object({
        name: z.string().trim().min(1, "give the dataset a name").max(120),
        csvBase64: z.string().min(1, "choose a CSV file").max(Math.ceil((MAX_UPLOAD_BYTES * 4) / 3) + 16, `the file is over the ${MAX_UPLOAD_BYTES / 1048576} MiB limit`),
        labelColumn: z.string().trim().max(200).optional(),
        origin: z.string().max(2000).optional(),
        licence: z.string().max(200).optional(),
        kind: z.enum(["tabular", "image", "text"]).optional(),
        imageShape: z.tuple([z.number().int().min(1, "image height must be ≥ 1"), z.number().int().min(1, "image width must be ≥ 1"), z.number().int().min(1, "image channels must be ≥ 1").max(4, "image channels must be ≤ 4")]).optional(),
        textColumn: z.string().trim().max(200).optional(),
      }),
    )
    .mutation(({ ctx, input }) => uploadDataset(ctx.service, input)),
});
