/**
 * Sweeps (issue 17): create (and drive it in the background), read, pause, resume, stop, extend, choose the winner.
 * The decisions and the sweep's reads are on the store (issue 16); ofRun is queries.ts's (SQLite until it is ported).
 */
import { z } from "zod";
import { router, signedInProcedure, engineerProcedure } from "@/server/trpc/init";
import { sqliteDb, sqliteServices } from "@/server/app-context/sqlite-only";
import {
  changeSweepStatus,
  chooseSweepWinner,
  chooseWinnerInput,
  createSweepInput,
  extendSweepInput,
  sweepDecisionInput,
} from "@/server/sweeps/service";
import { sweepOfRun, sweepOnStore, sweepsOnStore } from "@/server/sweeps/queries";
import { launchSweep, resumeSweep, stopSweep, extendAndDrive } from "@/server/sweeps/launch";

export const sweepsRouter = router({
  create: engineerProcedure
    .input(createSweepInput)
    .mutation(({ ctx, input }) => launchSweep(sqliteServices(ctx.services, "Sweeps"), ctx.services.orchestrator, input)),
  get: signedInProcedure.input(z.object({ id: z.number().int() })).query(({ ctx, input }) => sweepOnStore(ctx.services.db, input.id)),
  /** The sweep that generated a run (its trial index, the sweep's size, the winner decision if this run won); null for other runs. */
  ofRun: signedInProcedure
    .input(z.object({ runId: z.number().int() }))
    .query(({ ctx, input }) => sweepOfRun(sqliteDb(ctx.services, "Sweeps"), input.runId)),
  list: signedInProcedure
    .input(z.object({ experimentId: z.number().int().optional() }).default({}))
    .query(({ ctx, input }) => sweepsOnStore(ctx.services.db, input.experimentId)),
  pause: engineerProcedure
    .input(sweepDecisionInput)
    .mutation(({ ctx, input }) => changeSweepStatus(sqliteServices(ctx.services, "Sweeps"), "pause", input)),
  resume: engineerProcedure
    .input(sweepDecisionInput)
    .mutation(({ ctx, input }) => resumeSweep(sqliteServices(ctx.services, "Sweeps"), ctx.services.orchestrator, input)),
  stop: engineerProcedure
    .input(sweepDecisionInput)
    .mutation(({ ctx, input }) => stopSweep(sqliteServices(ctx.services, "Sweeps"), ctx.services.orchestrator, input)),
  extend: engineerProcedure
    .input(extendSweepInput)
    .mutation(({ ctx, input }) => extendAndDrive(sqliteServices(ctx.services, "Sweeps"), ctx.services.orchestrator, input)),
  chooseWinner: engineerProcedure.input(chooseWinnerInput).mutation(({ ctx, input }) => chooseSweepWinner(ctx.services, input)),
});
