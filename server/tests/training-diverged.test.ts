/**
 * A run whose loss diverges (a learning rate far too large for unscaled targets) stops at the first loss or metric
 * that is not a finite number and fails saying where, with which learning rate, and what to change; what it
 * recorded before (the finite batches) is kept, nothing non-finite is recorded, and the ledger still verifies with its
 * content. Before, the NaN or Infinity reached the ledger's canonical JSON, which refused it: the run failed with
 * "could not record training progress: NaN is not allowed" and lost every batch it had trained.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { and, eq } from "drizzle-orm";
import { auditEvents, metrics, runs } from "@/db/schema";
import type { TrainingConfigInput } from "@/contracts/training-config";
import { verifyDatabase } from "@/server/audit/verify";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { uploadCsvAs } from "./upload-helpers";

/** Regression on raw features in the thousands and targets in the millions: plain SGD at learning rate 10 explodes. */
const EXPLODING = ["x0,x1,target", ...Array.from({ length: 60 }, (_, i) => `${i * 100},${(i * 37) % 11},${i * 1e5}`)].join("\n");

describe("[runs] a diverging run", () => {
  let app: TestApp;
  beforeAll(() => {
    app = createTestApp({ backend: "cpu" });
  });
  afterAll(() => app.close());

  it("fails at the first non-finite loss, naming where and what to change, and keeps what it recorded before", async () => {
    const engineer = app.as("engineer");
    const ds = await uploadCsvAs(app, "engineer", EXPLODING, { name: "exploding targets", kind: "tabular" });
    const base = irisConfig({ epochs: 4 });
    const config: TrainingConfigInput = {
      ...base,
      data: {
        dataset: { datasetId: String(ds.id) },
        task: "regression",
        normalization: "none",
        split: { strategy: "random", train: 0.6, validation: 0.2, test: 0.2, seed: 2 },
      },
      training: { ...base.training, optimizer: { name: "sgd" }, learningRate: 10 },
    };
    const { id } = await engineer.runs.create({ experimentId: app.experimentId, config, rationale: "too large a step" });
    await app.orchestrator.waitFor(id);

    const run = app.db.select().from(runs).where(eq(runs.id, id)).get()!;
    expect(run.status).toBe("failed");
    expect(run.error).toMatch(
      /^training diverged: batch_loss became (NaN|Infinity|-Infinity) at epoch 1, batch (\d+) \(step \2\) with learning rate 10; lower the learning rate, or normalise the inputs and scale the targets$/,
    );
    const step = Number(/batch (\d+)/.exec(run.error!)![1]);
    expect(step).toBeGreaterThan(1); // the first batch's loss is computed before any update, so it is finite

    // The batches before it are recorded, all finite; nothing of the diverged batch or after.
    const points = app.db
      .select()
      .from(metrics)
      .where(and(eq(metrics.runId, id), eq(metrics.key, "batch_loss")))
      .all();
    expect(points.map((p) => p.step)).toEqual(Array.from({ length: step - 1 }, (_, i) => i + 1));
    for (const p of points) expect(Number.isFinite(p.value)).toBe(true);

    const fail = app.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "run.fail"), eq(auditEvents.entityId, String(id))))
      .get()!;
    expect(JSON.parse(fail.payload)).toMatchObject({ error: run.error });

    const verified = await verifyDatabase(app.dataDir, { workers: 0 });
    expect(verified.levels.content.problems).toEqual([]);
    expect(verified.ok).toBe(true);

    // Adam (whose steps do not grow with the gradient) on normalised inputs trains the same data to the end.
    const sane: TrainingConfigInput = {
      ...config,
      data: { ...config.data, normalization: "standard" },
      training: { ...config.training, optimizer: { name: "adam" }, learningRate: 0.03 },
    };
    const ok = await engineer.runs.create({ experimentId: app.experimentId, config: sane, rationale: "adam, normalised" });
    await app.orchestrator.waitFor(ok.id);
    const after = app.db.select().from(runs).where(eq(runs.id, ok.id)).get()!;
    expect(after.error).toBeNull();
    expect(after.status).toBe("completed");
  }, 120_000);
});
