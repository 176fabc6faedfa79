import { describe, expect, it } from "vitest";
import { formatCountOf, formatMetric, formatMetricDelta } from "./format";

describe("formatMetric", () => {
  it("shows four decimals, and a small value as a decimal with three significant digits, not in exponent form", () => {
    expect(formatMetric(0.511361320813497)).toBe("0.5114");
    expect(formatMetric(0.0012)).toBe("0.0012");
    expect(formatMetric(0.000803)).toBe("0.000803");
    expect(formatMetric(0.0003491234)).toBe("0.000349");
    expect(formatMetric(0.0000123)).toBe("0.0000123");
    expect(formatMetric(-0.0004)).toBe("-0.000400");
    expect(formatMetric(0)).toBe("0.0000");
  });
  it("keeps exponent form for the extremes, where zeros or digits get hard to count", () => {
    expect(formatMetric(0.0000012)).toBe("1.20e-6");
    expect(formatMetric(123456)).toBe("1.23e+5");
  });
  it("shows accuracies as percentages and their differences in percentage points", () => {
    expect(formatMetric(0.9333333, "val_accuracy")).toBe("93.3 %");
    expect(formatMetricDelta(-0.095, "accuracy")).toBe("−9.5 pp");
    expect(formatMetricDelta(-0.0004, "loss")).toBe("−0.000400");
  });
  it("shows a missing value as a dash", () => {
    expect(formatMetric(null)).toBe("–");
    expect(formatMetric(Number.NaN)).toBe("–");
  });
});

describe("formatCountOf", () => {
  it("uses the singular for exactly one, the plural otherwise", () => {
    expect(formatCountOf(1, "signed checkpoint")).toBe("1 signed checkpoint");
    expect(formatCountOf(0, "signed checkpoint")).toBe("0 signed checkpoints");
    expect(formatCountOf(2048, "event")).toBe("2,048 events");
    expect(formatCountOf(3, "entry", "entries")).toBe("3 entries");
  });
});
