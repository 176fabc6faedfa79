/**
 * Model compression (issue 17) end to end on a real Iris run: float16 and int8 quantization, magnitude pruning with
 * fine-tuning, distillation into a smaller student. Each is a run (origin "compress", parent = the source checkpoint)
 * trained in a worker, whose checkpoint file is the compressed model (its size is what quantization or pruning
 * promises), evaluated on the source's test partition, registrable, and verified by the content check; invalid
 * parameters create nothing; tampering with the compression's record is found.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count, eq } from "drizzle-orm";
import { auditEvents, checkpoints, decisions, evaluations, runs } from "@/db/schema";
import { readWeightsHeader, deserializeWeights } from "@/trainer/checkpoint";
import { payloadBytes, readCompressedHeader } from "@/trainer/compressed-weights";
import { checkContent } from "@/server/audit/content/verify-content";
import { snapshot } from "@/server/audit/content/tests/content-fixture";
import { collectReportFacts } from "@/server/audit/report/collect-report";
import { compressionDerivation } from "@/server/audit/report/render/section-5-training";
import { checkpointWeightsDownload } from "@/server/runs/weights-download";
import { unzipStored } from "@/server/fs/zip";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;
let sourceRunId: number;
let sourceBest: typeof checkpoints.$inferSelect;
/** Float32 parameters of the source model (all weights) and its kernels (rank ≥ 2). */
let params = 0;
let kernelParams = 0;
let outputChannels = 0;

const engineer = () => app.as("engineer");

async function compressAndWait(input: Parameters<ReturnType<TestApp["as"]>["runs"]["compress"]>[0]) {
  const out = await engineer().runs.compress(input);
  await app.orchestrator.waitFor(out.id);
  const result = await engineer().runs.compression({ id: out.id });
  if (result.status !== "completed") throw new Error(`compression run ${out.id} ${result.status}: ${result.error}`);
  return result;
}

const figures: Record<string, unknown> = {};

beforeAll(async () => {
  app = createTestApp({ backend: "cpu" });
  const config = irisConfig({ epochs: 25, seed: 4 });
  config.model.layers = [
    { type: "dense", units: 32, activation: "relu" },
    { type: "dense", units: 16, activation: "relu" },
  ];
  const { id } = await engineer().runs.create({ experimentId: app.experimentId, config, rationale: "source for compression" });
  await app.orchestrator.waitFor(id);
  sourceRunId = id;
  sourceBest = app.db
    .select()
    .from(checkpoints)
    .where(eq(checkpoints.runId, id))
    .all()
    .find((c) => c.isBest)!;
  const header = readWeightsHeader(app.artifacts.get(sourceBest.sha256));
  for (const w of header.weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    params += n;
    if (w.shape.length >= 2) {
      kernelParams += n;
      outputChannels += w.shape.at(-1)!;
    }
  }
}, 240_000);
afterAll(() => {
  if (process.env.SHOW_COMPRESSION_FIGURES) console.log(JSON.stringify(figures, null, 1));
  app?.close();
});

/** Bytes of the stored weights alone (the file minus its magic, length and JSON header). */
function payloadOf(bytes: Uint8Array): number {
  const { header } = readCompressedHeader(bytes);
  return header.weights.reduce((n, e) => n + payloadBytes(e), 0);
}

describe("compression runs", () => {
  it("float16 halves the weights, records its metrics against the source's, and registers like any model", async () => {
    const r = await compressAndWait({ runId: sourceRunId, method: "float16", rationale: "half the memory for the edge device" });
    const run = app.db.select().from(runs).where(eq(runs.id, r.runId)).get()!;
    expect(run.origin).toBe("compress");
    expect(run.parentCheckpointId).toBe(sourceBest.id);
    expect(run.parentRunId).toBe(sourceRunId);
    expect(JSON.parse(run.configJson).compression).toEqual({ method: "float16", sourceCheckpointId: String(sourceBest.id) });
    // The method is a decision with its rationale.
    const ds = app.db.select().from(decisions).where(eq(decisions.runId, r.runId)).all();
    expect(ds.find((d) => d.path === "compression.method")).toMatchObject({
      newValueJson: '"float16"',
      rationale: "half the memory for the edge device",
    });

    const bytes = app.artifacts.get(r.weightsSha256!);
    expect(r.sizeBytes).toBe(bytes.length);
    expect(r.parentSizeBytes).toBe(sourceBest.bytes);
    expect(payloadOf(bytes)).toBe(2 * params); // exactly half of float32's 4 bytes per parameter
    expect(r.sizeBytes!).toBeLessThan(0.6 * r.parentSizeBytes!);
    expect(r.metrics.params).toBe(params);
    expect(r.metrics.nonzero_params).toBeGreaterThan(0.95 * params);
    expect(typeof r.metrics.accuracy).toBe("number");
    expect(r.metrics.inference_us_per_sample).toBeGreaterThan(0);
    expect(r.metrics.parent_inference_us_per_sample).toBeGreaterThan(0);
    expect(Math.abs(r.metrics.accuracy_delta!)).toBeLessThanOrEqual(0.05);
    expect(r.parentMetrics.accuracy).toBeCloseTo(r.metrics.accuracy! - r.metrics.accuracy_delta!, 10);
    // Evaluated on the same test partition as the source's own evaluation.
    const mine = app.db.select().from(evaluations).where(eq(evaluations.runId, r.runId)).get()!;
    const theirs = app.db.select().from(evaluations).where(eq(evaluations.checkpointId, sourceBest.id)).get()!;
    expect(mine.dataSha256).toBe(theirs.dataSha256);
    expect(mine.splitId).toBe(theirs.splitId);
    // Dequantized values stay within float16 precision of the source's.
    const a = deserializeWeights(app.artifacts.get(sourceBest.sha256)).values;
    for (const [name, v] of deserializeWeights(bytes).values)
      v.data.forEach((x, i) =>
        expect(Math.abs(x - a.get(name)!.data[i]!)).toBeLessThanOrEqual(Math.abs(a.get(name)!.data[i]!) * 1e-3 + 1e-7),
      );
    // Registered like any model; an on-demand evaluation of the compressed checkpoint gives the recorded numbers.
    const version = await engineer().models.register({ runId: r.runId, modelName: "iris-f16" });
    expect(version.weightsSha256 ?? r.weightsSha256).toBe(r.weightsSha256);
    const again = await engineer().runs.evaluate({ runId: r.runId, checkpointId: r.checkpointId! });
    expect((again.result as { accuracy: number }).accuracy).toBe(r.metrics.accuracy);
    figures.float16 = {
      sizeBytes: r.sizeBytes,
      parentSizeBytes: r.parentSizeBytes,
      accuracy: r.metrics.accuracy,
      delta: r.metrics.accuracy_delta,
    };
  }, 180_000);

  it("int8 stores one byte per weight plus a float32 scale per output channel", async () => {
    const r = await compressAndWait({
      runId: sourceRunId,
      checkpoint: { epoch: sourceBest.epoch },
      method: "int8",
      rationale: "quarter size",
    });
    const bytes = app.artifacts.get(r.weightsSha256!);
    const biases = readCompressedHeader(bytes).header.weights.filter((w) => w.shape.length < 2).length;
    expect(payloadOf(bytes)).toBe(params + 4 * (outputChannels + biases));
    expect(payloadOf(bytes)).toBeLessThan(0.5 * 4 * params);
    expect(r.sizeBytes!).toBeLessThan(r.parentSizeBytes!);
    expect(Math.abs(r.metrics.accuracy_delta!)).toBeLessThanOrEqual(0.1);
    figures.int8 = {
      sizeBytes: r.sizeBytes,
      parentSizeBytes: r.parentSizeBytes,
      payload: payloadOf(bytes),
      float32Payload: 4 * params,
      accuracy: r.metrics.accuracy,
      delta: r.metrics.accuracy_delta,
    };
  }, 180_000);

  it("pruning to sparsity 0.6 with 3 fine-tune epochs keeps (1 − S) of the kernel weights, the mask fixed", async () => {
    const r = await compressAndWait({ runId: sourceRunId, method: "prune", sparsity: 0.6, fineTuneEpochs: 3, rationale: "sparse model" });
    expect(r.parameters).toEqual({
      method: "prune",
      sourceCheckpointId: String(sourceBest.id),
      sparsity: 0.6,
      scope: "global",
      fineTuneEpochs: 3,
    });
    expect(r.metrics.prunable_params).toBe(kernelParams);
    expect(r.metrics.pruned_params).toBe(Math.round(0.6 * kernelParams));
    // Non-zero ≈ (1 − S)·N over the kernels, biases kept: the mask held through fine-tuning.
    expect(r.metrics.nonzero_params).toBeLessThanOrEqual(params - Math.round(0.6 * kernelParams));
    expect(r.metrics.nonzero_params).toBeGreaterThanOrEqual(params - Math.round(0.6 * kernelParams) - 3);
    expect(r.sizeBytes!).toBeLessThan(0.6 * r.parentSizeBytes!);
    // Fine-tuning ran (3 epochs of loss in the run's series).
    const run = app.db.select().from(runs).where(eq(runs.id, r.runId)).get()!;
    expect(run.status).toBe("completed");
    const ck = app.db.select().from(checkpoints).where(eq(checkpoints.runId, r.runId)).get()!;
    expect(ck.epoch).toBe(3);
    expect(typeof r.metrics.accuracy).toBe("number");
    figures.prune = {
      sizeBytes: r.sizeBytes,
      parentSizeBytes: r.parentSizeBytes,
      nonzero: r.metrics.nonzero_params,
      params,
      accuracy: r.metrics.accuracy,
      delta: r.metrics.accuracy_delta,
    };
  }, 180_000);

  it("distillation trains a smaller student from the teacher checkpoint on the same data", async () => {
    const r = await compressAndWait({
      runId: sourceRunId,
      method: "distill",
      student: { model: { layers: [{ type: "dense", units: 6, activation: "relu" }] }, training: { epochs: 30, learningRate: 0.05 } },
      temperature: 3,
      alpha: 0.6,
      rationale: "a tiny student",
    });
    expect(r.parameters).toEqual({ method: "distill", sourceCheckpointId: String(sourceBest.id), temperature: 3, alpha: 0.6 });
    const studentParams = 4 * 6 + 6 + 6 * 3 + 3;
    expect(r.metrics.params).toBe(studentParams);
    expect(r.sizeBytes!).toBeLessThan(r.parentSizeBytes! / 4);
    expect(r.metrics.accuracy!).toBeGreaterThan(0.6);
    const ds = app.db.select().from(decisions).where(eq(decisions.runId, r.runId)).all();
    expect(ds.map((d) => d.path)).toEqual(
      expect.arrayContaining(["compression.method", "compression.temperature", "model.layers.0.units", "training.epochs"]),
    );
    // Registered, its lineage in the auditor's report states the derivation, and it downloads as a TF.js model of the
    // student's own topology (not the teacher's).
    const version = await engineer().models.register({ runId: r.runId, modelName: "iris-distilled" });
    const facts = collectReportFacts(app.db, version.modelVersionId);
    const run = facts.training.find((t) => t.id === r.runId)!;
    expect(run.origin).toBe("compress");
    expect(compressionDerivation(run.config.compression!, run.parentRunId, run.parentCheckpointId)).toBe(
      `a student distilled (temperature 3, alpha 0.6) from run #${sourceRunId}'s checkpoint #${sourceBest.id} as teacher`,
    );
    expect(facts.training.some((t) => t.id === sourceRunId)).toBe(true);
    const zip = await checkpointWeightsDownload(app, r.checkpointId!, "tfjs");
    const modelJson = JSON.parse(Buffer.from(unzipStored(zip.bytes).find((f) => f.name.endsWith("model.json"))!.data).toString("utf8"));
    expect(JSON.stringify(modelJson.modelTopology)).toContain('"units":6');
    figures.distill = {
      sizeBytes: r.sizeBytes,
      parentSizeBytes: r.parentSizeBytes,
      params: studentParams,
      parentParams: params,
      accuracy: r.metrics.accuracy,
      delta: r.metrics.accuracy_delta,
    };
  }, 240_000);

  it("the compare view's models: size, parameters, accuracy and inference time of the source and its compressions", async () => {
    const compressions = app.db.select().from(runs).where(eq(runs.origin, "compress")).all().slice(0, 3);
    const c = await app.as("auditor").explore.compare({ ids: [sourceRunId, ...compressions.map((r) => r.id)] });
    expect(c.models[0]).toMatchObject({ checkpointId: sourceBest.id, sizeBytes: sourceBest.bytes, params, compression: null });
    expect(c.models[0]!.accuracy).toBeGreaterThan(0);
    compressions.forEach((r, i) => {
      const m = c.models[i + 1]!;
      expect(m.compression).toEqual({ method: JSON.parse(r.configJson).compression.method, parentSizeBytes: sourceBest.bytes });
      expect(m.sizeBytes).toBeLessThan(sourceBest.bytes);
      expect(m.inferenceUsPerSample).toBeGreaterThan(0);
      expect(m.nonzeroParams).toBeGreaterThan(0);
    });
  });

  it("the same compression with the same seed gives the same weights", async () => {
    const a = await compressAndWait({ runId: sourceRunId, method: "prune", sparsity: 0.5, scope: "layer", rationale: "determinism" });
    const b = await compressAndWait({ runId: sourceRunId, method: "prune", sparsity: 0.5, scope: "layer", rationale: "determinism" });
    expect(a.weightsSha256).toBe(b.weightsSha256);
  }, 180_000);

  it("an invalid method or parameter is a clear error and creates nothing", async () => {
    const before = {
      runs: app.db.select({ n: count() }).from(runs).get()!.n,
      events: app.db.select({ n: count() }).from(auditEvents).get()!.n,
    };
    const bad = (input: unknown) => engineer().runs.compress(input as never);
    await expect(bad({ runId: sourceRunId, method: "prune", sparsity: 1.5, rationale: "x" })).rejects.toThrow(/sparsity must be < 1/);
    await expect(bad({ runId: sourceRunId, method: "prune", sparsity: 0, rationale: "x" })).rejects.toThrow(/sparsity must be > 0/);
    await expect(bad({ runId: sourceRunId, method: "prune", rationale: "x" })).rejects.toThrow(/sparsity is required/);
    await expect(bad({ runId: sourceRunId, method: "int4", rationale: "x" })).rejects.toThrow(
      /method must be one of float16, int8, prune, distill/,
    );
    await expect(bad({ runId: sourceRunId, method: "int8", sparsity: 0.5, rationale: "x" })).rejects.toThrow(/sparsity applies to prune/);
    await expect(
      bad({
        runId: sourceRunId,
        method: "distill",
        student: { data: { dataset: { builtin: "iris" }, task: "regression" }, model: { layers: [] } },
        rationale: "x",
      }),
    ).rejects.toThrow(/another output size/);
    await expect(bad({ runId: sourceRunId, method: "distill", rationale: "x" })).rejects.toThrow(/student is required/);
    await expect(
      bad({ runId: sourceRunId, method: "distill", student: { model: { layers: [{ type: "dense", units: -1 }] } }, rationale: "x" }),
    ).rejects.toThrow(/model\.layers\.0\.units/);
    await expect(bad({ runId: sourceRunId, method: "int8", checkpoint: { epoch: 999 }, rationale: "x" })).rejects.toThrow(
      /no checkpoint at epoch 999/,
    );
    await expect(app.as("reviewer").runs.compress({ runId: sourceRunId, method: "int8", rationale: "x" })).rejects.toThrow();
    // A compression has no epoch boundaries: piloting it is refused before anything is recorded.
    const compressed = app.db.select().from(runs).where(eq(runs.origin, "compress")).all()[0]!;
    await expect(engineer().runs.pilot.request({ runId: compressed.id, kind: "pause", rationale: "x" })).rejects.toThrow(
      /is a compression: it cannot be piloted/,
    );
    // A rollback of a finished compression too (for that reason, not for its checkpoint's missing resume state).
    const compressedCk = app.db.select().from(checkpoints).where(eq(checkpoints.runId, compressed.id)).get()!;
    await expect(
      engineer().runs.pilot.request({ runId: compressed.id, kind: "rollback", fromCheckpointId: compressedCk.id, rationale: "x" }),
    ).rejects.toThrow(/is a compression: it cannot be piloted/);
    expect(app.db.select({ n: count() }).from(runs).get()!.n).toBe(before.runs);
    expect(app.db.select({ n: count() }).from(auditEvents).get()!.n).toBe(before.events);
  });

  it("audit content check: clean with every compression; tampering with a compression's record is found", () => {
    const clean = snapshot(app);
    try {
      const r = checkContent(clean.db, { artifactsDir: clean.artifactsDir, uptoSeq: clean.maxSeq });
      expect(r.level.problems.map((p) => p.message)).toEqual([]);
    } finally {
      clean.close();
    }
    const compressed = app.db.select().from(runs).where(eq(runs.origin, "compress")).all()[0]!;
    const tampered = snapshot(app);
    try {
      // The operator claims a gentler compression after the fact: the sparsity / method in the stored config.
      tampered.db.exec("DROP TRIGGER IF EXISTS runs_no_update");
      tampered.db
        .prepare("UPDATE runs SET config_json = json_set(config_json, '$.compression.method', 'int8') WHERE id = ?")
        .run(compressed.id);
      // And the compressed checkpoint's recorded size.
      tampered.db.prepare("UPDATE checkpoints SET bytes = bytes * 2 WHERE run_id = ?").run(compressed.id);
      const r = checkContent(tampered.db, { artifactsDir: tampered.artifactsDir, uptoSeq: tampered.maxSeq });
      expect(r.level.ok).toBe(false);
      const fields = r.level.problems.map((p) => `${p.entityType} ${p.entityId} ${p.field}`);
      expect(fields).toContain(`run ${compressed.id} config (sha256 of the stored config)`);
      expect(fields.some((f) => f.startsWith("checkpoint ") && f.endsWith("weights size"))).toBe(true);
    } finally {
      tampered.close();
    }
  });
});
