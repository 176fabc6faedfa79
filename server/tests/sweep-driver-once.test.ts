/**
 * One driver per sweep and process (server/sweeps/driver.ts, pick-up.ts). In the web server the pick-up runs in the
 * services instrumentation.ts starts, while the sweep verbs run in a route bundle, each with its own copy of
 * driver.ts (simulated here by a second module graph, vi.resetModules): a sweep created through the route's copy
 * must be found driven by the pick-up's copy, which must not start a driver of its own nor log "picked up from the
 * store". And a pick-up look that reads the sweep between its creation's commit and its driver's registration waits
 * for that registration instead of starting a second driver.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { asStore } from "@/db/store";
import type { SweepSpecInput } from "@/contracts/sweep-spec";
import { asOwnedAppServices, createAppServices } from "@/server/app-context/app-services";
import type { SignedInActor } from "@/server/app-context/service-context";
import { createExperiment, createProject } from "@/server/projects/service";
import { driveSweep, sweepsDrivenHere, startsDriver } from "@/server/sweeps/driver";
import { driveRunningSweeps } from "@/server/sweeps/pick-up";
import { changeSweepStatus, createSweep } from "@/server/sweeps/service";
import { seedPeople, TEST_PEOPLE } from "./store-test-env";
import { irisConfig } from "./test-app";

const engineer = TEST_PEOPLE.engineer as SignedInActor;
const AT = "2026-12-05T10:00:00.000Z";

function spec(name: string): SweepSpecInput {
  return {
    name,
    base: irisConfig({ epochs: 2 }),
    space: { "training.learningRate": { type: "choice", values: [0.05, 0.03] } },
    method: "grid",
    budget: { maxTrials: 2, maxParallel: 1 },
    metric: { name: "val_loss", direction: "minimize" },
    seed: 7,
    rationale: "driven once",
  };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-sweep-once-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function openServer(name: string) {
  const s = asOwnedAppServices(createAppServices(path.join(tmp, name), { recover: true, backend: "cpu", keyDir: path.join(tmp, "keys") }));
  expect(await s.sweepsPickedUp).toEqual([]);
  await seedPeople(asStore(s.db), { at: AT, passwordHash: "x" });
  const as = { db: s.db, actor: engineer };
  const project = await createProject(as, { name: `Once ${name}` });
  const experimentId = (await createExperiment(as, { projectId: project.id, name: "iris" })).id;
  return { s, as, experimentId };
}

describe("a process drives a sweep it creates once", () => {
  it("the pick-up (instrumentation's copy of driver.ts) finds a sweep the route's copy created driven, and starts none", async () => {
    process.env.RUNLEDGER_SWEEP_PICKUP_MS = "5";
    const log = vi.spyOn(console, "log");
    const { s, as, experimentId } = await openServer("bundles");
    try {
      vi.resetModules();
      const routeCopy = await import("@/server/sweeps/launch");
      const { id } = await routeCopy.launchSweep({ ...as, artifacts: s.artifacts, dataDir: s.dataDir }, s.orchestrator, {
        experimentId,
        spec: spec("route"),
      });
      expect(sweepsDrivenHere(s.db)).toEqual([id]);
      // Several pick-up looks (every 5 ms) while the sweep runs.
      await new Promise((r) => setTimeout(r, 200));
      expect(sweepsDrivenHere(s.db)).toEqual([id]);
      expect(await driveRunningSweeps(s, s.orchestrator)).toEqual([]);
      expect(log.mock.calls.filter((c) => String(c[0]).includes("picked up from the store"))).toEqual([]);
      await changeSweepStatus(as, "stop", { sweepId: id, rationale: "enough" });
      await driveSweep(s, s.orchestrator, id);
      expect(sweepsDrivenHere(s.db)).toEqual([]);
    } finally {
      delete process.env.RUNLEDGER_SWEEP_PICKUP_MS;
      log.mockRestore();
      for (const runId of s.orchestrator.trackedRuns()) await s.orchestrator.waitFor(runId);
      await s.close();
    }
  }, 120_000);

  it("a pick-up look between the creation's commit and its driver's registration waits for it and starts none", async () => {
    const { s, as, experimentId } = await openServer("race");
    try {
      let lookedBetween: Promise<number[]> | undefined;
      const created = await startsDriver(
        s.db,
        async () => {
          const sweep = await createSweep(as, { experimentId, spec: spec("race") });
          // Committed, not yet driven: a pick-up look now reads the sweep as running.
          lookedBetween = driveRunningSweeps(s, s.orchestrator);
          await new Promise((r) => setTimeout(r, 50));
          return sweep;
        },
        (sweep) => void driveSweep(s, s.orchestrator, sweep.id).catch(() => undefined),
      );
      expect(await lookedBetween).toEqual([]);
      expect(sweepsDrivenHere(s.db)).toEqual([created.id]);
      await changeSweepStatus(as, "stop", { sweepId: created.id, rationale: "enough" });
      await driveSweep(s, s.orchestrator, created.id);
    } finally {
      for (const runId of s.orchestrator.trackedRuns()) await s.orchestrator.waitFor(runId);
      await s.close();
    }
  }, 120_000);
});
