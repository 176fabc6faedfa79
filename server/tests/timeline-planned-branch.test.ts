/**
 * The decisions timeline (decisions.timeline) as the run page reads it for planned decisions and rollback branches:
 * each planned decision carries the epoch of its schedule entry (paired by order, as createRun writes them), other
 * decisions none; a branch entry names the epoch of the checkpoint it continues from, other entries none. Driven
 * through the tRPC callers, with the real trainer.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

let app: TestApp;
let sourceId: number;
let branchId: number;

beforeAll(async () => {
  app = createTestApp();
  const eng = app.as("engineer");
  const config = {
    ...irisConfig({ epochs: 5 }),
    schedule: [
      { atEpoch: 1, set: { "training.learningRate": 0.01 }, rationale: "planned: lower the rate after warm-up" },
      { atEpoch: 3, set: { "training.learningRate": 0.005 }, rationale: "planned: lower it again" },
    ],
  };
  sourceId = (await eng.runs.create({ experimentId: app.experimentId, config, rationale: "a planned path" })).id;
  await app.orchestrator.waitFor(sourceId);
  const run = await eng.runs.get({ id: sourceId });
  expect(run.status).toBe("completed");
  const ck2 = run.checkpoints.find((c) => c.epoch === 2)!;
  const out = (await eng.runs.pilot.request({
    runId: sourceId,
    kind: "rollback",
    fromCheckpointId: ck2.id,
    set: { "training.learningRate": 0.02 },
    rationale: "go back to epoch 2 with another rate",
  })) as { branchRunId?: number };
  branchId = out.branchRunId!;
  await app.orchestrator.waitFor(branchId);
}, 120_000);
afterAll(() => app.close());

describe("decisions timeline: planned decisions and branches", () => {
  it("a planned decision carries its schedule entry's epoch; other decisions none", async () => {
    const t = await app.as("auditor").decisions.timeline({ runId: sourceId });
    const own = t.entries.find((e) => e.runId === sourceId)!;
    expect(own.decisions.map((d) => [d.kind, d.atEpoch, d.newValue])).toEqual([
      ["initial", null, null],
      ["planned", 1, { "training.learningRate": 0.01 }],
      ["planned", 3, { "training.learningRate": 0.005 }],
      ["intervention", null, expect.anything()],
    ]);
    expect(own.branchedFromEpoch).toBeNull();
  });

  it("a branch entry names the epoch it continues from, in its own timeline and in its source's", async () => {
    const own = (await app.as("auditor").decisions.timeline({ runId: branchId })).entries.find((e) => e.runId === branchId)!;
    expect(own).toMatchObject({ origin: "branch", parentRunId: sourceId, branchedFromEpoch: 2 });
    const child = (await app.as("auditor").decisions.timeline({ runId: sourceId })).entries.find((e) => e.runId === branchId)!;
    expect(child).toMatchObject({ relation: "child", branchedFromEpoch: 2 });
  });
});
