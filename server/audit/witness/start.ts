/**
 * Starting the witness pusher in the long-lived web server from RUNLEDGER_WITNESSES (and RUNLEDGER_LOG_ORIGIN).
 * Invariants: a bad entry never stops the app: it is logged here and shown on the Audit page (configuredWitnesses);
 * with no witness configured nothing runs. One pusher per process (kept on globalThis across dev reloads).
 */
import { parseWitnessConfig, type WitnessConfig } from "./client";
import { WitnessPusher, type WitnessPusherDeps } from "./pusher";

const g = globalThis as unknown as { __runledgerWitnessPusher?: { pusher: WitnessPusher; stop: () => void } };

export function configuredWitnesses(env: Record<string, string | undefined> = process.env): WitnessConfig {
  return parseWitnessConfig(env.RUNLEDGER_WITNESSES);
}

export function startWitnessPusher(deps: WitnessPusherDeps, env: Record<string, string | undefined> = process.env): WitnessPusher | null {
  if (g.__runledgerWitnessPusher) return g.__runledgerWitnessPusher.pusher;
  const config = configuredWitnesses(env);
  for (const e of config.errors) console.error(`RUNLEDGER_WITNESSES: ${e}`);
  if (config.witnesses.length === 0) return null;
  const pusher = new WitnessPusher(deps, config);
  g.__runledgerWitnessPusher = { pusher, stop: pusher.start() };
  return pusher;
}

/** The pusher this process started (the web server's), if any: others (an export) push through it, not beside it. */
export function runningWitnessPusher(): WitnessPusher | null {
  return g.__runledgerWitnessPusher?.pusher ?? null;
}
