/** The root router: one sub-router per domain. */
import { router, createCallerFactory } from "./init";
import { authRouter } from "@/server/auth/router";
import { projectsRouter } from "@/server/projects/router";
import { datasetsRouter } from "@/server/datasets/router";
import { runsRouter } from "@/server/runs/router";
import { decisionsRouter } from "@/server/decisions/router";
import { modelsRouter } from "@/server/registry/router";
import { exploreRouter } from "@/server/runs/explore/router";
import { auditRouter } from "@/server/audit/router";
import { documentsRouter } from "@/server/documents/router";
import { witnessesRouter } from "@/server/audit/witness/router";
import { usersRouter } from "@/server/users/router";
import { searchRouter } from "@/server/search/router";
import { sweepsRouter } from "@/server/sweeps/router";

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
  search: searchRouter,
  sweeps: sweepsRouter,
});
export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
