/** The root router: one sub-router per domain. */
import { router, createCallerFactory } from "./init";
import { authRouter } from "@/server/routers/auth";
import { projectsRouter } from "@/server/routers/projects";
import { datasetsRouter } from "@/server/routers/datasets";
import { runsRouter } from "@/server/routers/runs";
import { decisionsRouter } from "@/server/routers/decisions";
import { modelsRouter } from "@/server/routers/models";
import { exploreRouter } from "@/server/routers/explore";
import { auditRouter } from "@/server/routers/audit";
import { documentsRouter } from "@/server/routers/documents";
import { witnessesRouter } from "@/server/routers/witnesses";
import { usersRouter } from "@/server/routers/users";

export const appRouter = router({
  auth: authRouter,
  projects: projectsRouter,
  datasets: datasetsRouter,
  runs: runsRouter,
  decisions: decisionsRouter,
  models: modelsRouter,
  explore: exploreRouter,
  audit: auditRouter,
  documents: documentsRouter,
  witnesses: witnessesRouter,
  users: usersRouter,
});
export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
