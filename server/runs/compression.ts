/**
 * Model compression (issue 17): an engineer derives a smaller model from a run's checkpoint by float16 or int8
 * quantization, magnitude pruning, or distillation into a student. Each compression is a run (origin "compress") whose
 * parent checkpoint is the source (for distillation, the teacher); its config is the source's with the `compression`
 * section added (for distillation, the student's layers and training settings), so its method and parameters are in
 * its config hash, in its decisions (one per changed path, with the rationale) and named by its run.create event. The
 * trainer does the work in a worker (trainer/compress.ts) and reports like a training run: one checkpoint (the
 * compressed weights, whose file size is the compressed size; sizes, parameter counts and the accuracy delta in its
 * metrics) evaluated on the same test partition as the source.
 *
 * Invariants:
 * - An invalid method or parameter (sparsity outside (0, 1), unknown method, a student on other data or with another
 *   output size, a source checkpoint that does not exist) is a DomainError before anything is written.
 * - The run row, its params, its decisions and its run.create event are written in one transaction, in the same form
 *   as createRun's (server/runs/service.ts), so the content verifier checks them like any run.
 *
 * On the store (issue 16, db/store.ts): every function takes `Store | Db` and is awaited; the run's transaction is a
 * generator body under the ledger lock on PostgreSQL, which re-reads the experiment and the source checkpoint.
 */
import { and, asc, count, eq } from "drizzle-orm";
import { z } from "zod";
import type { runs } from "@/db/schema";
import type { Db } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, exec, reader, row, transact, type Store } from "@/db/store";
import {
  COMPRESSION_METHODS,
  diffConfigs,
  flattenConfig,
  type CompressionMethod,
  type LayerSpec,
  type TrainingConfig,
} from "@/contracts/training-config";
import { canonicalJson, sha256Canonical } from "@/contracts/canonical";
import { appendEvent } from "@/server/audit/ledger-pg";
import { runParamValue } from "@/server/audit/content/records";
import { invalidInput, notFound, wrongState } from "@/server/errors";
import { now, requireRole } from "../app-context/service-context";
import type { StoreServiceContext } from "../app-context/store-context";
import { insertDecision, type DecisionRef } from "../decisions/service";
import { parseConfigOrThrow, type RunLauncher } from "./service";
import { refuseUnbuildableConfig, type EstimateDeps } from "./trainer-tasks";

/** A student for distillation: its layers and, optionally, training settings over the teacher's (and the teacher's data). */
export const studentSchema = z
  .object({
    name: z.string().max(200).optional(),
    data: z.unknown().optional(),
    model: z.object({ layers: z.array(z.unknown()) }, { error: "student.model.layers is required: the student's hidden layers" }),
    training: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();

export const compressRunInput = z.object({
  runId: z.number().int(),
  /** As models.register names one: "best" (the run's best checkpoint), an epoch, or a checkpoint id of the run. */
  checkpoint: z
    .union([z.literal("best"), z.object({ epoch: z.number().int().min(0) }), z.object({ checkpointId: z.number().int() })])
    .default("best"),
  method: z.enum(COMPRESSION_METHODS, { error: `method must be one of ${COMPRESSION_METHODS.join(", ")}` }),
  /** prune: fraction of kernel weights set to zero, in (0, 1). */
  sparsity: z.number().optional(),
  scope: z.enum(["global", "layer"]).optional(),
  fineTuneEpochs: z.number().int().optional(),
  /** distill */
  student: studentSchema.optional(),
  temperature: z.number().optional(),
  alpha: z.number().optional(),
  rationale: z.string().trim().min(1, "a rationale is required: say why you compress this model").max(4000),
  name: z.string().trim().max(120).optional(),
});
export type CompressRunInput = z.input<typeof compressRunInput>;

type RunRow = typeof runs.$inferSelect;

/** A run that may still write checkpoints: one it lacks now may come (a state of the run, not bad input). */
const STILL_TRAINING: readonly string[] = ["queued", "running", "paused", "interrupted"];

/**
 * The checkpoint of `run` named by "best", an epoch or an id (the first by id when several match). A best or epoch one
 * missing: wrong_state while the run may still write it, invalid_input once it never will.
 */
async function sourceCheckpoint(store: Store, run: RunRow, which: z.output<typeof compressRunInput>["checkpoint"]) {
  const { checkpoints } = store.tables;
  const where =
    which === "best"
      ? and(eq(checkpoints.runId, run.id), eq(checkpoints.isBest, true))
      : "epoch" in which
        ? and(eq(checkpoints.runId, run.id), eq(checkpoints.epoch, which.epoch))
        : and(eq(checkpoints.runId, run.id), eq(checkpoints.id, which.checkpointId));
  const [ck] = await reader(store).select().from(checkpoints).where(where).orderBy(asc(checkpoints.id)).limit(1);
  if (ck) return ck;
  if (which !== "best" && "checkpointId" in which)
    return invalidInput(`checkpoint ${which.checkpointId} is not a checkpoint of run ${run.id}`);
  const what = which === "best" ? "its best checkpoint" : `its checkpoint of epoch ${which.epoch}`;
  if (STILL_TRAINING.includes(run.status))
    return wrongState(`run ${run.id} is ${run.status}: it has not written ${what} yet; compress it once it has`);
  return invalidInput(
    which === "best"
      ? `run ${run.id} has no best checkpoint (it is ${run.status}); name a checkpoint by its epoch`
      : `run ${run.id} has no checkpoint at epoch ${which.epoch}`,
  );
}

/** The layers a run's weights were built from: a fine-tune's are its parent run's (as buildForJob builds it). */
async function effectiveLayers(store: Store, run: RunRow): Promise<LayerSpec[]> {
  const { checkpoints, runs } = store.tables;
  const read = reader(store);
  let current = run;
  for (let depth = 0; depth < 100; depth++) {
    const config = JSON.parse(current.configJson) as TrainingConfig;
    if (!config.fineTune || current.parentCheckpointId === null || current.origin === "compress") return config.model.layers;
    const [ck] = await read.select().from(checkpoints).where(eq(checkpoints.id, current.parentCheckpointId)).limit(1);
    const [parent] = ck ? await read.select().from(runs).where(eq(runs.id, ck.runId)).limit(1) : [];
    if (!parent) return config.model.layers;
    current = parent;
  }
  return (JSON.parse(current.configJson) as TrainingConfig).model.layers;
}

/** The compression run's config: the source's, with the compression section (and, to distill, the student). */
export async function compressionConfig(
  db: Store | Db,
  source: RunRow,
  checkpointId: number,
  input: z.output<typeof compressRunInput>,
): Promise<TrainingConfig> {
  const base = JSON.parse(source.configJson) as TrainingConfig;
  const method: CompressionMethod = input.method;
  const sourceCheckpointId = String(checkpointId);
  const misplaced = (
    [
      ["sparsity", input.sparsity, "prune"],
      ["scope", input.scope, "prune"],
      ["fineTuneEpochs", input.fineTuneEpochs, "prune"],
      ["student", input.student, "distill"],
      ["temperature", input.temperature, "distill"],
      ["alpha", input.alpha, "distill"],
    ] as const
  ).find(([, value, owner]) => value !== undefined && owner !== method);
  if (misplaced) invalidInput(`${misplaced[0]} applies to ${misplaced[2]}, not to ${method}`);
  const compression =
    method === "prune"
      ? {
          method,
          sourceCheckpointId,
          sparsity:
            input.sparsity ?? invalidInput("sparsity is required to prune: the fraction of kernel weights to set to zero, in (0, 1)"),
          ...(input.scope !== undefined ? { scope: input.scope } : {}),
          ...(input.fineTuneEpochs !== undefined ? { fineTuneEpochs: input.fineTuneEpochs } : {}),
        }
      : method === "distill"
        ? {
            method,
            sourceCheckpointId,
            ...(input.temperature !== undefined ? { temperature: input.temperature } : {}),
            ...(input.alpha !== undefined ? { alpha: input.alpha } : {}),
          }
        : { method, sourceCheckpointId };
  const { fineTune: _fineTune, schedule: _schedule, ...rest } = base;
  let layers: unknown[] = await effectiveLayers(asStore(db), source);
  let training: unknown = base.training;
  if (method === "distill") {
    const student = input.student ?? invalidInput("student is required to distill: a config with the student's model.layers");
    if (student.data !== undefined && canonicalJson(student.data) !== canonicalJson(base.data)) {
      const task = (student.data as { task?: unknown } | null)?.task;
      invalidInput(
        task !== undefined && task !== base.data.task
          ? `student.data: the student would be a ${String(task)} model with another output size than the teacher's ${base.data.task} head; a student learns the teacher's outputs`
          : "student.data: a student is trained on the teacher's data and split (the same train partition) and predicts the same classes: omit its data section or give the teacher's",
      );
    }
    layers = student.model.layers;
    training = { ...base.training, ...(student.training ?? {}) };
  }
  return parseConfigOrThrow({
    ...rest,
    name: input.name || `${base.name ?? source.name} · ${method}`,
    model: { layers },
    training,
    fineTune: null,
    compression,
  });
}

/**
 * Creates the compression run (queued) with its params, decisions and run.create event, in one transaction. A config
 * whose model cannot be built (a student's layers that do not fit the data) is refused first, as runs.create.
 */
export async function createCompressionRun(ctx: StoreServiceContext & Omit<EstimateDeps, "db">, raw: CompressRunInput): Promise<RunRow> {
  requireRole(ctx.actor, ["engineer"], "compress models");
  const input = compressRunInput.parse(raw);
  const store = asStore(ctx.db);
  const { checkpoints, experiments, runParams, runs } = store.tables;
  const [source] = await reader(store).select().from(runs).where(eq(runs.id, input.runId)).limit(1);
  if (!source) notFound(`run ${input.runId}`);
  if (source.origin === "api") invalidInput(`run ${source.id} was logged through the tracking API: it has no checkpoints to compress`);
  const ck = await sourceCheckpoint(store, source, input.checkpoint);
  const config = await compressionConfig(store, source, ck.id, input);
  await refuseUnbuildableConfig({ db: store, artifacts: ctx.artifacts, dataDir: ctx.dataDir }, config);
  const before = JSON.parse(source.configJson) as TrainingConfig;
  const changes = diffConfigs(before, config);
  const configJson = canonicalJson(config);
  const configSha256 = sha256Canonical(config);
  const actor = ctx.actor;

  return transact(
    store,
    function* (tx) {
      const experiment = yield* row(tx.select().from(experiments).where(eq(experiments.id, source.experimentId)));
      if (!experiment) notFound(`experiment ${source.experimentId}`);
      const stillThere = yield* row(tx.select({ id: checkpoints.id }).from(checkpoints).where(eq(checkpoints.id, ck.id)));
      if (!stillThere) notFound(`checkpoint ${ck.id}`);
      const n = (yield* row(tx.select({ n: count() }).from(runs).where(eq(runs.experimentId, experiment.id))))?.n ?? 0;
      const at = now();
      const run = (yield* row(
        tx
          .insert(runs)
          .values({
            experimentId: experiment.id,
            name: config.name || `run ${n + 1}`,
            status: "queued",
            configJson,
            configSha256,
            seed: config.training.seed,
            origin: "compress",
            parentRunId: source.id,
            parentCheckpointId: ck.id,
            createdBy: actor.id,
            createdAt: at,
          })
          .returning(),
      ))!;
      const paramRows = Object.entries(flattenConfig(config)).map(([key, v]) => ({ runId: run.id, key, ...runParamValue(v) }));
      for (let i = 0; i < paramRows.length; i += 200) yield* exec(tx.insert(runParams).values(paramRows.slice(i, i + 200)));
      // One decision per changed path (the method and each parameter among them), each with the rationale.
      const decisionRefs: DecisionRef[] = [];
      for (const c of changes)
        decisionRefs.push(
          (yield* insertDecision(tx, store.tables, {
            runId: run.id,
            kind: "change",
            path: c.path,
            oldValueJson: JSON.stringify(c.oldValue),
            newValueJson: JSON.stringify(c.newValue),
            rationale: input.rationale,
            authorId: actor.id,
            createdAt: at,
          })).ref,
        );
      yield* appendEvent({
        actor,
        action: "run.create",
        entityType: "run",
        entityId: run.id,
        payload: {
          experimentId: experiment.id,
          name: run.name,
          configSha256,
          origin: "compress",
          parentRunId: source.id,
          parentCheckpointId: ck.id,
          createdAt: at,
          decisions: decisionRefs,
        },
      });
      return run;
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

/** Creates the compression run and hands it to the orchestrator (the work runs in a trainer worker). */
export async function launchCompression(ctx: Parameters<typeof createCompressionRun>[0], orchestrator: RunLauncher, raw: CompressRunInput) {
  const run = await createCompressionRun(ctx, raw);
  await orchestrator.launch(run.id);
  const method = (JSON.parse(run.configJson) as TrainingConfig).compression!.method;
  return { id: run.id, name: run.name, method, parentCheckpointId: run.parentCheckpointId! };
}

/** The headline numbers of an evaluation's metrics JSON (accuracy, macro F1; or MSE, MAE, R²). */
function headlineMetrics(metricsJson: string | undefined): Record<string, number> | null {
  if (!metricsJson) return null;
  const m = JSON.parse(metricsJson) as Record<string, unknown>;
  const out: Record<string, number> = {};
  for (const key of ["accuracy", "mse", "mae", "r2"]) if (typeof m[key] === "number") out[key] = m[key];
  const macro = m.macro as { f1?: unknown } | undefined;
  if (typeof macro?.f1 === "number") out.macroF1 = macro.f1;
  return out;
}

/**
 * What `cli compress` prints and the compare view reads: the compressed model's size and metrics against its source's.
 * parentMetrics: the source checkpoint evaluated on the same test partition (in the compression's own worker; also its
 * recorded evaluation when it has one, e.g. a best checkpoint).
 */
export async function compressionResult(db: Store | Db, runId: number) {
  const store = asStore(db);
  const { checkpoints, evaluations, runs } = store.tables;
  const read = reader(store);
  const [run] = await read.select().from(runs).where(eq(runs.id, runId)).limit(1);
  if (!run) notFound(`run ${runId}`);
  if (run.origin !== "compress") invalidInput(`run ${runId} is not a compression (origin ${run.origin})`);
  const config = JSON.parse(run.configJson) as TrainingConfig;
  // The first by id of each, as SQLite's rowid order gave them before the store port.
  const [ck] = await read.select().from(checkpoints).where(eq(checkpoints.runId, runId)).orderBy(asc(checkpoints.id)).limit(1);
  const [parentCk] = await read.select().from(checkpoints).where(eq(checkpoints.id, run.parentCheckpointId!)).limit(1);
  const firstEvaluation = async (checkpointId: number) =>
    (await read.select().from(evaluations).where(eq(evaluations.checkpointId, checkpointId)).orderBy(asc(evaluations.id)).limit(1))[0];
  const evaluation = ck ? await firstEvaluation(ck.id) : undefined;
  const parentEvaluation = parentCk ? await firstEvaluation(parentCk.id) : undefined;
  const ckMetrics = ck ? (JSON.parse(ck.metricsJson) as Record<string, number>) : {};
  const metrics = { ...headlineMetrics(evaluation?.metricsJson), ...ckMetrics };
  const parentMetrics = {
    ...headlineMetrics(parentEvaluation?.metricsJson),
    ...(typeof ckMetrics.parent_test_accuracy === "number" ? { accuracy: ckMetrics.parent_test_accuracy } : {}),
    ...(typeof ckMetrics.parent_test_mse === "number" ? { mse: ckMetrics.parent_test_mse } : {}),
    ...(typeof ckMetrics.parent_params === "number" ? { params: ckMetrics.parent_params } : {}),
  };
  return {
    runId: run.id,
    status: run.status,
    method: config.compression?.method ?? null,
    parameters: config.compression ?? null,
    parentRunId: run.parentRunId,
    parentCheckpointId: run.parentCheckpointId,
    checkpointId: ck?.id ?? null,
    weightsSha256: ck?.sha256 ?? null,
    sizeBytes: ck?.bytes ?? null,
    parentSizeBytes: parentCk?.bytes ?? null,
    metrics,
    parentMetrics,
    error: run.error,
  };
}
