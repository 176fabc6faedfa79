/**
 * The sweep verbs that also set the driver going (or cancel trials) after their decision is committed: create,
 * resume and extend start driving the sweep in this process (driver.ts, in the background: the request returns at
 * once); stop cancels the trials that were active when the stop was recorded. The decisions, the driver and the
 * orchestrator all run on either store (issue 16); another web server may drive the same sweep (driver.ts).
 */
import type { z } from "zod";
import type { StoreServiceContext } from "@/server/app-context/store-context";
import { asStore, isStoreOpen } from "@/db/store";
import { driveSweep, startsDriver, type SweepDriverDeps, type SweepOrchestrator } from "./driver";
import {
  changeSweepStatus,
  createSweep,
  extendSweep,
  type createSweepInput,
  type extendSweepInput,
  type sweepDecisionInput,
} from "./service";
import { refuseUnbuildableSweep } from "./buildable";

/** Who decides, on which store (either), and the artifact store a trial's dataset may be registered in. */
type SweepContext = StoreServiceContext & SweepDriverDeps;

function inBackground(ctx: SweepContext, orchestrator: SweepOrchestrator, sweepId: number): void {
  driveSweep(ctx, orchestrator, sweepId).catch((err: Error) => {
    // A store closed under the driver (the server stopping) is no news: another server or the next start picks it up.
    if (isStoreOpen(asStore(ctx.db))) console.error(`sweep ${sweepId}: the driver stopped: ${err.message}`);
  });
}

// Each decision that makes a sweep running starts its driver through startsDriver: a pick-up look in this process
// that sees the committed sweep before the driver is registered waits for it instead of starting a second one.
// A sweep whose trials would build a model that cannot be built is refused first, with nothing recorded (buildable.ts).
export async function launchSweep(
  ctx: SweepContext & { dataDir: string },
  orchestrator: SweepOrchestrator,
  raw: z.input<typeof createSweepInput>,
) {
  await refuseUnbuildableSweep(ctx, raw);
  const s = await startsDriver(
    ctx.db,
    () => createSweep(ctx, raw),
    (created) => inBackground(ctx, orchestrator, created.id),
  );
  return { id: s.id, name: s.name, specSha256: s.specSha256 };
}

export async function resumeSweep(ctx: SweepContext, orchestrator: SweepOrchestrator, raw: z.input<typeof sweepDecisionInput>) {
  const out = await startsDriver(
    ctx.db,
    () => changeSweepStatus(ctx, "resume", raw),
    (resumed) => inBackground(ctx, orchestrator, resumed.id),
  );
  return { id: out.id, status: out.status };
}

export async function stopSweep(ctx: SweepContext, orchestrator: SweepOrchestrator, raw: z.input<typeof sweepDecisionInput>) {
  const out = await changeSweepStatus(ctx, "stop", raw);
  for (const runId of out.cancelRunIds) await orchestrator.cancel(runId);
  return { id: out.id, status: out.status, cancelledTrialRunIds: out.cancelRunIds };
}

export async function extendAndDrive(ctx: SweepContext, orchestrator: SweepOrchestrator, raw: z.input<typeof extendSweepInput>) {
  return startsDriver(
    ctx.db,
    () => extendSweep(ctx, raw),
    (out) => {
      if (out.status === "running") inBackground(ctx, orchestrator, out.id);
    },
  );
}
