/**
 * Cancelling a run through tRPC while it trains in its worker: the run ends "cancelled", keeps every checkpoint and
 * metric point recorded up to then, and the ledger holds both the request (by the engineer) and the cancel itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { and, count, eq } from "drizzle-orm";
import { auditEvents, checkpoints, metrics } from "@/db/schema";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app.close());

const until = async (what: string, check: () => boolean, timeoutMs = 60_000) => {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe("[orchestrator] cancel", () => {
  it("stops a long run mid-training and keeps what it recorded", async () => {
    const engineer = app.as("engineer");
    const cfg = irisConfig({ epochs: 400 });
    cfg.training.batchSize = 4;
    const { id } = await engineer.runs.create({ experimentId: app.experimentId, config: cfg, rationale: "a long run to cancel" });
    const checkpointCount = () => app.db.select({ n: count() }).from(checkpoints).where(eq(checkpoints.runId, id)).get()!.n;
    await until("three checkpoints", () => checkpointCount() >= 3);
    expect((await engineer.runs.get({ id })).status).toBe("running");

    // A cancellation says why: a blank reason is refused and nothing is recorded; the run trains on.
    const before = app.db.select({ n: count() }).from(auditEvents).get()!.n;
    await expect(engineer.runs.cancel({ id, reason: "   " })).rejects.toThrow(`a reason is required: say why run ${id} is cancelled`);
    expect(app.db.select({ n: count() }).from(auditEvents).get()!.n).toBe(before);
    expect((await engineer.runs.get({ id })).status).toBe("running");

    await engineer.runs.cancel({ id, reason: "  validation loss plateaued at epoch 3; freeing the slot " });
    await app.orchestrator.waitFor(id);
    const run = await engineer.runs.get({ id });
    expect(run.status).toBe("cancelled");
    expect(run.cancellation).toEqual({
      by: "Erin Engineer",
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      reason: "validation loss plateaued at epoch 3; freeing the slot",
    });
    expect(run.error).toBeNull();
    expect(run.finishedAt).not.toBeNull();

    // Checkpoints up to the cancel are kept; the last holds the final weights. Far fewer than 400 epochs ran.
    expect(run.checkpoints.length).toBeGreaterThanOrEqual(3);
    expect(run.checkpoints.length).toBeLessThan(400);
    expect(run.checkpoints.at(-1)!.sha256).toBe(run.finalWeightsSha256);
    expect(run.checkpoints.filter((c) => c.isBest)).toHaveLength(1);
    // A cancelled run is not evaluated automatically.
    expect(run.evaluations).toHaveLength(0);

    // Metrics: every completed epoch's points are there, batch points run past the last full epoch.
    const points = await engineer.runs.metrics({ runId: id });
    const epochsDone = run.checkpoints.filter((c) => c.metrics.val_loss !== undefined).length;
    expect(points.series.val_loss).toHaveLength(epochsDone);
    expect(points.series.loss!.length).toBeGreaterThanOrEqual(epochsDone);
    const batchPoints = app.db
      .select({ n: count() })
      .from(metrics)
      .where(and(eq(metrics.runId, id), eq(metrics.key, "batch_loss")))
      .get()!.n;
    expect(batchPoints).toBeGreaterThanOrEqual(epochsDone * Math.ceil(105 / 4));
    expect(run.summaries.find((s) => s.key === "batch_loss")?.count).toBe(batchPoints);

    // The ledger: the engineer's request, then the trainer's cancel with the final weights.
    const events = app.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.entityType, "run"), eq(auditEvents.entityId, String(id))))
      .orderBy(auditEvents.seq)
      .all();
    const actions = events.map((e) => e.action);
    expect(actions).toEqual(["run.create", "run.start", "run.cancelRequest", "run.cancel"]);
    expect(events[2]!.actorName).toBe("Erin Engineer");
    expect(JSON.parse(events[2]!.payload)).toEqual({
      statusAtRequest: "running",
      reason: "validation loss plateaued at epoch 3; freeing the slot",
    });
    expect(JSON.parse(events[3]!.payload)).toMatchObject({
      status: "cancelled",
      weightsSha256: run.finalWeightsSha256,
      metricPoints: expect.any(Number),
    });

    // Nothing is left to cancel, and a finished run says so.
    await expect(engineer.runs.cancel({ id, reason: "not needed any more" })).rejects.toThrow(
      /is cancelled; only a queued, running, paused or interrupted run can be cancelled/,
    );
  });

  it("cancels a queued run at once, before it trains", async () => {
    const engineer = app.as("engineer");
    const first = await engineer.runs.create({
      experimentId: app.experimentId,
      config: irisConfig({ epochs: 40 }),
      rationale: "occupies the training slot",
    });
    const queued = await engineer.runs.create({
      experimentId: app.experimentId,
      config: irisConfig({ epochs: 40 }),
      rationale: "waits in the queue",
    });
    expect((await engineer.runs.get({ id: queued.id })).status).toBe("queued");
    await engineer.runs.cancel({ id: queued.id, reason: "not needed any more" });
    const run = await engineer.runs.get({ id: queued.id });
    expect(run.status).toBe("cancelled");
    expect(run.cancellation?.reason).toBe("not needed any more");
    expect(run.checkpoints).toHaveLength(0);
    await engineer.runs.cancel({ id: first.id, reason: "not needed any more" });
    await app.orchestrator.waitFor(first.id);
  });
});
