/** Projects and experiments. */
import { z } from "zod";
import { router, signedInProcedure, roleProcedure } from "@/server/trpc/init";
import {
  createExperiment,
  createExperimentInput,
  createProject,
  createProjectInput,
  getExperiment,
  listProjectsWithExperiments,
} from "@/server/projects/service";

export const projectsRouter = router({
  list: signedInProcedure.query(({ ctx }) => listProjectsWithExperiments(ctx.services.db)),
  create: roleProcedure("engineer", "admin")
    .input(createProjectInput)
    .mutation(({ ctx, input }) => createProject(ctx.services, input)),
  createExperiment: roleProcedure("engineer")
    .input(createExperimentInput)
    .mutation(({ ctx, input }) => createExperiment(ctx.services, input)),
  experiment: signedInProcedure
    .input(z.object({ id: z.number().int() }))
    .query(({ ctx, input }) => getExperiment(ctx.services.db, input.id)),
});
