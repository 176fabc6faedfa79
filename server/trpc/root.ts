/** The root router: one sub-router per domain. */
import { router, createCallerFactory } from "./init";
import { authRouter } from "@/server/routers/auth";
import { projectsRouter } from "@/server/routers/projects";
import { datasetsRouter } from "@/server/routers/datasets";
import { runsRouter } from "@/server/routers/runs";

export const appRouter = router({
  auth: authRouter,
  projects: projectsRouter,
  datasets: datasetsRouter,
  runs: runsRouter,
});
export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
