/** The metrics each task reports (contracts/task-metrics.ts): what the run form offers and the trainer accepts. */
import { describe, expect, it } from "vitest";
import { metricChoiceProblem, metricForTask, reportedMetrics, watchableMetrics } from "@/contracts/task-metrics";
import { parseTrainingConfig } from "@/contracts/training-config";

const config = (task: "classification" | "regression", training: object) => {
  const parsed = parseTrainingConfig({
    data: { dataset: { builtin: "iris" }, task, split: { strategy: "random", train: 0.7, validation: 0.15, test: 0.15, seed: 1 } },
    model: { layers: [] },
    training: { optimizer: { name: "adam" }, learningRate: 0.01, batchSize: 16, epochs: 1, seed: 1, ...training },
  });
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.config;
};

describe("task metrics", () => {
  it("lists what each task reports, in the trainer's order, without val_ metrics when validation is empty", () => {
    expect(reportedMetrics("classification")).toEqual(["loss", "accuracy", "lr", "val_loss", "val_accuracy"]);
    expect(reportedMetrics("regression")).toEqual(["loss", "mae", "lr", "val_loss", "val_mae"]);
    expect(reportedMetrics("regression", false)).toEqual(["loss", "mae", "lr"]);
    expect(watchableMetrics("classification")).toEqual(["val_loss", "val_accuracy", "loss", "accuracy"]);
    expect(watchableMetrics("regression")).toEqual(["val_loss", "val_mae", "loss", "mae"]);
  });

  it("maps a metric the new task does not report to its counterpart, and keeps one it reports", () => {
    expect(metricForTask("val_accuracy", "regression")).toEqual({ metric: "val_mae", mode: "min" });
    expect(metricForTask("val_mae", "classification")).toEqual({ metric: "val_accuracy", mode: "max" });
    expect(metricForTask("mae", "classification")).toEqual({ metric: "accuracy", mode: "max" });
    expect(metricForTask("no-such-metric", "classification")).toEqual({ metric: "val_loss", mode: "min" });
    expect(metricForTask("val_loss", "regression")).toBeNull();
    expect(metricForTask("loss", "classification")).toBeNull();
  });

  it("names the path, the metric and the choices when a config watches a metric its task does not report", () => {
    expect(metricChoiceProblem(config("classification", {}))).toBeNull();
    expect(metricChoiceProblem(config("regression", { bestMetric: { metric: "val_mae", mode: "min" } }))).toBeNull();
    expect(metricChoiceProblem(config("classification", { bestMetric: { metric: "val_mae", mode: "min" } }))).toBe(
      'training.bestMetric.metric: classification runs do not report "val_mae"; choose one of val_loss, val_accuracy, loss, accuracy',
    );
    const es = { metric: "val_accuracy", mode: "max", patience: 3, minDelta: 0 };
    expect(metricChoiceProblem(config("regression", { earlyStopping: es }))).toBe(
      'training.earlyStopping.metric: regression runs do not report "val_accuracy"; choose one of val_loss, val_mae, loss, mae',
    );
  });
});
