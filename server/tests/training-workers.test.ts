/**
 * Training workers (issue 16) with real processes on one SQLite data directory: `npm run worker` processes
 * (node --import tsx server/worker/main.ts, so each pid is the worker's) take queued runs from the workers' queue
 * (server/runs/orchestrator/run-queue.ts) and train them on Iris; the test waits on database state only (no fixed
 * sleeps).
 *
 * Checked: a long run queued with `cli train --enqueue --json` and six small runs queued through the web server's
 * path (launchRun on a RUNLEDGER_TRAINING=workers orchestrator) all complete exactly once (each small run claimed by
 * one worker, one run.start and one run.complete); the worker training the long run is killed with SIGKILL, another
 * worker takes it over (run.interrupted, resume from the last checkpoint); a pause recorded in this process reaches
 * the worker holding the run at its next epoch boundary, and the resume re-queues it; the worker then holding it gets
 * SIGTERM, exits 0 and hands it back (run.interrupted with that reason); the run ends with exactly the weights hash and
 * checkpoints of the same config trained uninterrupted by `cli train` (same seed, backend cpu), and `train --enqueue`
 * prints the same JSON as `train`. `audit verify` is clean afterwards.
 */
import { afterAll, describe, expect, it, vi } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { and, asc, eq } from "drizzle-orm";
import { auditEvents, experiments, runInterventions, users } from "@/db/schema";
import { createAppServices, trainingModeFromEnv } from "@/server/app-context/app-services";
import { cancelRun, launchRun, requestPilotInterventionOn } from "@/server/runs/service";
import { LeaseHolder, runHolder } from "@/server/runs/orchestrator/leases";
import { auditEvents as ledger, checkpoints, runs, sweepTrials } from "@/db/schema";
import { createSweep } from "@/server/sweeps/service";
import { driveSweep } from "@/server/sweeps/driver";
import { actorOf } from "@/server/users/service";
import { DEMO_USERS, ensureDemoUsersAndProject } from "@/server/demo/seed";
import { verifyDatabase } from "@/server/audit/verify";
import { irisConfig } from "./test-app";
import { settleWithin } from "./settle-within";

vi.mock("server-only", () => ({}));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-workers-"));
const keyDir = path.join(tmp, "keys");
const dataDir = path.join(tmp, "workers");
const longConfigFile = path.join(tmp, "long.json");
const LONG_EPOCHS = 40;
const ASHA_EPOCHS = 40;
const SMALL_RUNS = 6;
const TSX = ["--import", "tsx"];
const childEnv = () => {
  const env: NodeJS.ProcessEnv = { ...process.env, RUNLEDGER_WORKER_POLL_MS: "100", RUNLEDGER_LEASE_HEARTBEAT_MS: "500" };
  delete env.RUNLEDGER_AUTO_RESUME;
  delete env.RUNLEDGER_TRAINING;
  return env;
};

type TrainJson = { runId: number; status: string; weightsSha256: string | null } & Record<string, unknown>;
type Child = {
  child: ChildProcess;
  /** "worker": runs until the test stops it; "cli": ends by itself, with exit code 0. */
  role: "worker" | "cli";
  exited: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  /** Set when the test sends it a signal: its exit is then expected. */
  signalled: boolean;
};

function start(args: string[], role: Child["role"]): Child {
  const child = spawn(process.execPath, [...TSX, ...args], { env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, role, exited, stdout: () => out, stderr: () => err, signalled: false };
}

/** The test stops a child: its exit is expected from now on. */
function signal(c: Child, sig: NodeJS.Signals) {
  c.signalled = true;
  c.child.kill(sig);
}

const childName = (c: Child) => `${c.role === "worker" ? "worker" : c.child.spawnargs.slice(3, 5).join(" ")} (pid ${c.child.pid})`;

/**
 * A child that ended on its own when it should not have (a worker the test did not stop, a CLI that failed): the
 * steps waiting on it can never finish, so they fail at once with what it said instead of waiting out their bound.
 */
function unexpectedExit(): string | undefined {
  for (const c of children) {
    const { exitCode, signalCode } = c.child;
    if (c.signalled || (exitCode === null && signalCode === null)) continue;
    if (c.role === "worker" || exitCode !== 0)
      return `${childName(c)} exited by itself (code ${exitCode}, signal ${signalCode}):\n${c.stdout().slice(-2000)}\n${c.stderr().slice(-2000)}`;
  }
  return undefined;
}

/** What the processes said, for a failure report. */
function printChildren() {
  for (const c of children) console.error(`--- ${childName(c)}\n${c.stdout()}\n${c.stderr()}`);
}

/** Thrown by a check whose state can no longer come (the run ended, the intervention was rejected): no waiting it out. */
class CannotHappen extends Error {}

/**
 * The multi-process test's own deadline: every wait ends by it, so a stuck step fails naming itself (and the
 * processes' output is printed) before the test runner's timeout, which would stop the test without either.
 */
const MULTI_PROCESS_TIMEOUT_MS = 420_000;
let testDeadline = Infinity;
const boundedWait = (ms: number) => Math.max(1_000, Math.min(ms, testDeadline - Date.now()));

const startWorker = () =>
  start(["server/worker/main.ts", "--data-dir", dataDir, "--key-dir", keyDir, "--backend", "cpu", "--concurrency", "1"], "worker");
const cliTrain = (dir: string, extra: string[]) =>
  start(["server/cli/main.ts", "train", "--config", longConfigFile, "--data-dir", dir, "--key-dir", keyDir, "--json", ...extra], "cli");

/**
 * Polls the shared database (a read-only connection) until `check` returns a value. Fails at once when a child
 * ended unexpectedly or `check` throws CannotHappen; otherwise after `timeoutMs` (never past the test's deadline),
 * naming the step and the last error the check met.
 */
async function until<T>(what: string, check: (db: Database.Database) => T | undefined | false, timeoutMs = 150_000): Promise<T> {
  if (process.env.RUNLEDGER_TEST_TRACE) console.log(`${new Date().toISOString()} waiting for ${what}`);
  const file = path.join(dataDir, "runledger.sqlite");
  const startedAt = Date.now();
  const bound = boundedWait(timeoutMs);
  let lastError = "";
  for (;;) {
    if (fs.existsSync(file)) {
      const db = new Database(file, { readonly: true, fileMustExist: true });
      try {
        db.pragma("busy_timeout = 5000");
        const v = check(db);
        if (v !== undefined && v !== false) return v;
      } catch (err) {
        if (err instanceof CannotHappen) throw new Error(`waiting for ${what}: ${err.message}`);
        // tables not created yet (a process is migrating), or a busy database
        lastError = (err as Error).message;
      } finally {
        db.close();
      }
    }
    const dead = unexpectedExit();
    if (dead) throw new Error(`waiting for ${what}: ${dead}`);
    if (Date.now() - startedAt > bound)
      throw new Error(`timed out after ${Math.round(bound / 1000)} s waiting for ${what}${lastError ? ` (last error: ${lastError})` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const one = <T>(db: Database.Database, sql: string, ...args: unknown[]) => db.prepare(sql).get(...args) as T | undefined;
const checkpointsOf = (db: Database.Database, runId: number) =>
  one<{ n: number }>(db, "SELECT count(*) AS n FROM checkpoints WHERE run_id = ?", runId)!.n;
const leaseOf = (db: Database.Database, runId: number) =>
  one<{ owner: string; pid: number; host: string }>(db, "SELECT owner, pid, host FROM run_leases WHERE run_id = ?", runId);

/**
 * A child's exit, or an error naming `what` after `ms` (never past the test's deadline), so a stuck step fails with
 * the processes' output (below).
 */
function exitWithin(c: Child, what: string, ms = 150_000): Promise<number | null> {
  const bound = boundedWait(ms);
  return settleWithin(c.exited, bound, () => `timed out after ${Math.round(bound / 1000)} s waiting for ${what} to exit`);
}

/** The long run's status; a final one before the test expects it means the step it waits for can never come. */
function longRunNotEnded(db: Database.Database, runId: number, step: string): string {
  const status = one<{ status: string }>(db, "SELECT status FROM runs WHERE id = ?", runId)!.status;
  if (status === "completed" || status === "failed" || status === "cancelled")
    throw new CannotHappen(`the long run ${runId} ended ${status} before ${step}`);
  return status;
}

const children: Child[] = [];
afterAll(() => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) signal(c, "SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("the training workers' queue (one process, no training)", () => {
  it("a queued run is claimed exactly once, is left alone by in-process servers, shows its holder, and a cancel takes it out", async () => {
    const dir = path.join(tmp, "queue-unit");
    fs.mkdirSync(keyDir, { recursive: true });
    const web = createAppServices(dir, { keyDir, training: "workers" });
    const inProcess = createAppServices(dir, { keyDir });
    try {
      const { experimentId } = ensureDemoUsersAndProject(web);
      const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
      const ctx = { ...web, actor: actorOf(web.db.select().from(users).where(eq(users.email, email)).get()!) };
      const first = await launchRun(ctx, web.orchestrator, { experimentId, config: irisConfig(), rationale: "queued for the workers" });
      const second = await launchRun(ctx, web.orchestrator, {
        experimentId,
        config: irisConfig({ seed: 2 }),
        rationale: "cancelled while queued",
      });
      expect(web.orchestrator.isTracking(first.id)).toBe(false);
      expect(runHolder(web.db, first.id)).toMatchObject({ kind: "queue", host: null, pid: null });

      // A server training in-process leaves runs queued for the workers alone (also at a start's recovery).
      await inProcess.orchestrator.recoverInterrupted();
      expect(await inProcess.orchestrator.launch(first.id)).toBe(false);
      expect(inProcess.orchestrator.isTracking(first.id)).toBe(false);

      // Two workers claim at once: the oldest entry goes to exactly one of them.
      const a = new LeaseHolder(web.db, "worker");
      const b = new LeaseHolder(web.db, "worker");
      const claimedA = await web.orchestrator.queue!.claim(a, 1);
      const claimedB = await web.orchestrator.queue!.claim(b, 5);
      expect(claimedA.map((c) => c.runId)).toEqual([first.id]);
      expect(claimedB.map((c) => c.runId)).toEqual([second.id]);
      expect(await web.orchestrator.queue!.claim(a, 5)).toEqual([]);
      expect(runHolder(web.db, first.id)).toMatchObject({ kind: "worker", host: os.hostname(), pid: process.pid, alive: true });
      // Handed back (a worker's SIGTERM): queued again, claimable by the other worker only once.
      await web.orchestrator.queue!.giveBack(b, second.id, claimedB[0]!.enqueuedSeq);
      expect(runHolder(web.db, second.id)).toMatchObject({ kind: "queue" });
      // A cancel of a run no worker holds takes it out of the queue and ends it here, with its lease gone.
      expect(await cancelRun(ctx, web.orchestrator, second.id, "not needed any more")).toEqual({ ok: true });
      expect(web.db.select({ status: runs.status }).from(runs).where(eq(runs.id, second.id)).get()!.status).toBe("cancelled");
      expect(runHolder(web.db, second.id)).toBeNull();
      expect(await web.orchestrator.queue!.claim(a, 5)).toEqual([]);
      const actions = web.db
        .select({ action: ledger.action })
        .from(ledger)
        .where(and(eq(ledger.entityType, "run"), eq(ledger.entityId, String(second.id))))
        .all()
        .map((e) => e.action);
      expect(actions.slice(-2)).toEqual(["run.cancelRequest", "run.cancel"]);
      // A server that trains in-process cancels a run queued for the workers too (taken out of the queue the same way).
      const third = await launchRun(ctx, web.orchestrator, {
        experimentId,
        config: irisConfig({ seed: 3 }),
        rationale: "queued, cancelled in-process",
      });
      const inProcessCtx = { ...inProcess, actor: ctx.actor };
      expect(await cancelRun(inProcessCtx, inProcess.orchestrator, third.id, "not needed any more")).toEqual({ ok: true });
      expect(web.db.select({ status: runs.status }).from(runs).where(eq(runs.id, third.id)).get()!.status).toBe("cancelled");
      expect(runHolder(web.db, third.id)).toBeNull();
      a.abandon();
      b.abandon();
    } finally {
      inProcess.db.$client.close();
      web.db.$client.close();
    }
  });
});

describe("settings and arguments", () => {
  it("RUNLEDGER_TRAINING is in-process (default) or workers; anything else stops the server with a clear error", () => {
    expect(trainingModeFromEnv({})).toBe("in-process");
    expect(trainingModeFromEnv({ RUNLEDGER_TRAINING: "workers" })).toBe("workers");
    expect(() => trainingModeFromEnv({ RUNLEDGER_TRAINING: "worker" })).toThrow(
      'RUNLEDGER_TRAINING must be "in-process" or "workers" (training worker processes, npm run worker); got "worker"',
    );
  });

  it("npm run worker refuses a bad --concurrency, --backend or option, and train --enqueue a --backend, with exit code 2, before opening anything", () => {
    const dir = path.join(tmp, "never-created");
    for (const [args, message] of [
      [["--concurrency", "0"], 'worker: --concurrency must be a whole number from 1 to 64, got "0"'],
      [["--backend", "gpu"], 'worker: --backend takes auto, tensorflow, wasm, cpu, not "gpu"'],
      [["--bogus"], "worker: Unknown option '--bogus'"],
    ] as const) {
      const out = spawnSync(process.execPath, [...TSX, "server/worker/main.ts", "--data-dir", dir, ...args], {
        env: childEnv(),
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(out.status, out.stderr).toBe(2);
      expect(out.stderr).toContain(message);
    }
    // `train --enqueue` leaves the backend to the worker: a --backend is refused.
    const train = spawnSync(
      process.execPath,
      [...TSX, "server/cli/main.ts", "train", "--config", "examples/iris-mlp.json", "--data-dir", dir, "--enqueue", "--backend", "cpu"],
      { env: childEnv(), encoding: "utf8", timeout: 60_000 },
    );
    expect(train.status, train.stderr).toBe(2);
    expect(train.stderr).toContain(
      "train: --backend cannot be combined with --enqueue (the worker that trains the run chooses its backend)",
    );
    expect(fs.existsSync(dir)).toBe(false);
  }, 120_000);
});

describe("a sweep with training workers (one process, real training)", () => {
  it("a trial stopped by ASHA in the web server's driver is cancelled by the worker training it", async () => {
    process.env.RUNLEDGER_LEASE_HEARTBEAT_MS = "200";
    const dir = path.join(tmp, "sweep-workers");
    fs.mkdirSync(keyDir, { recursive: true });
    const web = createAppServices(dir, { keyDir, training: "workers", backend: "cpu" });
    const worker = createAppServices(dir, { keyDir, training: "worker", backend: "cpu" });
    let stopping = false;
    const claimed: number[] = [];
    // The worker's loop (server/worker/main.ts): a busy database fails one round, the next tries again. Its errors are
    // kept for the failure message.
    const loopErrors: string[] = [];
    const loop = (async () => {
      while (!stopping) {
        try {
          for (const c of await worker.orchestrator.queue!.claim(worker.orchestrator.leases, worker.orchestrator.freeSlots())) {
            claimed.push(c.runId);
            await worker.orchestrator.trainClaimed(c.runId, c.enqueuedSeq);
          }
        } catch (err) {
          loopErrors.push((err as Error).message);
        }
        await worker.orchestrator.queue!.waitForWork(50);
      }
    })();
    try {
      const { experimentId } = ensureDemoUsersAndProject(web);
      const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
      const ctx = { ...web, actor: actorOf(web.db.select().from(users).where(eq(users.email, email)).get()!) };
      // Epochs long enough (batches of 2) that the stop, which reaches the worker up to a driver poll (150 ms) plus a
      // heartbeat (200 ms) after rung 2, lands well before the poor trial's last epoch even on a quiet machine.
      const iris = irisConfig({ epochs: ASHA_EPOCHS });
      const base = { ...iris, training: { ...iris.training, batchSize: 2 } };
      const sweep = await createSweep(ctx, {
        experimentId,
        spec: {
          name: "asha-on-workers",
          base,
          method: "grid",
          space: { "training.learningRate": { type: "choice", values: [0.05, 0.00001] } },
          budget: { maxTrials: 2, maxParallel: 1 },
          metric: { name: "val_loss", direction: "minimize" },
          earlyTermination: { type: "asha", rungs: [2], eta: 2 },
          seed: 11,
          rationale: "stop the tiny rate early, on the workers",
        },
      });
      // Bounded below the test's timeout, so a sweep that never ends fails saying so (and what the worker loop met).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        driveSweep(web, web.orchestrator, sweep.id),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const trials = web.db.select().from(sweepTrials).where(eq(sweepTrials.sweepId, sweep.id)).all();
            const states = trials.map((t) => `run ${t.runId}: ${web.db.select().from(runs).where(eq(runs.id, t.runId)).get()!.status}`);
            reject(
              new Error(
                `the sweep did not end within 150 s; trials ${states.join(", ") || "none"}; claimed by the worker: ${claimed.join(", ") || "none"}; worker loop errors: ${loopErrors.join(" | ") || "none"}`,
              ),
            );
          }, 150_000);
        }),
      ]).finally(() => clearTimeout(timer));
      const trials = web.db.select().from(sweepTrials).where(eq(sweepTrials.sweepId, sweep.id)).orderBy(sweepTrials.trialIndex).all();
      expect(trials).toHaveLength(2);
      // Both trials were trained by the worker (the web server's orchestrator trained nothing).
      expect(claimed.sort()).toEqual(trials.map((t) => t.runId).sort());
      const status = (id: number) => web.db.select().from(runs).where(eq(runs.id, id)).get()!;
      expect(status(trials[0]!.runId).status).toBe("completed");
      expect(trials[1]!.stoppedAtRung).toBe(2);
      expect(status(trials[1]!.runId).status).toBe("cancelled");
      const poorEpochs = web.db.select().from(checkpoints).where(eq(checkpoints.runId, trials[1]!.runId)).all().length;
      expect(poorEpochs).toBeLessThan(ASHA_EPOCHS);
    } finally {
      stopping = true;
      await loop;
      worker.db.$client.close();
      web.db.$client.close();
    }
  }, 180_000);
});

describe("training workers (real processes on one data directory)", () => {
  it("2 workers train queued runs exactly once; a killed worker's run is resumed by another, piloted and handed back, to the uninterrupted weights", async () => {
    // Every wait below ends by this deadline, 20 s before the runner's timeout: time to print the processes' output.
    testDeadline = Date.now() + MULTI_PROCESS_TIMEOUT_MS - 20_000;
    fs.mkdirSync(keyDir, { recursive: true });
    const base = irisConfig({ epochs: LONG_EPOCHS });
    fs.writeFileSync(longConfigFile, JSON.stringify({ ...base, training: { ...base.training, batchSize: 4, checkpointEvery: 1 } }));

    // The reference: the same config trained without interruption by `cli train` in its own data directory.
    const reference = cliTrain(path.join(tmp, "reference"), ["--backend", "cpu"]);
    // The long run, queued for the workers by `train --enqueue` (which waits for its end), then two workers.
    const enqueued = cliTrain(dataDir, ["--enqueue"]);
    const workers = [startWorker(), startWorker()];
    children.push(reference, enqueued, ...workers);
    const longRunId = 1;
    await until("the long run queued", (db) => one(db, "SELECT id FROM runs WHERE id = ?", longRunId) !== undefined).catch(
      (err: unknown) => {
        printChildren();
        throw err;
      },
    );

    // Six small runs through the web server's path with RUNLEDGER_TRAINING=workers: launchRun enqueues, trains nothing here.
    const web = createAppServices(dataDir, { keyDir, training: "workers" });
    try {
      const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
      const ctx = { ...web, actor: actorOf(web.db.select().from(users).where(eq(users.email, email)).get()!) };
      const experimentId = web.db.select({ id: experiments.id }).from(experiments).where(eq(experiments.name, "cli")).get()!.id;
      const small: number[] = [];
      for (let i = 0; i < SMALL_RUNS; i++)
        small.push(
          (
            await launchRun(ctx, web.orchestrator, {
              experimentId,
              config: irisConfig({ epochs: 3, seed: 10 + i }),
              rationale: `small queued run ${i + 1}`,
            })
          ).id,
        );
      expect(web.orchestrator.isTracking(small[0]!)).toBe(false);

      // The worker that holds the long run is killed once it has written 3 checkpoints.
      const victimPid = await until("3 checkpoints of the long run, held by a worker", (db) => {
        longRunNotEnded(db, longRunId, "a worker was killed");
        const lease = leaseOf(db, longRunId);
        return checkpointsOf(db, longRunId) >= 3 && lease?.owner.startsWith("worker:") ? lease.pid : undefined;
      });
      const victim = workers.find((w) => w.child.pid === victimPid)!;
      expect(victim).toBeDefined();
      signal(victim, "SIGKILL");
      await victim.exited;
      const replacement = startWorker();
      children.push(replacement);
      const live = [...workers.filter((w) => w !== victim), replacement];

      // Another worker takes it over from its last checkpoint, and a pause recorded here reaches it at a boundary.
      const takenBy = await until("the long run taken over by a live worker", (db) => {
        const lease = leaseOf(db, longRunId);
        const status = longRunNotEnded(db, longRunId, "another worker took it over");
        return status === "running" && lease && lease.pid !== victimPid && lease.owner.startsWith("worker:") ? lease.pid : undefined;
      });
      const pause = await requestPilotInterventionOn(ctx, web.orchestrator, {
        runId: longRunId,
        kind: "pause",
        rationale: "look at the curves",
      });
      await until("the pause applied by the worker", (db) => {
        // A pause rejected or withdrawn (e.g. the run ended before a boundary) never parks the run: say so now.
        const closed = one<{ status: string; closeReason: string | null }>(
          db,
          "SELECT status, close_reason AS closeReason FROM run_interventions WHERE id = ?",
          pause.id,
        )!;
        if (closed.status === "rejected" || closed.status === "cancelled")
          throw new CannotHappen(`the pause was ${closed.status}: ${closed.closeReason ?? ""}`);
        return longRunNotEnded(db, longRunId, "the pause took effect") === "paused" && !leaseOf(db, longRunId);
      });
      const applied = web.db.select().from(runInterventions).where(eq(runInterventions.id, pause.id)).get()!;
      expect(applied.status).toBe("applied");
      const pausedAt = applied.appliedAtEpoch!;
      expect(pausedAt).toBeLessThan(LONG_EPOCHS);

      // The resume re-queues it (launch on a workers' orchestrator); the worker that then holds it gets SIGTERM.
      await requestPilotInterventionOn(ctx, web.orchestrator, { runId: longRunId, kind: "resume", rationale: "curves look fine" });
      const holderPid = await until("the resumed run 2 epochs further, held by a worker", (db) => {
        longRunNotEnded(db, longRunId, "the worker holding it after the resume got SIGTERM");
        const lease = leaseOf(db, longRunId);
        return checkpointsOf(db, longRunId) >= pausedAt + 2 && lease?.owner.startsWith("worker:") ? lease.pid : undefined;
      });
      const holder = live.find((w) => w.child.pid === holderPid)!;
      expect(holder).toBeDefined();
      signal(holder, "SIGTERM");
      expect(await exitWithin(holder, "the worker given SIGTERM")).toBe(0);
      expect(holder.stdout()).toContain(`handed run ${longRunId} back to the queue`);

      // The last worker (or the replacement) finishes it; `train --enqueue` prints the same JSON as `train`.
      const [code, refCode] = await Promise.all([exitWithin(enqueued, "train --enqueue"), exitWithin(reference, "the reference train")]);
      expect(refCode, reference.stderr()).toBe(0);
      expect(code, enqueued.stderr()).toBe(0);
      const ref = JSON.parse(reference.stdout()) as TrainJson;
      const out = JSON.parse(enqueued.stdout()) as TrainJson;
      expect(Object.keys(out)).toEqual(Object.keys(ref));
      expect(out.status).toBe("completed");
      expect(out.weightsSha256).toBe(ref.weightsSha256);
      expect({ ...out, runId: 0 }).toEqual({ ...ref, runId: 0 });

      // Every small run completed exactly once, claimed by exactly one worker.
      await until("all small runs completed", (db) =>
        small.every((id) => {
          const status = one<{ status: string }>(db, "SELECT status FROM runs WHERE id = ?", id)!.status;
          if (status === "failed" || status === "cancelled") throw new CannotHappen(`small run ${id} ended ${status}`);
          return status === "completed";
        }),
      );
      const logs = [...workers, replacement].map((w) => w.stdout()).join("\n");
      for (const id of small) {
        const actions = web.db
          .select({ action: auditEvents.action })
          .from(auditEvents)
          .where(and(eq(auditEvents.entityType, "run"), eq(auditEvents.entityId, String(id))))
          .orderBy(asc(auditEvents.seq))
          .all()
          .map((e) => e.action);
        expect(actions.filter((a) => a === "run.start")).toHaveLength(1);
        expect(actions.filter((a) => a === "run.complete" || a === "run.fail" || a === "run.cancel")).toEqual(["run.complete"]);
        expect(logs.match(new RegExp(`claimed run ${id} \\(`, "g")) ?? []).toHaveLength(1);
      }
      // The long run: interrupted twice (the kill, then the SIGTERM with its reason), started 4 times, completed once.
      const longEvents = web.db
        .select({ action: auditEvents.action, payload: auditEvents.payload })
        .from(auditEvents)
        .where(and(eq(auditEvents.entityType, "run"), eq(auditEvents.entityId, String(longRunId))))
        .orderBy(asc(auditEvents.seq))
        .all();
      const interrupted = longEvents.filter((e) => e.action === "run.interrupted").map((e) => JSON.parse(e.payload) as { reason: string });
      expect(interrupted).toHaveLength(2);
      expect(interrupted[1]!.reason).toContain("SIGTERM");
      expect(longEvents.filter((e) => e.action === "run.start")).toHaveLength(4);
      expect(longEvents.filter((e) => e.action === "run.complete")).toHaveLength(1);
      expect(takenBy).not.toBe(victimPid);

      // Idle workers stop cleanly; the ledger verifies.
      const remaining = live.filter((w) => w !== holder);
      for (const w of remaining) signal(w, "SIGTERM");
      for (const w of remaining) expect(await exitWithin(w, "an idle worker given SIGTERM")).toBe(0);
      expect(await until("no lease left", (db) => one<{ n: number }>(db, "SELECT count(*) AS n FROM run_leases")!.n === 0)).toBe(true);
      const verified = await verifyDatabase(dataDir, { publicKeyPem: web.auditKeys.publicKeyPem });
      expect(verified.ok, verified.problem ?? JSON.stringify(verified.problems)).toBe(true);

      // Dispatch latency (queued → claimed by an idle worker), as the workers logged it.
      const waits = [...logs.matchAll(/claimed run \d+ \(queued (\d+) ms ago\)/g)].map((m) => Number(m[1]));
      console.log(`[training-workers] claims: ${waits.length}, queued→claimed ms: ${waits.join(", ")}`);
    } catch (err) {
      // What the processes said, for the failure report.
      printChildren();
      throw err;
    } finally {
      testDeadline = Infinity;
      web.db.$client.close();
    }
  }, 420_000); // MULTI_PROCESS_TIMEOUT_MS
});
