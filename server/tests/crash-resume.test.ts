/**
 * Training that survives a crash, and piloting across processes, with real processes: a child process trains a run
 * with `npm run cli -- train` (node --import tsx server/cli/main.ts, so its pid is the trainer's process) on a
 * temporary data directory; the test kills it with SIGKILL once checkpoints exist (waiting on database state, no
 * fixed sleeps), then recovers as a web start does (createAppServices with recover) or with `cli resume`.
 *
 * Invariants checked: the run becomes "interrupted" (event run.interrupted naming its last checkpoint), then completes
 * with the same final weights hash as the same config trained without interruption (checkpoints every epoch); its
 * metric points are exactly the uninterrupted run's (key, step, value) set, none missing, none twice (the summaries
 * count them once); audit verify is clean. A run killed before its first checkpoint restarts from scratch and ends the same. A second process can pause and adjust the run a `cli train` process
 * trains, and a web start meanwhile leaves that run alone (its owner lease is alive).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { and, asc, eq } from "drizzle-orm";
import { auditEvents, checkpoints, metricSummaries, metrics, runInterventions, runLeases, runs, users } from "@/db/schema";
import { createAppServices, type AppServices } from "@/server/app-context/app-services";
import { cancelRun, requestPilotInterventionOn } from "@/server/runs/service";
import { actorOf } from "@/server/users/service";
import { DEMO_USERS } from "@/server/demo/seed";
import { verifyDatabase } from "@/server/audit/verify";
import { irisConfig } from "./test-app";

vi.mock("server-only", () => ({}));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-crash-"));
const keyDir = path.join(tmp, "keys");
const configFile = path.join(tmp, "config.json");
const EPOCHS = 80;
const CLI = ["--import", "tsx", "server/cli/main.ts"];
const childEnv = () => {
  const env = { ...process.env };
  delete env.RUNLEDGER_AUTO_RESUME;
  return env;
};

type TrainJson = { runId: number; status: string; weightsSha256: string | null; checkpoints: { epoch: number }[] };
type Point = { key: string; step: number; value: number };

/** `train` in a child process; resolves with its JSON (the uninterrupted reference). */
function trainToEnd(dataDir: string): Promise<TrainJson> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...CLI, "train", "--config", configFile, "--data-dir", dataDir, "--key-dir", keyDir, "--backend", "cpu", "--json"],
      {
        env: childEnv(),
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as TrainJson) : reject(new Error(`train exited ${code}: ${err}`))));
  });
}

/** Starts `train` in a child process and returns it (the caller kills or awaits it). */
function startTraining(
  dataDir: string,
  config = configFile,
): { child: ChildProcess; exited: Promise<number | null>; stdout: () => string } {
  const child = spawn(
    process.execPath,
    [...CLI, "train", "--config", config, "--data-dir", dataDir, "--key-dir", keyDir, "--backend", "cpu", "--json"],
    {
      env: childEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.resume();
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, stdout: () => out };
}

/** Polls the child's database (read-only connection) until `check` holds. */
async function until(dataDir: string, what: string, check: (db: Database.Database) => boolean, timeoutMs = 120_000): Promise<void> {
  const file = path.join(dataDir, "runledger.sqlite");
  const start = Date.now();
  for (;;) {
    if (fs.existsSync(file)) {
      const db = new Database(file, { readonly: true, fileMustExist: true });
      try {
        db.pragma("busy_timeout = 5000");
        if (check(db)) return;
      } catch {
        // tables not created yet (the child is migrating)
      } finally {
        db.close();
      }
    }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const count = (db: Database.Database, sql: string, ...args: unknown[]) => (db.prepare(sql).get(...args) as { n: number }).n;

function pointsOf(services: Pick<AppServices, "db">, runId: number): Point[] {
  return services.db
    .select({ key: metrics.key, step: metrics.step, value: metrics.value })
    .from(metrics)
    .where(eq(metrics.runId, runId))
    .orderBy(asc(metrics.key), asc(metrics.step))
    .all();
}

let reference: { json: TrainJson; points: Point[]; summaryCounts: Record<string, number> };

beforeAll(async () => {
  fs.mkdirSync(keyDir, { recursive: true });
  const base = irisConfig({ epochs: EPOCHS });
  fs.writeFileSync(configFile, JSON.stringify({ ...base, training: { ...base.training, batchSize: 4, checkpointEvery: 1 } }));
  const dir = path.join(tmp, "reference");
  const json = await trainToEnd(dir);
  const services = createAppServices(dir, { backend: "cpu", keyDir });
  try {
    const summaryCounts = Object.fromEntries(
      services.db
        .select()
        .from(metricSummaries)
        .where(eq(metricSummaries.runId, json.runId))
        .all()
        .map((s) => [s.key, s.count]),
    );
    reference = { json, points: pointsOf(services, json.runId), summaryCounts };
  } finally {
    services.db.$client.close();
  }
}, 180_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Trains in a child, kills it with SIGKILL after `minCheckpoints` checkpoints (and before the end); returns the run id. */
async function trainAndKill(dataDir: string, minCheckpoints: number): Promise<number> {
  const training = startTraining(dataDir);
  await until(dataDir, `${minCheckpoints} checkpoints`, (db) => count(db, "SELECT count(*) AS n FROM checkpoints") >= minCheckpoints);
  training.child.kill("SIGKILL");
  await training.exited;
  const db = new Database(path.join(dataDir, "runledger.sqlite"), { readonly: true });
  try {
    return (db.prepare("SELECT max(id) AS n FROM runs").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

function expectSameAsReference(services: AppServices, runId: number, checkpointEpochs = Array.from({ length: EPOCHS }, (_, i) => i + 1)) {
  const run = services.db.select().from(runs).where(eq(runs.id, runId)).get()!;
  expect(run.status).toBe("completed");
  expect(run.finalWeightsSha256).toBe(reference.json.weightsSha256);
  const epochs = services.db
    .select({ epoch: checkpoints.epoch })
    .from(checkpoints)
    .where(eq(checkpoints.runId, runId))
    .orderBy(asc(checkpoints.epoch))
    .all()
    .map((c) => c.epoch);
  expect(epochs).toEqual(checkpointEpochs);
  // Points: the same (key, step, value) set as the uninterrupted run: none missing, none twice, same values.
  const points = pointsOf(services, runId);
  expect(points.length).toBe(reference.points.length);
  expect(points).toEqual(reference.points);
  const counts = Object.fromEntries(
    services.db
      .select()
      .from(metricSummaries)
      .where(eq(metricSummaries.runId, runId))
      .all()
      .map((s) => [s.key, s.count]),
  );
  expect(counts).toEqual(reference.summaryCounts);
  // The lease is gone once the run ended.
  expect(services.db.select().from(runLeases).where(eq(runLeases.runId, runId)).get()).toBeUndefined();
}

const runEvents = (services: AppServices, runId: number) =>
  services.db
    .select({ action: auditEvents.action, payload: auditEvents.payload })
    .from(auditEvents)
    .where(and(eq(auditEvents.entityType, "run"), eq(auditEvents.entityId, String(runId))))
    .orderBy(asc(auditEvents.seq))
    .all();

describe("training that survives a crash (real processes, kill -9)", () => {
  it("a web start marks the killed run interrupted and resumes it to the uninterrupted weights hash and points", async () => {
    const dataDir = path.join(tmp, "web-recovery");
    const runId = await trainAndKill(dataDir, 3);
    {
      const db = new Database(path.join(dataDir, "runledger.sqlite"), { readonly: true });
      expect((db.prepare("SELECT status FROM runs WHERE id = ?").get(runId) as { status: string }).status).toBe("running");
      expect(count(db, "SELECT count(*) AS n FROM run_leases WHERE run_id = ?", runId)).toBe(1);
      db.close();
    }
    // The web server's own setting (auto) differs: the resumed run asks for the backend it trained on (cpu).
    const services = createAppServices(dataDir, { backend: "auto", keyDir, recover: true });
    try {
      await services.recovered;
      // Marked at once (the resumed training reports "started" later, from its worker).
      const interrupted = runEvents(services, runId).filter((e) => e.action === "run.interrupted");
      expect(interrupted).toHaveLength(1);
      const payload = JSON.parse(interrupted[0]!.payload) as { lastCheckpointEpoch: number; autoResume: boolean };
      expect(payload.lastCheckpointEpoch).toBeGreaterThanOrEqual(3);
      expect(payload.autoResume).toBe(true);
      expect(services.orchestrator.isTracking(runId)).toBe(true);
      await services.orchestrator.waitFor(runId);
      expectSameAsReference(services, runId);
      expect(runEvents(services, runId).map((e) => e.action)).toEqual([
        "run.create",
        "run.start",
        "run.interrupted",
        "run.start",
        "run.complete",
      ]);
      const verified = await verifyDatabase(dataDir, { publicKeyPem: services.auditKeys.publicKeyPem });
      expect(verified.ok, verified.problem ?? JSON.stringify(verified.problems)).toBe(true);
    } finally {
      services.db.$client.close();
    }
  }, 240_000);

  it("with RUNLEDGER_AUTO_RESUME=0 the run stays interrupted; `cli resume` continues it and prints train's JSON", async () => {
    const dataDir = path.join(tmp, "cli-resume");
    const runId = await trainAndKill(dataDir, 2);
    process.env.RUNLEDGER_AUTO_RESUME = "0";
    let services: AppServices;
    try {
      services = createAppServices(dataDir, { backend: "cpu", keyDir, recover: true });
      await services.recovered;
    } finally {
      delete process.env.RUNLEDGER_AUTO_RESUME;
    }
    try {
      expect(services.db.select().from(runs).where(eq(runs.id, runId)).get()!.status).toBe("interrupted");
      expect(services.orchestrator.isTracking(runId)).toBe(false);
    } finally {
      services.db.$client.close();
    }
    const resumed = spawnSync(
      process.execPath,
      [...CLI, "resume", "--run", String(runId), "--data-dir", dataDir, "--key-dir", keyDir, "--backend", "cpu", "--json"],
      {
        env: childEnv(),
        encoding: "utf8",
        timeout: 180_000,
      },
    );
    expect(resumed.status, resumed.stderr).toBe(0);
    const json = JSON.parse(resumed.stdout) as TrainJson;
    expect(Object.keys(json).sort()).toEqual(Object.keys(reference.json).sort());
    expect(json).toMatchObject({ runId, status: "completed", weightsSha256: reference.json.weightsSha256 });
    const after = createAppServices(dataDir, { backend: "cpu", keyDir });
    try {
      expectSameAsReference(after, runId);
      const verified = await verifyDatabase(dataDir, { publicKeyPem: after.auditKeys.publicKeyPem });
      expect(verified.ok, verified.problem ?? JSON.stringify(verified.problems)).toBe(true);
    } finally {
      after.db.$client.close();
    }
  }, 240_000);

  it("`cli resume` right after the kill (no web start between) marks the run interrupted itself", async () => {
    const dataDir = path.join(tmp, "cli-resume-direct");
    const runId = await trainAndKill(dataDir, 1);
    const resumed = spawnSync(
      process.execPath,
      [...CLI, "resume", "--run", String(runId), "--data-dir", dataDir, "--key-dir", keyDir, "--backend", "cpu", "--json"],
      {
        env: childEnv(),
        encoding: "utf8",
        timeout: 180_000,
      },
    );
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ runId, status: "completed", weightsSha256: reference.json.weightsSha256 });
    const after = createAppServices(dataDir, { backend: "cpu", keyDir });
    try {
      expect(runEvents(after, runId).filter((e) => e.action === "run.interrupted")).toHaveLength(1);
      expectSameAsReference(after, runId);
    } finally {
      after.db.$client.close();
    }
  }, 240_000);
});

describe("interrupted before its first checkpoint", () => {
  it("restarts from scratch (the event says so) and still ends with the uninterrupted weights and points", async () => {
    // Checkpoints only at the end: the run has none when it is killed. The cadence changes no weights or metrics.
    const dataDir = path.join(tmp, "from-scratch");
    const sparse = path.join(tmp, "config-sparse.json");
    const config = JSON.parse(fs.readFileSync(configFile, "utf8")) as { training: Record<string, unknown> };
    fs.writeFileSync(sparse, JSON.stringify({ ...config, training: { ...config.training, checkpointEvery: 1000 } }));
    const training = startTraining(dataDir, sparse);
    await until(dataDir, "3 epochs without a checkpoint", (db) => count(db, "SELECT count(*) AS n FROM metrics WHERE key = 'lr'") >= 3);
    training.child.kill("SIGKILL");
    await training.exited;
    const services = createAppServices(dataDir, { backend: "cpu", keyDir, recover: true });
    try {
      await services.recovered;
      const event = runEvents(services, 1).find((e) => e.action === "run.interrupted")!;
      expect(JSON.parse(event.payload)).toMatchObject({
        lastCheckpointId: null,
        lastCheckpointEpoch: null,
        resumeFrom: expect.stringMatching(/^scratch/),
      });
      await services.orchestrator.waitFor(1);
      expectSameAsReference(services, 1, [EPOCHS]);
      const verified = await verifyDatabase(dataDir, { publicKeyPem: services.auditKeys.publicKeyPem });
      expect(verified.ok, verified.problem ?? JSON.stringify(verified.problems)).toBe(true);
    } finally {
      services.db.$client.close();
    }
  }, 240_000);
});

describe("piloting a run another process trains", () => {
  it("a cancel asked for in another process stops the run there (its owner sees the request at its heartbeat)", async () => {
    const dataDir = path.join(tmp, "cross-process-cancel");
    const training = startTraining(dataDir);
    await until(dataDir, "a first checkpoint", (db) => count(db, "SELECT count(*) AS n FROM checkpoints") >= 1);
    const web = createAppServices(dataDir, { backend: "cpu", keyDir, recover: true });
    try {
      await web.recovered;
      const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
      const ctx = { ...web, actor: actorOf(web.db.select().from(users).where(eq(users.email, email)).get()!) };
      expect(await cancelRun(ctx, web.orchestrator, 1, "not needed any more")).toEqual({ ok: true });
      expect(await training.exited).toBe(1);
      expect(JSON.parse(training.stdout())).toMatchObject({ runId: 1, status: "cancelled" });
      expect(
        runEvents(web, 1)
          .map((e) => e.action)
          .slice(-2),
      ).toEqual(["run.cancelRequest", "run.cancel"]);
      expect(web.db.select().from(runLeases).where(eq(runLeases.runId, 1)).get()).toBeUndefined();
    } finally {
      if (training.child.exitCode === null) training.child.kill("SIGKILL");
      web.db.$client.close();
    }
  }, 240_000);

  it("a web start leaves a live CLI run alone; a second process sets the rate and pauses it; the resume continues here", async () => {
    const dataDir = path.join(tmp, "cross-process");
    const training = startTraining(dataDir);
    await until(dataDir, "a first checkpoint", (db) => count(db, "SELECT count(*) AS n FROM checkpoints") >= 1);
    // A web server starting now must not touch the run: its owner (the child) is alive.
    const web = createAppServices(dataDir, { backend: "cpu", keyDir, recover: true });
    try {
      await web.recovered;
      const runId = 1;
      expect(web.db.select().from(runs).where(eq(runs.id, runId)).get()!.status).toBe("running");
      expect(runEvents(web, runId).some((e) => e.action === "run.interrupted")).toBe(false);
      expect(web.orchestrator.isTracking(runId)).toBe(false);

      const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
      const ctx = { ...web, actor: actorOf(web.db.select().from(users).where(eq(users.email, email)).get()!) };
      const set = await requestPilotInterventionOn(ctx, web.orchestrator, {
        runId,
        kind: "set",
        set: { "training.learningRate": 0.01 },
        rationale: "calmer steps, from another process",
      });
      const pause = await requestPilotInterventionOn(ctx, web.orchestrator, { runId, kind: "pause", rationale: "look at the curves" });
      // The child applies both at its next epoch boundary, parks the run as paused and exits (its run is no longer training).
      const code = await training.exited;
      expect(code).toBe(1); // train exits non-zero unless the run completed
      expect(JSON.parse(training.stdout())).toMatchObject({ runId, status: "paused" });
      const row = (id: number) => web.db.select().from(runInterventions).where(eq(runInterventions.id, id)).get()!;
      expect(row(set.id)).toMatchObject({ status: "applied" });
      expect(row(pause.id)).toMatchObject({ status: "applied" });
      expect(row(set.id).appliedAtEpoch).toBe(row(pause.id).appliedAtEpoch);
      expect(web.db.select().from(runLeases).where(eq(runLeases.runId, runId)).get()).toBeUndefined();

      // Resumed from a third process (`cli pilot --resume`, which has no orchestrator): the server's recovery timer
      // (adoptOrphans) launches it here; it continues from the pause's checkpoint and completes.
      const pilot = spawnSync(
        process.execPath,
        [
          ...CLI,
          "pilot",
          "--run",
          String(runId),
          "--resume",
          "--rationale",
          "curves look fine",
          "--data-dir",
          dataDir,
          "--key-dir",
          keyDir,
          "--json",
        ],
        { env: childEnv(), encoding: "utf8", timeout: 60_000 },
      );
      expect(pilot.status, pilot.stderr).toBe(0);
      expect(web.orchestrator.isTracking(runId)).toBe(false);
      await web.orchestrator.adoptOrphans();
      expect(web.orchestrator.isTracking(runId)).toBe(true);
      await web.orchestrator.waitFor(runId);
      const run = web.db.select().from(runs).where(eq(runs.id, runId)).get()!;
      expect(run.status).toBe("completed");
      const lr = web.db
        .select({ epoch: metrics.epoch, value: metrics.value })
        .from(metrics)
        .where(and(eq(metrics.runId, runId), eq(metrics.key, "lr")))
        .orderBy(asc(metrics.step))
        .all();
      expect(lr).toHaveLength(EPOCHS);
      const at = row(set.id).appliedAtEpoch!;
      expect(lr.filter((p) => p.epoch <= at).every((p) => p.value === 0.03)).toBe(true);
      expect(lr.filter((p) => p.epoch > at).every((p) => p.value === 0.01)).toBe(true);
      const verified = await verifyDatabase(dataDir, { publicKeyPem: web.auditKeys.publicKeyPem });
      expect(verified.ok, verified.problem ?? JSON.stringify(verified.problems)).toBe(true);
    } finally {
      if (training.child.exitCode === null) training.child.kill("SIGKILL");
      web.db.$client.close();
    }
  }, 240_000);
});
