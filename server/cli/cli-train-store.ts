/**
 * The store of a command that trains (train, and the commands that train here: resume, rerun, pilot's rollback,
 * sweep, compress's distillation): the SQLite data directory with its signing keys (createAppServices), or, with
 * DATABASE_URL=postgres://…, the PostgreSQL store (pg-store-services.ts: migrated store, artifacts in PostgreSQL)
 * with an orchestrator on it that trains in this process, or queues for the PostgreSQL workers (`enqueue`).
 *
 * On PostgreSQL the local directory (RUNLEDGER_DATA_DIR or ./data, as a worker's) is the trainer's scratch space
 * only; the record and the artifacts are in PostgreSQL. `afterWrite` signs no checkpoint there: the signing key stays
 * with the web servers, whose timer signs the checkpoints these events make due.
 */
import path from "node:path";
import { asStore, type Store } from "@/db/store";
import { createAppServices } from "@/server/app-context/app-services";
import { openPgStoreServices, postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { ensureDemoUsersAndProject } from "@/server/demo/seed";
import { RunOrchestrator } from "@/server/runs/orchestrator/orchestrator";
import { StoreRunQueue } from "@/server/runs/orchestrator/run-queue";
import type { BackendName } from "@/trainer/types";
import { checkpointAfterCliWrite } from "./checkpoint-after-write";
import { ensureDemoProjectOn } from "./cli-experiment";
import { sqliteOptionsOnPostgresRefusal } from "./train-store-refusal";
import { unknownBackendRefusal } from "./backend-option";

export type TrainStore = {
  store: Store;
  artifacts: AnyArtifactStore;
  orchestrator: RunOrchestrator;
  /** True on PostgreSQL (DATABASE_URL), false on a SQLite data directory. */
  onPostgres: boolean;
  /** The demo users, project and experiment (seeded as the store needs), resolving to the demo experiment's id. */
  seedDemo(): Promise<number>;
  /** After writing: SQLite signs a due audit checkpoint; PostgreSQL signs none (the web servers hold the key). */
  afterWrite(): void;
  close(): Promise<void>;
};

export type TrainStoreOptions = { dataDir?: string; keyDir?: string; backend: BackendName | "auto"; enqueue: boolean };

/**
 * The store a training command asked for, or null once the refusal of an unknown --backend, or of --data-dir /
 * --key-dir on PostgreSQL, is on stderr (the command then exits 2).
 */
export async function openTrainStoreFor(command: string, opts: TrainStoreOptions): Promise<TrainStore | null> {
  const refusal = unknownBackendRefusal(command, opts.backend) ?? sqliteOptionsOnPostgresRefusal(command, opts);
  if (refusal) {
    process.stderr.write(refusal);
    return null;
  }
  return openTrainStore(opts);
}

/** DATABASE_URL=postgres://… selects PostgreSQL (callers refuse --data-dir and --key-dir there first), else SQLite. */
export async function openTrainStore(opts: TrainStoreOptions): Promise<TrainStore> {
  const pgUrl = postgresUrlFromEnv();
  return pgUrl ? openPgTrainStore(pgUrl, opts) : openSqliteTrainStore(opts);
}

/** The SQLite data directory, as every command opens it (its signing keys sign the checkpoints due after writing). */
function openSqliteTrainStore(opts: TrainStoreOptions): TrainStore {
  const services = createAppServices(opts.dataDir, {
    backend: opts.backend,
    keyDir: opts.keyDir,
    training: opts.enqueue ? "workers" : "in-process",
  });
  return {
    store: asStore(services.db),
    artifacts: services.artifacts,
    orchestrator: services.orchestrator,
    onPostgres: false,
    seedDemo: async () => ensureDemoUsersAndProject(services).experimentId,
    afterWrite: () => void checkpointAfterCliWrite(services.db, { dataDir: services.dataDir, auditKeys: services.auditKeys }),
    close: async () => {
      services.db.$client.close();
    },
  };
}

async function openPgTrainStore(url: string, opts: TrainStoreOptions): Promise<TrainStore> {
  const pg = await openPgStoreServices(url, { poolSize: 4 });
  const { store, artifacts } = pg;
  const orchestrator = new RunOrchestrator(
    { db: store, artifacts, dataDir: path.resolve(process.env.RUNLEDGER_DATA_DIR ?? "./data") },
    { backend: opts.backend, ...(opts.enqueue ? { queue: new StoreRunQueue(store) } : {}) },
  );
  return {
    store,
    artifacts,
    orchestrator,
    onPostgres: true,
    seedDemo: () => ensureDemoProjectOn(store),
    afterWrite: () => undefined,
    close: () => pg.close(),
  };
}
