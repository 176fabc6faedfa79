/**
 * The training configuration: one zod schema shared by the UI form, the API and the trainer.
 *
 * A config is a recorded fact: once a run is created its config never changes, and its
 * SHA-256 (over canonical JSON of the parsed config, defaults filled in) identifies it.
 * A change is a fork: a new run whose differing paths become decisions.
 *
 * This module holds only zod schemas and pure helpers, so browser code may import it.
 */
import { z } from "zod";

export const ACTIVATIONS = ["relu", "sigmoid", "tanh", "softmax", "linear", "elu", "selu", "softplus"] as const;
export const INITIALIZERS = ["glorotUniform", "glorotNormal", "heUniform", "heNormal", "leCunNormal", "zeros"] as const;
export const BUILTIN_DATASETS = ["iris", "digits", "sentences"] as const;

const positiveInt = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .int(`${what} must be a whole number`)
    .positive(`${what} must be at least 1`);
const regularizer = {
  l1: z.number().min(0, "l1 must be ≥ 0").max(1, "l1 must be ≤ 1").optional(),
  l2: z.number().min(0, "l2 must be ≥ 0").max(1, "l2 must be ≤ 1").optional(),
};
const activation = z.enum(ACTIVATIONS, { error: `activation must be one of ${ACTIVATIONS.join(", ")}` });
const initializer = z.enum(INITIALIZERS, { error: `initializer must be one of ${INITIALIZERS.join(", ")}` });

export const layerSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("dense"),
    units: positiveInt("units").max(4096, "units must be ≤ 4096"),
    activation: activation.default("relu"),
    kernelInitializer: initializer.default("glorotUniform"),
    ...regularizer,
  }),
  z.object({ type: z.literal("dropout"), rate: z.number().min(0, "dropout rate must be ≥ 0").lt(1, "dropout rate must be < 1") }),
  z.object({
    type: z.literal("conv2d"),
    filters: positiveInt("filters").max(512),
    kernelSize: positiveInt("kernelSize").max(11),
    strides: positiveInt("strides").max(4).default(1),
    padding: z.enum(["valid", "same"]).default("same"),
    activation: activation.default("relu"),
    kernelInitializer: initializer.default("heNormal"),
    ...regularizer,
  }),
  z.object({ type: z.literal("maxPooling2d"), poolSize: positiveInt("poolSize").max(8).default(2) }),
  z.object({ type: z.literal("flatten") }),
  z.object({
    type: z.literal("embedding"),
    outputDim: positiveInt("outputDim").max(1024),
    vocabularySize: positiveInt("vocabularySize").max(100_000).optional(),
  }),
  z.object({ type: z.literal("lstm"), units: positiveInt("units").max(1024), returnSequences: z.boolean().default(false) }),
  z.object({ type: z.literal("gru"), units: positiveInt("units").max(1024), returnSequences: z.boolean().default(false) }),
  z.object({ type: z.literal("globalAveragePooling1d") }),
  z.object({ type: z.literal("globalMaxPooling1d") }),
  z.object({ type: z.literal("globalAveragePooling2d") }),
]);
export type LayerSpec = z.infer<typeof layerSchema>;

export const cleaningStepSchema = z.discriminatedUnion("op", [
  z.object({ op: z.literal("dropMissing"), columns: z.array(z.string()).optional() }),
  z.object({ op: z.literal("impute"), strategy: z.enum(["mean", "median", "mode"]), columns: z.array(z.string()).optional() }),
  z.object({
    op: z.literal("removeOutliers"),
    zThreshold: z.number().positive("zThreshold must be > 0").max(20),
    columns: z.array(z.string()).optional(),
  }),
]);
export type CleaningStep = z.infer<typeof cleaningStepSchema>;

export const datasetRefSchema = z.union([
  z.object({ builtin: z.enum(BUILTIN_DATASETS, { error: `builtin dataset must be one of ${BUILTIN_DATASETS.join(", ")}` }) }).strict(),
  z.object({ datasetId: z.string().min(1, "datasetId must not be empty") }).strict(),
]);
export type DatasetRef = z.infer<typeof datasetRefSchema>;

export const splitSchema = z
  .object({
    strategy: z.enum(["random", "stratified"]).default("stratified"),
    train: z.number().gt(0, "train ratio must be > 0").lt(1, "train ratio must be < 1").default(0.7),
    validation: z.number().gt(0, "validation ratio must be > 0").lt(1, "validation ratio must be < 1").default(0.15),
    test: z.number().min(0, "test ratio must be ≥ 0").lt(1, "test ratio must be < 1").default(0.15),
    seed: z
      .number({ error: "split seed must be a number" })
      .int("split seed must be a whole number")
      .min(0, "split seed must be ≥ 0")
      .default(42),
  })
  .refine((s) => Math.abs(s.train + s.validation + s.test - 1) < 1e-9, {
    message: "split ratios train + validation + test must add up to 1",
  });
export type SplitSpec = z.infer<typeof splitSchema>;

export const dataSchema = z.object({
  dataset: datasetRefSchema,
  /** Column holding the label; defaults to the dataset's declared label column. */
  labelColumn: z.string().optional(),
  task: z.enum(["classification", "regression"]).default("classification"),
  cleaning: z.array(cleaningStepSchema).default([]),
  /** Fitted on the train partition only; statistics recorded with the split. */
  normalization: z.enum(["none", "standard", "minmax"]).default("none"),
  split: splitSchema.default({ strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 42 }),
});

export const optimizerSchema = z.object({
  name: z.enum(["sgd", "momentum", "adam", "rmsprop"], { error: "optimizer must be one of sgd, momentum, adam, rmsprop" }),
  momentum: z.number().min(0).lt(1, "momentum must be < 1").optional(),
  beta1: z.number().min(0).lt(1, "beta1 must be < 1").optional(),
  beta2: z.number().min(0).lt(1, "beta2 must be < 1").optional(),
  rho: z.number().min(0).lt(1, "rho must be < 1").optional(),
  epsilon: z.number().positive().max(1).optional(),
});

export const lrScheduleSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("constant") }),
  z.object({ type: z.literal("step"), everyEpochs: positiveInt("everyEpochs"), factor: z.number().gt(0).max(1, "factor must be ≤ 1") }),
  z.object({
    type: z.literal("exponential"),
    decayRate: z.number().gt(0).max(1, "decayRate must be ≤ 1"),
    decayEpochs: positiveInt("decayEpochs").default(1),
  }),
]);

export const METRIC_MODES = ["min", "max"] as const;
export const trainingSchema = z.object({
  optimizer: optimizerSchema.default({ name: "adam" }),
  learningRate: z.number({ error: "learningRate must be a number" }).gt(0, "learningRate must be > 0").max(10, "learningRate must be ≤ 10"),
  lrSchedule: lrScheduleSchema.default({ type: "constant" }),
  batchSize: positiveInt("batchSize").max(65_536, "batchSize must be ≤ 65536"),
  epochs: positiveInt("epochs").max(10_000, "epochs must be ≤ 10000"),
  seed: z
    .number({ error: "seed must be a number" })
    .int("seed must be a whole number")
    .min(0, "seed must be ≥ 0")
    .max(2 ** 31 - 1, "seed must be ≤ 2147483647"),
  shuffle: z.boolean().default(true),
  earlyStopping: z
    .object({
      metric: z.string().default("val_loss"),
      mode: z.enum(METRIC_MODES).default("min"),
      patience: positiveInt("patience"),
      minDelta: z.number({ error: "minDelta must be a number" }).min(0, "minDelta must be ≥ 0").default(0),
    })
    .nullable()
    .default(null),
  classWeights: z
    .union([z.literal("balanced"), z.record(z.string(), z.number().positive())])
    .nullable()
    .default(null),
  checkpointEvery: positiveInt("checkpointEvery").default(1),
  /** The metric that marks the best checkpoint. */
  bestMetric: z
    .object({ metric: z.string().default("val_loss"), mode: z.enum(METRIC_MODES).default("min") })
    .default({ metric: "val_loss", mode: "min" }),
});

export const fineTuneSchema = z.object({
  parentCheckpointId: z.string().min(1, "parentCheckpointId must not be empty"),
  /** Freeze the first N layers of the parent (0 = full fine-tuning). */
  freezeLayers: z.number().int().min(0).default(0),
  /** Replace the parent's output layer with a new one for this dataset's classes. */
  replaceHead: z.boolean().default(false),
});

/**
 * A planned intervention: after epoch `atEpoch`, change pilotable paths (`set`, the same paths and values a live pilot
 * may set: contracts/pilot-config.ts validateSchedule) and/or stop, for a stated reason. `replays` names the live
 * intervention of another run this entry repeats (a re-run of a piloted run). Entries at the same epoch apply in order.
 */
export const scheduleEntrySchema = z
  .object({
    atEpoch: positiveInt("atEpoch").max(10_000, "atEpoch must be ≤ 10000"),
    set: z.record(z.string(), z.unknown()).optional(),
    stop: z.literal(true, { error: "stop must be true when given" }).optional(),
    rationale: z.string().trim().min(1, "rationale is required: say why this change is planned").max(4000),
    replays: z.object({ runId: z.number().int(), interventionId: z.number().int() }).strict().optional(),
  })
  .strict()
  .refine((e) => e.stop === true || (e.set !== undefined && Object.keys(e.set).length > 0), {
    message: "a schedule entry sets at least one path (set) or stops the run (stop: true)",
  });
export type ScheduleEntry = z.infer<typeof scheduleEntrySchema>;

/**
 * Model compression (issue 17): the run derives a smaller model from a source checkpoint (its parent checkpoint) instead
 * of training one from scratch. float16 / int8: post-training quantization of the source's weights (int8: symmetric,
 * one scale per output channel); prune: magnitude pruning of the kernels to `sparsity` (global threshold or per layer),
 * optionally fine-tuned for `fineTuneEpochs` with the mask fixed; distill: a student (this config's model.layers,
 * trained for training.epochs on the same train partition) learns from the source as teacher: loss = alpha · T² ·
 * KL(teacher_T ‖ student_T) + (1 − alpha) · CE(labels, student). Absent on ordinary runs (their hash is unchanged).
 */
const sourceCheckpointId = z.string().min(1, "sourceCheckpointId must not be empty");
export const COMPRESSION_METHODS = ["float16", "int8", "prune", "distill"] as const;
export type CompressionMethod = (typeof COMPRESSION_METHODS)[number];
export const compressionSchema = z.discriminatedUnion(
  "method",
  [
    z.object({ method: z.literal("float16"), sourceCheckpointId }).strict(),
    z.object({ method: z.literal("int8"), sourceCheckpointId }).strict(),
    z
      .object({
        method: z.literal("prune"),
        sourceCheckpointId,
        sparsity: z
          .number({ error: "sparsity must be a number" })
          .gt(0, "sparsity must be > 0 (the fraction of kernel weights set to zero)")
          .lt(1, "sparsity must be < 1 (the fraction of kernel weights set to zero)"),
        scope: z.enum(["global", "layer"], { error: "scope must be global or layer" }).default("global"),
        fineTuneEpochs: z.number().int("fineTuneEpochs must be a whole number").min(0).max(1000).default(0),
      })
      .strict(),
    z
      .object({
        method: z.literal("distill"),
        sourceCheckpointId,
        temperature: z.number().gt(0, "temperature must be > 0").max(100, "temperature must be ≤ 100").default(4),
        alpha: z.number().min(0, "alpha must be ≥ 0").max(1, "alpha must be ≤ 1").default(0.7),
      })
      .strict(),
  ],
  { error: `compression.method must be one of ${COMPRESSION_METHODS.join(", ")}` },
);
export type CompressionSpec = z.output<typeof compressionSchema>;

export const trainingConfigSchema = z.object({
  name: z.string().max(200).optional(),
  data: dataSchema,
  model: z.object({ layers: z.array(layerSchema).max(64, "at most 64 layers") }),
  training: trainingSchema,
  fineTune: fineTuneSchema.nullable().default(null),
  /** Planned interventions (absent when none: a config without a schedule keeps its hash). */
  schedule: z.array(scheduleEntrySchema).max(1000, "at most 1000 schedule entries").optional(),
  /** A compression run (absent otherwise, so ordinary configs keep their hash). */
  compression: compressionSchema.optional(),
});
export type TrainingConfigInput = z.input<typeof trainingConfigSchema>;
export type TrainingConfig = z.output<typeof trainingConfigSchema>;

/** Readable one-line messages, each naming the path at fault: "training.learningRate: learningRate must be > 0". */
export function describeConfigIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join(".") : "config"}: ${i.message}`).join("; ");
}

export type ParsedConfig = { ok: true; config: TrainingConfig } | { ok: false; message: string };
export function parseTrainingConfig(input: unknown): ParsedConfig {
  const r = trainingConfigSchema.safeParse(input);
  return r.success ? { ok: true, config: r.data } : { ok: false, message: describeConfigIssues(r.error) };
}

/** Paths and values of a config flattened, e.g. "training.learningRate" → 0.01. Arrays index by position. */
export function flattenConfig(value: unknown, prefix = "", out: Record<string, unknown> = {}): Record<string, unknown> {
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
    if (entries.length === 0) out[prefix] = value;
    for (const [k, v] of entries) flattenConfig(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) out[prefix] = value;
  return out;
}

/** Every path whose value differs between two configs (added, removed or changed). */
export function diffConfigs(before: unknown, after: unknown): { path: string; oldValue: unknown; newValue: unknown }[] {
  const a = flattenConfig(before);
  const b = flattenConfig(after);
  const paths = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return paths
    .filter((p) => JSON.stringify(a[p]) !== JSON.stringify(b[p]))
    .map((p) => ({ path: p, oldValue: a[p] ?? null, newValue: b[p] ?? null }));
}
