/**
 * Downloading a checkpoint's weights (or a model version's, through the checkpoint it points at), for the GET
 * routes under app/api/weights/ (server/http/weights-download.ts).
 *
 * Two forms:
 * - "tfjs" (default): a ZIP (server/fs/zip.ts, deterministic bytes) holding model.json + weights.bin, a TF.js
 *   Layers model that `tf.loadLayersModel` reads once unpacked (built in a trainer worker, trainer/tfjs-export.ts),
 *   the recorded weights file itself as checkpoint.rlw1 (runledger-weights/1; its SHA-256 is the one the ledger
 *   recorded and the pages show) and SHA256SUMS for all three.
 * - "rlw1": the recorded weights file, byte for byte: its SHA-256 is the recorded one.
 *
 * Invariants:
 * - Read-only: any signed-in role may download; nothing is written (no ledger event, no file).
 * - The stored file is read through the artifact store, which checks its hash: a file that does not hash to the
 *   recorded SHA-256 (tampered, truncated) or is missing is refused with a conflict error saying so; wrong bytes are
 *   never served. A model version whose recorded weights hash differs from its checkpoint's is refused likewise.
 * - The model's topology comes from the run's layer list (the parent run's for a fine-tune, as training built it).
 * - At most MAX_CONCURRENT_TFJS_EXPORTS conversions run at once in this process (each is a worker thread loading
 *   TensorFlow.js); one more is refused with too_many_requests (429 + Retry-After) before any worker starts.
 * - Either store (issue 16, db/store.ts) and either artifact store: on PostgreSQL the weights come from the cluster
 *   artifact store (pg-store.ts), whose chunks are awaited and re-hashed before a byte is returned, so the request
 *   thread is free while they arrive and a tampered chunk is refused like a tampered file. The bytes are not
 *   streamed to the client as they arrive: a mismatch is only known after the last chunk, and wrong bytes must never
 *   be served.
 */
import { eq } from "drizzle-orm";
import type { TrainingConfig } from "@/contracts/training-config";
import { sha256Hex } from "@/contracts/canonical";
import { ArtifactIntegrityError } from "@/server/artifacts/store";
import { awaitedArtifacts, type AnyArtifactStore } from "@/server/artifacts/async-store";
import type { Db } from "@/db/client";
import { asStore, reader, type Store } from "@/db/store";
import { conflict, DomainError, invalidInput, notFound } from "@/server/errors";
import { zipStored } from "@/server/fs/zip";
import { exportTfjsInWorker, TrainerTaskError } from "@/trainer/worker-client";

export const WEIGHTS_FORMATS = ["tfjs", "rlw1"] as const;
export type WeightsFormat = (typeof WEIGHTS_FORMATS)[number];

export type WeightsDownload = {
  fileName: string;
  contentType: string;
  bytes: Uint8Array;
  /** SHA-256 of `bytes` (the file downloaded). */
  sha256: string;
  /** The checkpoint's recorded weights SHA-256. */
  weightsSha256: string;
};

type Deps = { db: Store | Db; artifacts: AnyArtifactStore };

export const MAX_CONCURRENT_TFJS_EXPORTS = 2;
const g = globalThis as unknown as { __runledgerTfjsExports?: { n: number } };
const activeExports = (g.__runledgerTfjsExports ??= { n: 0 });

function safeName(s: string): string {
  return (
    s
      .replace(/[^A-Za-z0-9._-]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 60) || "model"
  );
}

async function verifiedWeights(store: AnyArtifactStore, sha256: string, what: string): Promise<Uint8Array> {
  const artifacts = awaitedArtifacts(store);
  try {
    return await artifacts.get(sha256);
  } catch (e) {
    if (e instanceof ArtifactIntegrityError)
      conflict(`the stored weights of ${what} do not match the recorded SHA-256 ${sha256} (${e.message}); not served. Run audit verify`);
    // The file store says ENOENT; the PostgreSQL store has no row for it.
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || !(await artifacts.has(sha256)))
      conflict(`the weights file of ${what} (SHA-256 ${sha256}) is missing from the artifact store`);
    throw e;
  }
}

async function download(deps: Deps, checkpointId: number, format: WeightsFormat, baseName: string, what: string): Promise<WeightsDownload> {
  const store = asStore(deps.db);
  const { checkpoints, runs } = store.tables;
  const read = reader(store);
  const [ck] = await read.select().from(checkpoints).where(eq(checkpoints.id, checkpointId)).limit(1);
  if (!ck) notFound(`checkpoint ${checkpointId}`);
  const [run] = await read.select().from(runs).where(eq(runs.id, ck.runId)).limit(1);
  if (!run) notFound(`run ${ck.runId} of checkpoint ${ck.id}`);
  const weights = await verifiedWeights(deps.artifacts, ck.sha256, what);
  const name = `${safeName(baseName)}-${ck.sha256.slice(0, 12)}`;
  if (format === "rlw1")
    return {
      fileName: `${name}.rlw1`,
      contentType: "application/octet-stream",
      bytes: weights,
      sha256: ck.sha256,
      weightsSha256: ck.sha256,
    };

  const config = JSON.parse(run.configJson) as TrainingConfig;
  let layers = config.model.layers;
  // A fine-tune's topology is its parent run's; a compression's is its own layers (a distilled student's differ from its teacher's).
  if (run.parentCheckpointId !== null && !config.compression) {
    const [parentCk] = await read.select().from(checkpoints).where(eq(checkpoints.id, run.parentCheckpointId)).limit(1);
    const [parentRun] = parentCk ? await read.select().from(runs).where(eq(runs.id, parentCk.runId)).limit(1) : [];
    if (!parentRun) notFound(`the parent run of run ${run.id}`);
    layers = (JSON.parse(parentRun.configJson) as TrainingConfig).model.layers;
  }
  if (activeExports.n >= MAX_CONCURRENT_TFJS_EXPORTS)
    throw new DomainError(
      "too_many_requests",
      `${MAX_CONCURRENT_TFJS_EXPORTS} weights downloads are being prepared; try again in a few seconds`,
      {
        retryAfterSeconds: 5,
      },
    );
  activeExports.n += 1;
  let exported;
  try {
    exported = await exportTfjsInWorker({ layers, task: config.data.task, seed: config.training.seed, weights, sha256: ck.sha256 });
  } catch (e) {
    if (e instanceof TrainerTaskError) invalidInput(`could not convert ${what} to TensorFlow.js: ${e.message}`);
    throw e;
  } finally {
    activeExports.n -= 1;
  }
  const modelJson = new TextEncoder().encode(exported.modelJson);
  const files = [
    { name: "model.json", data: modelJson },
    { name: "weights.bin", data: exported.weightsBin },
    { name: "checkpoint.rlw1", data: weights },
  ];
  const sums = files.map((f) => `${f.name === "checkpoint.rlw1" ? ck.sha256 : sha256Hex(f.data)}  ${f.name}\n`).join("");
  const zip = zipStored([...files, { name: "SHA256SUMS", data: new TextEncoder().encode(sums) }]);
  return { fileName: `${name}-tfjs.zip`, contentType: "application/zip", bytes: zip, sha256: sha256Hex(zip), weightsSha256: ck.sha256 };
}

export async function checkpointWeightsDownload(deps: Deps, checkpointId: number, format: WeightsFormat): Promise<WeightsDownload> {
  const store = asStore(deps.db);
  const { checkpoints } = store.tables;
  const [ck] = await reader(store)
    .select({ runId: checkpoints.runId, epoch: checkpoints.epoch })
    .from(checkpoints)
    .where(eq(checkpoints.id, checkpointId))
    .limit(1);
  if (!ck) notFound(`checkpoint ${checkpointId}`);
  return download(
    deps,
    checkpointId,
    format,
    `run${ck.runId}-epoch${ck.epoch}`,
    `checkpoint ${checkpointId} (run ${ck.runId}, epoch ${ck.epoch})`,
  );
}

export async function modelVersionWeightsDownload(deps: Deps, modelVersionId: number, format: WeightsFormat): Promise<WeightsDownload> {
  const store = asStore(deps.db);
  const { checkpoints, models, modelVersions } = store.tables;
  const read = reader(store);
  const [mv] = await read
    .select({
      version: modelVersions.version,
      checkpointId: modelVersions.checkpointId,
      weightsSha256: modelVersions.weightsSha256,
      model: models.name,
    })
    .from(modelVersions)
    .innerJoin(models, eq(models.id, modelVersions.modelId))
    .where(eq(modelVersions.id, modelVersionId))
    .limit(1);
  if (!mv) notFound(`model version ${modelVersionId}`);
  const [ck] = await read.select({ sha256: checkpoints.sha256 }).from(checkpoints).where(eq(checkpoints.id, mv.checkpointId)).limit(1);
  if (!ck) notFound(`checkpoint ${mv.checkpointId} of ${mv.model} v${mv.version}`);
  if (ck.sha256 !== mv.weightsSha256)
    conflict(
      `${mv.model} v${mv.version} records weights ${mv.weightsSha256} but its checkpoint holds ${ck.sha256}; not served. Run audit verify`,
    );
  return download(deps, mv.checkpointId, format, `${mv.model}-v${mv.version}`, `${mv.model} v${mv.version}`);
}
