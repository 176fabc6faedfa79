/** runJob end to end in-process on the built-in Iris CSV: data pipeline → training → evaluation. */
import { describe, expect, it } from "vitest";
import { loadBuiltin } from "../data/builtin";
import { runJob } from "../run-job";
import type { TrainerEvent } from "../types";
import { config } from "./synthetic";
import { only, ofType } from "./collect";

const iris = loadBuiltin("iris");

describe("[trainer/run-job]", () => {
  it("prepares Iris, trains a dense MLP on wasm and evaluates the best checkpoint", async () => {
    const events: TrainerEvent[] = [];
    const cfg = config({ data: { normalization: "standard" }, training: { epochs: 12, batchSize: 16, learningRate: 0.05 } });
    await runJob(
      { config: cfg, dataset: { bytes: iris.bytes, schema: iris.schema, sha256: iris.sha256 }, backend: "auto" },
      (e) => events.push(e),
      { cancelled: false },
    );
    expect(events.map((e) => e.type).slice(0, 2)).toEqual(["prepared", "started"]);
    expect(only(events, "prepared").datasetSha256).toBe(iris.sha256);
    const started = only(events, "started");
    expect(started.backend).toBe("wasm");
    expect(started.backendReason).toBe("tfjs-node is not installed; using WebAssembly");
    expect(started.environment.backendVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(started.batchesPerEpoch).toBe(Math.ceil(only(events, "prepared").split.manifest.partitions.train.count / 16));
    const evaluation = only(events, "evaluation");
    expect(evaluation.result.task === "classification" && evaluation.result.confusion.labels).toEqual([
      "setosa",
      "versicolor",
      "virginica",
    ]);
    expect(evaluation.result.task === "classification" && evaluation.result.accuracy).toBeGreaterThanOrEqual(0.85);
    expect(ofType(events, "checkpoint").some((c) => c.sha256 === evaluation.checkpointSha256 && c.isBest)).toBe(true);
    expect(only(events, "finished").status).toBe("completed");
  });

  it("reports a data problem as one failed event", async () => {
    const events: TrainerEvent[] = [];
    await runJob({ config: config(), dataset: { bytes: iris.bytes, schema: iris.schema, sha256: "0".repeat(64) } }, (e) => events.push(e), {
      cancelled: false,
    });
    expect(events).toHaveLength(1);
    expect(only(events, "failed").message).toMatch(/^data: the dataset bytes hash to [0-9a-f]{64}, not the recorded 0{64}/);
  });
});
