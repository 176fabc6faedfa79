/**
 * Getting a just-signed checkpoint cosigned before it is handed out: a report export signs a fresh checkpoint over
 * its own "audit.export" event, then waits here (at most EXPORT_COSIGN_WAIT_MS) while the checkpoint is pushed to
 * the configured witnesses (RUNLEDGER_WITNESSES), so the bundle's newest checkpoint carries its cosignatures when
 * the witnesses are up. When one is down or slow, the result says so (the bundle records it); it never fails.
 *
 * Invariants:
 * - Pushes through the pusher this process already runs (the web server's, start.ts), so pushes stay serialised;
 *   a process without one (the CLI) pushes with a pusher of its own whose HTTP timeout is the wait.
 * - "cosigned" = the witness has a stored, verified cosignature at this checkpoint's size or larger (a later
 *   checkpoint's cosignature covers this one: the witness only cosigns consistent extensions).
 * - Never throws; returns null when no witness is configured. Reads either store (deps.db: Store | Db).
 */
import type { AuditCheckpointRow } from "@/server/audit/ledger-reads";
import { WitnessPusher, type WitnessPusherDeps } from "./pusher";
import { configuredWitnesses, runningWitnessPusher } from "./start";
import { largestCosignedSizeOn, readWitnessStatusOn } from "./store";

export const EXPORT_COSIGN_WAIT_MS = 3000;

export type FreshCheckpointWitnessing = {
  checkpointId: number;
  treeSize: number;
  rootHash: string;
  /** How long the export waited for the cosignatures, in ms. */
  waitedMs: number;
  witnesses: { url: string; witness: string; cosigned: boolean; reason: string | null }[];
};

/** Pushes `cp` (the latest checkpoint) to the configured witnesses and waits up to `waitMs` for their cosignatures. */
export async function cosignFreshCheckpoint(
  deps: WitnessPusherDeps,
  cp: Pick<AuditCheckpointRow, "id" | "treeSize" | "rootHash">,
  opts: { waitMs?: number; env?: Record<string, string | undefined>; log?: (line: string) => void } = {},
): Promise<FreshCheckpointWitnessing | null> {
  const config = configuredWitnesses(opts.env);
  if (config.witnesses.length === 0) return null;
  const waitMs = opts.waitMs ?? EXPORT_COSIGN_WAIT_MS;
  const started = performance.now();
  const pusher = runningWitnessPusher() ?? new WitnessPusher(deps, config, { timeoutMs: waitMs, log: opts.log });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), waitMs);
    timer.unref?.();
  });
  const pushed = pusher.pushNow().catch(() => []);
  const outcome = await Promise.race([pushed, timedOut]);
  clearTimeout(timer);
  const witnesses = await Promise.all(
    config.witnesses.map(async (w) => {
      const keyId = w.key.keyId.toString("hex");
      let cosigned = false;
      let reason: string | null = null;
      try {
        cosigned = (await largestCosignedSizeOn(deps.db, w.key.name, keyId)) >= cp.treeSize;
        if (!cosigned) {
          const status = await readWitnessStatusOn(deps.db, w.url);
          reason = outcome === "timeout" ? `no cosignature within ${waitMs} ms` : (status?.lastError ?? "not cosigned");
        }
      } catch (err) {
        reason = `cannot read the cosignatures: ${(err as Error).message}`;
      }
      return { url: w.url, witness: w.key.name, cosigned, reason };
    }),
  );
  return {
    checkpointId: cp.id,
    treeSize: cp.treeSize,
    rootHash: cp.rootHash,
    waitedMs: Math.round(performance.now() - started),
    witnesses,
  };
}
