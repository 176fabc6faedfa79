/**
 * Model compression (issue 17), the trainer side of a compression run: from the source checkpoint (the job's parent)
 * derive a smaller model, evaluate it and the source on the same test partition, and report it as a training run
 * reports (started → [epoch…] → checkpoint → evaluation → finished), so the orchestrator records it like any run.
 *
 * Methods (contracts/training-config.ts compressionSchema):
 * - float16 / int8: post-training quantization of every weight (int8: symmetric, one scale per output channel, the
 *   last axis; 1-D weights one scale), stored as runledger-weights/2 (trainer/compressed-weights.ts), so the file's size
 *   is the quantized size; evaluated with the dequantized values.
 * - prune: the `sparsity` fraction of kernel weights (rank ≥ 2; biases are kept) with the smallest |w| set to zero,
 *   over all kernels at once (scope "global") or per kernel ("layer"); ties go to the lower index. Optional fine-tune
 *   epochs (categorical cross-entropy or squared error, the config's optimizer) re-apply the mask after every step.
 *   Stored sparse (bit mask + kept float32 values).
 * - distill: a student built from this config's layers (fresh, seeded) trained for training.epochs on the train
 *   partition with loss alpha · T² · KL(teacher_T ‖ student_T) + (1 − alpha) · CE(labels, student), where x_T =
 *   softmax(log p / T) softens a softmax output p. Stored as ordinary float32 weights (runledger-weights/1).
 *
 * Metrics of the checkpoint: params, nonzero_params, size_bytes, parent_size_bytes, parent_params (prune: prunable_params,
 * pruned_params), test_<accuracy|mse>, parent_test_<…>, <accuracy|mse>_delta, inference_us_per_sample and
 * parent_inference_us_per_sample (wall clock on this machine's backend: the only numbers that vary between runs).
 *
 * Invariants: deterministic by seed (shuffles by seededPermutation of training.seed + epoch; dropout is not applied
 * while fine-tuning or distilling); the source's weights are checked against their SHA-256 first; every tensor and
 * model is disposed, also on error; never throws (a problem is a "failed" event).
 */
import * as tf from "@tensorflow/tfjs";
import type { CompressionSpec } from "@/contracts/training-config";
import { selectBackend } from "./backend";
import { deserializeWeights, loadWeightsInto, readWeightsHeader, serializeWeights, weightName, weightsSha256 } from "./checkpoint";
import { encodeCompressedWeights, type FloatWeight, type StoredDtype } from "./compressed-weights";
import { evaluateTestPartition, labelIndices, learningRateAt, seededPermutation, type Emit } from "./fit";
import { checkFiniteMetrics } from "./divergence";
import { estimateMemory } from "./memory";
import { buildModel, hasConvLayers, HEAD_LAYER_NAME, makeOptimizer, perSampleLoss, setLearningRate } from "./model";
import type { CancelSignal, EvaluationResult, PreparedData, TrainJob } from "./types";

/** Which stored weights a pruning applies to: kernels (rank ≥ 2), not biases. */
export const isPrunable = (w: { shape: number[] }) => w.shape.length >= 2;

/** Sets the `sparsity` fraction of smallest-magnitude prunable values to zero (in place); returns how many it zeroed. */
export function magnitudePrune(weights: FloatWeight[], sparsity: number, scope: "global" | "layer"): number {
  const groups = scope === "global" ? [weights.filter(isPrunable)] : weights.filter(isPrunable).map((w) => [w]);
  let zeroed = 0;
  for (const group of groups) {
    const refs: { w: number; i: number; a: number }[] = [];
    group.forEach((w, wi) => w.data.forEach((v, i) => refs.push({ w: wi, i, a: Math.abs(v) })));
    const k = Math.round(sparsity * refs.length);
    refs.sort((x, y) => x.a - y.a || x.w - y.w || x.i - y.i);
    for (let j = 0; j < k; j++) group[refs[j]!.w]!.data[refs[j]!.i] = 0;
    zeroed += k;
  }
  return zeroed;
}

const floatWeights = (bytes: Uint8Array): FloatWeight[] =>
  [...deserializeWeights(bytes).values].map(([name, v]) => ({ name, shape: v.shape, data: v.data }));

const modelFloatWeights = (model: tf.LayersModel): FloatWeight[] => floatWeights(serializeWeights(model));

/** The headline test metric: accuracy (classification) or MSE (regression). */
function headline(result: EvaluationResult): { key: "accuracy" | "mse"; value: number } {
  return result.task === "classification" ? { key: "accuracy", value: result.accuracy } : { key: "mse", value: result.mse };
}

/** Median over 5 timed passes of predicting the whole test partition, in microseconds per sample (after one warm-up). */
function inferenceMicros(model: tf.LayersModel, prepared: PreparedData): number {
  const part = prepared.partitions.test;
  const xs = tf.tensor(part.x, [part.count, ...prepared.featureShape]);
  try {
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const start = process.hrtime.bigint();
      tf.tidy(() => (model.predict(xs) as tf.Tensor).dataSync());
      if (i > 0) times.push(Number(process.hrtime.bigint() - start) / 1000 / part.count);
    }
    times.sort((a, b) => a - b);
    return Math.round(times[2]! * 100) / 100;
  } finally {
    xs.dispose();
  }
}

type TrainLoopInput = {
  model: tf.Sequential;
  prepared: PreparedData;
  training: TrainJob["config"]["training"];
  epochs: number;
  signal: CancelSignal;
  emit: Emit;
  /** Loss of a batch (scalar) from inputs, one-hot / target ys and the model's prediction. */
  loss: (xs: tf.Tensor, ys: tf.Tensor, pred: tf.Tensor) => tf.Scalar;
  /** After each optimizer step (pruning: re-apply the mask). */
  afterStep?: () => void;
};

/** A plain seeded mini-batch loop; returns the epochs run and the global step (fewer epochs when cancelled). */
async function trainLoop(
  input: TrainLoopInput,
): Promise<{ epochsRun: number; step: number; samplesPerSecond: number; cancelled: boolean }> {
  const { model, prepared, training, epochs, signal, emit } = input;
  const part = prepared.partitions.train;
  if (part.count === 0) throw new Error("the train partition is empty; use more data or a larger train ratio");
  const outputs = prepared.task === "classification" ? (prepared.classes?.length ?? 0) : 1;
  const labels = prepared.task === "classification" ? labelIndices(part, outputs) : null;
  const sampleSize = prepared.featureShape.reduce((a, b) => a * b, 1);
  const batchSize = Math.min(training.batchSize, part.count);
  const optimizer = makeOptimizer(training);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  let step = 0;
  let seen = 0;
  const started = Date.now();
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const learningRate = learningRateAt(training, epoch);
      setLearningRate(optimizer, learningRate);
      const order = training.shuffle
        ? seededPermutation(part.count, training.seed + epoch)
        : Uint32Array.from({ length: part.count }, (_, i) => i);
      let lossSum = 0;
      for (let start = 0; start < part.count; start += batchSize) {
        const rows = order.subarray(start, Math.min(start + batchSize, part.count));
        const x = new Float32Array(rows.length * sampleSize);
        const y = new Float32Array(rows.length * outputs);
        rows.forEach((r, i) => {
          x.set(part.x.subarray(r * sampleSize, (r + 1) * sampleSize), i * sampleSize);
          if (labels) y[i * outputs + labels[r]!] = 1;
          else y[i] = part.y[r]!;
        });
        const value = tf.tidy(() => {
          const xs = tf.tensor(x, [rows.length, ...prepared.featureShape]);
          const ys = tf.tensor2d(y, [rows.length, outputs]);
          const { value: l, grads } = tf.variableGrads(
            () => input.loss(xs, ys, model.apply(xs, { training: false }) as tf.Tensor),
            variables,
          );
          optimizer.applyGradients(grads);
          return l.dataSync()[0]!;
        });
        input.afterStep?.();
        step += 1;
        checkFiniteMetrics({ loss: value }, `epoch ${epoch}, step ${step}`, learningRate);
        seen += rows.length;
        lossSum += value * rows.length;
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (signal.cancelled)
          return { epochsRun: epoch - 1, step, samplesPerSecond: seen / Math.max((Date.now() - started) / 1000, 1e-9), cancelled: true };
      }
      emit({
        type: "epoch",
        epoch,
        step,
        metrics: { loss: lossSum / part.count },
        wallTimeMs: Date.now(),
        samplesPerSecond: seen / Math.max((Date.now() - started) / 1000, 1e-9),
      });
    }
    return { epochsRun: epochs, step, samplesPerSecond: seen / Math.max((Date.now() - started) / 1000, 1e-9), cancelled: false };
  } finally {
    optimizer.dispose();
  }
}

/** Runs a compression job (job.config.compression set, job.parent = the source checkpoint); reports through `emit`. */
export async function compress(job: TrainJob, prepared: PreparedData, emit: Emit, signal: CancelSignal): Promise<void> {
  const models: tf.LayersModel[] = [];
  try {
    const spec = job.config.compression as CompressionSpec;
    const source = job.parent;
    if (!source) throw new Error("a compression run needs its source checkpoint (the job carries no parent)");
    const actual = weightsSha256(source.weights);
    if (actual !== source.sha256) throw new Error(`the source checkpoint's weights hash to ${actual}, not the recorded ${source.sha256}`);
    const { task, featureShape } = prepared;
    const outputs = task === "classification" ? (prepared.classes?.length ?? 0) : 1;
    const header = readWeightsHeader(source.weights);
    if (header.inputShape.length !== featureShape.length || header.inputShape.some((d, i) => d !== featureShape[i]))
      throw new Error(`the source checkpoint takes inputs of shape [${header.inputShape.join(",")}], not [${featureShape.join(",")}]`);
    const head = header.weights.find((w) => w.name === `${HEAD_LAYER_NAME}/kernel`);
    if (!head || head.shape.at(-1) !== outputs)
      throw new Error(`the source checkpoint's head has ${head?.shape.at(-1) ?? 0} outputs, not ${outputs}`);
    if (spec.method === "distill" && task !== "classification") throw new Error("distillation needs a classification task");
    const embedding = header.weights.find((w) => w.name.endsWith("/embeddings"));
    const seed = job.config.training.seed;
    const build = (layers: TrainJob["config"]["model"]["layers"]) => {
      const m = buildModel({ layers, featureShape, task, outputs, seed, vocabularySize: embedding?.shape[0] ?? prepared.vocabularySize });
      models.push(m);
      return m;
    };
    const training = spec.method === "prune" ? spec.fineTuneEpochs > 0 : spec.method === "distill";
    const backend = await selectBackend(job.backend ?? "auto", {
      needsConvGradients: training && hasConvLayers([...source.config.model.layers, ...job.config.model.layers]),
    });

    const teacher = build(source.config.model.layers);
    loadWeightsInto(teacher, deserializeWeights(source.weights));
    const student = build(job.config.model.layers);
    const epochs = spec.method === "distill" ? job.config.training.epochs : spec.method === "prune" ? spec.fineTuneEpochs : 0;
    const batchSize = Math.min(job.config.training.batchSize, Math.max(prepared.partitions.train.count, 1));
    emit({
      type: "started",
      backend: backend.name,
      backendReason: backend.reason,
      environment: backend.versions,
      memory: estimateMemory(student, batchSize, job.config.training.optimizer.name),
      epochs,
      batchesPerEpoch: epochs > 0 ? Math.ceil(prepared.partitions.train.count / batchSize) : 0,
    });

    let bytes: Uint8Array;
    let loop = { epochsRun: 0, step: 0, samplesPerSecond: 0, cancelled: false };
    let pruned = 0;
    if (spec.method === "float16" || spec.method === "int8") {
      const dtype: StoredDtype = spec.method;
      bytes = encodeCompressedWeights(header.inputShape, floatWeights(source.weights), () => dtype);
    } else if (spec.method === "prune") {
      const weights = floatWeights(source.weights);
      pruned = magnitudePrune(weights, spec.sparsity, spec.scope);
      if (spec.fineTuneEpochs > 0) {
        loadWeightsInto(student, { header, values: new Map(weights.map((w) => [w.name, { shape: w.shape, data: w.data }])) });
        // The mask of each prunable variable (names as the weights file writes them: checkpoint.ts weightName).
        const byName = new Map(weights.map((w) => [w.name, w]));
        const masks = student.layers.flatMap((layer) =>
          layer.weights.flatMap((variable, i) => {
            const w = byName.get(weightName(layer.name, variable, i));
            return w && isPrunable(w)
              ? [
                  {
                    variable,
                    mask: tf.tensor(
                      w.data.map((d) => (d !== 0 ? 1 : 0)),
                      w.shape,
                    ),
                  },
                ]
              : [];
          }),
        );
        try {
          loop = await trainLoop({
            model: student,
            prepared,
            training: job.config.training,
            epochs: spec.fineTuneEpochs,
            signal,
            emit,
            loss: (_xs, ys, pred) => tf.mean(perSampleLoss(task, ys, pred)),
            afterStep: () => {
              for (const m of masks)
                tf.tidy(() => {
                  m.variable.write(tf.mul(m.variable.read(), m.mask));
                });
            },
          });
        } finally {
          for (const m of masks) m.mask.dispose();
        }
        const tuned = modelFloatWeights(student);
        bytes = encodeCompressedWeights(header.inputShape, tuned, (w) => (isPrunable(w) ? "sparse-float32" : "float32"));
      } else bytes = encodeCompressedWeights(header.inputShape, weights, (w) => (isPrunable(w) ? "sparse-float32" : "float32"));
    } else {
      const { temperature: T, alpha } = spec;
      loop = await trainLoop({
        model: student,
        prepared,
        training: job.config.training,
        epochs,
        signal,
        emit,
        loss: (xs, ys, pred) => {
          const eps = 1e-7;
          const teacherSoft = tf.softmax(tf.div(tf.log(tf.add(teacher.apply(xs, { training: false }) as tf.Tensor, eps)), T));
          const studentLogSoft = tf.logSoftmax(tf.div(tf.log(tf.add(pred, eps)), T));
          const kl = tf.sum(tf.mul(teacherSoft, tf.sub(tf.log(tf.add(teacherSoft, eps)), studentLogSoft)), -1);
          const hard = perSampleLoss(task, ys, pred);
          return tf.mean(tf.add(tf.mul(kl, alpha * T * T), tf.mul(hard, 1 - alpha))) as tf.Scalar;
        },
      });
      bytes = serializeWeights(student);
    }

    // Evaluate both on the same test partition: the compressed model with the values its file decodes to.
    const compressed = build(job.config.model.layers);
    loadWeightsInto(compressed, deserializeWeights(bytes));
    const stored = floatWeights(bytes);
    const params = stored.reduce((n, w) => n + w.data.length, 0);
    const nonZero = stored.reduce((n, w) => n + w.data.reduce((k, v) => k + (v !== 0 ? 1 : 0), 0), 0);
    const prunable = stored.filter(isPrunable).reduce((n, w) => n + w.data.length, 0);
    const sha256 = weightsSha256(bytes);
    const metrics: Record<string, number> = {
      params,
      nonzero_params: nonZero,
      size_bytes: bytes.length,
      parent_size_bytes: source.weights.length,
      parent_params: header.weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0),
      ...(spec.method === "prune" ? { prunable_params: prunable, pruned_params: pruned } : {}),
    };
    let evaluation: { result: EvaluationResult; dataSha256: string } | undefined;
    if (!loop.cancelled && prepared.partitions.test.count > 0) {
      const parent = headline(evaluateTestPartition(teacher, prepared).result);
      evaluation = evaluateTestPartition(compressed, prepared);
      // Wall-clock inference time per test sample (median of 5 passes; informative only, never part of the weights).
      metrics.inference_us_per_sample = inferenceMicros(compressed, prepared);
      metrics.parent_inference_us_per_sample = inferenceMicros(teacher, prepared);
      const mine = headline(evaluation.result);
      metrics[`test_${mine.key}`] = mine.value;
      metrics[`parent_test_${parent.key}`] = parent.value;
      metrics[`${mine.key}_delta`] = mine.value - parent.value;
    }
    emit({ type: "checkpoint", epoch: loop.epochsRun, step: loop.step, sha256, weights: bytes, metrics, isBest: true });
    if (evaluation)
      emit({
        type: "evaluation",
        epoch: loop.epochsRun,
        checkpointSha256: sha256,
        partition: "test",
        dataSha256: evaluation.dataSha256,
        result: evaluation.result,
      });
    emit({
      type: "finished",
      status: loop.cancelled ? "cancelled" : "completed",
      weightsSha256: sha256,
      epochsRun: loop.epochsRun,
      stoppedEarly: false,
      samplesPerSecond: loop.samplesPerSecond,
    });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    emit({ type: "failed", message: `compression: ${e.message}`, ...(e.stack ? { stack: e.stack } : {}) });
  } finally {
    for (const m of models) m.dispose();
  }
}
