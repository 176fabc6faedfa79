/**
 * Compressed checkpoint weights (issue 17): the bytes a quantized or pruned model is stored as, so that a file's size
 * in bytes is the compressed size. Decoding gives float32 values again (dequantized), which is what evaluation,
 * export and fine-tuning load (trainer/checkpoint.ts deserializeWeights reads both formats).
 *
 * Format "runledger-weights/2":
 *   bytes 0..3   ASCII "RLW2"
 *   bytes 4..7   header length H, uint32 little-endian
 *   next H bytes header: canonical JSON {format, inputShape, weights: [{name, shape, dtype, channels?, nonZero?}]}
 *   then each weight's payload in header order, little-endian, no padding:
 *     float32         4·N bytes
 *     float16         2·N bytes (IEEE 754 half precision, round to nearest even)
 *     int8            C float32 scales, then N int8 values q; value = q · scale[i mod C]. C = `channels` = the last
 *                     dimension (the output channel of a dense or conv kernel) for rank ≥ 2, else 1. Symmetric:
 *                     scale = max |w| of the channel / 127 (1 when the channel is all zeros), q = round(w / scale).
 *     sparse-float32  ceil(N/8) bytes of mask (bit i set = value i is non-zero, LSB first), then `nonZero` float32 values
 *
 * Invariants: a pure function of the values (no clock, no randomness), so the same source gives the same bytes and
 * SHA-256; the header is canonical JSON; decoding checks every length and rejects trailing bytes.
 */
import { canonicalJson } from "@/contracts/canonical";

export const COMPRESSED_MAGIC = "RLW2";
export const COMPRESSED_WEIGHTS_FORMAT = "runledger-weights/2";
export type StoredDtype = "float32" | "float16" | "int8" | "sparse-float32";
export type CompressedEntry = { name: string; shape: number[]; dtype: StoredDtype; channels?: number; nonZero?: number };
export type CompressedHeader = { format: typeof COMPRESSED_WEIGHTS_FORMAT; inputShape: number[]; weights: CompressedEntry[] };
export type FloatWeight = { name: string; shape: number[]; data: Float32Array };

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half bits, round to nearest even; overflow → ±Infinity, NaN kept. */
export function toFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && half & 1)) half += 1;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1; // may carry into the exponent: still correct
  e = half >>> 10;
  return sign | half;
}

export function fromFloat16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const channelsOf = (shape: number[]) => (shape.length >= 2 ? shape.at(-1)! : 1);

/** Payload bytes of one entry as stored. */
export function payloadBytes(entry: CompressedEntry): number {
  const n = sizeOf(entry.shape);
  switch (entry.dtype) {
    case "float32":
      return 4 * n;
    case "float16":
      return 2 * n;
    case "int8":
      return 4 * (entry.channels ?? 1) + n;
    case "sparse-float32":
      return Math.ceil(n / 8) + 4 * (entry.nonZero ?? 0);
  }
}

/** Symmetric per-channel int8 scales of a tensor whose channel is the last axis (i mod C). */
export function int8Scales(data: Float32Array, channels: number): Float32Array {
  const max = new Float32Array(channels);
  for (let i = 0; i < data.length; i++) {
    const c = i % channels;
    const a = Math.abs(data[i]!);
    if (a > max[c]!) max[c] = a;
  }
  return max.map((m) => (m > 0 ? m / 127 : 1));
}

/**
 * Encodes float32 weights with one stored dtype per weight (`dtypeOf`). `masks` (sparse-float32 only) says which values
 * are kept; without one, the non-zero values are.
 */
export function encodeCompressedWeights(
  inputShape: number[],
  weights: FloatWeight[],
  dtypeOf: (w: FloatWeight) => StoredDtype,
): Uint8Array {
  const entries: CompressedEntry[] = weights.map((w) => {
    const dtype = dtypeOf(w);
    if (dtype === "int8") return { name: w.name, shape: w.shape, dtype, channels: channelsOf(w.shape) };
    if (dtype === "sparse-float32")
      return { name: w.name, shape: w.shape, dtype, nonZero: w.data.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0) };
    return { name: w.name, shape: w.shape, dtype };
  });
  const header: CompressedHeader = { format: COMPRESSED_WEIGHTS_FORMAT, inputShape, weights: entries };
  const headerBytes = new TextEncoder().encode(canonicalJson(header));
  const total = 8 + headerBytes.length + entries.reduce((n, e) => n + payloadBytes(e), 0);
  const out = new Uint8Array(total);
  out.set(new TextEncoder().encode(COMPRESSED_MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint32(4, headerBytes.length, true);
  out.set(headerBytes, 8);
  let o = 8 + headerBytes.length;
  weights.forEach((w, k) => {
    const e = entries[k]!;
    const d = w.data;
    if (e.dtype === "float32") for (let i = 0; i < d.length; i++, o += 4) view.setFloat32(o, d[i]!, true);
    else if (e.dtype === "float16") for (let i = 0; i < d.length; i++, o += 2) view.setUint16(o, toFloat16Bits(d[i]!), true);
    else if (e.dtype === "int8") {
      const scales = int8Scales(d, e.channels!);
      for (const s of scales) {
        view.setFloat32(o, s, true);
        o += 4;
      }
      for (let i = 0; i < d.length; i++, o += 1) {
        const q = Math.max(-127, Math.min(127, Math.round(d[i]! / scales[i % e.channels!]!)));
        view.setInt8(o, q);
      }
    } else {
      const maskStart = o;
      o += Math.ceil(d.length / 8);
      for (let i = 0; i < d.length; i++) {
        if (d[i] === 0) continue;
        out[maskStart + (i >> 3)]! |= 1 << (i & 7);
        view.setFloat32(o, d[i]!, true);
        o += 4;
      }
    }
  });
  if (o !== total) throw new Error(`compressed weights: wrote ${o} bytes, expected ${total}`);
  return out;
}

export function isCompressedWeights(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && new TextDecoder().decode(bytes.subarray(0, 4)) === COMPRESSED_MAGIC;
}

export function readCompressedHeader(bytes: Uint8Array): { header: CompressedHeader; dataOffset: number } {
  if (!isCompressedWeights(bytes)) throw new Error("checkpoint weights are not in the runledger-weights/2 format");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(4, true);
  if (8 + headerLength > bytes.length) throw new Error("checkpoint weights are truncated (header)");
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as CompressedHeader;
  if (header.format !== COMPRESSED_WEIGHTS_FORMAT) throw new Error(`checkpoint weights have unknown format ${String(header.format)}`);
  return { header, dataOffset: 8 + headerLength };
}

/** Dequantized float32 values of every weight, in header order. */
export function decodeCompressedWeights(bytes: Uint8Array): { header: CompressedHeader; weights: FloatWeight[] } {
  const { header, dataOffset } = readCompressedHeader(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = dataOffset;
  const weights = header.weights.map((e) => {
    const n = sizeOf(e.shape);
    if (o + payloadBytes(e) > bytes.length) throw new Error(`checkpoint weights are truncated at ${e.name}`);
    const data = new Float32Array(n);
    if (e.dtype === "float32") for (let i = 0; i < n; i++, o += 4) data[i] = view.getFloat32(o, true);
    else if (e.dtype === "float16") for (let i = 0; i < n; i++, o += 2) data[i] = fromFloat16Bits(view.getUint16(o, true));
    else if (e.dtype === "int8") {
      const c = e.channels ?? 1;
      const scales = new Float32Array(c);
      for (let j = 0; j < c; j++, o += 4) scales[j] = view.getFloat32(o, true);
      for (let i = 0; i < n; i++, o += 1) data[i] = view.getInt8(o) * scales[i % c]!;
    } else if (e.dtype === "sparse-float32") {
      const maskStart = o;
      o += Math.ceil(n / 8);
      let kept = 0;
      for (let i = 0; i < n; i++) {
        if (!(bytes[maskStart + (i >> 3)]! & (1 << (i & 7)))) continue;
        data[i] = view.getFloat32(o, true);
        o += 4;
        kept++;
      }
      if (kept !== e.nonZero) throw new Error(`checkpoint weight ${e.name}: mask keeps ${kept} values, header says ${e.nonZero}`);
    } else throw new Error(`checkpoint weight ${e.name} has unknown dtype ${String(e.dtype)}`);
    return { name: e.name, shape: e.shape, data };
  });
  if (o !== bytes.length) throw new Error("checkpoint weights have trailing bytes");
  return { header, weights };
}
