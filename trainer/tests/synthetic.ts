/**
 * Tiny synthetic, separable datasets as PreparedData for trainer tests (no CSV, no data pipeline):
 * Gaussian blobs (tabular), bar images (8×8×1) and token sequences. Seeded, so every test run
 * trains on the same numbers. Labels are one-hot, as trainer/data/prepare.ts produces them.
 */
import { trainingConfigSchema, type TrainingConfig, type TrainingConfigInput } from "../../contracts/training-config";
import type { PartitionName, PartitionTensors, PreparedData, TrainJob } from "../types";

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Sample = { x: number[]; label: number };

function partition(samples: Sample[], numClasses: number | null): PartitionTensors {
  const x = Float32Array.from(samples.flatMap((s) => s.x));
  const y = numClasses === null ? Float32Array.from(samples.map((s) => s.label)) : new Float32Array(samples.length * numClasses);
  if (numClasses !== null) samples.forEach((s, i) => (y[i * numClasses + s.label] = 1));
  return { x, y, indices: samples.map((_, i) => i), count: samples.length };
}

function assemble(
  make: (i: number, random: () => number) => Sample,
  counts: Record<PartitionName, number>,
  featureShape: number[],
  classes: string[] | null,
  extra: Partial<PreparedData> = {},
): PreparedData {
  const random = rng(1234);
  let i = 0;
  const parts = Object.fromEntries(
    (["train", "validation", "test"] as const).map((p) => [
      p,
      partition(
        Array.from({ length: counts[p] }, () => make(i++, random)),
        classes ? classes.length : null,
      ),
    ]),
  ) as Record<PartitionName, PartitionTensors>;
  const emptyManifest = { count: 0, classBalance: null, indicesSha256: "" };
  return {
    datasetSha256: "synthetic",
    task: classes ? "classification" : "regression",
    featureShape,
    classes,
    version: {
      recipe: [],
      report: { steps: [], rowsIn: 0, rowsOut: 0 },
      sha256: "synthetic",
      rowCount: counts.train + counts.validation + counts.test,
    },
    split: {
      spec: { strategy: "random", train: 0.6, validation: 0.2, test: 0.2, seed: 1 },
      manifest: {
        strategy: "random",
        seed: 1,
        ratios: { train: 0.6, validation: 0.2, test: 0.2 },
        partitions: { train: emptyManifest, validation: emptyManifest, test: emptyManifest },
        normalization: { method: "none", stats: {} },
        labelEncoding: classes,
      },
      sha256: "synthetic",
    },
    partitions: parts,
    ...extra,
  };
}

const gauss = (random: () => number) => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());

/** Three well-separated Gaussian blobs in 4 dimensions (Iris-sized). */
export function blobs(counts = { train: 90, validation: 30, test: 30 }, classes = ["a", "b", "c"]): PreparedData {
  return assemble(
    (i, r) => {
      const label = i % classes.length;
      return { label, x: [0, 1, 2, 3].map((d) => (d % classes.length === label ? 3 : 0) + 0.4 * gauss(r)) };
    },
    counts,
    [4],
    classes,
  );
}

/** y = 2·x0 - x1 + noise. */
export function linear(counts = { train: 80, validation: 20, test: 20 }): PreparedData {
  return assemble(
    (_, r) => {
      const x = [gauss(r), gauss(r)];
      return { label: 2 * x[0]! - x[1]! + 0.05 * gauss(r), x };
    },
    counts,
    [2],
    null,
  );
}

/** 8×8 single-channel images: a horizontal bar (class "h") or a vertical bar (class "v"), plus noise. */
export function bars(counts = { train: 48, validation: 16, test: 16 }): PreparedData {
  return assemble(
    (i, r) => {
      const label = i % 2;
      const at = 1 + Math.floor(r() * 6);
      const x = Array.from({ length: 64 }, (_, p) => ((label === 0 ? Math.floor(p / 8) : p % 8) === at ? 1 : 0) + 0.1 * r());
      return { label, x };
    },
    counts,
    [8, 8, 1],
    ["h", "v"],
  );
}

/** Token sequences of length 6: class "low" uses tokens 1..5, class "high" tokens 6..10 (0 = padding). */
export function sequences(counts = { train: 60, validation: 20, test: 20 }): PreparedData {
  return assemble(
    (i, r) => {
      const label = i % 2;
      return { label, x: Array.from({ length: 6 }, () => 1 + label * 5 + Math.floor(r() * 5)) };
    },
    counts,
    [6],
    ["low", "high"],
    { vocabularySize: 11 },
  );
}

export function config(
  overrides: {
    model?: TrainingConfigInput["model"];
    training?: Partial<TrainingConfigInput["training"]>;
    data?: Partial<TrainingConfigInput["data"]>;
    fineTune?: TrainingConfigInput["fineTune"];
  } = {},
): TrainingConfig {
  return trainingConfigSchema.parse({
    data: { dataset: { builtin: "iris" }, ...overrides.data },
    model: overrides.model ?? { layers: [{ type: "dense", units: 16 }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.05, batchSize: 16, epochs: 10, seed: 7, ...overrides.training },
    fineTune: overrides.fineTune ?? null,
  });
}

/** A job for train(): the dataset bytes are unused when PreparedData is passed directly. */
export function job(cfg: TrainingConfig, extra: Partial<TrainJob> = {}): TrainJob {
  return {
    config: cfg,
    dataset: { bytes: new Uint8Array(), schema: { kind: "tabular", columns: [], labelColumn: "label" }, sha256: "synthetic" },
    backend: "cpu",
    ...extra,
  };
}
