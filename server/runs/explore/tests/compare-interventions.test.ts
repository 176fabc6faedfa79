/**
 * The compare view's in-flight decisions (server/runs/explore/compare-interventions.ts, through compareRuns and
 * explore.compare): per run, in the order asked, its applied interventions with who, where, what and why, and the
 * same effect on the watched metric as the run page (listInterventionsWithEffects), including the fallback when a
 * snapshot named no watched metric. Batched: the number of SQL statements does not grow with the number of runs.
 *
 * Runs are created by the service and never trained: checkpoints and metric points are inserted directly, and the
 * interventions go through the real request/apply services (as the orchestrator calls them at a boundary).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { eq } from "drizzle-orm";
import { checkpoints, metrics, users } from "@/db/schema";
import { createRun } from "@/server/runs/service";
import { applyIntervention, requestIntervention } from "@/server/runs/pilot";
import { listInterventionsWithEffects } from "@/server/runs/pilot-effects";
import { compareRuns } from "@/server/runs/explore/compare";
import { compareInterventions } from "@/server/runs/explore/compare-interventions";
import { actorOf } from "@/server/users/service";
import { DEMO_USERS } from "@/server/demo/seed";
import { createTestApp, irisConfig, type TestApp } from "@/server/tests/test-app";

vi.mock("server-only", () => ({}));

let app: TestApp;
/** piloted: lr change at epoch 3 and a pause at epoch 6 (watched val_loss); plain: nothing; early: a change before any val_loss. */
const ids = { piloted: 0, plain: 0, early: 0 };
const extra: number[] = [];

const engineer = () => {
  const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
  return actorOf(app.db.select().from(users).where(eq(users.email, email)).get()!);
};

function checkpointAt(runId: number, epoch: number): number {
  return app.db
    .insert(checkpoints)
    .values({
      runId,
      epoch,
      step: epoch * 7,
      sha256: "c".repeat(64),
      bytes: 1,
      metricsJson: "{}",
      createdAt: new Date().toISOString(),
    })
    .returning()
    .get().id;
}

/** Whole-epoch val_loss and lr points for epochs 1..n, plus a batch point with a fractional epoch (never counted). */
function insertPoints(runId: number, n: number, valLoss: (epoch: number) => number) {
  const rows = [];
  for (let e = 1; e <= n; e++) {
    rows.push({ runId, key: "val_loss", step: e * 7, epoch: e, value: valLoss(e), wallTimeMs: 1_000 * e });
    rows.push({ runId, key: "lr", step: e * 7, epoch: e, value: 0.03, wallTimeMs: 1_000 * e });
  }
  rows.push({ runId, key: "val_loss", step: 3 * 7 + 3, epoch: 3.5, value: 99, wallTimeMs: 3_500 });
  app.db.insert(metrics).values(rows).run();
}

beforeAll(() => {
  app = createTestApp();
  const ctx = { ...app, actor: engineer() };
  const create = (name: string) =>
    createRun(ctx, { experimentId: app.experimentId, config: irisConfig({ epochs: 10 }), rationale: name }).id;
  ids.piloted = create("piloted");
  ids.plain = create("plain");
  ids.early = create("early");

  const set = requestIntervention(ctx, {
    runId: ids.piloted,
    kind: "set",
    set: { "training.learningRate": 0.005 },
    rationale: "val_loss oscillates: lower the rate",
  });
  insertPoints(ids.piloted, 3, (e) => 1 - e * 0.1);
  // Snapshot computed by the service from the points so far (watched: val_loss, the best-checkpoint metric).
  applyIntervention(app, { interventionId: set.id, epoch: 3, step: 21, checkpointId: checkpointAt(ids.piloted, 3) });
  app.db
    .insert(metrics)
    .values(
      [4, 5, 6, 7, 8].flatMap((e) => [
        { runId: ids.piloted, key: "val_loss", step: e * 7, epoch: e, value: 0.7 - (e - 3) * 0.05, wallTimeMs: 1_000 * e },
        { runId: ids.piloted, key: "lr", step: e * 7, epoch: e, value: 0.005, wallTimeMs: 1_000 * e },
      ]),
    )
    .run();
  const pause = requestIntervention(ctx, { runId: ids.piloted, kind: "pause", rationale: "look at the curves" });
  applyIntervention(app, { interventionId: pause.id, epoch: 6, step: 42, checkpointId: checkpointAt(ids.piloted, 6) });

  // A change applied before any val_loss point: its snapshot watches nothing, the effect falls back to the run's
  // watched metric now, which the change itself set (early stopping on val_accuracy).
  const early = requestIntervention(ctx, {
    runId: ids.early,
    kind: "set",
    set: { "training.earlyStopping": { metric: "val_accuracy", mode: "max", patience: 3 } },
    rationale: "stop on accuracy",
  });
  applyIntervention(app, { interventionId: early.id, epoch: 0, step: 0, checkpointId: checkpointAt(ids.early, 0) });
  app.db
    .insert(metrics)
    .values([1, 2].map((e) => ({ runId: ids.early, key: "val_accuracy", step: e * 7, epoch: e, value: 0.5 + e / 10, wallTimeMs: e })))
    .run();

  // More piloted runs, to show the statement count does not follow the number of runs.
  for (let k = 0; k < 4; k++) {
    const id = create(`more ${k}`);
    extra.push(id);
    insertPoints(id, 2, (e) => 1 / e);
    const i = requestIntervention(ctx, { runId: id, kind: "set", set: { "training.epochs": 12 }, rationale: `longer ${k}` });
    applyIntervention(app, { interventionId: i.id, epoch: 2, step: 14, checkpointId: checkpointAt(id, 2) });
  }
});
afterAll(() => app?.close());

describe("compareInterventions", () => {
  it("lists each run's applied interventions in the order asked, with who, where, what and why", async () => {
    const [plain, piloted] = (await compareRuns(app.db, [ids.plain, ids.piloted])).interventions;
    expect(plain).toEqual([]);
    expect(piloted!.map((i) => [i.kind, i.appliedAtEpoch, i.appliedAtStep, i.rationale, i.requestedBy.name])).toEqual([
      ["set", 3, 21, "val_loss oscillates: lower the rate", "Erin Engineer"],
      ["pause", 6, 42, "look at the curves", "Erin Engineer"],
    ]);
    expect(piloted![0]!.changes).toEqual([{ path: "training.learningRate", oldValue: 0.03, newValue: 0.005 }]);
    expect(piloted![0]!.decisionId).toEqual(expect.any(Number));
    expect(Date.parse(piloted![0]!.appliedAt)).not.toBeNaN();
  });

  it("gives each intervention the run page's effect: value at the boundary, the next epochs, the delta", async () => {
    const [piloted] = await compareInterventions(app.db, [ids.piloted, ids.plain]);
    const effect = piloted![0]!.effect!;
    expect(effect.metric).toBe("val_loss");
    expect(effect.before).toEqual({ epoch: 3, value: 0.7 });
    expect(effect.after.map((p) => p.epoch)).toEqual([4, 5, 6]);
    expect(effect.delta).toBeCloseTo(0.55 - 0.7);
    for (const runId of [ids.piloted, ids.early, ...extra]) {
      const runPage = listInterventionsWithEffects(app.db, runId)
        .filter((i) => i.status === "applied")
        .map((i) => [i.id, i.effect]);
      const compared = (await compareInterventions(app.db, [runId, ids.plain]))[0]!.map((i) => [i.id, i.effect]);
      expect(compared).toEqual(runPage);
    }
  });

  it("falls back to the metric the run watches now when the snapshot named none", async () => {
    const [early] = await compareInterventions(app.db, [ids.early, ids.plain]);
    expect(early![0]!.effect).toEqual({
      metric: "val_accuracy",
      before: null,
      after: [
        { epoch: 1, value: 0.6 },
        { epoch: 2, value: 0.7 },
      ],
      delta: null,
    });
  });

  it("reads all runs in a fixed number of statements (not one per run)", async () => {
    const client = app.db.$client;
    const count = async (runIds: number[]) => {
      const spy = vi.spyOn(client, "prepare");
      try {
        const out = await compareInterventions(app.db, runIds);
        return { statements: spy.mock.calls.length, interventions: out.flat().length };
      } finally {
        spy.mockRestore();
      }
    };
    const two = await count([ids.piloted, extra[0]!]);
    const six = await count([ids.piloted, ids.plain, ...extra]);
    expect(two.interventions).toBe(3);
    expect(six.interventions).toBe(6);
    expect(six.statements).toBe(two.statements);
    // The interventions, then the watched metrics' points of every run at once.
    expect(two.statements).toBe(2);
  });

  it("reaches the browser through explore.compare", async () => {
    const c = await app.as("auditor").explore.compare({ ids: [ids.plain, ids.piloted] });
    expect(c.interventions.map((l) => l.length)).toEqual([0, 2]);
    expect(c.interventions[1]![1]!.kind).toBe("pause");
  });
});
