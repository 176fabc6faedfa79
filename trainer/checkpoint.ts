/**
 * Deterministic serialization of a model's weights, so that the same weights always give the
 * same bytes and therefore the same SHA-256 (the checkpoint's identity in the lineage).
 *
 * Format "runledger-weights/1":
 *   bytes 0..3   ASCII "RLW1"
 *   bytes 4..7   header length H, uint32 little-endian
 *   next H bytes header: canonical JSON {format, inputShape, weights: [{name, shape, dtype}]}
 *   zero padding up to a multiple of 4
 *   float32 little-endian values of every weight, in header order
 *
 * Invariants: weights are listed layer by layer in model order, each layer's weights in tfjs order;
 * names are `<layer name>/<weight name>` from our explicit layer names (never tfjs' global counters,
 * which differ between processes); the header is canonical JSON, so it has one byte form.
 * A compressed model (quantized, pruned: trainer/compressed-weights.ts, "runledger-weights/2") is read by the same
 * functions: readWeightsHeader gives its header, deserializeWeights its dequantized float32 values.
 */
import type * as tfType from "@tensorflow/tfjs";
import * as tf from "@tensorflow/tfjs";
import { canonicalJson, sha256Hex } from "@/contracts/canonical";
import {
  type COMPRESSED_WEIGHTS_FORMAT,
  decodeCompressedWeights,
  isCompressedWeights,
  readCompressedHeader,
  type StoredDtype,
} from "./compressed-weights";

const MAGIC = "RLW1";
export const WEIGHTS_FORMAT = "runledger-weights/1";

export type WeightEntry = { name: string; shape: number[]; dtype: StoredDtype };
export type WeightsHeader = {
  format: typeof WEIGHTS_FORMAT | typeof COMPRESSED_WEIGHTS_FORMAT;
  inputShape: number[];
  weights: WeightEntry[];
};
export type DecodedWeights = { header: WeightsHeader; values: Map<string, { shape: number[]; data: Float32Array }> };

/** `<layer>/<kernel|bias|...>`: the part after the last "/" of tfjs' scoped original name. */
export function weightName(layerName: string, variable: tfType.LayerVariable, index: number): string {
  const original = variable.originalName ?? "";
  const base = original.split("/").pop() || `w${index}`;
  return `${layerName}/${base}`;
}

/** Serialize every weight of the model (trainable or not) into the format above. */
export function serializeWeights(model: tfType.LayersModel): Uint8Array {
  const entries: WeightEntry[] = [];
  const arrays: Float32Array[] = [];
  const seen = new Set<string>();
  for (const layer of model.layers) {
    const values = layer.getWeights();
    layer.weights.forEach((variable, i) => {
      let name = weightName(layer.name, variable, i);
      if (seen.has(name)) name = `${name}#${i}`;
      seen.add(name);
      const tensor = values[i]!;
      entries.push({ name, shape: [...tensor.shape], dtype: "float32" });
      arrays.push(tensor.dataSync() as Float32Array);
    });
  }
  const inputShape = (model.inputs[0]?.shape ?? []).slice(1).map((d) => d ?? -1);
  const header: WeightsHeader = { format: WEIGHTS_FORMAT, inputShape, weights: entries };
  const headerBytes = new TextEncoder().encode(canonicalJson(header));
  const dataOffset = Math.ceil((8 + headerBytes.length) / 4) * 4;
  const totalValues = arrays.reduce((n, a) => n + a.length, 0);
  const out = new Uint8Array(dataOffset + totalValues * 4);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint32(4, headerBytes.length, true);
  out.set(headerBytes, 8);
  let offset = dataOffset;
  for (const array of arrays) {
    for (let i = 0; i < array.length; i++, offset += 4) view.setFloat32(offset, array[i]!, true);
  }
  return out;
}

export function weightsSha256(bytes: Uint8Array): string {
  return sha256Hex(bytes);
}

/** Parse only the header (cheap): input shape and weight names/shapes. */
export function readWeightsHeader(bytes: Uint8Array): WeightsHeader {
  if (isCompressedWeights(bytes)) return readCompressedHeader(bytes).header;
  if (bytes.length < 8 || new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC) {
    throw new Error("checkpoint weights are not in the runledger-weights/1 format");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(4, true);
  if (8 + headerLength > bytes.length) throw new Error("checkpoint weights are truncated (header)");
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as WeightsHeader;
  if (header.format !== WEIGHTS_FORMAT) throw new Error(`checkpoint weights have unknown format ${String(header.format)}`);
  return header;
}

export function deserializeWeights(bytes: Uint8Array): DecodedWeights {
  if (isCompressedWeights(bytes)) {
    const { header, weights } = decodeCompressedWeights(bytes);
    return { header, values: new Map(weights.map((w) => [w.name, { shape: w.shape, data: w.data }])) };
  }
  const header = readWeightsHeader(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = Math.ceil((8 + view.getUint32(4, true)) / 4) * 4;
  const values: DecodedWeights["values"] = new Map();
  for (const entry of header.weights) {
    const size = entry.shape.reduce((a, b) => a * b, 1);
    if (offset + size * 4 > bytes.length) throw new Error(`checkpoint weights are truncated at ${entry.name}`);
    const data = new Float32Array(size);
    for (let i = 0; i < size; i++, offset += 4) data[i] = view.getFloat32(offset, true);
    values.set(entry.name, { shape: entry.shape, data });
  }
  if (offset !== bytes.length) throw new Error("checkpoint weights have trailing bytes");
  return { header, values };
}

/**
 * Load decoded weights into a model built with the same layer names. Layers listed in
 * `skipLayers` keep their fresh initial weights (a replaced head). Every other weight must be
 * present with the same shape, else the error names the weight.
 */
export function loadWeightsInto(model: tfType.LayersModel, decoded: DecodedWeights, skipLayers: ReadonlySet<string> = new Set()): void {
  for (const layer of model.layers) {
    if (skipLayers.has(layer.name) || layer.weights.length === 0) continue;
    const seen = new Set<string>();
    const tensors = layer.weights.map((variable, i) => {
      let name = weightName(layer.name, variable, i);
      if (seen.has(name)) name = `${name}#${i}`;
      seen.add(name);
      const stored = decoded.values.get(name);
      if (!stored) throw new Error(`checkpoint has no weight ${name}; the model topology does not match the checkpoint`);
      const expected = variable.shape;
      if (stored.shape.length !== expected.length || stored.shape.some((d, j) => d !== expected[j])) {
        throw new Error(`checkpoint weight ${name} has shape [${stored.shape.join(",")}] but the model needs [${expected.join(",")}]`);
      }
      return tf.tensor(stored.data, stored.shape, "float32");
    });
    layer.setWeights(tensors);
    tf.dispose(tensors);
  }
}
