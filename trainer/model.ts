/**
 * Builds a tf.LayersModel from the declarative layer list of a training config, plus the automatic
 * head, the optimizer and the per-sample loss; and prepares fine-tuning from a parent checkpoint.
 *
 * Invariants:
 * - Layer names are explicit and stable: `l<index>_<type>` for config layers and "head" for the
 *   automatic output layer. Checkpoints address weights by these names, never by tfjs' global
 *   counters, so the same config gives the same names in every process.
 * - Every random initializer and dropout layer gets a seed derived from (training.seed, layer index),
 *   so the same config + data + seed + backend gives bit-identical weights.
 * - Invalid stacks fail before any training with a message naming the layer path
 *   ("model.layers.1 (lstm) needs a sequence input; ...").
 */
import * as tf from "@tensorflow/tfjs";
import type { LayerSpec, TrainingConfig } from "../contracts/training-config";
import { deserializeWeights, loadWeightsInto, readWeightsHeader } from "./checkpoint";
import type { PreparedData, TrainJob } from "./types";

export const HEAD_LAYER_NAME = "head";

type Initializer = ReturnType<typeof tf.initializers.zeros>;
type InitializerName = Extract<LayerSpec, { type: "dense" }>["kernelInitializer"];

/** A 31-bit seed from (base seed, layer index, salt): splitmix-style mixing, stable across platforms. */
export function deriveSeed(baseSeed: number, index: number, salt = 0): number {
  let h = (baseSeed ^ Math.imul(index + 1, 0x9e3779b1) ^ Math.imul(salt + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) & 0x7fffffff;
}

function initializer(name: InitializerName, seed: number): Initializer {
  switch (name) {
    case "glorotUniform":
      return tf.initializers.glorotUniform({ seed });
    case "glorotNormal":
      return tf.initializers.glorotNormal({ seed });
    case "heUniform":
      return tf.initializers.heUniform({ seed });
    case "heNormal":
      return tf.initializers.heNormal({ seed });
    case "leCunNormal":
      return tf.initializers.leCunNormal({ seed });
    case "zeros":
      return tf.initializers.zeros();
  }
}

function kernelRegularizer(spec: { l1?: number; l2?: number }) {
  const l1 = spec.l1 ?? 0;
  const l2 = spec.l2 ?? 0;
  return l1 > 0 || l2 > 0 ? { kernelRegularizer: tf.regularizers.l1l2({ l1, l2 }) } : {};
}

/**
 * An embedding lookup whose gradient is a scatter-add (ScatterNd) instead of tfjs' default
 * UnsortedSegmentSum: the cpu backend runs that kernel as one pass per vocabulary entry (~20
 * samples/s on the sentences dataset) and the wasm backend lacks it. Same weight ("embeddings"),
 * shapes and forward maths as tf.layers.embedding, so checkpoints are interchangeable.
 */
class ScatterEmbedding extends tf.layers.Layer {
  static className = "RunledgerScatterEmbedding";
  private readonly inputDim: number;
  private readonly outputDim: number;
  private readonly seed: number;
  private embeddings: tf.LayerVariable | null = null;

  constructor(args: { name: string; inputDim: number; outputDim: number; seed: number; inputShape?: number[] }) {
    super({ name: args.name, ...(args.inputShape ? { inputShape: args.inputShape } : {}) });
    this.inputDim = args.inputDim;
    this.outputDim = args.outputDim;
    this.seed = args.seed;
  }

  override build(): void {
    const init = tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed: this.seed });
    this.embeddings = this.addWeight("embeddings", [this.inputDim, this.outputDim], "float32", init);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return [...(inputShape as tf.Shape), this.outputDim];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const ids = tf.cast(Array.isArray(inputs) ? inputs[0]! : inputs, "int32");
      const [vocabulary, dim] = [this.inputDim, this.outputDim];
      // `save` keeps the ids alive for the backward pass, which runs after this tidy has ended.
      const lookup = tf.customGrad((table, save) => {
        (save as tf.GradSaveFunc)([ids]);
        return {
          value: tf.gather(table as tf.Tensor, ids),
          gradFunc: (dy, saved) => tf.scatterND(tf.reshape(saved[0]!, [-1, 1]), tf.reshape(dy as tf.Tensor, [-1, dim]), [vocabulary, dim]),
        };
      });
      return lookup(this.embeddings!.read());
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), inputDim: this.inputDim, outputDim: this.outputDim, seed: this.seed };
  }
}
tf.serialization.registerClass(ScatterEmbedding);

export function layerName(index: number, spec: LayerSpec): string {
  return `l${index}_${spec.type.toLowerCase()}`;
}

const fmt = (shape: readonly number[]) => `[${shape.join(", ")}]`;

/** Checks that a layer can take an input of this per-sample shape; returns a readable problem or null. */
function stackProblem(spec: LayerSpec, index: number, shape: number[], vocabularySize: number | undefined): string | null {
  const rank = shape.length;
  switch (spec.type) {
    case "conv2d":
    case "maxPooling2d":
    case "globalAveragePooling2d": {
      if (rank !== 3) return `needs an image input [height, width, channels]; its input has shape ${fmt(shape)}`;
      const window =
        spec.type === "conv2d" ? (spec.padding === "valid" ? spec.kernelSize : 1) : spec.type === "maxPooling2d" ? spec.poolSize : 1;
      if (window > shape[0]! || window > shape[1]!) return `window ${window} is larger than its input ${fmt(shape)}`;
      return null;
    }
    case "lstm":
    case "gru":
      if (rank === 1) return "needs a sequence input; put an embedding layer before it";
      if (rank !== 2) return `needs a sequence input [steps, features]; its input has shape ${fmt(shape)}`;
      return null;
    case "globalAveragePooling1d":
    case "globalMaxPooling1d":
      return rank === 2 ? null : `needs a sequence input [steps, features]; its input has shape ${fmt(shape)}`;
    case "flatten":
      return rank >= 2 ? null : `has nothing to flatten: its input ${fmt(shape)} is already flat`;
    case "embedding":
      if (index !== 0) return "must be the first layer: it reads token ids";
      if (rank !== 1) return `needs a sequence of token ids; this dataset's samples have shape ${fmt(shape)}`;
      if (!(spec.vocabularySize ?? vocabularySize))
        return "needs a vocabulary size; this dataset has no token vocabulary (set vocabularySize)";
      return null;
    case "dense":
    case "dropout":
      return null;
  }
}

function makeLayer(
  spec: LayerSpec,
  index: number,
  seed: number,
  vocabularySize: number | undefined,
  inputShape?: number[],
): tf.layers.Layer {
  const base = { name: layerName(index, spec), ...(inputShape ? { inputShape } : {}) };
  const s = (salt: number) => deriveSeed(seed, index, salt);
  switch (spec.type) {
    case "dense":
      return tf.layers.dense({
        ...base,
        units: spec.units,
        activation: spec.activation,
        kernelInitializer: initializer(spec.kernelInitializer, s(0)),
        ...kernelRegularizer(spec),
      });
    case "dropout":
      return tf.layers.dropout({ ...base, rate: spec.rate, seed: s(0) });
    case "conv2d":
      return tf.layers.conv2d({
        ...base,
        filters: spec.filters,
        kernelSize: spec.kernelSize,
        strides: spec.strides,
        padding: spec.padding,
        activation: spec.activation,
        kernelInitializer: initializer(spec.kernelInitializer, s(0)),
        ...kernelRegularizer(spec),
      });
    case "maxPooling2d":
      return tf.layers.maxPooling2d({ ...base, poolSize: spec.poolSize });
    case "flatten":
      return tf.layers.flatten(base);
    case "embedding":
      return new ScatterEmbedding({ ...base, inputDim: spec.vocabularySize ?? vocabularySize!, outputDim: spec.outputDim, seed: s(0) });
    case "lstm":
      return tf.layers.lstm({
        ...base,
        units: spec.units,
        returnSequences: spec.returnSequences,
        kernelInitializer: tf.initializers.glorotUniform({ seed: s(0) }),
        recurrentInitializer: tf.initializers.orthogonal({ seed: s(1) }),
      });
    case "gru":
      return tf.layers.gru({
        ...base,
        units: spec.units,
        returnSequences: spec.returnSequences,
        kernelInitializer: tf.initializers.glorotUniform({ seed: s(0) }),
        recurrentInitializer: tf.initializers.orthogonal({ seed: s(1) }),
      });
    case "globalAveragePooling1d":
      return tf.layers.globalAveragePooling1d(base);
    case "globalMaxPooling1d":
      return tf.layers.globalMaxPooling1d(base);
    case "globalAveragePooling2d":
      return tf.layers.globalAveragePooling2d(base);
  }
}

export type ModelSpec = {
  layers: LayerSpec[];
  featureShape: number[];
  task: PreparedData["task"];
  /** Head width: number of classes (classification) or 1 (regression). */
  outputs: number;
  seed: number;
  vocabularySize?: number;
};

export function buildModel(spec: ModelSpec): tf.Sequential {
  const model = tf.sequential();
  let shape = [...spec.featureShape];
  spec.layers.forEach((layerSpec, index) => {
    const label = `model.layers.${index} (${layerSpec.type})`;
    const problem = stackProblem(layerSpec, index, shape, spec.vocabularySize);
    if (problem) throw new Error(`${label} ${problem}`);
    try {
      const layer = makeLayer(layerSpec, index, spec.seed, spec.vocabularySize, index === 0 ? spec.featureShape : undefined);
      model.add(layer);
      shape = (layer.outputShape as (number | null)[]).slice(1).map((d) => d ?? -1);
    } catch (error) {
      throw new Error(`${label}: ${(error as Error).message}`);
    }
    if (shape.some((d) => d <= 0)) throw new Error(`${label} outputs an empty shape ${fmt(shape)}; use smaller kernels, pools or strides`);
  });
  if (shape.length !== 1) {
    const last = spec.layers.length ? `model.layers.${spec.layers.length - 1} (${spec.layers.at(-1)!.type}) outputs` : "the input has";
    throw new Error(
      `the output head needs a flat input but ${last} shape ${fmt(shape)}; add a flatten or global pooling layer before the head`,
    );
  }
  const head = tf.layers.dense({
    name: HEAD_LAYER_NAME,
    units: spec.outputs,
    activation: spec.task === "classification" ? "softmax" : "linear",
    kernelInitializer: tf.initializers.glorotUniform({ seed: deriveSeed(spec.seed, spec.layers.length, 0) }),
    ...(spec.layers.length === 0 ? { inputShape: spec.featureShape } : {}),
  });
  model.add(head);
  return model;
}

export function hasConvLayers(layers: LayerSpec[]): boolean {
  return layers.some((l) => l.type === "conv2d");
}

export function makeOptimizer(training: TrainingConfig["training"]): tf.Optimizer {
  const o = training.optimizer;
  const lr = training.learningRate;
  switch (o.name) {
    case "sgd":
      return tf.train.sgd(lr);
    case "momentum":
      return tf.train.momentum(lr, o.momentum ?? 0.9);
    case "adam":
      return tf.train.adam(lr, o.beta1 ?? 0.9, o.beta2 ?? 0.999, o.epsilon ?? 1e-7);
    case "rmsprop":
      return tf.train.rmsprop(lr, o.rho ?? 0.9, o.momentum ?? 0, o.epsilon ?? 1e-7);
  }
}

/** Sets the learning rate of any of our optimizers (sgd/momentum cache it as a scalar; adam/rmsprop read the field). */
export function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  const o = optimizer as unknown as { setLearningRate?: (lr: number) => void; learningRate: number };
  if (typeof o.setLearningRate === "function") o.setLearningRate(lr);
  else o.learningRate = lr;
}

/** Per-sample loss: categorical cross-entropy on softmax outputs, or squared error. Shape [batch]. */
export function perSampleLoss(task: PreparedData["task"], yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor1D {
  return (
    task === "classification" ? tf.metrics.categoricalCrossentropy(yTrue, yPred) : tf.mean(tf.square(tf.sub(yTrue, yPred)), -1)
  ) as tf.Tensor1D;
}

export type BuiltModel = {
  model: tf.Sequential;
  /** The layer list the model was built from (the parent's when fine-tuning). */
  layers: LayerSpec[];
  frozenLayers: string[];
  replacedLayers: string[];
};

/**
 * Builds the model for a job. Without a parent: a fresh model from the job's config. With a
 * parent: the parent's topology (its config's layers), its weights loaded by layer name, then the
 * first `freezeLayers` layers frozen and, with `replaceHead`, a fresh head for this dataset.
 */
export function buildForJob(job: TrainJob, prepared: PreparedData): BuiltModel {
  const { config } = job;
  const outputs = prepared.task === "classification" ? (prepared.classes?.length ?? 0) : 1;
  if (prepared.task === "classification" && outputs < 2) throw new Error("classification needs at least 2 classes in the data");
  const seed = config.training.seed;
  // A compression run's model is its own layers (its parent checkpoint is the source it was derived from, not a start).
  if (!job.parent || config.compression) {
    if (config.fineTune) throw new Error("fineTune is set but the job carries no parent checkpoint");
    const model = buildModel({
      layers: config.model.layers,
      featureShape: prepared.featureShape,
      task: prepared.task,
      outputs,
      seed,
      vocabularySize: prepared.vocabularySize,
    });
    return { model, layers: config.model.layers, frozenLayers: [], replacedLayers: [] };
  }
  const parent = job.parent;
  const fineTune = config.fineTune ?? { parentCheckpointId: "", freezeLayers: 0, replaceHead: false };
  const header = readWeightsHeader(parent.weights);
  const sameShape =
    header.inputShape.length === prepared.featureShape.length && header.inputShape.every((d, i) => d === prepared.featureShape[i]);
  if (!sameShape) {
    throw new Error(
      `the parent checkpoint takes inputs of shape ${fmt(header.inputShape)} but this dataset's samples have shape ${fmt(prepared.featureShape)}; fine-tune on data with the same features`,
    );
  }
  if (parent.config.data.task !== prepared.task)
    throw new Error(`the parent was trained for ${parent.config.data.task} but this run is ${prepared.task}`);
  const parentHead = header.weights.find((w) => w.name === `${HEAD_LAYER_NAME}/kernel`);
  if (!parentHead) throw new Error("the parent checkpoint has no head layer");
  const parentOutputs = parentHead.shape.at(-1)!;
  if (!fineTune.replaceHead && parentOutputs !== outputs) {
    throw new Error(
      `the parent's head has ${parentOutputs} outputs but this dataset has ${outputs} classes; set fineTune.replaceHead to true`,
    );
  }
  const layers = parent.config.model.layers;
  if (fineTune.freezeLayers > layers.length) {
    throw new Error(`fineTune.freezeLayers is ${fineTune.freezeLayers} but the parent has only ${layers.length} layers before its head`);
  }
  const embeddingWeight = header.weights.find((w) => w.name.endsWith("/embeddings"));
  const model = buildModel({
    layers,
    featureShape: prepared.featureShape,
    task: prepared.task,
    outputs,
    seed,
    vocabularySize: embeddingWeight?.shape[0] ?? prepared.vocabularySize,
  });
  const replacedLayers = fineTune.replaceHead ? [HEAD_LAYER_NAME] : [];
  loadWeightsInto(model, deserializeWeights(parent.weights), new Set(replacedLayers));
  const frozenLayers = model.layers.slice(0, fineTune.freezeLayers).map((layer) => {
    layer.trainable = false;
    return layer.name;
  });
  return { model, layers, frozenLayers, replacedLayers };
}
