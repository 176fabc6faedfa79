/**
 * A resume asked for between the moment a pause takes effect (the run is "paused") and the moment its worker
 * reports its end: the orchestrator still tracks the run then, so launch() did nothing and the run stayed paused
 * with its resume pending. The window is hit deterministically: applyPendingAtBoundary (the orchestrator applies a
 * boundary's interventions with it) is wrapped to run a hook right after the pause is applied.
 * Invariant: a pending resume on a paused run always leads to the run continuing, in this process, at once.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { eq } from "drizzle-orm";
import { runInterventions, runs, users } from "@/db/schema";
import { createRun } from "@/server/runs/service";
import { requestIntervention } from "@/server/runs/pilot";
import { actorOf } from "@/server/users/service";
import { DEMO_USERS } from "@/server/demo/seed";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

const hook: { afterApply?: (interventionId: number) => void } = {};
vi.mock("@/server/runs/replay", async (importOriginal) => {
  const original = await importOriginal<typeof import("@/server/runs/replay")>();
  return {
    ...original,
    applyPendingAtBoundaryOn: async (...args: Parameters<typeof original.applyPendingAtBoundaryOn>) => {
      const out = await original.applyPendingAtBoundaryOn(...args);
      const run = hook.afterApply;
      hook.afterApply = undefined;
      run?.(args[1].interventionId);
      return out;
    },
  };
});

let app: TestApp;
const engineer = () => {
  const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
  return { ...app, actor: actorOf(app.db.select().from(users).where(eq(users.email, email)).get()!) };
};
const runRow = (id: number) => app.db.select().from(runs).where(eq(runs.id, id)).get()!;

beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app?.close());

describe("a resume that arrives while the paused worker is still ending", () => {
  it("continues the run from the pause's checkpoint to the straight run's weights", async () => {
    const config = irisConfig({ epochs: 4, seed: 13 });
    const id = createRun(engineer(), { experimentId: app.experimentId, config, rationale: "pause, resume at once" }).id;
    const straight = createRun(engineer(), { experimentId: app.experimentId, config, rationale: "straight through" }).id;
    requestIntervention(engineer(), { runId: id, kind: "pause", rationale: "look at the curves" });
    let resumed: Promise<unknown> | undefined;
    hook.afterApply = () => {
      expect(runRow(id).status).toBe("paused");
      expect(app.orchestrator.isTracking(id)).toBe(true);
      resumed = app.as("engineer").runs.pilot.request({ runId: id, kind: "resume", rationale: "looked, go on" });
    };
    await app.orchestrator.launch(id);
    await app.orchestrator.waitFor(id);
    await resumed;
    await app.orchestrator.waitFor(id);
    expect(runRow(id).status).toBe("completed");
    const resume = app.db.select().from(runInterventions).where(eq(runInterventions.runId, id)).all();
    expect(resume.map((i) => [i.kind, i.status])).toEqual([
      ["pause", "applied"],
      ["resume", "applied"],
    ]);
    await app.orchestrator.launch(straight);
    await app.orchestrator.waitFor(straight);
    expect(runRow(id).finalWeightsSha256).toBe(runRow(straight).finalWeightsSha256);
  }, 120_000);
});
