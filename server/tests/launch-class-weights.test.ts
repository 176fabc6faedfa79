/**
 * Every launch refuses class weights that name a class the dataset does not have, with the class and the dataset's
 * classes, before anything is recorded (no run row, no audit event), instead of launching a run the trainer then fails:
 * runs.create (a new run, a fork, a fine-tune), a planned schedule entry that sets them, and the CLI's train. Class
 * weights on a regression task are refused the same way. Valid weights (a class Iris has, "balanced") still launch.
 * (Events are counted without the server's periodic audit.checkpoint.)
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count, eq } from "drizzle-orm";
import { auditEvents, checkpoints, runs } from "@/db/schema";
import { openDatabase } from "@/db/client";
import type { TrainingConfigInput } from "@/contracts/training-config";
import { createTestApp, irisConfig, recordedCounts, type TestApp } from "./test-app";
import { runCli } from "./cli-process";
import { uploadCsvAs } from "./upload-helpers";

const CLASSES = '"setosa", "versicolor", "virginica"';
const UNKNOWN = `training.classWeights: unknown class "no-such-class"; the dataset has the classes ${CLASSES}`;

function weighted(classWeights: TrainingConfigInput["training"]["classWeights"], base = irisConfig({ epochs: 1 })): TrainingConfigInput {
  return { ...base, training: { ...base.training, classWeights } };
}

describe("[launches] class weights naming a class the dataset does not have are refused at launch, on SQLite", () => {
  let app: TestApp;
  beforeAll(() => {
    app = createTestApp({ backend: "cpu" });
  });
  afterAll(() => app.close());

  const counts = () => recordedCounts(app);
  const ended = async (id: number) => {
    await app.orchestrator.waitFor(id);
    return app.db.select({ status: runs.status }).from(runs).where(eq(runs.id, id)).get()!.status;
  };

  it("runs.create refuses them for a new run, a fork, a fine-tune and a schedule entry, recording nothing", async () => {
    const engineer = app.as("engineer");
    const experimentId = app.experimentId;
    // A regression dataset (uploading it is recorded), for the regression case below.
    const lines = ["x0,x1,target", ...Array.from({ length: 40 }, (_, i) => `${i % 7},${(i * 3) % 11},${(i % 7) * 2 - ((i * 3) % 11)}`)];
    const ds = await uploadCsvAs(app, "engineer", lines.join("\n"), { name: "linear", kind: "tabular" });
    const data = {
      dataset: { datasetId: String(ds.id) },
      task: "regression" as const,
      split: { strategy: "random" as const, train: 0.6, validation: 0.2, test: 0.2, seed: 2 },
    };
    const before = counts();
    await expect(
      engineer.runs.create({ experimentId, config: weighted({ "no-such-class": 2 }), rationale: "weigh a class Iris lacks" }),
    ).rejects.toThrow(`cannot launch this configuration: ${UNKNOWN}`);
    expect(counts()).toEqual(before);

    // Valid weights launch and train.
    const { id } = await engineer.runs.create({ experimentId, config: weighted({ virginica: 2 }), rationale: "weigh virginica" });
    expect(await ended(id)).toBe("completed");
    const afterLaunch = counts();
    expect(afterLaunch.runs).toBe(before.runs + 1);

    await expect(
      engineer.runs.create({
        experimentId,
        config: weighted({ virginica: 2, "no-such-class": 3 }),
        rationale: "fork with a class Iris lacks",
        origin: "fork",
        parentRunId: id,
      }),
    ).rejects.toThrow(`cannot launch this configuration: ${UNKNOWN}`);

    const [ck] = app.db.select().from(checkpoints).where(eq(checkpoints.runId, id)).all();
    const fineTune = {
      ...weighted({ "no-such-class": 2 }),
      fineTune: { parentCheckpointId: String(ck!.id), freezeLayers: 0, replaceHead: false },
    };
    await expect(engineer.runs.create({ experimentId, config: fineTune, rationale: "fine-tune with a class Iris lacks" })).rejects.toThrow(
      `cannot launch this configuration: ${UNKNOWN}`,
    );

    const scheduled: TrainingConfigInput = {
      ...irisConfig({ epochs: 2 }),
      schedule: [{ atEpoch: 1, set: { "training.classWeights": { "no-such-class": 2 } }, rationale: "weigh a class Iris lacks later" }],
    };
    await expect(engineer.runs.create({ experimentId, config: scheduled, rationale: "planned weights" })).rejects.toThrow(
      `cannot launch this configuration: schedule.0 (atEpoch 1): ${UNKNOWN}`,
    );

    const regression: TrainingConfigInput = { ...weighted("balanced"), data };
    await expect(engineer.runs.create({ experimentId, config: regression, rationale: "weights on a regression" })).rejects.toThrow(
      "cannot launch this configuration: training.classWeights: class weights apply to classification only; this config's task is regression",
    );
    expect(counts()).toEqual(afterLaunch);

    // "balanced" and a fine-tune with valid weights still launch.
    const ok = await engineer.runs.create({
      experimentId,
      config: { ...weighted("balanced"), fineTune: { parentCheckpointId: String(ck!.id), freezeLayers: 0, replaceHead: false } },
      rationale: "balanced fine-tune",
    });
    expect(await ended(ok.id)).toBe("completed");
  }, 180_000);
});

describe("[launches] the CLI's train refuses class weights naming a class the dataset does not have", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rl-launch-class-weights-cli-"));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("exits 2 with the class and the dataset's classes and records no run", async () => {
    const configFile = path.join(tmp, "unknown-class.json");
    fs.writeFileSync(configFile, JSON.stringify(weighted({ "no-such-class": 2 })));
    const dataDir = path.join(tmp, "data");
    const out = await runCli(
      ["train", "--config", configFile, "--data-dir", dataDir],
      { RUNLEDGER_KEY_DIR: path.join(tmp, "keys") },
      120_000,
    );
    expect(out.code, out.stderr).toBe(2);
    expect(out.stderr).toContain(`train: cannot launch this configuration: ${UNKNOWN}`);
    const db = openDatabase(dataDir);
    try {
      expect(db.select({ n: count() }).from(runs).get()!.n).toBe(0);
      expect(db.select({ n: count() }).from(auditEvents).where(eq(auditEvents.action, "run.create")).get()!.n).toBe(0);
    } finally {
      db.$client.close();
    }
  }, 150_000);
});
