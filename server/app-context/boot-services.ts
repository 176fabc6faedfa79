/**
 * Starting the web server's long-lived services when the server process starts (instrumentation.ts register()),
 * not on its first request: getAppServices() opens the database and the signing keys, recovers interrupted runs,
 * and starts the checkpoint timer and the witness pusher (which pushes the latest checkpoint at once, e.g. one the
 * `seed` step or a CLI command signed before the start).
 *
 * Invariants: never during `next build` (NEXT_PHASE "phase-production-build": no database, no timers in build
 * workers); once per process (getAppServices keeps the services on globalThis, startWitnessPusher its pusher);
 * a failure here does not stop the server: it is logged, and each request retries getAppServices and reports it
 * as before.
 */
import { getAppServices } from "./app-services";

export const BUILD_PHASE = "phase-production-build";

/** Resolves to true when the services run (started now or already), false when skipped or failed; never rejects. */
export async function startServicesAtBoot(
  env: Record<string, string | undefined> = process.env,
  log: (line: string) => void = (l) => console.error(l),
): Promise<boolean> {
  if (env.NEXT_PHASE === BUILD_PHASE) return false;
  try {
    await getAppServices();
    return true;
  } catch (err) {
    log(`[runledger] the app services did not start at boot (${(err as Error).message}); each request will try again and report it`);
    return false;
  }
}
