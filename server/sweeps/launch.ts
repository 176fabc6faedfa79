/**
 * The sweep verbs that also set the driver going (or cancel trials) after their decision is committed: create,
 * resume and extend start driving the sweep in this process (driver.ts, in the background: the request returns at
 * once); stop cancels the trials that were active when the stop was recorded. The decisions are on the store
 * (service.ts); the driver and the orchestrator still take the SQLite handle (driver.ts), so ctx.db is SQLite here.
 */
import type { z } from "zod";
import type { ServiceContext } from "@/server/app-context/service-context";
import { driveSweep, type SweepOrchestrator } from "./driver";
import {
  changeSweepStatus,
  createSweep,
  extendSweep,
  type createSweepInput,
  type extendSweepInput,
  type sweepDecisionInput,
} from "./service";

function inBackground(ctx: ServiceContext, orchestrator: SweepOrchestrator, sweepId: number): void {
  driveSweep(ctx, orchestrator, sweepId).catch((err: Error) => console.error(`sweep ${sweepId}: the driver stopped: ${err.message}`));
}

export async function launchSweep(ctx: ServiceContext, orchestrator: SweepOrchestrator, raw: z.input<typeof createSweepInput>) {
  const s = await createSweep(ctx, raw);
  inBackground(ctx, orchestrator, s.id);
  return { id: s.id, name: s.name, specSha256: s.specSha256 };
}

export async function resumeSweep(ctx: ServiceContext, orchestrator: SweepOrchestrator, raw: z.input<typeof sweepDecisionInput>) {
  const out = await changeSweepStatus(ctx, "resume", raw);
  inBackground(ctx, orchestrator, out.id);
  return { id: out.id, status: out.status };
}

export async function stopSweep(ctx: ServiceContext, orchestrator: SweepOrchestrator, raw: z.input<typeof sweepDecisionInput>) {
  const out = await changeSweepStatus(ctx, "stop", raw);
  for (const runId of out.cancelRunIds) await orchestrator.cancel(runId);
  return { id: out.id, status: out.status, cancelledTrialRunIds: out.cancelRunIds };
}

export async function extendAndDrive(ctx: ServiceContext, orchestrator: SweepOrchestrator, raw: z.input<typeof extendSweepInput>) {
  const out = await extendSweep(ctx, raw);
  if (out.status === "running") inBackground(ctx, orchestrator, out.id);
  return out;
}
