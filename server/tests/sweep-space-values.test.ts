/**
 * A sweep's number ranges are checked at every value the sweep can put at their path, not only at their ends: a random
 * or TPE float range over a path taking whole numbers (a layer's units) draws values like 26.9 between its ends, and a
 * grid reaches each of its points; either is refused at sweeps.create with the path and a value it would generate, and
 * nothing is recorded (no sweep, no run, no audit event). Ranges whose every value is valid (an int range, a dropout
 * rate, gridded units that land on whole numbers) are still accepted, and grid points no trial can reach (past the
 * 1000-trial budget) are not held against a spec. (Events are counted without the periodic audit.checkpoint.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count } from "drizzle-orm";
import { sweeps } from "@/db/schema";
import { parseSweepSpec, suggestTrial, type SweepSpec, type SweepSpecInput } from "@/contracts/sweep-spec";
import type { TrainingConfigInput } from "@/contracts/training-config";
import { createTestApp, irisConfig, recordedCounts, type TestApp } from "./test-app";

/** Iris with a dense layer and a dropout (model.layers.1.rate), one epoch. */
function base(): TrainingConfigInput {
  return {
    ...irisConfig({ epochs: 1 }),
    model: {
      layers: [
        { type: "dense", units: 12, activation: "relu" },
        { type: "dropout", rate: 0.1 },
      ],
    },
  };
}

const spec = (space: SweepSpecInput["space"], method: SweepSpecInput["method"] = "random", maxTrials = 1): SweepSpecInput => ({
  name: "ranges",
  base: base(),
  space,
  method,
  budget: { maxTrials, maxParallel: 1 },
  metric: { name: "val_loss", direction: "minimize" },
  seed: 7,
  rationale: "every value a range generates must be valid",
});

const message = (input: SweepSpecInput) => {
  const p = parseSweepSpec(input);
  return p.ok ? "accepted" : p.message;
};

describe("[sweeps.create] a number range is checked at every value it generates, on SQLite", () => {
  let app: TestApp;
  beforeAll(() => {
    app = createTestApp({ backend: "cpu" });
  });
  afterAll(() => app.close());

  const counts = () => ({ sweeps: app.db.select({ n: count() }).from(sweeps).get()!.n, ...recordedCounts(app) });

  it("refuses a float range over a layer's units (random, TPE) and a grid reaching too many units; records nothing", async () => {
    const engineer = app.as("engineer");
    const experimentId = app.experimentId;
    const before = counts();
    const units =
      /^invalid sweep: space\.model\.layers\.0\.units: the (uniform|logUniform) range draws values between its ends such as (\d+\.\d+), which give an invalid config \(model\.layers\.0\.units: units must be a whole number\); use type "int" for whole numbers/;

    // Both ends (4 and 64) are valid unit counts; the draws between them are not whole numbers.
    const random = spec({ "model.layers.0.units": { type: "uniform", min: 4, max: 64 } });
    const refused = engineer.sweeps.create({ experimentId, spec: random });
    await expect(refused).rejects.toThrow(units);
    // The value named is one the sweep's random draws really produce: a non-whole unit count between the ends.
    const refusal = await refused.then(
      () => "accepted",
      (e: Error) => e.message,
    );
    const drawn = Number(units.exec(refusal)![2]);
    expect(drawn).toBeGreaterThan(4);
    expect(drawn).toBeLessThan(64);
    expect(Number.isInteger(drawn)).toBe(false);

    const tpe = spec({ "model.layers.0.units": { type: "logUniform", min: 2, max: 256 } }, "tpe");
    await expect(engineer.sweeps.create({ experimentId, spec: tpe })).rejects.toThrow(units);

    // A grid of 201 unit counts from 4000: the 98th (4097) is over the limit, though its first end is fine.
    const grid = spec({ "model.layers.0.units": { type: "int", min: 4000, max: 4200, step: 1 } }, "grid");
    await expect(engineer.sweeps.create({ experimentId, spec: grid })).rejects.toThrow(
      /space\.model\.layers\.0\.units: the value 4097 gives an invalid config \(model\.layers\.0\.units: units must be ≤ 4096\)/,
    );
    expect(counts()).toEqual(before);
  });

  it("accepts ranges whose every generated value is valid, and a sweep with one still launches", async () => {
    // An int range for units, a float range for the dropout rate (random and TPE).
    for (const method of ["random", "tpe"] as const)
      expect(
        message(
          spec(
            {
              "model.layers.0.units": { type: "int", min: 4, max: 64, step: 4 },
              "model.layers.1.rate": { type: "uniform", min: 0, max: 0.5 },
            },
            method,
          ),
        ),
      ).toBe("accepted");
    // Gridded units that land on whole numbers (4, 24, 44, 64), and a log-scale learning rate.
    expect(
      message(
        spec(
          {
            "model.layers.0.units": { type: "uniform", min: 4, max: 64, gridPoints: 4 },
            "training.learningRate": { type: "logUniform", min: 0.001, max: 0.1, gridPoints: 3 },
          },
          "grid",
        ),
      ),
    ).toBe("accepted");
    // Grid points past the most trials a sweep can have are never generated: a units grid 1..5000 reaches 1..1000.
    const long = parseSweepSpec(spec({ "model.layers.0.units": { type: "int", min: 1, max: 5000, step: 1 } }, "grid"));
    expect(long.ok).toBe(true);
    const reached = Array.from({ length: 1000 }, (_, i) => suggestTrial((long as { spec: SweepSpec }).spec, i)["model.layers.0.units"]);
    expect(Math.max(...(reached as number[]))).toBe(1000);

    const before = counts();
    const created = await app.as("engineer").sweeps.create({
      experimentId: app.experimentId,
      spec: spec({ "model.layers.0.units": { type: "int", min: 4, max: 16, step: 4 } }),
    });
    expect(created.id).toBeGreaterThan(0);
    expect(counts().sweeps).toBe(before.sweeps + 1);
  });
});
