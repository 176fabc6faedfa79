/**
 * The compressed weights format (runledger-weights/2): float16 rounding, int8 per-output-channel scales, sparse masks,
 * exact sizes, deterministic bytes, and refusal of truncated or padded files. Magnitude pruning's selection.
 */
import { describe, expect, it } from "vitest";
import {
  decodeCompressedWeights,
  encodeCompressedWeights,
  fromFloat16Bits,
  int8Scales,
  toFloat16Bits,
  type FloatWeight,
} from "../compressed-weights";
import { magnitudePrune } from "../compress";

const kernel: FloatWeight = { name: "dense_0/kernel", shape: [3, 2], data: Float32Array.from([0.5, -4, 0.25, 2, -1, 1]) };
const bias: FloatWeight = { name: "dense_0/bias", shape: [2], data: Float32Array.from([0.1, -0.3]) };

describe("float16", () => {
  it("round-trips representable values and rounds others to nearest even", () => {
    for (const v of [0, -0, 1, -2, 0.5, 65504, 2 ** -24, 1.5, -0.0999755859375])
      expect(fromFloat16Bits(toFloat16Bits(v))).toBeCloseTo(v, 12);
    expect(toFloat16Bits(1)).toBe(0x3c00);
    expect(toFloat16Bits(65520)).toBe(0x7c00); // rounds past the largest half to Infinity
    expect(fromFloat16Bits(toFloat16Bits(1 + 2 ** -11))).toBe(1); // a tie goes to the even mantissa
    expect(fromFloat16Bits(toFloat16Bits(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9);
    expect(Number.isNaN(fromFloat16Bits(toFloat16Bits(NaN)))).toBe(true);
  });
});

describe("runledger-weights/2", () => {
  it("stores float16 at 2 bytes, int8 at 1 byte plus a scale per output channel, sparse as mask plus kept values", () => {
    const sizes = (["float16", "int8", "sparse-float32", "float32"] as const).map((dtype) => {
      const bytes = encodeCompressedWeights([3], [kernel, bias], () => dtype);
      const headerLength = new DataView(bytes.buffer).getUint32(4, true);
      return bytes.length - 8 - headerLength;
    });
    expect(sizes).toEqual([2 * 8, 8 + 4 * (2 + 1), 1 + 4 * 6 + 1 + 4 * 2, 4 * 8]);
  });

  it("int8: symmetric per-channel scales (channel = last axis), values within half a step", () => {
    expect([...int8Scales(kernel.data, 2)]).toEqual([1 / 127, 4 / 127].map((s) => Math.fround(s)));
    const { weights } = decodeCompressedWeights(encodeCompressedWeights([3], [kernel, bias], () => "int8"));
    weights[0]!.data.forEach((v, i) => expect(Math.abs(v - kernel.data[i]!)).toBeLessThanOrEqual((i % 2 === 0 ? 1 : 4) / 127 / 2 + 1e-7));
    expect(weights[0]!.data[1]).toBeCloseTo(-4, 6); // the channel's largest |w| is exact
  });

  it("sparse keeps exactly the non-zero values; same input, same bytes", () => {
    const pruned = { ...kernel, data: Float32Array.from([0, -4, 0, 2, 0, 1]) };
    const a = encodeCompressedWeights([3], [pruned, bias], (w) => (w.shape.length >= 2 ? "sparse-float32" : "float32"));
    const b = encodeCompressedWeights([3], [pruned, bias], (w) => (w.shape.length >= 2 ? "sparse-float32" : "float32"));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    const { header, weights } = decodeCompressedWeights(a);
    expect(header.weights[0]).toMatchObject({ dtype: "sparse-float32", nonZero: 3 });
    expect([...weights[0]!.data]).toEqual([...pruned.data]);
    expect([...weights[1]!.data]).toEqual([...bias.data]);
  });

  it("refuses truncated or padded files", () => {
    const bytes = encodeCompressedWeights([3], [kernel], () => "float16");
    expect(() => decodeCompressedWeights(bytes.subarray(0, bytes.length - 1))).toThrow(/truncated/);
    const padded = new Uint8Array(bytes.length + 1);
    padded.set(bytes);
    expect(() => decodeCompressedWeights(padded)).toThrow(/trailing bytes/);
  });
});

describe("magnitude pruning", () => {
  it("global: zeroes the smallest |w| over all kernels, never biases", () => {
    const k = { ...kernel, data: kernel.data.slice() };
    const b = { ...bias, data: bias.data.slice() };
    expect(magnitudePrune([k, b], 0.5, "global")).toBe(3);
    expect([...k.data]).toEqual([0, -4, 0, 2, 0, 1]); // |w| 0.25, 0.5, then the first of the two 1s (lower index)
    expect([...b.data]).toEqual([...bias.data]);
  });

  it("per layer: each kernel loses its own share", () => {
    const k1 = { ...kernel, data: kernel.data.slice() };
    const k2: FloatWeight = { name: "head/kernel", shape: [2, 2], data: Float32Array.from([10, 20, 30, 40]) };
    expect(magnitudePrune([k1, k2], 0.5, "layer")).toBe(5);
    expect([...k2.data]).toEqual([0, 0, 30, 40]);
  });
});
