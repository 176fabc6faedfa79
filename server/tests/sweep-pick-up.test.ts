/**
 * Issue 16, stateless web servers: a sweep outlives the web server that drove it (server/sweeps/pick-up.ts). Services
 * A (a web server's: `recover: true`) create a sweep and drive it; once its second trial exists, A dies (its leases
 * abandoned as a killed process's would be, its store closed) while that trial trains. Services B, started on the
 * same store, resume A's interrupted trial, pick the sweep up at their start and finish it to its budget: every trial
 * index once (one run.create each, no run left over), every trial run completed, sweep.complete once. A paused sweep
 * is not picked up. On SQLite (one data directory) and on PostgreSQL (a scratch database, createPgAppServices). And a
 * server that keeps running (B, started first) picks up a sweep A created by its periodic look, and finishes it when
 * A dies.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asc, eq } from "drizzle-orm";
import { asStore, reader, type Store } from "@/db/store";
import type { SweepSpecInput } from "@/contracts/sweep-spec";
import { asOwnedAppServices, createAppServices, createPgAppServices, type OwnedAppServices } from "@/server/app-context/app-services";
import type { SignedInActor } from "@/server/app-context/service-context";
import { createExperiment, createProject } from "@/server/projects/service";
import { drivenHere } from "@/server/sweeps/driver";
import { launchSweep } from "@/server/sweeps/launch";
import { changeSweepStatus, createSweep } from "@/server/sweeps/service";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";
import { seedPeople, TEST_PEOPLE } from "./store-test-env";
import { irisConfig } from "./test-app";

const engineer = TEST_PEOPLE.engineer as SignedInActor;
const AT = "2026-12-05T10:00:00.000Z";

/** Three short grid trials, one at a time (A dies while the second one trains). */
function spec(name: string): SweepSpecInput {
  return {
    name,
    base: irisConfig({ epochs: 12 }),
    space: { "training.learningRate": { type: "choice", values: [0.05, 0.03, 0.02] } },
    method: "grid",
    budget: { maxTrials: 3, maxParallel: 1 },
    metric: { name: "val_loss", direction: "minimize" },
    seed: 7,
    rationale: "outlives its web server",
  };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function sweepState(store: Store, sweepId: number) {
  const { sweeps, sweepTrials, runs } = store.tables;
  const [sweep] = await reader(store).select({ status: sweeps.status }).from(sweeps).where(eq(sweeps.id, sweepId));
  const trials = await reader(store)
    .select({ index: sweepTrials.trialIndex, runId: sweepTrials.runId, status: runs.status })
    .from(sweepTrials)
    .innerJoin(runs, eq(runs.id, sweepTrials.runId))
    .where(eq(sweepTrials.sweepId, sweepId))
    .orderBy(asc(sweepTrials.trialIndex));
  return { status: sweep!.status, trials };
}

async function eventsOf(store: Store, action: string) {
  const { auditEvents } = store.tables;
  return (await reader(store).select().from(auditEvents).where(eq(auditEvents.action, action)).orderBy(auditEvents.seq)).map((e) => ({
    entityId: e.entityId,
    payload: JSON.parse(e.payload) as Record<string, unknown>,
  }));
}

/**
 * A drives, dies mid-sweep; B, started on the same store after A died, finishes the sweep. With `survivor`, B runs
 * from before the sweep exists and finds it by its periodic look (both servers drive it while A lives), then adopts
 * A's orphaned trial as its recovery timer does. `start` opens a web server's services.
 */
async function outlivesItsServer(start: () => Promise<OwnedAppServices>, opts: { survivor?: boolean } = {}) {
  let b = opts.survivor ? await start() : undefined;
  if (b) expect(await b.sweepsPickedUp).toEqual([]);
  const a = await start();
  const storeA = asStore(a.db);
  expect(await a.sweepsPickedUp).toEqual([]);
  await seedPeople(storeA, { at: AT, passwordHash: "x" });
  const as = { db: a.db, actor: engineer };
  const project = await createProject(as, { name: "Sweeps outlive servers" });
  const experimentId = (await createExperiment(as, { projectId: project.id, name: "iris" })).id;
  const parked = await createSweep(as, { experimentId, spec: spec("parked") });
  await changeSweepStatus(as, "pause", { sweepId: parked.id, rationale: "not now" });
  const { id: sweepId } = await launchSweep({ ...as, artifacts: a.artifacts, dataDir: a.dataDir }, a.orchestrator, {
    experimentId,
    spec: spec("driven"),
  });
  if (b) await until("the surviving server to drive the sweep too", async () => (drivenHere(b!.db, sweepId) ? true : undefined));

  // Trial 1 training: B resumes it (run.interrupted, then its own run.start). Should it end between two looks, the
  // third trial's creation ends the wait and the assertions below say so.
  const atDeath = await until("the sweep's second trial to train", async () => {
    const s = await sweepState(storeA, sweepId);
    return s.trials[1]?.status === "running" || s.trials.length > 2 ? s : undefined;
  });
  a.orchestrator.abandonLeasesForTest();
  await a.close();
  expect(atDeath.status).toBe("running");
  expect(atDeath.trials.map((t) => t.status)).toEqual(["completed", "running"]);

  try {
    if (b) await b.orchestrator.adoptOrphans();
    else {
      b = await start();
      await b.recovered;
      expect(await b.sweepsPickedUp).toEqual([sweepId]);
    }
    const store = asStore(b.db);
    const done = await until("the sweep to complete", async () => {
      const s = await sweepState(store, sweepId);
      return s.status === "completed" ? s : undefined;
    });
    for (const t of done.trials) await b.orchestrator.waitFor(t.runId);
    expect(drivenHere(b.db, parked.id)).toBe(false);
    const final = await sweepState(store, sweepId);
    expect(final.trials.map((t) => t.index)).toEqual([0, 1, 2]);
    expect(new Set(final.trials.map((t) => t.runId)).size).toBe(3);
    expect(final.trials.every((t) => t.status === "completed")).toBe(true);
    const trialCreates = (await eventsOf(store, "run.create")).filter((e) => e.payload.sweepId === sweepId);
    expect(trialCreates.map((e) => e.payload.trialIndex)).toEqual([0, 1, 2]);
    expect(trialCreates.map((e) => Number(e.entityId))).toEqual(final.trials.map((t) => t.runId));
    expect((await eventsOf(store, "sweep.complete")).map((e) => e.entityId)).toEqual([String(sweepId)]);
    // A trained trial 1 when it died (B resumed it), unless the survivor had created and trained it.
    const interrupted = (await eventsOf(store, "run.interrupted")).map((e) => Number(e.entityId));
    if (opts.survivor) expect(interrupted.filter((id) => id !== final.trials[1]!.runId)).toEqual([]);
    else expect(interrupted).toEqual([final.trials[1]!.runId]);
    // The paused sweep stayed as it was: no driver, no trial.
    expect(await sweepState(store, parked.id)).toEqual({ status: "paused", trials: [] });
  } finally {
    await b?.close();
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-sweep-pickup-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("a running sweep outlives its web server (SQLite)", () => {
  it("B, started on A's data directory after A died mid-sweep, finishes it to its budget", async () => {
    const dataDir = path.join(tmp, "data");
    const keyDir = path.join(tmp, "keys");
    const start = async () => asOwnedAppServices(createAppServices(dataDir, { recover: true, backend: "cpu", keyDir }));
    await outlivesItsServer(start);
  }, 240_000);

  it("B, running all along, picks the sweep up by its periodic look and finishes it when A dies", async () => {
    const dataDir = path.join(tmp, "data-survivor");
    const keyDir = path.join(tmp, "keys");
    process.env.RUNLEDGER_SWEEP_PICKUP_MS = "100";
    try {
      const start = async () => asOwnedAppServices(createAppServices(dataDir, { recover: true, backend: "cpu", keyDir }));
      await outlivesItsServer(start, { survivor: true });
    } finally {
      delete process.env.RUNLEDGER_SWEEP_PICKUP_MS;
    }
  }, 240_000);
});

describePg("a running sweep outlives its web server (PostgreSQL)", () => {
  let scratch: ScratchPgDatabase | undefined;
  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
  });
  afterAll(async () => {
    await scratch?.drop();
  });

  it("B, started on A's database after A died mid-sweep, finishes it to its budget", async () => {
    const start = () =>
      createPgAppServices(scratch!.url, {
        localDir: path.join(tmp, "pg-local"),
        keyDir: path.join(tmp, "pg-keys"),
        backend: "cpu",
        recover: true,
        poolSize: 4,
      });
    await outlivesItsServer(start);
  }, 240_000);
});
