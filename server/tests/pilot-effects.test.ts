/**
 * The effect of an intervention on the watched metric (server/runs/pilot-effects.ts): the value at the boundary
 * where it took effect, the next epochs, the delta; batch points (fractional epochs) never count, and a metric
 * missing at that very epoch falls back to the last epoch before it.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { eq } from "drizzle-orm";
import { metrics, users } from "@/db/schema";
import { createRun } from "@/server/runs/service";
import { interventionEffect, listInterventionsWithEffects } from "@/server/runs/pilot-effects";
import { actorOf } from "@/server/users/service";
import { DEMO_USERS } from "@/server/demo/seed";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

let app: TestApp;
let runId: number;

beforeAll(() => {
  app = createTestApp();
  const engineer = app.db
    .select()
    .from(users)
    .where(eq(users.email, DEMO_USERS.find((u) => u.role === "engineer")!.email))
    .get()!;
  runId = createRun(
    { ...app, actor: actorOf(engineer) },
    { experimentId: app.experimentId, config: irisConfig({ epochs: 8 }), rationale: "effects" },
  ).id;
  // val_loss per epoch (epoch 5 missing, as with validation every other epoch), plus batch-like fractional points.
  const points = [
    [1, 0.9],
    [2, 0.8],
    [3, 0.7],
    [4, 0.65],
    [6, 0.5],
    [7, 0.45],
    [8, 0.44],
  ].map(([epoch, value], i) => ({ runId, key: "val_loss", step: (i + 1) * 10, epoch: epoch!, value: value!, wallTimeMs: i }));
  points.push({ runId, key: "val_loss", step: 45, epoch: 4.5, value: 99, wallTimeMs: 0 });
  app.db.insert(metrics).values(points).run();
});
afterAll(() => app?.close());

describe("interventionEffect", () => {
  it("compares the value at the boundary with the following epochs", () => {
    const e = interventionEffect(app.db, runId, "val_loss", 3);
    expect(e.before).toEqual({ epoch: 3, value: 0.7 });
    expect(e.after).toEqual([
      { epoch: 4, value: 0.65 },
      { epoch: 6, value: 0.5 },
    ]);
    expect(e.delta).toBeCloseTo(-0.2);
  });

  it("falls back to the last epoch before the boundary, and has no delta before a later epoch is recorded", () => {
    const e = interventionEffect(app.db, runId, "val_loss", 5);
    expect(e.before).toEqual({ epoch: 4, value: 0.65 });
    expect(e.after.map((p) => p.epoch)).toEqual([6, 7, 8]);
    const atEnd = interventionEffect(app.db, runId, "val_loss", 8);
    expect(atEnd).toEqual({ metric: "val_loss", before: { epoch: 8, value: 0.44 }, after: [], delta: null });
    expect(interventionEffect(app.db, runId, "val_accuracy", 3)).toEqual({ metric: "val_accuracy", before: null, after: [], delta: null });
  });

  it("a run without applied interventions lists none, and no effect", () => {
    expect(listInterventionsWithEffects(app.db, runId)).toEqual([]);
  });
});
