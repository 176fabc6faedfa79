/**
 * The long-lived services of one server process: database, artifact store and run orchestrator.
 * The web app keeps one instance per process (on globalThis, so Next.js dev reloads do not open a second
 * connection or orphan workers); the CLI and tests create their own on a data directory of their choice.
 */
import { openDatabase, resolveDataDir } from "@/db/client";
import { fileArtifactStore } from "@/server/artifacts/store";
import { RunOrchestrator } from "@/server/runs/orchestrator";
import type { ServiceDeps } from "@/server/services/service-context";
import type { BackendName } from "@/trainer/types";
import { loadOrCreateAuditKeys, type AuditKeys } from "@/server/audit/keys";
import { startCheckpointTimer } from "@/server/audit/checkpoint-policy";
import { startWitnessPusher } from "@/server/audit/witness/start";

/** auditKeys: the server's Ed25519 audit key pair, created in the data directory on first start (private key 0600). */
export type AppServices = ServiceDeps & { orchestrator: RunOrchestrator; auditKeys: AuditKeys };

export function createAppServices(dataDirInput?: string, opts: { backend?: BackendName | "auto"; maxConcurrent?: number; recover?: boolean } = {}): AppServices {
  const dataDir = resolveDataDir(dataDirInput);
  const db = openDatabase(dataDir);
  const artifacts = fileArtifactStore(dataDir);
  const deps = { db, artifacts, dataDir };
  const auditKeys = loadOrCreateAuditKeys(dataDir);
  const orchestrator = new RunOrchestrator(deps, opts);
  if (opts.recover) orchestrator.recoverInterrupted();
  return { ...deps, orchestrator, auditKeys };
}

const g = globalThis as unknown as { __runledger?: AppServices };
export function getAppServices(): AppServices {
  if (!g.__runledger) {
    g.__runledger = createAppServices(undefined, { recover: true });
    // Trainer events arrive without a mutation: the timer keeps the "every 10 minutes" checkpoint promise.
    startCheckpointTimer(g.__runledger);
    // Each new signed checkpoint goes to the witnesses in RUNLEDGER_WITNESSES, in the background.
    startWitnessPusher(g.__runledger);
  }
  return g.__runledger;
}
