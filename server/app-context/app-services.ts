/**
 * The long-lived services of one server process: database, artifact store, audit signing keys and run orchestrator.
 * The web app keeps one instance per process (on globalThis, so Next.js dev reloads do not open a second
 * connection or orphan workers); the CLI and tests create their own on a data directory of their choice.
 * The signing key lives in the key directory (`keyDir`, default RUNLEDGER_KEY_DIR or ~/.config/runledger/keys), never in
 * the data directory; start is refused when the key is misplaced or missing (server/audit/key-custody.ts).
 */
import path from "node:path";
import { openDatabase, resolveDataDir } from "@/db/client";
import { fileArtifactStore } from "@/server/artifacts/store";
import { RunOrchestrator } from "@/server/runs/orchestrator/orchestrator";
import { StoreRunQueue } from "@/server/runs/orchestrator/run-queue";
import type { AnyServiceDeps, ServiceDeps } from "@/server/app-context/service-context";
import type { BackendName } from "@/trainer/types";
import { type AuditKeys, resolveKeyDir } from "@/server/audit/keys";
import { openAuditSigningKeys, openAuditSigningKeysOn } from "@/server/audit/key-custody";
import { startCheckpointTimer } from "@/server/audit/checkpoint-policy";
import { startWitnessPusher } from "@/server/audit/witness/start";
import { sweepStaleUploadTemps } from "@/server/datasets/upload/sweep-temp";
import { openPgStoreServices, postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import { startSweepPickUp, type SweepPickUp } from "@/server/sweeps/pick-up";

/**
 * auditKeys: the server's current Ed25519 signing keys (live: they follow a key rotation recorded in the ledger);
 * keyDir: where the private keys live (0700 directory, 0600 files named by fingerprint).
 */
export type AppServices = ServiceDeps & {
  orchestrator: RunOrchestrator;
  auditKeys: AuditKeys;
  keyDir: string;
  /** With `recover: true`: resolves to how many runs the start-up recovery interrupted, once it has run. */
  recovered: Promise<number>;
  /** With `recover: true` (not in a training worker): the running sweeps this server picked up at its start. */
  sweepsPickedUp?: Promise<number[]>;
};

/**
 * The web app's services on either store (issue 16): AppServices on SQLite, or the same on PostgreSQL
 * (createPgAppServices). Routers and route handlers take these; `isStore(services.db)` (db/store.ts) says which.
 */
export type AnyAppServices = AnyServiceDeps & {
  orchestrator: RunOrchestrator;
  auditKeys: AuditKeys;
  keyDir: string;
  recovered: Promise<number>;
  sweepsPickedUp?: Promise<number[]>;
};

/** Services a process opened itself (the web server's, createPgAppServices'), with what closes them. */
export type OwnedAppServices = AnyAppServices & { close(): Promise<void> };

/**
 * Where this process's runs train: "in-process" (worker threads of this process, the default), "workers" (queued for
 * the training worker processes, `npm run worker`: server/runs/orchestrator/run-queue.ts), "worker" (this process is
 * one of them). The web server reads RUNLEDGER_TRAINING (in-process | workers).
 */
export type TrainingMode = "in-process" | "workers" | "worker";

export function trainingModeFromEnv(env: Record<string, string | undefined> = process.env): "in-process" | "workers" {
  const v = env.RUNLEDGER_TRAINING ?? "in-process";
  if (v !== "in-process" && v !== "workers")
    throw new Error(`RUNLEDGER_TRAINING must be "in-process" or "workers" (training worker processes, npm run worker); got "${v}"`);
  return v;
}

export function createAppServices(
  dataDirInput?: string,
  /**
   * recover: the start of a long-lived server: runs whose training process died are interrupted and resumed here
   * (orchestrator recoverInterrupted) and stale upload temp files are swept; "uploads": only the sweep (a short-lived
   * process such as `cli seed` must not take runs over, it exits right after). With `true`, a server that does not
   * train as a worker also drives every running sweep, now and every 30 s (server/sweeps/pick-up.ts).
   */
  opts: {
    backend?: BackendName | "auto";
    maxConcurrent?: number;
    recover?: boolean | "uploads";
    keyDir?: string;
    training?: TrainingMode;
  } = {},
): AppServices {
  const dataDir = resolveDataDir(dataDirInput);
  const keyDir = resolveKeyDir(opts.keyDir);
  const db = openDatabase(dataDir);
  let auditKeys: AuditKeys;
  try {
    auditKeys = openAuditSigningKeys(db, { dataDir, keyDir });
  } catch (err) {
    db.$client.close();
    throw err;
  }
  const artifacts = fileArtifactStore(dataDir);
  const deps = { db, artifacts, dataDir, auditKeys };
  const training = opts.training ?? "in-process";
  const orchestrator = new RunOrchestrator(deps, {
    ...opts,
    ...(training === "in-process" ? {} : { queue: new StoreRunQueue(db) }),
    worker: training === "worker",
  });
  let recovered = Promise.resolve(0);
  if (opts.recover) {
    if (opts.recover === true)
      recovered = orchestrator.recoverInterrupted().catch((err: Error) => {
        console.error(`[runledger] run recovery at start: ${err.message}`);
        return 0;
      });
    // Upload temp files a crash left behind (older than an hour: an upload still streaming keeps touching its file).
    const swept = sweepStaleUploadTemps(dataDir);
    if (swept.removed.length || swept.failed.length)
      console.log(
        `[runledger] upload temp sweep: removed ${swept.removed.length} stale file(s)${swept.failed.length ? `, could not remove ${swept.failed.map((f) => `${f.file} (${f.message})`).join(", ")}` : ""}`,
      );
  }
  // Stops by itself once the database is closed (AppServices has no close of its own).
  const sweepPickUp =
    opts.recover === true && training !== "worker" ? startSweepPickUp(deps, orchestrator, { after: recovered }) : undefined;
  return { ...deps, orchestrator, keyDir, recovered, sweepsPickedUp: sweepPickUp?.first };
}

/**
 * The web app's services on PostgreSQL (DATABASE_URL): the migrated store and its artifact store
 * (pg-store-services.ts), this server's signing keys (openAuditSigningKeysOn: the key the ledger names, from this
 * server's key directory), and the orchestrator on the store; with `recover`, as on SQLite, run recovery and the
 * running sweeps picked up (close stops looking for them). `localDir` is this machine's scratch directory (upload
 * temp files, the public key file); the record is all in PostgreSQL. Start-up recovery on PostgreSQL judges runs by
 * lease age on the database clock, so several web servers and workers may start together.
 */
export async function createPgAppServices(
  url: string,
  opts: {
    localDir?: string;
    keyDir?: string;
    backend?: BackendName | "auto";
    maxConcurrent?: number;
    recover?: boolean;
    training?: TrainingMode;
    poolSize?: number;
  } = {},
): Promise<OwnedAppServices> {
  const localDir = path.resolve(opts.localDir ?? process.env.RUNLEDGER_DATA_DIR ?? "./data");
  const keyDir = resolveKeyDir(opts.keyDir);
  const pg = await openPgStoreServices(url, { poolSize: opts.poolSize });
  let auditKeys: AuditKeys;
  try {
    auditKeys = await openAuditSigningKeysOn(pg.store, { localDir, keyDir });
  } catch (err) {
    await pg.close();
    throw err;
  }
  const deps = { db: pg.store, artifacts: pg.artifacts, dataDir: localDir, auditKeys };
  const training = opts.training ?? "in-process";
  const orchestrator = new RunOrchestrator(deps, {
    ...opts,
    ...(training === "in-process" ? {} : { queue: new StoreRunQueue(pg.store) }),
    worker: training === "worker",
  });
  let recovered = Promise.resolve(0);
  if (opts.recover) {
    recovered = orchestrator.recoverInterrupted().catch((err: Error) => {
      console.error(`[runledger] run recovery at start: ${err.message}`);
      return 0;
    });
    sweepStaleUploadTemps(localDir);
  }
  let sweepPickUp: SweepPickUp | undefined;
  if (opts.recover && training !== "worker") sweepPickUp = startSweepPickUp(deps, orchestrator, { after: recovered });
  return {
    ...deps,
    orchestrator,
    keyDir,
    recovered,
    sweepsPickedUp: sweepPickUp?.first,
    close: () => {
      sweepPickUp?.stop();
      return pg.close();
    },
  };
}

/** The SQLite services as AnyAppServices (the web app's view of an embedded installation). */
export function asOwnedAppServices(services: AppServices): OwnedAppServices {
  return { ...services, close: async () => void services.db.$client.close() };
}

const g = globalThis as unknown as { __runledger?: AnyAppServices; __runledgerStarting?: Promise<AnyAppServices> };

/**
 * The web server's services, created once per process: on PostgreSQL when DATABASE_URL names it, else on the
 * embedded SQLite store. A failed start is not kept: the next request tries again and reports it.
 */
export function getAppServices(): Promise<AnyAppServices> {
  if (g.__runledger) return Promise.resolve(g.__runledger);
  g.__runledgerStarting ??= startAppServices().then(
    (services) => (g.__runledger = services),
    (err: unknown) => {
      delete g.__runledgerStarting;
      throw err;
    },
  );
  return g.__runledgerStarting;
}

async function startAppServices(): Promise<AnyAppServices> {
  const training = trainingModeFromEnv();
  const url = postgresUrlFromEnv();
  const services = url
    ? await createPgAppServices(url, { recover: true, training })
    : asOwnedAppServices(createAppServices(undefined, { recover: true, training }));
  // Trainer events arrive without a mutation: the timer keeps the "every 10 minutes" checkpoint promise.
  startCheckpointTimer(services);
  // Each new signed checkpoint goes to the witnesses in RUNLEDGER_WITNESSES, in the background.
  startWitnessPusher(services);
  // Other processes share the store (`cli train`, `cli pilot`, other web servers, workers): take over runs whose
  // training process died and resumes asked for elsewhere, every RUNLEDGER_RECOVERY_INTERVAL_MS (default 10 s).
  const timer = setInterval(
    () => void services.orchestrator.adoptOrphans().catch((err: Error) => console.error(`[runledger] run recovery: ${err.message}`)),
    Number(process.env.RUNLEDGER_RECOVERY_INTERVAL_MS ?? 10_000),
  );
  timer.unref();
  return services;
}
