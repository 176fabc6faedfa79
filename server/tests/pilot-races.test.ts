/**
 * Races between a pause taking effect and what arrives meanwhile, and cancelling parked runs (orchestrator.ts):
 * - a paused run can be cancelled: it ends "cancelled" at its last checkpoint, its pending interventions rejected;
 * - a cancel that arrives while a pause takes effect (after the boundary answered "pause", before that checkpoint is
 *   persisted) ends the run cancelled, never paused with the cancel lost;
 * - a pause withdrawn in that same window leaves no run "running" without a worker: the run continues from that
 *   checkpoint and ends with the weights of the same config trained straight through;
 * - a change asked for while the run is paused takes effect at the resume point (same weights as asked with the pause).
 * The window is hit deterministically: storeResumeStateOn (called by the orchestrator when the boundary's checkpoint
 * arrives, before it is recorded and the interventions applied) is wrapped to run a hook once.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { and, eq } from "drizzle-orm";
import { auditEvents, runInterventions, runs, users } from "@/db/schema";
import { createRun } from "@/server/runs/service";
import { cancelIntervention, requestIntervention } from "@/server/runs/pilot";
import { actorOf } from "@/server/users/service";
import { checkContent } from "@/server/audit/content/verify-content";
import { DEMO_USERS } from "@/server/demo/seed";
import type { TrainingConfigInput } from "@/contracts/training-config";
import { canonicalJson } from "@/contracts/canonical";
import { interventionOutcomeSha256 } from "@/server/audit/content/intervention-records";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

/** Runs once when the next resume state is stored (the checkpoint of a boundary, before its interventions apply). */
const hook: { once?: () => void } = {};
vi.mock("@/server/runs/resume-states", async (importOriginal) => {
  const original = await importOriginal<typeof import("@/server/runs/resume-states")>();
  return {
    ...original,
    storeResumeStateOn: (...args: Parameters<typeof original.storeResumeStateOn>) => {
      const run = hook.once;
      hook.once = undefined;
      run?.();
      return original.storeResumeStateOn(...args);
    },
  };
});

let app: TestApp;
const engineer = () => {
  const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
  return { ...app, actor: actorOf(app.db.select().from(users).where(eq(users.email, email)).get()!) };
};
const runRow = (id: number) => app.db.select().from(runs).where(eq(runs.id, id)).get()!;
const intervention = (id: number) => app.db.select().from(runInterventions).where(eq(runInterventions.id, id)).get()!;
const create = (config: TrainingConfigInput, rationale: string) =>
  createRun(engineer(), { experimentId: app.experimentId, config, rationale }).id;
const events = (runId: number) =>
  app.db
    .select({ action: auditEvents.action })
    .from(auditEvents)
    .where(and(eq(auditEvents.entityType, "run"), eq(auditEvents.entityId, String(runId))))
    .all()
    .map((e) => e.action);

beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app?.close());

describe("pause races and cancelling parked runs", () => {
  it("a paused run is cancelled at once: its last checkpoint is its end, pending interventions are rejected", async () => {
    const id = create(irisConfig({ epochs: 4 }), "to pause, then cancel");
    requestIntervention(engineer(), { runId: id, kind: "pause", rationale: "stop here for now" });
    await app.orchestrator.launch(id);
    await app.orchestrator.waitFor(id);
    expect(runRow(id).status).toBe("paused");
    const set = requestIntervention(engineer(), { runId: id, kind: "set", set: { "training.learningRate": 0.01 }, rationale: "for later" });

    await app.as("engineer").runs.cancel({ id, reason: "not needed any more" });
    const run = runRow(id);
    expect(run.status).toBe("cancelled");
    expect(run.finishedAt).not.toBeNull();
    expect(intervention(set.id)).toMatchObject({ status: "rejected", closedBy: null, closeReason: "the run was cancelled" });
    // The server's rejection event, byte for byte (closeIntervention): no actor, the reason, the closed row's hash.
    const rejected = app.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "run.interventionRejected"), eq(auditEvents.entityId, String(set.id))))
      .get()!;
    expect(rejected.actorId).toBeNull();
    expect(rejected.payload).toBe(
      canonicalJson({
        runId: id,
        reason: "the run was cancelled",
        closedAt: intervention(set.id).closedAt,
        sha256: interventionOutcomeSha256(intervention(set.id)),
      }),
    );
    expect(events(id).slice(-2)).toEqual(["run.cancelRequest", "run.cancel"]);
    // Nothing left to cancel.
    await expect(app.as("engineer").runs.cancel({ id, reason: "not needed any more" })).rejects.toThrow(/is cancelled/);
  }, 120_000);

  it("a cancel arriving while the pause takes effect ends the run cancelled", async () => {
    const id = create(irisConfig({ epochs: 4 }), "pause and cancel race");
    requestIntervention(engineer(), { runId: id, kind: "pause", rationale: "pause at the first boundary" });
    const caller = app.as("engineer");
    let cancelled: Promise<unknown> | undefined;
    hook.once = () => {
      expect(runRow(id).status).toBe("running");
      cancelled = caller.runs.cancel({ id, reason: "not needed any more" });
    };
    await app.orchestrator.launch(id);
    await app.orchestrator.waitFor(id);
    await cancelled;
    expect(runRow(id).status).toBe("cancelled");
    expect(app.orchestrator.isTracking(id)).toBe(false);
    expect(events(id)).toContain("run.cancel");
  }, 120_000);

  it("a pause withdrawn while it takes effect: the run continues from that checkpoint to the straight run's weights", async () => {
    const config = irisConfig({ epochs: 4, seed: 9 });
    const id = create(config, "pause withdrawn in flight");
    const straight = create(config, "same config, straight through");
    const pause = requestIntervention(engineer(), { runId: id, kind: "pause", rationale: "maybe pause" });
    hook.once = () => cancelIntervention(engineer(), { interventionId: pause.id, rationale: "no, keep going" });
    await app.orchestrator.launch(id);
    await app.orchestrator.waitFor(id);
    expect(intervention(pause.id).status).toBe("cancelled");
    expect(runRow(id).status).toBe("completed");
    await app.orchestrator.launch(straight);
    await app.orchestrator.waitFor(straight);
    expect(runRow(id).finalWeightsSha256).toBe(runRow(straight).finalWeightsSha256);
    // It continued (a second run.start from the checkpoint), it did not start over or hang.
    expect(events(id).filter((a) => a === "run.start")).toHaveLength(2);
  }, 120_000);

  it("a change asked for while paused takes effect at the resume point, as if asked with the pause", async () => {
    const config = irisConfig({ epochs: 4, seed: 11 });
    const later = create(config, "set while paused");
    const together = create(config, "set with the pause");
    const pauseLater = requestIntervention(engineer(), { runId: later, kind: "pause", rationale: "pause first" });
    requestIntervention(engineer(), { runId: together, kind: "set", set: { "training.learningRate": 0.01 }, rationale: "slower" });
    requestIntervention(engineer(), { runId: together, kind: "pause", rationale: "pause with it" });
    for (const id of [later, together]) {
      await app.orchestrator.launch(id);
      await app.orchestrator.waitFor(id);
      expect(runRow(id).status).toBe("paused");
    }
    const set = requestIntervention(engineer(), { runId: later, kind: "set", set: { "training.learningRate": 0.01 }, rationale: "slower" });
    for (const id of [later, together]) {
      await app.as("engineer").runs.pilot.request({ runId: id, kind: "resume", rationale: "go on" });
      await app.orchestrator.waitFor(id);
      expect(runRow(id).status).toBe("completed");
    }
    // Bound to the pause's checkpoint (epoch 1), not to the first boundary after the resume (epoch 2).
    expect(intervention(set.id)).toMatchObject({
      status: "applied",
      appliedAtEpoch: 1,
      checkpointId: intervention(pauseLater.id).checkpointId,
    });
    expect(runRow(later).finalWeightsSha256).toBe(runRow(together).finalWeightsSha256);
  }, 120_000);

  it("a change the trainer refuses at an epoch boundary is rejected with its message; the run goes on unchanged", async () => {
    const id = create(irisConfig({ epochs: 3 }), "refused at a boundary");
    const bad = requestIntervention(engineer(), {
      runId: id,
      kind: "set",
      set: { "training.classWeights": { nope: 2 } },
      rationale: "weigh the rare class",
    });
    await app.orchestrator.launch(id);
    await app.orchestrator.waitFor(id);
    expect(runRow(id).status).toBe("completed");
    expect(intervention(bad.id).status).toBe("rejected");
    expect(intervention(bad.id).closeReason).toMatch(/^the trainer refused the change: .*unknown class "nope"/);
  }, 120_000);

  it("the content check stays clean", () => {
    const result = checkContent(app.db.$client, { artifactsDir: null, uptoSeq: Number.MAX_SAFE_INTEGER });
    expect(result.level.problems.map((p) => p.message)).toEqual([]);
  });
});
