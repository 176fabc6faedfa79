/**
 * The training loop: our own epochs and batches over optimizer.minimize, reporting TrainerEvents. One optimizer
 * step is trainStep; which checkpoint is best/latest and when early stopping ends the run live in fit-bookkeeping.ts.
 *
 * Invariants:
 * - Determinism: batches follow a seeded permutation per epoch (or data order when shuffle is off),
 *   initializers and dropout masks are seeded, and nothing reads Math.random, so the same
 *   config + data + seed + backend gives bit-identical weights and the same weightsSha256.
 * - Metric keys are fixed: batch "batch_loss" + "batch_accuracy" (classification) or "batch_mae"
 *   (regression); epoch "loss", "accuracy"|"mae", "val_loss", "val_accuracy"|"val_mae", "lr".
 *   `step` is the 1-based global batch count; epochs are 1-based.
 * - A checkpoint is emitted every `checkpointEvery` epochs and at the last epoch run (also when
 *   stopping early or cancelling, unless the latest checkpoint already holds the current weights),
 *   so (epoch → checkpoint) stays unique.
 * - The checkpoint's weights buffer is handed over to `emit` (a worker may transfer it); this loop
 *   keeps its own copy of the best weights for the final test evaluation.
 * - `train` never throws: any error becomes one "failed" event.
 * - Piloting (`control`, `job.plannedControls`): a control is consulted after an epoch's "epoch" event and
 *   before that boundary's checkpoint, so the checkpoint (and its resumable state) holds the settings in force
 *   from the next epoch, and a pause, stop or change of `epochs` decides whether this boundary ends the run.
 *   Changes take effect from the next epoch only; without controls the loop does exactly what it did before.
 * - Resumable jobs (`job.resumable`) attach a state (trainer/resume-state.ts) to each checkpoint written at an
 *   epoch boundary (not to the partial-epoch checkpoint of a cancel); resuming from it (`job.resume`) continues
 *   the same sequence of shuffles, dropout masks and optimizer steps, so the weights end bit-identical.
 */
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "./backend";
import { deserializeWeights, loadWeightsInto, serializeWeights, weightsSha256 } from "./checkpoint";
import { classificationReport, regressionReport } from "./evaluate";
import { estimateMemory } from "./memory";
import { mulberry32 } from "./data/prng";
import { buildForJob, deriveSeed, hasConvLayers, makeOptimizer, perSampleLoss, setLearningRate } from "./model";
import { CheckpointKeeper, EarlyStopping } from "./fit-bookkeeping";
import { checkFiniteMetrics } from "./divergence";
import type {
  CancelSignal,
  EpochBoundary,
  EpochControlFn,
  EvaluationResult,
  PartitionTensors,
  PreparedData,
  TrainerEvent,
  TrainJob,
} from "./types";
import { sha256Hex } from "@/contracts/canonical";
import { reportedMetrics, taskScore } from "@/contracts/task-metrics";
import type { TrainingConfig } from "../contracts/training-config";
import { initialSettings, parseEpochControl, type EffectiveSettings, type EpochControl } from "@/contracts/training-control";
import { effectiveConfig, validateSchedule } from "@/contracts/pilot-config";
import {
  captureOptimizerState,
  checkStateFitsConfig,
  decodeTrainState,
  encodeTrainState,
  fixedTraining,
  restoreOptimizerState,
  type OptimizerState,
} from "./resume-state";

export type Emit = (event: TrainerEvent) => void;
type Training = TrainingConfig["training"];

export function seededPermutation(n: number, seed: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const random = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** Learning rate for a 1-based epoch under the configured schedule. */
export function learningRateAt(training: Pick<Training, "learningRate" | "lrSchedule">, epoch: number): number {
  const s = training.lrSchedule;
  const lr = training.learningRate;
  if (s.type === "step") return lr * s.factor ** Math.floor((epoch - 1) / s.everyEpochs);
  if (s.type === "exponential") return lr * s.decayRate ** ((epoch - 1) / s.decayEpochs);
  return lr;
}

/** Label indices of a classification partition, whether y holds indices or one-hot rows. */
export function labelIndices(part: PartitionTensors, numClasses: number): Int32Array {
  const out = new Int32Array(part.count);
  if (part.y.length === part.count) {
    for (let i = 0; i < part.count; i++) out[i] = part.y[i]!;
  } else if (part.y.length === part.count * numClasses) {
    for (let i = 0; i < part.count; i++) {
      let best = 0;
      for (let c = 1; c < numClasses; c++) if (part.y[i * numClasses + c]! > part.y[i * numClasses + best]!) best = c;
      out[i] = best;
    }
  } else {
    throw new Error(`labels have ${part.y.length} values for ${part.count} samples and ${numClasses} classes`);
  }
  for (let i = 0; i < out.length; i++) {
    if (!(out[i]! >= 0 && out[i]! < numClasses)) throw new Error(`label ${out[i]} at sample ${i} is outside the ${numClasses} classes`);
  }
  return out;
}

/** Learning rate of a 1-based epoch under effective settings: the schedule counts from `lrScheduleFromEpoch`. */
export function effectiveLearningRate(settings: EffectiveSettings, epoch: number): number {
  return learningRateAt(settings, epoch - settings.lrScheduleFromEpoch + 1);
}

/** Per-class weights: "balanced" (n / (k · n_c)) or a map by class name (missing classes weigh 1). */
export function classWeightsFor(setting: Training["classWeights"], classes: string[], trainLabels: Int32Array): Float32Array {
  const k = classes.length;
  const weights = new Float32Array(k).fill(1);
  if (setting === null) return weights;
  if (setting === "balanced") {
    const counts = new Array<number>(k).fill(0);
    for (const label of trainLabels) counts[label]! += 1;
    counts.forEach((n, c) => (weights[c] = n > 0 ? trainLabels.length / (k * n) : 1));
    return weights;
  }
  for (const [name, weight] of Object.entries(setting)) {
    const c = classes.indexOf(name);
    if (c < 0) throw new Error(`training.classWeights: unknown class "${name}"; classes are ${classes.join(", ")}`);
    weights[c] = weight;
  }
  return weights;
}

/**
 * Refuses class weights that cannot apply to prepared data, with the path at fault: any weights on a regression task,
 * or a weight for a class the data does not have (after cleaning). The same conditions training refuses
 * (checkTrainInputs, classWeightsFor); the estimate checks them (trainer/tasks.ts estimateJob) so that every launch
 * refuses them before anything is recorded, instead of the trainer failing the run.
 */
export function checkClassWeights(
  setting: Training["classWeights"],
  prepared: Pick<PreparedData, "task" | "classes">,
  path = "training.classWeights",
): void {
  if (setting === null) return;
  if (prepared.task === "regression" || !prepared.classes)
    throw new Error(`${path}: class weights apply to classification only; this config's task is regression`);
  const classes = prepared.classes;
  for (const name of Object.keys(setting === "balanced" ? {} : setting))
    if (!classes.includes(name))
      throw new Error(`${path}: unknown class "${name}"; the dataset has the classes ${classes.map((c) => `"${c}"`).join(", ")}`);
}

type Score = { loss: number; metric: number; predictions: Float32Array };

type Context = {
  model: tf.Sequential;
  task: PreparedData["task"];
  featureShape: number[];
  sampleSize: number;
  outputs: number;
};

/** Builds the [b, ...featureShape] input and target tensors for the given sample indices. */
function batchTensors(
  ctx: Context,
  part: PartitionTensors,
  labels: Int32Array | null,
  rows: ArrayLike<number>,
): { xs: tf.Tensor; ys: tf.Tensor } {
  const b = rows.length;
  const x = new Float32Array(b * ctx.sampleSize);
  const y = new Float32Array(b * ctx.outputs);
  for (let r = 0; r < b; r++) {
    const i = rows[r]!;
    x.set(part.x.subarray(i * ctx.sampleSize, (i + 1) * ctx.sampleSize), r * ctx.sampleSize);
    if (labels) y[r * ctx.outputs + labels[i]!] = 1;
    else y[r] = part.y[i]!;
  }
  return { xs: tf.tensor(x, [b, ...ctx.featureShape]), ys: tf.tensor2d(y, [b, ctx.outputs]) };
}

/** Inference-mode loss (mean, unweighted, plus regularization) and accuracy|MAE over a whole partition. */
function scorePartition(ctx: Context, part: PartitionTensors, labels: Int32Array | null): Score {
  const chunk = 512;
  let lossSum = 0;
  let metricSum = 0;
  const predictions = new Float32Array(part.count);
  for (let start = 0; start < part.count; start += chunk) {
    const rows = Array.from({ length: Math.min(chunk, part.count - start) }, (_, r) => start + r);
    const [l, m, p] = tf.tidy(() => {
      const { xs, ys } = batchTensors(ctx, part, labels, rows);
      const pred = ctx.model.predict(xs) as tf.Tensor2D;
      const loss = tf.sum(perSampleLoss(ctx.task, ys, pred));
      if (ctx.task === "classification") {
        const predicted = tf.argMax(pred, -1);
        return [loss, tf.sum(tf.cast(tf.equal(predicted, tf.argMax(ys, -1)), "float32")), tf.cast(predicted, "float32")];
      }
      return [loss, tf.sum(tf.abs(tf.sub(ys, pred))), tf.reshape(pred, [-1])];
    });
    lossSum += l.dataSync()[0]!;
    metricSum += m.dataSync()[0]!;
    predictions.set(p.dataSync() as Float32Array, start);
    tf.dispose([l, m, p]);
  }
  const regularization = tf.tidy(() => ctx.model.calculateLosses().reduce((a, r) => a + r.dataSync()[0]!, 0));
  const n = Math.max(part.count, 1);
  return { loss: lossSum / n + regularization, metric: metricSum / n, predictions };
}

/** SHA-256 over the partition's float32 feature and target bytes: identifies exactly what was evaluated. */
function partitionDigest(part: PartitionTensors): string {
  const bytes = new Uint8Array(part.x.byteLength + part.y.byteLength);
  bytes.set(new Uint8Array(part.x.buffer, part.x.byteOffset, part.x.byteLength), 0);
  bytes.set(new Uint8Array(part.y.buffer, part.y.byteOffset, part.y.byteLength), part.x.byteLength);
  return sha256Hex(bytes);
}

/**
 * The test-partition report of a model as it stands (weights already loaded), with the digest of
 * exactly the data it was computed on. Used at the end of training and by on-demand evaluations
 * (trainer/tasks.ts), so both give the same numbers for the same checkpoint, data and backend.
 */
export function evaluateTestPartition(model: tf.Sequential, prepared: PreparedData): { result: EvaluationResult; dataSha256: string } {
  const { task, featureShape } = prepared;
  const classes = prepared.classes ?? [];
  const part = prepared.partitions.test;
  if (part.count === 0) throw new Error("the test partition is empty; nothing to evaluate on");
  const outputs = task === "classification" ? classes.length : 1;
  const ctx: Context = { model, task, featureShape, sampleSize: featureShape.reduce((a, b) => a * b, 1), outputs };
  const labels = task === "classification" ? labelIndices(part, outputs) : null;
  const score = scorePartition(ctx, part, labels);
  const result: EvaluationResult = labels
    ? classificationReport(labels, Array.from(score.predictions), classes)
    : regressionReport(part.y, score.predictions);
  return { result, dataSha256: partitionDigest(part) };
}

function checkMetricName(path: string, metric: string, available: string[], hasValidation: boolean): void {
  if (!available.includes(metric)) {
    const hint =
      metric.startsWith("val_") && !hasValidation ? "; the validation partition is empty" : `; choose one of ${available.join(", ")}`;
    throw new Error(`${path}: unknown metric "${metric}"${hint}`);
  }
}

function checkMetricNames(training: Training, available: string[], hasValidation: boolean): void {
  checkMetricName("training.bestMetric.metric", training.bestMetric.metric, available, hasValidation);
  if (training.earlyStopping) checkMetricName("training.earlyStopping.metric", training.earlyStopping.metric, available, hasValidation);
}

/**
 * Refuses a best-checkpoint or early-stopping metric the run would not report, with the path at fault: the config's
 * own, and the early stopping each planned intervention (config.schedule) leaves in force. The same names training
 * refuses (checkTrainInputs; checkEpochControl when a planned control applies); the estimate checks them
 * (trainer/tasks.ts estimateJob) so that a launch is refused before anything is recorded, instead of a run that fails
 * before its first batch, or at the planned epoch. Whether the val_ metrics exist depends on the prepared data (a tiny
 * dataset can leave the validation partition empty), so this needs it. An invalid schedule is left to the caller,
 * which refuses it with its own message (server/runs/service.ts validateSchedule).
 */
export function checkWatchedMetrics(config: TrainingConfig, prepared: Pick<PreparedData, "task" | "partitions">): void {
  const hasValidation = prepared.partitions.validation.count > 0;
  const available = reportedMetrics(prepared.task, hasValidation);
  checkMetricNames(config.training, available, hasValidation);
  const schedule = validateSchedule(config);
  let current = config;
  for (const step of schedule.ok ? schedule.steps : []) {
    current = effectiveConfig(current, [step]);
    const es = current.training.earlyStopping;
    if (es && step.changes.some((c) => c.path.startsWith("training.earlyStopping")))
      checkMetricName(
        `schedule.${step.index} (atEpoch ${step.atEpoch}): training.earlyStopping.metric`,
        es.metric,
        available,
        hasValidation,
      );
  }
}

/** What checking a control needs to know about the run. */
export type ControlContext = {
  epochsRun: number;
  task: PreparedData["task"];
  classes: string[];
  trainLabels: Int32Array | null;
  available: string[];
  hasValidation: boolean;
  /** Fine-tunes: the parent's layers before its head (what frozenLayers may cover); null otherwise. */
  freezableLayers: number | null;
};

/**
 * Validates a control against the schema (contracts/training-control.ts) and the run (epochs already run, metric
 * names, class names); throws a message naming the path at fault. Pure: nothing is applied here.
 */
export function checkEpochControl(input: unknown, run: ControlContext): EpochControl {
  const parsed = parseEpochControl(input);
  if (!parsed.ok) throw new Error(parsed.message);
  const apply = parsed.control.apply ?? {};
  if (apply.epochs !== undefined && apply.epochs < run.epochsRun)
    throw new Error(`apply.epochs: ${apply.epochs} is below the ${run.epochsRun} epochs already run`);
  if (apply.earlyStopping) checkMetricName("apply.earlyStopping.metric", apply.earlyStopping.metric, run.available, run.hasValidation);
  if (apply.classWeights !== undefined && apply.classWeights !== null) {
    if (run.task === "regression") throw new Error("apply.classWeights: class weights apply to classification only");
    try {
      classWeightsFor(apply.classWeights, run.classes, run.trainLabels ?? new Int32Array(0));
    } catch (error) {
      throw new Error(String(error instanceof Error ? error.message : error).replace(/^training\./, "apply."));
    }
  }
  if (apply.frozenLayers !== undefined) {
    if (run.freezableLayers === null) throw new Error("apply.frozenLayers: only a fine-tune has parent layers to freeze");
    if (apply.frozenLayers > run.freezableLayers)
      throw new Error(
        `apply.frozenLayers: ${apply.frozenLayers} is more than the ${run.freezableLayers} layers of the parent before its head`,
      );
  }
  return parsed.control;
}

/** Freezes the first `n` layers and makes the others trainable (the head, always last, stays trainable). */
function setFrozenLayers(model: tf.Sequential, n: number): void {
  model.layers.forEach((layer, i) => (layer.trainable = i >= n));
}

/**
 * A fresh optimizer for a new set of trained variables that keeps the old one's state: the iteration count (and
 * Adam's running powers), and each slot (moment, accumulator) of every variable still trained; a newly unfrozen
 * variable starts with zero slots, as it would have in a run that trained it from this step.
 */
async function reshapeOptimizer(
  old: tf.Optimizer,
  oldVariables: tf.Variable[],
  newVariables: tf.Variable[],
  training: Training,
): Promise<tf.Optimizer> {
  const state = await captureOptimizerState(old);
  const n = oldVariables.length;
  const groups = n > 0 ? (state.slots.length - 1) / n : 0;
  const slots = [state.slots[0]!];
  if (!Number.isInteger(groups)) throw new Error("the optimizer's state does not match the trained variables");
  for (let g = 0; g < groups; g++) {
    for (const variable of newVariables) {
      const i = oldVariables.indexOf(variable);
      slots.push(i >= 0 ? state.slots[1 + g * n + i]! : { shape: [...variable.shape], data: new Float32Array(variable.size) });
    }
  }
  const next = makeOptimizer(training);
  await restoreOptimizerState(next, { slots, extra: state.extra });
  return next;
}

/** Settings after a control's changes, applied after epoch `epoch`: a new rate or schedule counts from the next epoch. */
export function applySettings(settings: EffectiveSettings, control: EpochControl, epoch: number): EffectiveSettings {
  const apply = control.apply ?? {};
  const next: EffectiveSettings = { ...settings };
  if (apply.learningRate !== undefined) next.learningRate = apply.learningRate;
  if (apply.lrSchedule !== undefined) next.lrSchedule = apply.lrSchedule;
  if (apply.learningRate !== undefined || apply.lrSchedule !== undefined) next.lrScheduleFromEpoch = epoch + 1;
  if (apply.epochs !== undefined) next.epochs = apply.epochs;
  if (apply.earlyStopping !== undefined) next.earlyStopping = apply.earlyStopping;
  if (apply.classWeights !== undefined) next.classWeights = apply.classWeights;
  if (apply.checkpointEvery !== undefined) next.checkpointEvery = apply.checkpointEvery;
  if (apply.frozenLayers !== undefined) next.frozenLayers = apply.frozenLayers;
  return next;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Checks the prepared partitions against the config before any model is built; returns the epoch metric name. */
function checkTrainInputs(
  training: Training,
  prepared: PreparedData,
  sampleSize: number,
): { metricName: "accuracy" | "mae"; hasValidation: boolean } {
  const { task } = prepared;
  if (prepared.partitions.train.count === 0) throw new Error("the train partition is empty; use more data or a larger train ratio");
  for (const [name, part] of Object.entries(prepared.partitions)) {
    if (part.x.length !== part.count * sampleSize)
      throw new Error(`the ${name} partition has ${part.x.length} feature values, expected ${part.count} × ${sampleSize}`);
  }
  if (task === "regression" && training.classWeights !== null) throw new Error("training.classWeights applies to classification only");
  const metricName = taskScore(task);
  const hasValidation = prepared.partitions.validation.count > 0;
  const available = reportedMetrics(task, hasValidation);
  checkMetricNames(training, available, hasValidation);
  return { metricName, hasValidation };
}

/** What one optimizer step needs; fixed for the whole run. */
type StepSetup = {
  ctx: Context;
  /** Read for the seed only: dropout masks derive from it (settings a pilot changes live elsewhere). */
  training: Training;
  optimizer: tf.Optimizer;
  trainPart: PartitionTensors;
  trainLabels: Int32Array | null;
  perClassWeight: Float32Array | null;
  uniformWeights: boolean;
  trainableVariables: tf.Variable[];
  dropoutLayers: { layer: tf.layers.Layer; index: number }[];
};

/** One optimizer step on the given rows (global batch `step`): the batch's loss and accuracy|MAE, and its seconds. */
function trainStep(s: StepSetup, rows: Uint32Array, step: number): { loss: number; metric: number; seconds: number } {
  const ctx = s.ctx;
  const { model, task } = ctx;
  // Dropout masks: a new deterministic seed per step (a fixed seed would repeat one mask forever).
  for (const { layer, index } of s.dropoutLayers)
    (layer as unknown as { seed: number }).seed = deriveSeed(s.training.seed, index, 1000 + step);
  const started = performance.now();
  const { xs, ys } = batchTensors(ctx, s.trainPart, s.trainLabels, rows);
  // Without class weights every sample weighs 1: skip the weight tensor (multiplying by 1 is exact, so weights are unchanged).
  const sampleWeights = s.uniformWeights ? null : tf.tensor1d(Array.from(rows, (i) => s.perClassWeight![s.trainLabels![i]!]!));
  let metricTensor: tf.Scalar | undefined;
  const lossTensor = s.optimizer.minimize(
    () => {
      const pred = model.apply(xs, { training: true }) as tf.Tensor;
      const perSample = perSampleLoss(task, ys, pred);
      const weighted = tf.mean(sampleWeights ? tf.mul(perSample, sampleWeights) : perSample);
      const total = model.calculateLosses().reduce<tf.Scalar>((sum, r) => tf.add(sum, r), weighted as tf.Scalar);
      metricTensor = tf.keep(
        task === "classification"
          ? tf.mean(tf.cast(tf.equal(tf.argMax(pred, -1), tf.argMax(ys, -1)), "float32"))
          : tf.mean(tf.abs(tf.sub(ys, pred))),
      ) as tf.Scalar;
      return total;
    },
    true,
    s.trainableVariables,
  )!;
  // Synchronous reads: on the cpu and wasm backends the values are already in memory, so awaiting only adds event-loop hops.
  const loss = lossTensor.dataSync()[0]!;
  const metric = metricTensor!.dataSync()[0]!;
  tf.dispose([xs, ys, lossTensor, metricTensor!]);
  if (sampleWeights) sampleWeights.dispose();
  return { loss, metric, seconds: (performance.now() - started) / 1000 };
}

/** Batches of a 1-based epoch: a seeded permutation per epoch, or data order when shuffle is off. */
function epochOrder(training: Training, count: number, epoch: number): Uint32Array {
  return training.shuffle
    ? seededPermutation(count, deriveSeed(training.seed, epoch, 0x5eed))
    : Uint32Array.from({ length: count }, (_, i) => i);
}

export async function train(
  job: TrainJob,
  prepared: PreparedData,
  emit: Emit,
  signal: CancelSignal,
  control?: EpochControlFn,
): Promise<void> {
  let model: tf.Sequential | undefined;
  let optimizer: tf.Optimizer | undefined;
  try {
    const training = job.config.training;
    const { task, featureShape } = prepared;
    const classes = prepared.classes ?? [];
    const trainPart = prepared.partitions.train;
    const valPart = prepared.partitions.validation;
    const testPart = prepared.partitions.test;
    const sampleSize = featureShape.reduce((a, b) => a * b, 1);
    const { metricName, hasValidation } = checkTrainInputs(training, prepared, sampleSize);
    const resume = job.resume ? decodeTrainState(job.resume.state, job.resume.sha256) : null;
    if (resume) checkStateFitsConfig(resume, training);

    const layerSpecs = job.parent?.config.model.layers ?? job.config.model.layers;
    const backend = await selectBackend(job.backend ?? "auto", { needsConvGradients: hasConvLayers(layerSpecs) });
    const built = buildForJob(job, prepared);
    model = built.model;
    optimizer = makeOptimizer(training);
    const outputs = task === "classification" ? classes.length : 1;
    const ctx: Context = { model, task, featureShape, sampleSize, outputs };
    const trainLabels = task === "classification" ? labelIndices(trainPart, outputs) : null;
    const valLabels = task === "classification" && hasValidation ? labelIndices(valPart, outputs) : null;
    const freezableLayers = job.parent ? job.parent.config.model.layers.length : null;
    let settings: EffectiveSettings = resume
      ? resume.settings
      : initialSettings(training, job.parent ? (job.config.fineTune?.freezeLayers ?? 0) : undefined);
    // A resumed fine-tune whose frozen layers a pilot changed trains the variables it trained when it stopped.
    if (resume && settings.frozenLayers !== undefined) setFrozenLayers(model, settings.frozenLayers);
    const perClassWeight = trainLabels ? classWeightsFor(settings.classWeights, classes, trainLabels) : null;
    const batchSize = Math.min(training.batchSize, trainPart.count);
    const batchesPerEpoch = Math.ceil(trainPart.count / batchSize);
    const available = reportedMetrics(task, hasValidation);

    const checkpoints = new CheckpointKeeper(model, training.bestMetric, emit);
    let earlyStopping = new EarlyStopping(settings.earlyStopping);
    if (resume) {
      try {
        loadWeightsInto(model, deserializeWeights(resume.weights));
        await restoreOptimizerState(optimizer, resume.optimizer);
      } catch (error) {
        throw new Error(`the resume state does not fit this config's model: ${error instanceof Error ? error.message : String(error)}`);
      }
      checkpoints.restore(resume.keeper, resume.bestWeights, resume.weights);
      earlyStopping.restore(resume.earlyStopping);
    }

    emit({
      type: "started",
      backend: backend.name,
      backendReason: backend.reason,
      environment: backend.versions,
      memory: estimateMemory(model, batchSize, training.optimizer.name),
      epochs: settings.epochs,
      batchesPerEpoch,
      ...(job.parent ? { fineTune: { frozenLayers: built.frozenLayers, replacedLayers: built.replacedLayers } } : {}),
      ...(resume && job.resume ? { resumedFrom: { epoch: resume.epoch, step: resume.step, stateSha256: job.resume.sha256 } } : {}),
    });

    const stepSetup: StepSetup = {
      ctx,
      training,
      optimizer,
      trainPart,
      trainLabels,
      perClassWeight,
      uniformWeights: !perClassWeight || !trainLabels || perClassWeight.every((w) => w === 1),
      trainableVariables: model.trainableWeights.map((w) => w.read() as tf.Variable),
      dropoutLayers: model.layers.map((layer, index) => ({ layer, index })).filter(({ layer }) => layer.getClassName() === "Dropout"),
    };
    const piloted = control !== undefined || (job.plannedControls?.length ?? 0) > 0;
    const planned = new Map((job.plannedControls ?? []).map((p) => [p.epoch, p]));
    let step = resume?.step ?? 0;
    let trainSeconds = 0;
    let trainedSamples = 0;
    let epochsRun = resume?.epoch ?? 0;
    let stoppedEarly = false;
    let cancelled = false;
    let decided: "continue" | "pause" | "stop" = "continue";
    /** A control of this boundary asked for its checkpoint (checkpoint: true) whatever the cadence. */
    let checkpointAsked = false;

    /** Builds the state of this boundary once the keeper has recorded its checkpoint (resumable jobs only). */
    const stateAttacher = (optimizerState: OptimizerState | null, epoch: number) =>
      optimizerState
        ? () => {
            const { bytes, sha256 } = encodeTrainState({
              epoch,
              step,
              settings,
              fixed: fixedTraining(training),
              keeper: checkpoints.snapshot(),
              earlyStopping: earlyStopping.snapshot(),
              weights: checkpoints.last!.bytes,
              bestWeights: checkpoints.best?.bytes ?? null,
              optimizer: optimizerState,
            });
            return { state: bytes, stateSha256: sha256 };
          }
        : undefined;
    const saveAtBoundary = async (epoch: number, metrics: Record<string, number>) => {
      const optimizerState = job.resumable ? await captureOptimizerState(optimizer!) : null;
      checkpoints.save(epoch, step, metrics, stateAttacher(optimizerState, epoch));
    };

    /** Applies one validated control's changes; settings-derived state follows. */
    const applyControl = async (c: EpochControl, epoch: number) => {
      if (!c.apply || Object.keys(c.apply).length === 0) return;
      const before = settings;
      settings = applySettings(settings, c, epoch);
      if (settings.classWeights !== before.classWeights && trainLabels) {
        stepSetup.perClassWeight = classWeightsFor(settings.classWeights, classes, trainLabels);
        stepSetup.uniformWeights = stepSetup.perClassWeight.every((w) => w === 1);
      }
      if (settings.earlyStopping !== before.earlyStopping) earlyStopping = new EarlyStopping(settings.earlyStopping);
      if (settings.frozenLayers !== before.frozenLayers && settings.frozenLayers !== undefined) {
        setFrozenLayers(model!, settings.frozenLayers);
        const trainableVariables = model!.trainableWeights.map((w) => w.read() as tf.Variable);
        const next = await reshapeOptimizer(optimizer!, stepSetup.trainableVariables, trainableVariables, training);
        optimizer!.dispose();
        optimizer = next;
        stepSetup.optimizer = next;
        stepSetup.trainableVariables = trainableVariables;
      }
    };
    const controlContext = (epoch: number) => ({ epochsRun: epoch, task, classes, trainLabels, available, hasValidation, freezableLayers });

    /** Planned control of this boundary, then the live one (asked again after an invalid answer). */
    const consult = async (epoch: number, metrics: Record<string, number>): Promise<"continue" | "pause" | "stop"> => {
      const plan = planned.get(epoch);
      if (plan) {
        const { epoch: _epoch, ...planControl } = plan;
        void _epoch;
        const checked = checkEpochControl(planControl, controlContext(epoch));
        await applyControl(checked, epoch);
        if (checked.checkpoint) checkpointAsked = true;
        if (checked.then && checked.then !== "continue") return checked.then;
      }
      if (!control) return "continue";
      for (;;) {
        const boundary: EpochBoundary = { epoch, step, metrics, settings };
        const answer = await control(boundary);
        if (signal.cancelled) return "continue"; // the loop honours the cancel at its next check
        try {
          const checked = checkEpochControl(answer, controlContext(epoch));
          await applyControl(checked, epoch);
          if (checked.checkpoint) checkpointAsked = true;
          return checked.then ?? "continue";
        } catch (error) {
          emit({ type: "controlRejected", epoch, message: error instanceof Error ? error.message : String(error) });
        }
      }
    };

    // A rollback branch continues another run's state with changed settings: they take effect as a control at the
    // resumed boundary would (validated the same way; the learning-rate schedule counts from the next epoch).
    if (resume && job.resumeApply && Object.keys(job.resumeApply).length > 0)
      await applyControl(checkEpochControl({ apply: job.resumeApply }, controlContext(resume.epoch)), resume.epoch);

    for (let epoch = epochsRun + 1; epoch <= settings.epochs && !cancelled; epoch++) {
      if (signal.cancelled) {
        cancelled = true;
        break;
      }
      const lr = effectiveLearningRate(settings, epoch);
      setLearningRate(optimizer, lr);
      const order = epochOrder(training, trainPart.count, epoch);
      let lossSum = 0;
      let metricSum = 0;
      let seen = 0;
      let epochSeconds = 0;
      for (let batch = 1; batch <= batchesPerEpoch; batch++) {
        const rows = order.subarray((batch - 1) * batchSize, Math.min(batch * batchSize, trainPart.count));
        step += 1;
        const result = trainStep(stepSetup, rows, step);
        const batchMetrics = { batch_loss: result.loss, [`batch_${metricName}`]: result.metric };
        checkFiniteMetrics(batchMetrics, `epoch ${epoch}, batch ${batch} (step ${step})`, lr);
        epochSeconds += result.seconds;
        lossSum += result.loss * rows.length;
        metricSum += result.metric * rows.length;
        seen += rows.length;
        trainedSamples += rows.length;
        emit({
          type: "batch",
          epoch,
          batch,
          batchesPerEpoch,
          step,
          metrics: batchMetrics,
          wallTimeMs: Date.now(),
        });
        await yieldToEventLoop(); // lets a worker's "cancel" message arrive between batches
        if (signal.cancelled) {
          cancelled = true;
          break;
        }
      }
      trainSeconds += epochSeconds;
      if (cancelled) {
        // Partial epoch: the checkpoint carries what this epoch saw so far (no resumable state: not a boundary).
        checkpoints.save(epoch, step, { loss: lossSum / seen, [metricName]: metricSum / seen, lr });
        break;
      }
      epochsRun = epoch;
      const metrics: Record<string, number> = { loss: lossSum / seen, [metricName]: metricSum / seen };
      if (hasValidation) {
        const val = scorePartition(ctx, valPart, valLabels);
        metrics.val_loss = val.loss;
        metrics[`val_${metricName}`] = val.metric;
      }
      checkFiniteMetrics(metrics, `the end of epoch ${epoch}`, lr); // (the validation loss can overflow on its own)
      metrics.lr = lr;
      emit({
        type: "epoch",
        epoch,
        step,
        metrics,
        wallTimeMs: Date.now(),
        samplesPerSecond: seen / Math.max(epochSeconds, 1e-9),
        ...(piloted ? { settings } : {}),
      });

      if (earlyStopping.patienceRanOut(metrics)) stoppedEarly = epoch < settings.epochs;
      checkpointAsked = false;
      if (piloted && !stoppedEarly) decided = await consult(epoch, metrics);
      const ending = stoppedEarly || decided !== "continue" || epoch >= settings.epochs;
      if (epoch % settings.checkpointEvery === 0 || ending || checkpointAsked) await saveAtBoundary(epoch, metrics);
      if (ending) break;
    }

    if (cancelled && !checkpoints.holdsStep(step)) {
      // Cancelled at an epoch boundary whose weights were not checkpointed (checkpointEvery > 1, or before training).
      await saveAtBoundary(epochsRun, { lr: effectiveLearningRate(settings, Math.max(epochsRun, 1)) });
    }
    const finalSha = checkpoints.holdsStep(step) ? checkpoints.last!.sha256 : weightsSha256(serializeWeights(model));
    const paused = !cancelled && decided === "pause";

    if (!cancelled && !paused && testPart.count > 0) {
      const chosen = checkpoints.best ?? checkpoints.last!;
      loadWeightsInto(model, deserializeWeights(chosen.bytes));
      const { result, dataSha256 } = evaluateTestPartition(model, prepared);
      emit({ type: "evaluation", epoch: chosen.epoch, checkpointSha256: chosen.sha256, partition: "test", dataSha256, result });
    }
    emit({
      type: "finished",
      status: cancelled ? "cancelled" : paused ? "paused" : "completed",
      weightsSha256: finalSha,
      epochsRun,
      stoppedEarly,
      ...(!cancelled && decided === "stop" ? { stoppedByDecision: true } : {}),
      samplesPerSecond: trainedSamples / Math.max(trainSeconds, 1e-9),
    });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    emit({ type: "failed", message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
  } finally {
    optimizer?.dispose();
    model?.dispose();
  }
}
