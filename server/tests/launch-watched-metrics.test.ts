/**
 * Every launch refuses a best-checkpoint or early-stopping metric the run would not report, naming the path and the
 * metrics it may watch, before anything is recorded (no run row, no audit event), instead of launching a run the
 * trainer then fails before its first batch (or, for a planned intervention, at its epoch): runs.create, a schedule
 * entry that sets early stopping, a sweep at creation. Metrics the task reports still launch. (Events are counted
 * without the server's periodic audit.checkpoint.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { runs } from "@/db/schema";
import type { TrainingConfigInput } from "@/contracts/training-config";
import type { SweepSpecInput } from "@/contracts/sweep-spec";
import { createTestApp, irisConfig, recordedCounts, type TestApp } from "./test-app";

const IRIS_METRICS = "choose one of loss, accuracy, lr, val_loss, val_accuracy";

function watching(training: Partial<TrainingConfigInput["training"]>, base = irisConfig({ epochs: 2 })): TrainingConfigInput {
  return { ...base, training: { ...base.training, ...training } };
}

describe("[launches] a metric the run would not report is refused at launch", () => {
  let app: TestApp;
  beforeAll(() => {
    app = createTestApp({ backend: "cpu" });
  });
  afterAll(() => app.close());

  const counts = () => recordedCounts(app);
  const launch = (config: TrainingConfigInput, rationale = "e2e metric choice") =>
    app.as("engineer").runs.create({ experimentId: app.experimentId, config, rationale });

  it("runs.create, a planned early stopping and a sweep refuse it, recording nothing; reported metrics launch", async () => {
    const before = counts();
    await expect(launch(watching({ bestMetric: { metric: "no-such-metric", mode: "min" } }))).rejects.toThrow(
      `cannot launch this configuration: training.bestMetric.metric: unknown metric "no-such-metric"; ${IRIS_METRICS}`,
    );
    await expect(launch(watching({ earlyStopping: { metric: "val_mae", mode: "min", patience: 2 } }))).rejects.toThrow(
      `cannot launch this configuration: training.earlyStopping.metric: unknown metric "val_mae"; ${IRIS_METRICS}`,
    );
    const planned: TrainingConfigInput = {
      ...irisConfig({ epochs: 3 }),
      schedule: [{ atEpoch: 1, set: { "training.earlyStopping": { metric: "mae", patience: 1 } }, rationale: "stop on a plateau" }],
    };
    await expect(launch(planned)).rejects.toThrow(
      `cannot launch this configuration: schedule.0 (atEpoch 1): training.earlyStopping.metric: unknown metric "mae"; ${IRIS_METRICS}`,
    );
    const sweep: SweepSpecInput = {
      name: "unreported metric",
      base: watching({ bestMetric: { metric: "no-such-metric", mode: "min" } }),
      space: { "training.learningRate": { type: "choice", values: [0.05, 0.02] } },
      method: "grid",
      budget: { maxTrials: 2, maxParallel: 1 },
      metric: { name: "val_loss", direction: "minimize" },
      seed: 4,
      rationale: "a sweep over a config that watches a metric nobody reports",
    };
    await expect(app.as("engineer").sweeps.create({ experimentId: app.experimentId, spec: sweep })).rejects.toThrow(
      /unknown metric "no-such-metric"/,
    );
    expect(counts()).toEqual(before);

    // Reported metrics, including a planned early stopping on one, launch and train.
    const ok = await launch({
      ...watching({ bestMetric: { metric: "val_accuracy", mode: "max" } }, irisConfig({ epochs: 3 })),
      schedule: [{ atEpoch: 1, set: { "training.earlyStopping": { metric: "loss", patience: 5 } }, rationale: "stop on a plateau" }],
    });
    await app.orchestrator.waitFor(ok.id);
    expect(app.db.select({ status: runs.status }).from(runs).where(eq(runs.id, ok.id)).get()!.status).toBe("completed");
  }, 120_000);
});
