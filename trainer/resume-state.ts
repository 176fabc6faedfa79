/**
 * The exact-resume state of a training run at an epoch boundary: everything train() (trainer/fit.ts) needs to
 * continue so that the run ends bit-identical to the same run trained without interruption.
 *
 * Format "runledger-train-state/1":
 *   bytes 0..3   ASCII "RLS1"
 *   bytes 4..7   header length H, uint32 little-endian
 *   next H bytes header: canonical JSON (see StateHeader)
 *   zero padding up to a multiple of 4, then the sections in this order, each padded to a multiple of 4:
 *     weights        the model's weights in runledger-weights/1 (trainer/checkpoint.ts), header.weightsBytes long
 *     best weights   the best checkpoint's weights (for the final test evaluation), header.bestWeightsBytes long (0: none)
 *     optimizer      float32 little-endian values of each optimizer slot in header order, then `extra`
 *
 * Invariants:
 * - The shuffling order and the dropout masks are functions of (seed, epoch) and (seed, layer, global step)
 *   (trainer/fit.ts), so recording the epoch and the step records their PRNG states exactly.
 * - Optimizer slots are positional (tfjs matches them to the trained variables by index), so no tfjs variable name
 *   (which depends on process-wide counters) enters the bytes: the same run gives the same state bytes.
 * - Adam's running powers beta1^t and beta2^t are saved as they are: tfjs' setWeights recomputes them with pow(),
 *   which may differ in the last bit from the product the optimizer accumulated.
 * - Decoding verifies the SHA-256 before anything else, and every length against the bytes.
 */
import * as tf from "@tensorflow/tfjs";
import { canonicalJson, sha256Hex } from "@/contracts/canonical";
import type { EffectiveSettings } from "@/contracts/training-control";
import type { TrainingConfig } from "@/contracts/training-config";
import type { EarlyStoppingSnapshot, KeeperSnapshot } from "./fit-bookkeeping";

const MAGIC = "RLS1";
export const STATE_FORMAT = "runledger-train-state/1";

type Training = TrainingConfig["training"];

/** The parts of the config a state was made under that a resume must share (the rest is the effective settings). */
export type FixedTraining = Pick<Training, "optimizer" | "batchSize" | "seed" | "shuffle" | "bestMetric">;
export function fixedTraining(training: Training): FixedTraining {
  const { optimizer, batchSize, seed, shuffle, bestMetric } = training;
  return { optimizer, batchSize, seed, shuffle, bestMetric };
}

export type OptimizerState = { slots: { shape: number[]; data: Float32Array }[]; extra: Float32Array };

type StateHeader = {
  format: typeof STATE_FORMAT;
  /** Epochs completed and global batch count at this boundary. */
  epoch: number;
  step: number;
  settings: EffectiveSettings;
  fixed: FixedTraining;
  keeper: KeeperSnapshot;
  earlyStopping: EarlyStoppingSnapshot;
  weightsBytes: number;
  bestWeightsBytes: number;
  optimizer: { slots: number[][]; extra: number };
};

export type TrainState = {
  epoch: number;
  step: number;
  settings: EffectiveSettings;
  fixed: FixedTraining;
  keeper: KeeperSnapshot;
  earlyStopping: EarlyStoppingSnapshot;
  weights: Uint8Array;
  bestWeights: Uint8Array | null;
  optimizer: OptimizerState;
};

type AdamInternals = { accBeta1?: tf.Variable; accBeta2?: tf.Variable };

/** Reads the optimizer's slots (iterations first, then its moments, in tfjs order) and Adam's running powers. */
export async function captureOptimizerState(optimizer: tf.Optimizer): Promise<OptimizerState> {
  const named = await optimizer.getWeights();
  const slots = named.map(({ tensor }) => ({ shape: [...tensor.shape], data: Float32Array.from(tensor.dataSync()) }));
  // getWeights returns a fresh scalar for the iteration count and the live variables for the rest.
  if (named[0]) named[0].tensor.dispose();
  const adam = optimizer as unknown as AdamInternals;
  const extra =
    adam.accBeta1 && adam.accBeta2 ? Float32Array.of(adam.accBeta1.dataSync()[0]!, adam.accBeta2.dataSync()[0]!) : new Float32Array(0);
  return { slots, extra };
}

/** Puts captured slots back into a fresh optimizer of the same kind (before its first step). */
export async function restoreOptimizerState(optimizer: tf.Optimizer, state: OptimizerState): Promise<void> {
  const named = state.slots.map((slot, i) => ({ name: `slot${i}`, tensor: tf.tensor(slot.data, slot.shape, "float32") }));
  await optimizer.setWeights(named);
  tf.dispose(named.map((n) => n.tensor));
  const adam = optimizer as unknown as AdamInternals;
  if (state.extra.length === 2 && adam.accBeta1 && adam.accBeta2) {
    adam.accBeta1.assign(tf.scalar(state.extra[0]!));
    adam.accBeta2.assign(tf.scalar(state.extra[1]!));
  } else if (state.extra.length !== 0 || adam.accBeta1) {
    throw new Error("the resume state's optimizer does not match this config's optimizer");
  }
}

const pad4 = (n: number) => Math.ceil(n / 4) * 4;

export function encodeTrainState(state: TrainState): { bytes: Uint8Array; sha256: string } {
  const header: StateHeader = {
    format: STATE_FORMAT,
    epoch: state.epoch,
    step: state.step,
    settings: state.settings,
    fixed: state.fixed,
    keeper: state.keeper,
    earlyStopping: state.earlyStopping,
    weightsBytes: state.weights.length,
    bestWeightsBytes: state.bestWeights?.length ?? 0,
    optimizer: { slots: state.optimizer.slots.map((s) => s.shape), extra: state.optimizer.extra.length },
  };
  const headerBytes = new TextEncoder().encode(canonicalJson(header));
  const weightsAt = pad4(8 + headerBytes.length);
  const bestAt = weightsAt + pad4(state.weights.length);
  const optimizerAt = bestAt + pad4(header.bestWeightsBytes);
  const floats = state.optimizer.slots.reduce((n, s) => n + s.data.length, 0) + state.optimizer.extra.length;
  const out = new Uint8Array(optimizerAt + floats * 4);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(4, headerBytes.length, true);
  out.set(headerBytes, 8);
  out.set(state.weights, weightsAt);
  if (state.bestWeights) out.set(state.bestWeights, bestAt);
  let offset = optimizerAt;
  for (const array of [...state.optimizer.slots.map((s) => s.data), state.optimizer.extra]) {
    for (let i = 0; i < array.length; i++, offset += 4) view.setFloat32(offset, array[i]!, true);
  }
  return { bytes: out, sha256: sha256Hex(out) };
}

export function decodeTrainState(bytes: Uint8Array, expectedSha256: string): TrainState {
  const actual = sha256Hex(bytes);
  if (actual !== expectedSha256)
    throw new Error(`the resume state's SHA-256 is ${actual}, expected ${expectedSha256}; it was altered or truncated`);
  if (bytes.length < 8 || new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC)
    throw new Error(`the resume state is not in the ${STATE_FORMAT} format`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(4, true);
  if (8 + headerLength > bytes.length) throw new Error("the resume state is truncated (header)");
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as StateHeader;
  if (header.format !== STATE_FORMAT) throw new Error(`the resume state has unknown format ${String(header.format)}`);
  const weightsAt = pad4(8 + headerLength);
  const bestAt = weightsAt + pad4(header.weightsBytes);
  const optimizerAt = bestAt + pad4(header.bestWeightsBytes);
  const floats = header.optimizer.slots.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0) + header.optimizer.extra;
  if (optimizerAt + floats * 4 !== bytes.length) throw new Error("the resume state's length does not match its header");
  let offset = optimizerAt;
  const readFloats = (count: number) => {
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++, offset += 4) data[i] = view.getFloat32(offset, true);
    return data;
  };
  const slots = header.optimizer.slots.map((shape) => ({ shape, data: readFloats(shape.reduce((a, b) => a * b, 1)) }));
  const extra = readFloats(header.optimizer.extra);
  return {
    epoch: header.epoch,
    step: header.step,
    settings: header.settings,
    fixed: header.fixed,
    keeper: header.keeper,
    earlyStopping: header.earlyStopping,
    weights: bytes.slice(weightsAt, weightsAt + header.weightsBytes),
    bestWeights: header.bestWeightsBytes > 0 ? bytes.slice(bestAt, bestAt + header.bestWeightsBytes) : null,
    optimizer: { slots, extra },
  };
}

/** Throws a message naming each setting of the config that differs from the one the state was made under. */
export function checkStateFitsConfig(state: TrainState, training: Training): void {
  const now = fixedTraining(training);
  const differs = (Object.keys(now) as (keyof FixedTraining)[]).filter((k) => canonicalJson(now[k]) !== canonicalJson(state.fixed[k]));
  if (differs.length > 0) {
    const detail = differs.map((k) => `training.${k} was ${canonicalJson(state.fixed[k])}, is ${canonicalJson(now[k])}`).join("; ");
    throw new Error(`the resume state does not fit this config: ${detail}`);
  }
}
