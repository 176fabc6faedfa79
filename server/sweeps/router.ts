/**
 * Sweeps (issue 17): create (and drive it in the background), read, pause, resume, stop, extend, choose the winner.
 * Everything here runs on either store (issue 16): the decisions, the reads, and the driver they start (driver.ts).
 */
import { z } from "zod";
import { router, signedInProcedure, engineerProcedure } from "@/server/trpc/init";
import {
  changeSweepStatus,
  chooseSweepWinner,
  chooseWinnerInput,
  createSweepInput,
  extendSweepInput,
  sweepDecisionInput,
} from "@/server/sweeps/service";
import { sweepOfRunOn, sweepOnStore, sweepsOnStore } from "@/server/sweeps/queries";
import { launchSweep, resumeSweep, stopSweep, extendAndDrive } from "@/server/sweeps/launch";

export const sweepsRouter = router({
  create: engineerProcedure
    .input(createSweepInput)
    .mutation(({ ctx, input }) => launchSweep(ctx.services, ctx.services.orchestrator, input)),
  get: signedInProcedure.input(z.object({ id: z.number().int() })).query(({ ctx, input }) => sweepOnStore(ctx.services.db, input.id)),
  /** The sweep that generated a run (its trial index, the sweep's size, the winner decision if this run won); null for other runs. */
  ofRun: signedInProcedure
    .input(z.object({ runId: z.number().int() }))
    .query(({ ctx, input }) => sweepOfRunOn(ctx.services.db, input.runId)),
  list: signedInProcedure
    .input(z.object({ experimentId: z.number().int().optional() }).default({}))
    .query(({ ctx, input }) => sweepsOnStore(ctx.services.db, input.experimentId)),
  pause: engineerProcedure.input(sweepDecisionInput).mutation(({ ctx, input }) => changeSweepStatus(ctx.services, "pause", input)),
  resume: engineerProcedure
    .input(sweepDecisionInput)
    .mutation(({ ctx, input }) => resumeSweep(ctx.services, ctx.services.orchestrator, input)),
  stop: engineerProcedure.input(sweepDecisionInput).mutation(({ ctx, input }) => stopSweep(ctx.services, ctx.services.orchestrator, input)),
  extend: engineerProcedure
    .input(extendSweepInput)
    .mutation(({ ctx, input }) => extendAndDrive(ctx.services, ctx.services.orchestrator, input)),
  chooseWinner: engineerProcedure.input(chooseWinnerInput).mutation(({ ctx, input }) => chooseSweepWinner(ctx.services, input)),
});
