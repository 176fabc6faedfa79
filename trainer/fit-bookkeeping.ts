/**
 * The bookkeeping around train()'s loop (trainer/fit.ts): which checkpoint is the best and the latest, and when
 * early stopping ends the run. No tensor math happens here, so moving it out of the loop cannot change weights.
 *
 * Invariants:
 * - A checkpoint's weights buffer is handed over to `emit` (a worker may transfer it); the keeper holds its own copy,
 *   shared by `best` and `last` when the checkpoint is both.
 * - "Better" ignores non-finite values (a NaN loss is never the best nor an improvement) and the first finite
 *   value always counts as one.
 */
import type * as tf from "@tensorflow/tfjs";
import { serializeWeights, weightsSha256 } from "./checkpoint";
import type { TrainerEvent } from "./types";
import type { TrainingConfig } from "../contracts/training-config";

type Training = TrainingConfig["training"];

export function isBetter(mode: "min" | "max", value: number, best: number | undefined, minDelta = 0): boolean {
  if (!Number.isFinite(value)) return false;
  if (best === undefined) return true;
  return mode === "min" ? value < best - minDelta : value > best + minDelta;
}

export type KeptCheckpoint = { step: number; epoch: number; sha256: string; bytes: Uint8Array };

/** What a resumable state (trainer/resume-state.ts) records of the keeper: enough to continue choosing best/latest. */
export type KeeperSnapshot = {
  bestValue: number | null;
  best: { epoch: number; step: number; sha256: string } | null;
  last: { epoch: number; step: number; sha256: string } | null;
};
/** What a resumable state records of early stopping. */
export type EarlyStoppingSnapshot = { best: number | null; epochsWithoutImprovement: number };

/** Serializes, hashes and emits checkpoints, keeping the best (by training.bestMetric) and the latest. */
export class CheckpointKeeper {
  best: KeptCheckpoint | undefined;
  last: KeptCheckpoint | undefined;
  private bestValue: number | undefined;

  constructor(
    private readonly model: tf.Sequential,
    private readonly bestMetric: Training["bestMetric"],
    private readonly emit: (event: TrainerEvent) => void,
  ) {}

  /**
   * `attachState` (resumable jobs) is called after best/latest are updated for this checkpoint, so the state it
   * builds records the bookkeeping as it stands once this checkpoint exists; its result rides on the event.
   */
  save(epoch: number, step: number, metrics: Record<string, number>, attachState?: () => { state: Uint8Array; stateSha256: string }): void {
    const bytes = serializeWeights(this.model);
    const sha256 = weightsSha256(bytes);
    const value = metrics[this.bestMetric.metric];
    const isBest = value !== undefined && isBetter(this.bestMetric.mode, value, this.bestValue);
    const kept = { step, epoch, sha256, bytes: bytes.slice() };
    if (isBest) {
      this.bestValue = value;
      this.best = kept;
    }
    this.last = kept;
    const extra = attachState?.();
    this.emit({ type: "checkpoint", epoch, step, sha256, weights: bytes, metrics, isBest, ...(extra ?? {}) });
  }

  snapshot(): KeeperSnapshot {
    const ref = (k: KeptCheckpoint | undefined) => (k ? { epoch: k.epoch, step: k.step, sha256: k.sha256 } : null);
    return { bestValue: this.bestValue ?? null, best: ref(this.best), last: ref(this.last) };
  }

  /** Restores a snapshot; the bytes are the best checkpoint's weights and the latest's (the state's own weights). */
  restore(snapshot: KeeperSnapshot, bestBytes: Uint8Array | null, lastBytes: Uint8Array): void {
    this.bestValue = snapshot.bestValue ?? undefined;
    this.best = snapshot.best && bestBytes ? { ...snapshot.best, bytes: bestBytes } : undefined;
    this.last = snapshot.last ? { ...snapshot.last, bytes: lastBytes } : undefined;
  }

  /** Whether the latest checkpoint holds the weights as they are after global batch `step`. */
  holdsStep(step: number): boolean {
    return this.last?.step === step;
  }
}

/** training.earlyStopping: patience counted in epochs without an improvement of at least minDelta. */
export class EarlyStopping {
  private best: number | undefined;
  private epochsWithoutImprovement = 0;

  constructor(private readonly setting: Training["earlyStopping"]) {}

  snapshot(): EarlyStoppingSnapshot {
    return { best: this.best ?? null, epochsWithoutImprovement: this.epochsWithoutImprovement };
  }

  restore(snapshot: EarlyStoppingSnapshot): void {
    this.best = snapshot.best ?? undefined;
    this.epochsWithoutImprovement = snapshot.epochsWithoutImprovement;
  }

  /** Records one epoch's metrics; true once patience has run out. */
  patienceRanOut(metrics: Record<string, number>): boolean {
    if (!this.setting) return false;
    const { metric, mode, patience, minDelta } = this.setting;
    if (isBetter(mode, metrics[metric]!, this.best, minDelta)) {
      this.best = metrics[metric];
      this.epochsWithoutImprovement = 0;
      return false;
    }
    return ++this.epochsWithoutImprovement >= patience;
  }
}
