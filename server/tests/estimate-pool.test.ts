/**
 * runs.estimate without a worker per request: every estimate goes to the process's one long-lived estimate worker
 * (trainer/estimate-pool.ts). Repeated estimates start no new worker, a warm estimate is fast, the request's
 * main-thread work is a few milliseconds even on a large uploaded dataset, and the queue is bounded.
 */
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { estimatePool, EstimatePool, EstimatorBusyError, type EstimateTask } from "@/trainer/estimate-pool";
import { parseConfigOrThrow } from "@/server/runs/service";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { uploadCsvAs } from "./upload-helpers";

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
});
afterAll(async () => {
  await estimatePool().close();
  app.close();
});

/** Main-thread busy time (ms) while `fn` runs, from the event loop's own accounting. */
async function mainThreadBusyMs<T>(fn: () => Promise<T>): Promise<{ value: T; busyMs: number; wallMs: number }> {
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const value = await fn();
  const elu = performance.eventLoopUtilization(elu0);
  return { value, busyMs: elu.active, wallMs: performance.now() - t0 };
}

describe("[runs.estimate] one long-lived estimate worker", () => {
  it("answers repeated estimates from one worker; a warm estimate is fast and barely touches the main thread", async () => {
    // A 6 MB upload: the old code read and hashed it on the main thread and spawned a TF.js worker for every estimate.
    const lines = ["a,b,c,d,e,f,label"];
    for (let i = 0; i < 150_000; i++)
      lines.push(`${(i * 0.37) % 11},${(i * 1.3) % 7},${i % 13},${(i * 5) % 17},${(i % 101) / 7},${i % 3},${i % 2 ? "odd" : "even"}`);
    const ds = await uploadCsvAs(app, "engineer", lines.join("\n"), { name: "estimate data" });
    expect(ds.byteSize).toBeGreaterThan(5_000_000);
    const config = (units: number) => ({
      ...irisConfig(),
      data: { ...irisConfig().data, dataset: { datasetId: String(ds.id) } },
      model: { layers: [{ type: "dense" as const, units, activation: "relu" as const }] },
    });

    const started = estimatePool().stats().workersStarted;
    const first = await app.as("auditor").runs.estimate({ config: config(8) });
    expect(first.memory.paramCount).toBe(6 * 8 + 8 + 8 * 2 + 2);
    const timings: { busyMs: number; wallMs: number }[] = [];
    for (const units of [4, 16, 32]) {
      const { value, busyMs, wallMs } = await mainThreadBusyMs(() => app.as("reviewer").runs.estimate({ config: config(units) }));
      expect(value.memory.paramCount).toBe(6 * units + units + units * 2 + 2);
      timings.push({ busyMs, wallMs });
    }
    console.log(
      `warm estimates on a 6 MB dataset: ${timings.map((t) => `${t.wallMs.toFixed(0)} ms wall / ${t.busyMs.toFixed(1)} ms main thread`).join(", ")}`,
    );
    expect(estimatePool().stats().workersStarted - started).toBe(1);
    expect(Math.min(...timings.map((t) => t.wallMs))).toBeLessThan(1000);
    expect(Math.min(...timings.map((t) => t.busyMs))).toBeLessThan(25);
  });

  it("refuses beyond its queue at once, and recovers with a fresh worker after a timeout", async () => {
    const task: EstimateTask = { config: parseConfigOrThrow(irisConfig()), dataset: { builtin: "iris" }, backend: "cpu" };
    const small = new EstimatePool({ maxQueued: 1, timeoutMs: 120_000, idleMs: 60_000 });
    try {
      const running = small.run(task);
      const queued = small.run(task);
      await expect(small.run(task)).rejects.toBeInstanceOf(EstimatorBusyError);
      await expect(small.run(task)).rejects.toThrow("the size estimator is busy (1 estimates waiting); try again in a moment");
      expect((await running).memory.paramCount).toBe(4 * 12 + 12 + 12 * 3 + 3);
      expect((await queued).memory.paramCount).toBe(4 * 12 + 12 + 12 * 3 + 3);
      expect(small.stats()).toMatchObject({ workersStarted: 1, tasksDone: 2, queued: 0, running: false });
    } finally {
      await small.close();
    }
    const impatient = new EstimatePool({ maxQueued: 4, timeoutMs: 1, idleMs: 60_000 });
    try {
      await expect(impatient.run(task)).rejects.toThrow("the estimate took longer than 0 s and was stopped");
      await expect(impatient.run(task)).rejects.toThrow(/took longer/);
      expect(impatient.stats()).toMatchObject({ workersStarted: 2, running: false, alive: false });
    } finally {
      await impatient.close();
    }
  });
});
