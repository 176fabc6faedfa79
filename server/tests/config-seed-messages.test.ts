/**
 * Bad seeds and early-stopping deltas are refused with a message saying what is wrong, in the words the other config
 * fields use, both where the run form checks its config (parseTrainingConfig) and from runs.create. Before, the split
 * seed answered zod's defaults ("Invalid input: expected int, received number", "Too small: expected number to be >=0").
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTrainingConfig, type TrainingConfigInput } from "@/contracts/training-config";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app.close());

function withSplitSeed(seed: number): TrainingConfigInput {
  const config = irisConfig();
  return { ...config, data: { ...config.data, split: { ...config.data.split!, seed } } };
}

function messageOf(config: TrainingConfigInput): string {
  const parsed = parseTrainingConfig(config);
  return parsed.ok ? "accepted" : parsed.message;
}

describe("seed and minDelta messages", () => {
  it("names what is wrong with a split seed, in the form and from the API", async () => {
    expect(messageOf(withSplitSeed(-3))).toBe("data.split.seed: split seed must be ≥ 0");
    expect(messageOf(withSplitSeed(1.5))).toBe("data.split.seed: split seed must be a whole number");
    expect(messageOf(withSplitSeed(Number.NaN))).toBe("data.split.seed: split seed must be a number");
    await expect(
      app.as("engineer").runs.create({ experimentId: app.experimentId, config: withSplitSeed(1.5), rationale: "x" }),
    ).rejects.toThrow("data.split.seed: split seed must be a whole number");
  });

  it("names the limit of a training seed and a negative early-stopping minDelta", () => {
    const config = irisConfig();
    expect(messageOf({ ...config, training: { ...config.training, seed: 2 ** 31 } })).toBe("training.seed: seed must be ≤ 2147483647");
    const earlyStopping = { metric: "val_loss", mode: "min" as const, patience: 3, minDelta: -0.1 };
    expect(messageOf({ ...config, training: { ...config.training, earlyStopping } })).toBe(
      "training.earlyStopping.minDelta: minDelta must be ≥ 0",
    );
  });
});
