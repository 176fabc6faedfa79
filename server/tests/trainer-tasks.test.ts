/**
 * The trainer's short tasks through tRPC: the size estimate before a run (runs.estimate) and the on-demand
 * evaluation of a checkpoint on the test partition (runs.evaluate), both computed in worker threads on real data.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count, eq } from "drizzle-orm";
import { auditEvents, datasets, evaluations } from "@/db/schema";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { uploadCsvAs } from "./upload-helpers";

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app.close());

const auditCount = () => app.db.select({ n: count() }).from(auditEvents).get()!.n;
const IRIS_PARAMS = 4 * 12 + 12 + 12 * 3 + 3; // dense(12) on 4 features, then the 3-class head

async function trainToEnd(config: unknown, rationale = "trainer-tasks test") {
  const engineer = app.as("engineer");
  const { id } = await engineer.runs.create({ experimentId: app.experimentId, config, rationale });
  await app.orchestrator.waitFor(id);
  const run = await engineer.runs.get({ id });
  expect(run.error).toBeNull();
  expect(run.status).toBe("completed");
  return run;
}

describe("[runs.estimate]", () => {
  it("builds the model from the prepared data in a worker and returns parameters and a memory table, writing nothing", async () => {
    const before = { audit: auditCount(), datasets: app.db.select({ n: count() }).from(datasets).get()!.n };
    const est = await app.as("auditor").runs.estimate({ config: irisConfig() });
    expect(est.memory.paramCount).toBe(IRIS_PARAMS);
    expect(est.memory.trainableParamCount).toBe(IRIS_PARAMS);
    const b = est.memory.bytes;
    expect(b.weightsFloat32).toBe(IRIS_PARAMS * 4);
    expect(b.gradientsFloat32).toBe(IRIS_PARAMS * 4);
    expect(b.optimizerStateFloat32).toBe(IRIS_PARAMS * 4 * 2); // adam: first and second moments
    expect(b.activationsPerBatchFloat32).toBe((12 + 3) * 4 * 16 * 2); // layer outputs × float32 × batch × (forward + gradient)
    expect(b.trainingTotalFloat32).toBe(b.weightsFloat32 + b.gradientsFloat32 + b.optimizerStateFloat32 + b.activationsPerBatchFloat32);
    expect(b.inferenceTotalFloat32).toBe(b.weightsFloat32 + (12 + 3) * 4 * 16);
    expect([b.weightsBfloat16, b.weightsInt8]).toEqual([IRIS_PARAMS * 2, IRIS_PARAMS]);
    expect(est.batchSize).toBe(16);
    expect(est.featureShape).toEqual([4]);
    expect(est.partitions.train + est.partitions.validation + est.partitions.test).toBe(150);
    expect(["wasm", "cpu", "tensorflow"]).toContain(est.backend);
    // A read: no dataset registered, no audit event.
    expect(auditCount()).toBe(before.audit);
    expect(app.db.select({ n: count() }).from(datasets).get()!.n).toBe(before.datasets);
  });

  it("explains a configuration that cannot be built, and refuses an anonymous caller", async () => {
    const bad = irisConfig();
    bad.model.layers = [{ type: "lstm", units: 4 }];
    await expect(app.as("engineer").runs.estimate({ config: bad })).rejects.toThrow(
      /cannot estimate this configuration: model\.layers\.0 \(lstm\) needs a sequence input/,
    );
    const invalid = irisConfig();
    (invalid.training as { batchSize: number }).batchSize = 0;
    await expect(app.as("engineer").runs.estimate({ config: invalid })).rejects.toThrow(/training\.batchSize/);
    await expect(app.anonymous.runs.estimate({ config: irisConfig() })).rejects.toThrow(/sign in first/);
  });
});

describe("[runs.evaluate]", () => {
  let run: Awaited<ReturnType<typeof trainToEnd>>;
  beforeAll(async () => {
    run = await trainToEnd(irisConfig({ epochs: 4 }));
  });

  it("the estimate equals the memory the run recorded when it started", async () => {
    const est = await app.as("engineer").runs.estimate({ config: irisConfig({ epochs: 4 }) });
    expect(run.memory).toEqual(est.memory);
    expect(run.paramCount).toBe(est.memory.paramCount);
  });

  it("re-evaluates the best checkpoint exactly as the trainer did, records it with its data digest and audits it", async () => {
    const best = run.checkpoints.find((c) => c.isBest)!;
    const automatic = run.evaluations[0]!;
    expect(automatic.checkpointId).toBe(best.id);
    const seqBefore = auditCount();
    const out = await app.as("engineer").runs.evaluate({ runId: run.id, checkpointId: best.id });
    expect(out.dataSha256).toBe(automatic.dataSha256);
    expect(out.epoch).toBe(best.epoch);
    const after = await app.as("engineer").runs.get({ id: run.id });
    expect(after.evaluations).toHaveLength(2);
    const requested = after.evaluations[1]!;
    expect(automatic).toMatchObject({ source: "training", createdByName: "Erin Engineer" }); // the run's author
    expect(requested).toMatchObject({
      id: out.id,
      checkpointId: best.id,
      partition: "test",
      splitId: run.split!.id,
      dataSha256: automatic.dataSha256,
      source: "requested",
    });
    expect(requested.metrics).toEqual(automatic.metrics);
    expect(requested.confusion).toEqual(automatic.confusion);
    const event = app.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.entityId, String(out.id)))
      .all()
      .find((e) => e.action === "evaluation.create")!;
    expect(event.seq).toBe(seqBefore + 1);
    expect(event.actorName).toBe("Erin Engineer");
    expect(JSON.parse(event.payload)).toMatchObject({
      runId: run.id,
      checkpointId: best.id,
      dataSha256: automatic.dataSha256,
      requested: true,
    });
  });

  it("lets a reviewer evaluate another checkpoint: per-class metrics and a confusion matrix over the test rows", async () => {
    const first = run.checkpoints[0]!;
    const out = await app.as("reviewer").runs.evaluate({ runId: run.id, checkpointId: first.id });
    expect(out.epoch).toBe(1);
    if (out.result.task !== "classification") throw new Error("expected a classification result");
    const testRows = (run.split!.manifest as { partitions: { test: { count: number } } }).partitions.test.count;
    expect(out.result.confusion.matrix.flat().reduce((a, b) => a + b, 0)).toBe(testRows);
    expect(out.result.perClass.map((c) => c.label)).toEqual(["setosa", "versicolor", "virginica"]);
    expect(out.result.perClass.reduce((a, c) => a + c.support, 0)).toBe(testRows);
    const macroF1 = out.result.perClass.reduce((a, c) => a + c.f1, 0) / 3;
    expect(out.result.macro.f1).toBeCloseTo(macroF1, 12);
    const row = app.db.select().from(evaluations).where(eq(evaluations.id, out.id)).get()!;
    expect(row).toMatchObject({ checkpointId: first.id, source: "requested" });
    const shown = (await app.as("auditor").runs.get({ id: run.id })).evaluations.find((e) => e.id === out.id)!;
    expect(shown).toMatchObject({ source: "requested", createdByName: "Rui Reviewer" });
  });

  it("refuses an auditor, a checkpoint of another run, and an unknown run", async () => {
    const ck = run.checkpoints[0]!;
    await expect(app.as("auditor").runs.evaluate({ runId: run.id, checkpointId: ck.id })).rejects.toThrow(/auditor cannot/);
    await expect(app.as("engineer").runs.evaluate({ runId: run.id + 1000, checkpointId: ck.id })).rejects.toThrow(/run \d+ was not found/);
    await expect(app.as("engineer").runs.evaluate({ runId: run.id, checkpointId: ck.id + 1000 })).rejects.toThrow(
      /checkpoint \d+ of run \d+ was not found/,
    );
  });

  it("refuses a run whose split has an empty test partition, with a message that says why", async () => {
    const cfg = irisConfig({ epochs: 1 });
    cfg.data.split = { strategy: "stratified", train: 0.8, validation: 0.2, test: 0, seed: 3 };
    const noTest = await trainToEnd(cfg, "no test partition");
    expect(noTest.evaluations).toHaveLength(0);
    const before = auditCount();
    await expect(app.as("engineer").runs.evaluate({ runId: noTest.id, checkpointId: noTest.checkpoints[0]!.id })).rejects.toThrow(
      /split has an empty test partition \(test ratio 0\)/,
    );
    expect(auditCount()).toBe(before);
  });

  it("evaluates a fine-tuned run's checkpoint with the parent's topology and its new head", async () => {
    const best = run.checkpoints.find((c) => c.isBest)!;
    const cfg = { ...irisConfig({ epochs: 2 }), fineTune: { parentCheckpointId: String(best.id), freezeLayers: 1, replaceHead: true } };
    const est = await app.as("engineer").runs.estimate({ config: cfg });
    expect(est.memory.paramCount).toBe(IRIS_PARAMS);
    expect(est.memory.trainableParamCount).toBe(12 * 3 + 3); // the first dense layer is frozen
    expect(est.fineTune).toEqual({ frozenLayers: ["l0_dense"], replacedLayers: ["head"] });
    const child = await trainToEnd(cfg, "fine-tune: freeze the first layer, new head");
    expect(child.memory).toEqual(est.memory);
    const childBest = child.checkpoints.find((c) => c.isBest)!;
    const out = await app.as("engineer").runs.evaluate({ runId: child.id, checkpointId: childBest.id });
    expect(out.dataSha256).toBe(child.evaluations[0]!.dataSha256);
    const after = await app.as("engineer").runs.get({ id: child.id });
    expect(after.evaluations[1]!.metrics).toEqual(child.evaluations[0]!.metrics);
  });

  it("reports MSE, MAE and R² for a regression run on an uploaded CSV", async () => {
    const lines = ["x0,x1,target"];
    for (let i = 0; i < 60; i++) {
      const x0 = ((i * 37) % 23) / 7 - 1.5;
      const x1 = ((i * 11) % 17) / 5 - 1.6;
      lines.push(`${x0.toFixed(4)},${x1.toFixed(4)},${(2 * x0 - x1 + 0.01 * ((i % 5) - 2)).toFixed(4)}`);
    }
    const ds = await uploadCsvAs(app, "engineer", lines.join("\n"), { name: "linear", kind: "tabular" });
    const reg = await trainToEnd({
      data: {
        dataset: { datasetId: String(ds.id) },
        task: "regression",
        normalization: "standard",
        split: { strategy: "random", train: 0.6, validation: 0.2, test: 0.2, seed: 2 },
      },
      model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
      training: {
        optimizer: { name: "adam" },
        learningRate: 0.05,
        batchSize: 8,
        epochs: 5,
        seed: 2,
        bestMetric: { metric: "val_loss", mode: "min" },
      },
    });
    const best = reg.checkpoints.find((c) => c.isBest)!;
    const out = await app.as("reviewer").runs.evaluate({ runId: reg.id, checkpointId: best.id });
    if (out.result.task !== "regression") throw new Error("expected a regression result");
    expect(Object.keys(out.result).sort()).toEqual(["mae", "mse", "r2", "task"]);
    expect(out.result.mse).toBeGreaterThanOrEqual(0);
    expect(out.result.r2).toBeLessThanOrEqual(1);
    expect(out.result).toEqual(reg.evaluations[0]!.metrics);
  });
});
