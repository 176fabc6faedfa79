/**
 * Assembling trainer jobs for the short worker tasks (memory estimate, on-demand evaluation), and the
 * estimate itself. Reads only: estimating never registers a dataset or writes anything, so any signed-in
 * role (auditors included) may ask for it. TensorFlow.js never loads here: the work runs in a worker thread.
 * The estimate runs in the process's one long-lived estimate worker (trainer/estimate-pool.ts): the request
 * handler validates the config and looks up two rows, passing references (sha256) rather than bytes, so its
 * main-thread work stays at a few milliseconds whatever the dataset's size.
 *
 * The job inputs (datasetForJob, runDatasetForJob, parentForJob) are SQLite only; their `…On` forms run on either
 * store (db/store.ts) with either artifact store, for the orchestrator's run sessions (issue 16). The estimate runs on
 * either store too; with artifacts in PostgreSQL the request handler reads the dataset's (and a fine-tune parent's)
 * bytes, hash-checked, and sends them to the worker, which cannot read that store itself.
 */
import { eq } from "drizzle-orm";
import { checkpoints, datasets, datasetVersions, runs } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import type { Db } from "@/db/client";
import { asStore, reader, type Store } from "@/db/store";
import type { ArtifactStore } from "@/server/artifacts/store";
import { awaitedArtifacts, type AnyArtifactStore } from "@/server/artifacts/async-store";
import type { TrainingConfig } from "@/contracts/training-config";
import { loadBuiltin } from "@/trainer/data/builtin";
import { DatasetError } from "@/trainer/data/errors";
import { DomainError } from "@/server/errors";
import { TrainerTaskError } from "@/trainer/worker-client";
import { EstimatorBusyError, estimatePool, type EstimateTask } from "@/trainer/estimate-pool";
import type { BackendName, DatasetSchema, TrainJob } from "@/trainer/types";
import { parseConfigOrThrow } from "./service";
import { invalidInput, notFound } from "@/server/errors";

type Deps = { db: DbOrTx; artifacts: ArtifactStore };
type StoreDeps = { db: Store | Db; artifacts: AnyArtifactStore };

/** A row id from a config or a caller, or null when it is not one (SQLite finds no row; PostgreSQL would refuse it). */
function rowId(id: number | string): number | null {
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : null;
}

/** A built-in dataset's bytes as job input (never registered here). */
function builtinForJob(name: Extract<TrainingConfig["data"]["dataset"], { builtin: unknown }>["builtin"]): TrainJob["dataset"] {
  try {
    const b = loadBuiltin(name);
    return { bytes: b.bytes, schema: b.schema, sha256: b.sha256 };
  } catch (e) {
    if (e instanceof DatasetError) invalidInput(`data.dataset: ${e.message}`);
    throw e;
  }
}

/** The backend a task runs on when the caller does not name one: the server's setting, else automatic. */
export function defaultBackend(): BackendName | "auto" {
  return (process.env.RUNLEDGER_BACKEND as BackendName | undefined) ?? "auto";
}

/** A config's dataset as job input, without registering a built-in one (that happens when a run is created). */
export function datasetForJob({ db, artifacts }: Deps, ref: TrainingConfig["data"]["dataset"]): TrainJob["dataset"] {
  if ("builtin" in ref) return builtinForJob(ref.builtin);
  const row = db
    .select()
    .from(datasets)
    .where(eq(datasets.id, Number(ref.datasetId)))
    .get();
  if (!row) notFound(`dataset ${ref.datasetId}`);
  return { bytes: artifacts.get(row.sha256), schema: JSON.parse(row.schemaJson) as DatasetSchema, sha256: row.sha256 };
}

/**
 * The exact bytes a run trained on: the dataset row its recorded version belongs to, read from the artifact
 * store (hash-checked), so a later change to a built-in file cannot alter what an evaluation sees.
 */
export function runDatasetForJob(deps: Deps, run: typeof runs.$inferSelect): TrainJob["dataset"] {
  const row =
    run.datasetVersionId === null
      ? undefined
      : deps.db
          .select({ d: datasets })
          .from(datasetVersions)
          .innerJoin(datasets, eq(datasets.id, datasetVersions.datasetId))
          .where(eq(datasetVersions.id, run.datasetVersionId))
          .get()?.d;
  if (!row) return datasetForJob(deps, (JSON.parse(run.configJson) as TrainingConfig).data.dataset);
  return { bytes: deps.artifacts.get(row.sha256), schema: JSON.parse(row.schemaJson) as DatasetSchema, sha256: row.sha256 };
}

/** The parent checkpoint (its run's config and weights) of a fine-tune, by checkpoint id. */
export function parentForJob(
  { db, artifacts }: Deps,
  checkpointId: number | string,
  path = "fineTune.parentCheckpointId",
): NonNullable<TrainJob["parent"]> {
  const ck = db
    .select()
    .from(checkpoints)
    .where(eq(checkpoints.id, Number(checkpointId)))
    .get();
  if (!ck) invalidInput(`${path}: checkpoint ${checkpointId} does not exist`);
  const parentRun = db.select().from(runs).where(eq(runs.id, ck.runId)).get();
  if (!parentRun) notFound(`run ${ck.runId} of checkpoint ${ck.id}`);
  return { config: JSON.parse(parentRun.configJson) as TrainingConfig, weights: artifacts.get(ck.sha256), sha256: ck.sha256 };
}

/** datasetForJob on either store. */
export async function datasetForJobOn({ db, artifacts }: StoreDeps, ref: TrainingConfig["data"]["dataset"]): Promise<TrainJob["dataset"]> {
  if ("builtin" in ref) return builtinForJob(ref.builtin);
  const store = asStore(db);
  const { datasets } = store.tables;
  const id = rowId(ref.datasetId);
  const [row] = id === null ? [] : await reader(store).select().from(datasets).where(eq(datasets.id, id)).limit(1);
  if (!row) notFound(`dataset ${ref.datasetId}`);
  const bytes = await awaitedArtifacts(artifacts).get(row.sha256);
  return { bytes, schema: JSON.parse(row.schemaJson) as DatasetSchema, sha256: row.sha256 };
}

/** runDatasetForJob on either store. */
export async function runDatasetForJobOn(deps: StoreDeps, run: typeof runs.$inferSelect): Promise<TrainJob["dataset"]> {
  const store = asStore(deps.db);
  const { datasets, datasetVersions } = store.tables;
  const [found] =
    run.datasetVersionId === null
      ? []
      : await reader(store)
          .select({ d: datasets })
          .from(datasetVersions)
          .innerJoin(datasets, eq(datasets.id, datasetVersions.datasetId))
          .where(eq(datasetVersions.id, run.datasetVersionId))
          .limit(1);
  const row = found?.d;
  if (!row) return datasetForJobOn(deps, (JSON.parse(run.configJson) as TrainingConfig).data.dataset);
  const bytes = await awaitedArtifacts(deps.artifacts).get(row.sha256);
  return { bytes, schema: JSON.parse(row.schemaJson) as DatasetSchema, sha256: row.sha256 };
}

/** parentForJob on either store. */
export async function parentForJobOn(
  { db, artifacts }: StoreDeps,
  checkpointId: number | string,
  path = "fineTune.parentCheckpointId",
): Promise<NonNullable<TrainJob["parent"]>> {
  const store = asStore(db);
  const { checkpoints, runs } = store.tables;
  const read = reader(store);
  const id = rowId(checkpointId);
  const [ck] = id === null ? [] : await read.select().from(checkpoints).where(eq(checkpoints.id, id)).limit(1);
  if (!ck) invalidInput(`${path}: checkpoint ${checkpointId} does not exist`);
  const [parentRun] = await read.select().from(runs).where(eq(runs.id, ck.runId)).limit(1);
  if (!parentRun) notFound(`run ${ck.runId} of checkpoint ${ck.id}`);
  const weights = await awaitedArtifacts(artifacts).get(ck.sha256);
  return { config: JSON.parse(parentRun.configJson) as TrainingConfig, weights, sha256: ck.sha256 };
}

/**
 * Where the estimate worker finds an artifact's bytes: the file artifact store of the data directory, which it reads
 * itself (the SQLite installation's synchronous store); or, for an artifact store it cannot read (the PostgreSQL
 * store's, issue 16), null: the bytes are read here (hash-checked by the store) and sent to it.
 */
function workerReadableDir(artifacts: AnyArtifactStore, dataDir: string): string | null {
  return "kind" in artifacts ? null : dataDir;
}

/** The estimate worker's view of a config's dataset: a built-in name, or an uploaded file's sha256 and schema (and bytes). */
async function datasetRefForEstimate(
  { db, artifacts, dataDir }: EstimateDeps,
  ref: TrainingConfig["data"]["dataset"],
): Promise<EstimateTask["dataset"]> {
  if ("builtin" in ref) return { builtin: ref.builtin };
  const store = asStore(db);
  const { datasets } = store.tables;
  const id = rowId(ref.datasetId);
  const [row] = id === null ? [] : await reader(store).select().from(datasets).where(eq(datasets.id, id)).limit(1);
  if (!row) notFound(`dataset ${ref.datasetId}`);
  const schema = JSON.parse(row.schemaJson) as DatasetSchema;
  const dir = workerReadableDir(artifacts, dataDir);
  if (dir !== null) return { dataDir: dir, sha256: row.sha256, schema };
  return { bytes: await awaitedArtifacts(artifacts).get(row.sha256), sha256: row.sha256, schema };
}

/** A fine-tune parent as the estimate worker needs it: its run's config and its checkpoint's weights sha256 (and bytes). */
async function parentRefForEstimate(
  { db, artifacts, dataDir }: EstimateDeps,
  checkpointId: number | string,
): Promise<NonNullable<EstimateTask["parent"]>> {
  const store = asStore(db);
  const { checkpoints, runs } = store.tables;
  const read = reader(store);
  const id = rowId(checkpointId);
  const [ck] = id === null ? [] : await read.select().from(checkpoints).where(eq(checkpoints.id, id)).limit(1);
  if (!ck) invalidInput(`fineTune.parentCheckpointId: checkpoint ${checkpointId} does not exist`);
  const [parentRun] = await read.select().from(runs).where(eq(runs.id, ck.runId)).limit(1);
  if (!parentRun) notFound(`run ${ck.runId} of checkpoint ${ck.id}`);
  const config = JSON.parse(parentRun.configJson) as TrainingConfig;
  const dir = workerReadableDir(artifacts, dataDir);
  if (dir !== null) return { config, dataDir: dir, weightsSha256: ck.sha256 };
  return { config, weights: await awaitedArtifacts(artifacts).get(ck.sha256), weightsSha256: ck.sha256 };
}

/** What an estimate reads: the store, the artifact store and the data directory, on either store (issue 16). */
export type EstimateDeps = { db: Store | Db; artifacts: AnyArtifactStore; dataDir: string };

/** Parameter count and float32/bfloat16/int8 memory estimate of a config's model, built from its prepared data. */
export function estimateConfig(deps: EstimateDeps, rawConfig: unknown) {
  return estimateOrRefuse(deps, rawConfig, "cannot estimate this configuration");
}

/**
 * Refuses (invalid input, with the builder's reason) a config whose model cannot be built for its dataset's input,
 * whose class weights name a class the dataset does not have (trainer/fit.ts checkClassWeights), or whose best-checkpoint
 * or early-stopping metric the run would not report (checkWatchedMetrics), before a launch records anything: the same estimate in the same worker, so the request thread builds no model. Every launch
 * of a config calls it: runs.create (new runs, forks, fine-tunes), re-runs (replay.ts createRerunOn), compressions
 * (compression.ts createCompressionRun), sweeps at creation (sweeps/buildable.ts) and the CLI's train and sweep.
 */
export async function refuseUnbuildableConfig(deps: EstimateDeps, rawConfig: unknown): Promise<void> {
  await estimateOrRefuse(deps, rawConfig, "cannot launch this configuration");
}

async function estimateOrRefuse(deps: EstimateDeps, rawConfig: unknown, refusal: string) {
  const config = parseConfigOrThrow(rawConfig);
  const task: EstimateTask = {
    config,
    dataset: await datasetRefForEstimate(deps, config.data.dataset),
    ...(config.fineTune ? { parent: await parentRefForEstimate(deps, config.fineTune.parentCheckpointId) } : {}),
    backend: defaultBackend(),
  };
  try {
    return await estimatePool().run(task);
  } catch (e) {
    if (e instanceof EstimatorBusyError) throw new DomainError("too_many_requests", e.message, { cause: e });
    if (e instanceof TrainerTaskError) invalidInput(`${refusal}: ${e.message}`);
    throw e;
  }
}
