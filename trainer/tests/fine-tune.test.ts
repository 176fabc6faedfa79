/** Fine-tuning from a parent checkpoint: frozen layers stay put, a replaced head fits the new classes. */
import { beforeAll, describe, expect, it } from "vitest";
import { deserializeWeights, readWeightsHeader } from "../checkpoint";
import type { TrainingConfig } from "../../contracts/training-config";
import type { TrainJob } from "../types";
import { blobs, config, job, linear } from "./synthetic";
import { only, ofType, trainCollect } from "./collect";

const layers: TrainingConfig["model"]["layers"] = [
  { type: "dense", units: 16, activation: "relu", kernelInitializer: "heNormal" },
  { type: "dropout", rate: 0.1 },
  { type: "dense", units: 8, activation: "relu", kernelInitializer: "glorotUniform" },
];
let parent: NonNullable<TrainJob["parent"]>;

beforeAll(async () => {
  const parentConfig = config({ model: { layers }, training: { epochs: 3 } });
  const events = await trainCollect(job(parentConfig), blobs());
  const last = ofType(events, "checkpoint").at(-1)!;
  parent = { config: parentConfig, weights: last.weights, sha256: last.sha256 };
});

const childConfig = (fineTune: { freezeLayers: number; replaceHead: boolean }) =>
  config({ model: { layers }, training: { epochs: 2, seed: 99 }, fineTune: { parentCheckpointId: "ckpt-1", ...fineTune } });

describe("[trainer/fine-tune]", () => {
  it("keeps frozen layers' weights unchanged and trains the rest", async () => {
    const events = await trainCollect(job(childConfig({ freezeLayers: 2, replaceHead: false }), { parent }), blobs());
    expect(only(events, "started").fineTune).toEqual({ frozenLayers: ["l0_dense", "l1_dropout"], replacedLayers: [] });
    expect(only(events, "started").memory.trainableParamCount).toBe(16 * 8 + 8 + 8 * 3 + 3);
    const before = deserializeWeights(parent.weights).values;
    const after = deserializeWeights(ofType(events, "checkpoint").at(-1)!.weights).values;
    expect(after.get("l0_dense/kernel")!.data).toEqual(before.get("l0_dense/kernel")!.data);
    expect(after.get("l0_dense/bias")!.data).toEqual(before.get("l0_dense/bias")!.data);
    expect(after.get("l2_dense/kernel")!.data).not.toEqual(before.get("l2_dense/kernel")!.data);
    expect(after.get("head/kernel")!.data).not.toEqual(before.get("head/kernel")!.data);
  });

  it("replaces the head with one sized for the new dataset's classes", async () => {
    const twoClasses = blobs({ train: 60, validation: 20, test: 20 }, ["yes", "no"]);
    const events = await trainCollect(job(childConfig({ freezeLayers: 0, replaceHead: true }), { parent }), twoClasses);
    expect(only(events, "started").fineTune).toEqual({ frozenLayers: [], replacedLayers: ["head"] });
    const header = readWeightsHeader(ofType(events, "checkpoint").at(-1)!.weights);
    expect(header.weights.find((w) => w.name === "head/kernel")!.shape).toEqual([8, 2]);
    const evaluation = only(events, "evaluation").result;
    expect(evaluation.task === "classification" && evaluation.confusion.labels).toEqual(["yes", "no"]);
  });

  it("refuses a class-count change without replaceHead, and a different input shape", async () => {
    const twoClasses = blobs({ train: 20, validation: 10, test: 0 }, ["yes", "no"]);
    const noReplace = await trainCollect(job(childConfig({ freezeLayers: 0, replaceHead: false }), { parent }), twoClasses);
    expect(only(noReplace, "failed").message).toBe(
      "the parent's head has 3 outputs but this dataset has 2 classes; set fineTune.replaceHead to true",
    );
    const otherShape = await trainCollect(
      job(config({ model: { layers }, data: { task: "regression" }, fineTune: { parentCheckpointId: "c", replaceHead: true } }), {
        parent,
      }),
      linear(),
    );
    expect(only(otherShape, "failed").message).toBe(
      "the parent checkpoint takes inputs of shape [4] but this dataset's samples have shape [2]; fine-tune on data with the same features",
    );
    const tooMany = await trainCollect(job(childConfig({ freezeLayers: 4, replaceHead: false }), { parent }), blobs());
    expect(only(tooMany, "failed").message).toBe("fineTune.freezeLayers is 4 but the parent has only 3 layers before its head");
  });
});
