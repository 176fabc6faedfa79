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

export type AppServices = ServiceDeps & { orchestrator: RunOrchestrator };

export function createAppServices(dataDirInput?: string, opts: { backend?: BackendName | "auto"; maxConcurrent?: number; recover?: boolean } = {}): AppServices {
  const dataDir = resolveDataDir(dataDirInput);
  const db = openDatabase(dataDir);
  const artifacts = fileArtifactStore(dataDir);
  const deps = { db, artifacts, dataDir };
  const orchestrator = new RunOrchestrator(deps, opts);
  if (opts.recover) orchestrator.recoverInterrupted();
  return { ...deps, orchestrator };
}

const g = globalThis as unknown as { __runledger?: AppServices };
export function getAppServices(): AppServices {
  g.__runledger ??= createAppServices(undefined, { recover: true });
  return g.__runledger;
}
