/**
 * Sweeps a web server picks up (issue 16, stateless web servers): nothing of a sweep lives in a process
 * (driver.ts), so every long-lived web server drives every sweep still "running" on its store: at its start (after
 * run recovery: the trials a dead server trained are resumed first) and then every `intervalMs` (default 30 s,
 * RUNLEDGER_SWEEP_PICKUP_MS), for the sweeps another server drove until it died while this one kept running. Several
 * servers driving one sweep is safe (driver.ts header); one process never drives a sweep twice (driveSweep's registry, shared by every bundle copy of driver.ts, and
 * driversStarting for the sweeps this process is starting to drive).
 * Paused, stopped and completed sweeps are left alone: a resume or an extend starts their driver (launch.ts).
 * Only the web server does this (app-services.ts, `recover: true`), never a short-lived CLI process or a training
 * worker (`npm run worker`).
 */
import { eq } from "drizzle-orm";
import { asStore, isStoreOpen, reader } from "@/db/store";
import { driveSweep, drivenHere, driversStarting, type SweepDriverDeps, type SweepOrchestrator } from "./driver";

export const SWEEP_PICKUP_INTERVAL_MS = 30_000;

export function sweepPickUpIntervalMs(env: Record<string, string | undefined> = process.env): number {
  const ms = Number(env.RUNLEDGER_SWEEP_PICKUP_MS ?? SWEEP_PICKUP_INTERVAL_MS);
  return Number.isFinite(ms) && ms > 0 ? ms : SWEEP_PICKUP_INTERVAL_MS;
}

/** Starts a driver for each running sweep this process does not drive yet; resolves to their ids. */
export async function driveRunningSweeps(deps: SweepDriverDeps, orchestrator: SweepOrchestrator): Promise<number[]> {
  const store = asStore(deps.db);
  if (!isStoreOpen(store)) return [];
  const { sweeps } = store.tables;
  const running = await reader(store).select({ id: sweeps.id }).from(sweeps).where(eq(sweeps.status, "running")).orderBy(sweeps.id);
  // A sweep this process is creating, resuming or extending may be read as running before its driver is registered:
  // wait for those decisions to start their drivers (launch.ts, startsDriver), so they are found driven here.
  await driversStarting(store);
  const started: number[] = [];
  for (const { id } of running) {
    if (drivenHere(store, id)) continue;
    started.push(id);
    driveSweep(deps, orchestrator, id).catch((err: Error) => {
      if (isStoreOpen(store)) console.error(`[runledger] sweep ${id}: the driver stopped: ${err.message}`);
    });
  }
  return started;
}

export type SweepPickUp = {
  /** Resolves once the first look (after `after`) has started its drivers, to the sweeps it picked up. */
  first: Promise<number[]>;
  /** Stops looking (drivers already started run on until their sweep ends or the store closes). */
  stop(): void;
};

/**
 * Drives the running sweeps once `after` has settled (the start-up run recovery), then looks again every
 * `intervalMs`. The timer does not keep the process alive and stops by itself once the store is closed.
 */
export function startSweepPickUp(
  deps: SweepDriverDeps,
  orchestrator: SweepOrchestrator,
  opts: { after?: Promise<unknown>; intervalMs?: number } = {},
): SweepPickUp {
  const store = asStore(deps.db);
  let stopped = false;
  let looking = false;
  const look = async (): Promise<number[]> => {
    if (stopped || looking) return [];
    looking = true;
    try {
      const started = await driveRunningSweeps(deps, orchestrator);
      if (started.length) console.log(`[runledger] driving sweep(s) ${started.join(", ")} picked up from the store`);
      return started;
    } catch (err) {
      if (isStoreOpen(store)) console.error(`[runledger] sweep pick-up: ${(err as Error).message}`);
      return [];
    } finally {
      looking = false;
    }
  };
  const first = (opts.after ?? Promise.resolve()).catch(() => undefined).then(look);
  const timer = setInterval(() => {
    if (!isStoreOpen(store)) return stop();
    void look();
  }, opts.intervalMs ?? sweepPickUpIntervalMs());
  timer.unref();
  function stop(): void {
    stopped = true;
    clearInterval(timer);
  }
  return { first, stop };
}
