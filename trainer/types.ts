/**
 * The trainer's contract with the rest of Runledger. The trainer is a pure library over TensorFlow.js:
 * it takes a job (config + raw dataset bytes + optional parent checkpoint) and reports events. It never
 * touches the database or the web; the server's orchestrator persists what it reports.
 */
import type { TrainingConfig } from "@/contracts/training-config";
import type { EffectiveSettings, EpochControl, PlannedControl } from "@/contracts/training-control";

export type { EffectiveSettings, EpochControl, PlannedControl };

/** What the trainer reports at an epoch boundary when a pilot (control) is attached. */
export type EpochBoundary = { epoch: number; step: number; metrics: Record<string, number>; settings: EffectiveSettings };
/**
 * Awaited at each epoch boundary (after the epoch event, before that boundary's checkpoint and the next epoch),
 * the last planned epoch included (a pilot may extend the run), but not after early stopping ended it. An invalid
 * answer changes nothing: the trainer emits "controlRejected" and calls the function again for the same boundary.
 */
export type EpochControlFn = (boundary: EpochBoundary) => Promise<EpochControl>;

export type ColumnType = "number" | "string";

/** What is recorded about a dataset's shape when it is registered. */
export type DatasetSchema = {
  kind: "tabular" | "image" | "text";
  columns: { name: string; type: ColumnType }[];
  labelColumn: string;
  /** image: [height, width, channels]; pixel columns are the non-label columns in row-major order. */
  imageShape?: [number, number, number];
  /** text: the column holding the text. */
  textColumn?: string;
};

/** A parsed table: column-major values; null marks a missing value. */
export type Table = { columns: { name: string; type: ColumnType }[]; rows: (string | number | null)[][] };

export type CleaningReport = {
  steps: {
    op: string;
    params: Record<string, unknown>;
    rowsBefore: number;
    rowsAfter: number;
    rowsDropped: number;
    valuesImputed: Record<string, number>;
    outliersRemoved: number;
    detail?: Record<string, unknown>;
  }[];
  rowsIn: number;
  rowsOut: number;
};

export type PartitionName = "train" | "validation" | "test";
export type PartitionManifest = { count: number; classBalance: Record<string, number> | null; indicesSha256: string };
export type SplitManifest = {
  strategy: "random" | "stratified";
  seed: number;
  ratios: { train: number; validation: number; test: number };
  partitions: Record<PartitionName, PartitionManifest>;
  /** Statistics fitted on the train partition only. */
  normalization: { method: "none" | "standard" | "minmax"; stats: Record<string, { a: number; b: number }> };
  labelEncoding: string[] | null;
  vocabulary?: { size: number; sequenceLength: number; sha256: string };
};

export type PartitionTensors = { x: Float32Array; y: Float32Array; indices: number[]; count: number };

/** Model-ready data produced from raw bytes by the data pipeline (cleaning → split → encoding). */
export type PreparedData = {
  datasetSha256: string;
  task: "classification" | "regression";
  /** Shape of one sample, e.g. [4] for Iris, [8, 8, 1] for digits, [sequenceLength] for text. */
  featureShape: number[];
  /** Class names in label-index order (classification), else null. */
  classes: string[] | null;
  /** Largest token id + 1, for embedding layers (text only). */
  vocabularySize?: number;
  version: { recipe: TrainingConfig["data"]["cleaning"]; report: CleaningReport; sha256: string; rowCount: number };
  split: { spec: TrainingConfig["data"]["split"]; manifest: SplitManifest; sha256: string };
  partitions: Record<PartitionName, PartitionTensors>;
};

export type MemoryEstimate = {
  paramCount: number;
  trainableParamCount: number;
  bytes: {
    weightsFloat32: number;
    gradientsFloat32: number;
    optimizerStateFloat32: number;
    activationsPerBatchFloat32: number;
    trainingTotalFloat32: number;
    inferenceTotalFloat32: number;
    weightsBfloat16: number;
    weightsInt8: number;
  };
};

export type BackendName = "tensorflow" | "wasm" | "cpu";

export type EvaluationResult =
  | {
      task: "classification";
      accuracy: number;
      perClass: { label: string; precision: number; recall: number; f1: number; support: number }[];
      macro: { precision: number; recall: number; f1: number };
      confusion: { labels: string[]; matrix: number[][] };
    }
  | { task: "regression"; mse: number; mae: number; r2: number };

export type TrainerEvent =
  | {
      type: "prepared";
      datasetSha256: string;
      version: PreparedData["version"];
      split: PreparedData["split"];
    }
  | {
      type: "started";
      backend: BackendName;
      backendReason: string;
      environment: { tfjs: string; node: string; backendVersion?: string };
      memory: MemoryEstimate;
      epochs: number;
      batchesPerEpoch: number;
      /** Layers frozen or replaced when fine-tuning, by index and name. */
      fineTune?: { frozenLayers: string[]; replacedLayers: string[] };
      /** Present when the job resumed from a state: training continues after this epoch and global step. */
      resumedFrom?: { epoch: number; step: number; stateSha256: string };
    }
  | {
      type: "batch";
      epoch: number;
      batch: number;
      batchesPerEpoch: number;
      step: number;
      metrics: Record<string, number>;
      wallTimeMs: number;
    }
  | {
      type: "epoch";
      epoch: number;
      step: number;
      metrics: Record<string, number>;
      wallTimeMs: number;
      samplesPerSecond: number;
      /** The settings this epoch trained with (present when the run is piloted or has planned controls). */
      settings?: EffectiveSettings;
    }
  | {
      type: "checkpoint";
      epoch: number;
      step: number;
      sha256: string;
      weights: Uint8Array;
      metrics: Record<string, number>;
      isBest: boolean;
      /** Resumable jobs, at epoch boundaries: the exact-resume state (trainer/resume-state.ts) and its SHA-256. */
      state?: Uint8Array;
      stateSha256?: string;
    }
  /** Worker protocol of a piloted job: the worker waits for a {type:"control", epoch} message after this. */
  | { type: "boundary"; epoch: number; step: number; metrics: Record<string, number>; settings: EffectiveSettings }
  /** A control failed validation; nothing changed, and the trainer asks again at the same boundary. */
  | { type: "controlRejected"; epoch: number; message: string }
  | { type: "evaluation"; epoch: number; checkpointSha256: string; partition: PartitionName; dataSha256: string; result: EvaluationResult }
  | {
      type: "finished";
      /** "paused": a control paused the run at an epoch boundary; its last checkpoint carries a resumable state. */
      status: "completed" | "cancelled" | "paused";
      weightsSha256: string;
      epochsRun: number;
      stoppedEarly: boolean;
      /** A control ended the run ("stop"): completed, before its planned epochs. */
      stoppedByDecision?: boolean;
      samplesPerSecond: number;
    }
  | { type: "failed"; message: string; stack?: string };

export type TrainJob = {
  config: TrainingConfig;
  dataset: { bytes: Uint8Array; schema: DatasetSchema; sha256: string };
  /** For fine-tuning: the parent's config (its topology) and checkpoint weights bytes. */
  parent?: { config: TrainingConfig; weights: Uint8Array; sha256: string };
  /** Force a backend (tests, benchmarks); default picks tensorflow → wasm → cpu. */
  backend?: BackendName | "auto";
  /** Attach an exact-resume state to every checkpoint written at an epoch boundary. */
  resumable?: true;
  /** Continue from a state of an earlier run of this config (verified against its SHA-256 first). */
  resume?: { state: Uint8Array; sha256: string };
  /** In a worker: emit "boundary" after each epoch and wait for a "control" message before going on. */
  piloted?: true;
  /** Controls applied by the trainer itself after the given epochs (replay of a piloted run, planned changes). */
  plannedControls?: PlannedControl[];
  /**
   * With `resume`: settings changed on top of the resumed state before training goes on, as if a control applied them
   * at the resumed boundary (a rollback branch: another run's checkpoint continued with changed settings).
   */
  resumeApply?: NonNullable<EpochControl["apply"]>;
};

/** Cooperative cancellation: the fit loop checks it after every batch. */
export type CancelSignal = { readonly cancelled: boolean };
