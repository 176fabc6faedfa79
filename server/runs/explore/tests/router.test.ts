/**
 * The explore router over real training: two tiny Iris runs go through the orchestrator (so points, summaries
 * and rollups are written by insertMetricPoints), then search, columns, group, compare and series are called
 * through createCaller. Also: filter errors come back as BAD_REQUEST with position and caret, and a signed-out
 * caller gets nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TRPCError } from "@trpc/server";
import { createTestApp, irisConfig, type TestApp } from "@/server/tests/test-app";

let app: TestApp;
let fast: number;
let slow: number;

beforeAll(async () => {
  app = createTestApp();
  const engineer = app.as("engineer");
  fast = (
    await engineer.runs.create({
      experimentId: app.experimentId,
      name: "lr-fast",
      config: irisConfig({ epochs: 3, learningRate: 0.05 }),
      rationale: "explore test",
    })
  ).id;
  slow = (
    await engineer.runs.create({
      experimentId: app.experimentId,
      name: "lr-slow",
      config: irisConfig({ epochs: 3, learningRate: 0.001 }),
      rationale: "explore test",
    })
  ).id;
  await app.orchestrator.waitFor(fast);
  await app.orchestrator.waitFor(slow);
}, 90_000);
afterAll(() => app.close());

async function badRequest(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TRPCError);
  expect((e as TRPCError).code).toBe("BAD_REQUEST");
  return (e as TRPCError).message;
}

describe("explore router", () => {
  it("searches with the filter language, sorts on the server and returns chosen columns", async () => {
    const auditor = app.as("auditor");
    const found = await auditor.explore.search({
      experimentId: app.experimentId,
      filter: '(lr > 0.01 OR lr < 0.002) AND status = "completed"',
      sort: [{ field: "params.lr", dir: "asc" }],
      columns: ["params.lr", "metrics.val_loss.min"],
    });
    expect(found.total).toBe(2);
    expect(found.rows.map((r) => r.id)).toEqual([slow, fast]);
    expect(found.rows[0]!.params).toEqual({ "training.learningRate": 0.001 });
    expect(found.rows[0]!.metrics["val_loss.min"]).toBeGreaterThan(0);
    expect((await auditor.explore.search({ experimentId: app.experimentId, filter: 'name = "lr-fast"' })).rows.map((r) => r.id)).toEqual([
      fast,
    ]);
  });

  it("lists columns, groups runs and compares them", async () => {
    const auditor = app.as("auditor");
    const columns = await auditor.explore.columns({ experimentId: app.experimentId });
    expect(columns.params.find((p) => p.path === "training.learningRate")).toEqual({
      path: "training.learningRate",
      type: "number",
      runs: 2,
    });
    expect(columns.metrics.map((m) => m.key)).toEqual(expect.arrayContaining(["val_loss", "val_accuracy", "batch_loss"]));
    const groups = await auditor.explore.group({ experimentId: app.experimentId, by: "lr", metric: "metrics.val_loss" });
    expect(groups.groups.map((g) => g.count)).toEqual([1, 1]);
    const c = await auditor.explore.compare({ ids: [fast, slow] });
    expect(c.params.find((p) => p.path === "training.learningRate")).toEqual({
      path: "training.learningRate",
      values: [0.05, 0.001],
      differs: true,
    });
    expect(c.likeForLike).toBe(true);
  });

  it("serves each run's series, downsampled, with rollups written by the orchestrator", async () => {
    const auditor = app.as("auditor");
    const [a, b] = await auditor.explore.series({ runIds: [fast, slow], key: "batch_loss", xAxis: "step", maxPoints: 4 });
    for (const s of [a!, b!]) {
      expect(s.total).toBeGreaterThan(4);
      expect(s.downsampled).toBe(true);
      expect(s.points.length).toBeLessThanOrEqual(4);
    }
    const rollups = app.db.$client
      .prepare("SELECT sum(count) AS n FROM metric_rollups WHERE run_id = ? AND key = 'batch_loss'")
      .get(fast) as { n: number };
    expect(rollups.n).toBe(a!.total);
    const epochs = await auditor.explore.series({ runIds: [fast], key: "val_loss", xAxis: "epoch" });
    expect(epochs[0]!.points.map((p) => p.x)).toEqual([1, 2, 3]);
  });

  it("turns bad requests into BAD_REQUEST; a filter error carries its position and a caret", async () => {
    const auditor = app.as("auditor");
    const message = await badRequest(auditor.explore.search({ filter: "(lr > 0.01 OR lr <) AND id = 1" }));
    expect(message).toBe("expected a value after '<' at position 18, found ')'\n(lr > 0.01 OR lr <) AND id = 1\n                  ^");
    expect(await badRequest(auditor.explore.search({ sort: [{ field: "tag", dir: "asc" }] }))).toMatch(/cannot be sorted by tag/);
    expect(await badRequest(auditor.explore.compare({ ids: [fast, 999_999] }))).toMatch(/unknown run id 999999/);
    expect(await badRequest(auditor.explore.compare({ ids: [fast] }))).toMatch(/ids/);
    expect(await badRequest(auditor.explore.group({ by: "lr", metric: "params.lr" }))).toMatch(/not a metric/);
  });

  it("refuses a signed-out caller", async () => {
    await expect(app.anonymous.explore.search({})).rejects.toThrow(/sign in first/);
    await expect(app.anonymous.explore.series({ runIds: [fast], key: "val_loss" })).rejects.toThrow(/sign in first/);
  });
});
