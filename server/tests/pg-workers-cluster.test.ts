/**
 * A team installation on loopback (issue 16, "Done when"): two web server processes and two training worker processes
 * on one scratch PostgreSQL database, nothing else shared.
 * - Web servers: server/tests/web-process-fixture.ts (the app's services behind the same tRPC handler as the Next.js
 *   route) with DATABASE_URL and RUNLEDGER_TRAINING=workers, each with its own scratch directory and its own key
 *   directory holding the one signing key (copied from the first to the second, as an operator would), and a
 *   checkpoint timer with a checkpoint due after every event.
 * - Workers: `npm run worker` processes (node --import tsx server/worker/main.ts, backend cpu) taking graphile-worker
 *   `train_run` jobs, claiming runs by lease compare-and-set, heartbeating their leases.
 * The test waits on database state only (no fixed sleeps); short heartbeat, lease timeout and recovery interval
 * (environment) keep it fast.
 *
 * Checked:
 * - The engineer signs in on web server A; the session works on B. 20 small Iris runs are launched through runs.create,
 *   alternately on A and B; all complete exactly once: one run.start and one run.complete each, no run.interrupted; the
 *   workers' `claimed run N` lines are disjoint and together cover the 20 (each worker took some).
 * - A longer run (checkpointEvery 1) is launched on B; the worker training it is killed with SIGKILL after its second
 *   checkpoint; the other worker's recovery (the lease older than RUNLEDGER_LEASE_TIMEOUT_S on the database's clock)
 *   records run.interrupted and queues it again, the other worker claims it (a second run.start) and finishes it from
 *   its last checkpoint's exact-resume state, with the same final weights hash and the same checkpoint hashes, epoch by
 *   epoch, as the same config trained uninterrupted (a reference run trained in this process by an orchestrator on the
 *   same store, meanwhile).
 * - The web servers' two timers, racing, never sign one tree size twice; once they have signed the final events, the
 *   PostgreSQL verifier (verify-pg.ts: a checked snapshot copied into SQLite, every level) is clean under the web
 *   servers' public key. A third web server whose key directory lacks the ledger's key refuses to start.
 * - The surviving worker, idle, exits 0 on SIGTERM.
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { asc, desc, eq, inArray } from "drizzle-orm";
import { migratePg, openPgDatabase, type PgDb } from "@/db/pg-client";
import { pgStore, reader, type Store } from "@/db/store";
import { pgArtifactStore } from "@/server/artifacts/pg-store";
import type { AsyncArtifactStore } from "@/server/artifacts/async-store";
import { keysFromPrivatePem } from "@/server/audit/keys";
import { hashPassword } from "@/server/auth/password";
import { verifyPgStore } from "@/server/audit/verify-pg";
import { createExperiment, createProject } from "@/server/projects/service";
import { createRunOnStore } from "@/server/runs/service";
import { actorOf, insertUser } from "@/server/users/service";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import type { SignedInActor } from "@/server/app-context/service-context";
import { RunOrchestrator } from "@/server/runs/orchestrator/orchestrator";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";
import { irisConfig } from "./test-app";
import { settleWithin } from "./settle-within";

vi.mock("server-only", () => ({}));

const SMALL_RUNS = 20;
const LONG_EPOCHS = 12;
/** The long run's worker is killed once this many checkpoints are stored (it resumes from the last one). */
const KILL_AFTER_CHECKPOINTS = 2;
const TSX = ["--import", "tsx"];
/** The test's own deadline (every wait ends by it, naming its step), below the runner's timeout. */
const MULTI_PROCESS_TIMEOUT_MS = 720_000;

/** The workers' and the in-process orchestrator's data directories (made in beforeAll: a skipped suite leaves none). */
let tmp = "";

type Child = {
  child: ChildProcess;
  exited: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  /** Set when the test sends it a signal: its exit is then expected. */
  signalled: boolean;
};
const children: Child[] = [];

function startWorker(url: string, name: string): Child {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: url,
    RUNLEDGER_BACKEND: "cpu",
    RUNLEDGER_DATA_DIR: path.join(tmp, name),
    // Short heartbeat, lease timeout and recovery interval: a killed worker's run moves within seconds. The timeout
    // stays well above the heartbeat so that a busy (not dead) worker on a loaded 2-core machine keeps its runs.
    RUNLEDGER_LEASE_HEARTBEAT_MS: "300",
    RUNLEDGER_LEASE_TIMEOUT_S: "4",
    RUNLEDGER_WORKER_RECOVERY_MS: "300",
  };
  delete env.RUNLEDGER_TRAINING;
  delete env.RUNLEDGER_AUTO_RESUME;
  const child = spawn(process.execPath, [...TSX, "server/worker/main.ts", "--backend", "cpu", "--concurrency", "1"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const c: Child = { child, exited, stdout: () => out, stderr: () => err, signalled: false };
  children.push(c);
  return c;
}

/** A web server (web-process-fixture.ts) on the database, queueing runs for the workers. */
function startWebServer(url: string, name: string, keyDir: string): Child & { name: string } {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: url,
    RUNLEDGER_TRAINING: "workers",
    RUNLEDGER_DATA_DIR: path.join(tmp, name),
    RUNLEDGER_KEY_DIR: keyDir,
    FIXTURE_CHECKPOINT_MS: "1000",
  };
  delete env.RUNLEDGER_TRUST_PROXY;
  delete env.RUNLEDGER_WITNESSES;
  const child = spawn(process.execPath, [...TSX, "server/tests/web-process-fixture.ts"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const c = { child, exited, stdout: () => out, stderr: () => err, signalled: false, name };
  children.push(c);
  return c;
}

const portOf = (web: Child) => /listening (\d+)/.exec(web.stdout())?.[1];

/** One tRPC call over HTTP, as the browser makes it. */
async function trpc(web: Child, proc: string, input: unknown, cookie?: string) {
  const res = await fetch(`http://127.0.0.1:${portOf(web)}/api/trpc/${proc}`, {
    method: input === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json", ...(cookie ? { cookie } : {}) },
    body: input === undefined ? undefined : JSON.stringify(input),
  });
  const body = (await res.json()) as { result?: { data: unknown }; error?: { message: string } };
  if (res.status !== 200) throw new Error(`${proc} answered ${res.status}: ${body.error?.message}`);
  return { data: body.result?.data, headers: res.headers };
}

function signal(c: Child, sig: NodeJS.Signals) {
  c.signalled = true;
  c.child.kill(sig);
}

/** A worker that exited when the test did not stop it: every wait fails at once with what it said. */
function unexpectedExit(): string | undefined {
  for (const c of children) {
    const { exitCode, signalCode } = c.child;
    if (c.signalled || (exitCode === null && signalCode === null)) continue;
    return `${"name" in c ? String(c.name) : "worker"} (pid ${c.child.pid}) exited by itself (code ${exitCode}, signal ${signalCode}):\n${c.stdout().slice(-2000)}\n${c.stderr().slice(-2000)}`;
  }
  return undefined;
}

function printChildren() {
  for (const c of children)
    console.error(`--- ${"name" in c ? String(c.name) : "worker"} (pid ${c.child.pid})\n${c.stdout()}\n${c.stderr()}`);
}

/** Thrown by a check whose state can no longer come (the run ended first): no waiting it out. */
class CannotHappen extends Error {}

let testDeadline = Infinity;
const boundedWait = (ms: number) => Math.max(1_000, Math.min(ms, testDeadline - Date.now()));

/**
 * Polls the database until `check` returns a value; fails at once when a worker exited by itself or `check` throws
 * CannotHappen, otherwise after `timeoutMs` (never past the test's deadline), naming the step.
 */
async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 150_000): Promise<T> {
  const startedAt = Date.now();
  const bound = boundedWait(timeoutMs);
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      if (err instanceof CannotHappen) throw new Error(`waiting for ${what}: ${err.message}`);
      throw err;
    }
    const dead = unexpectedExit();
    if (dead) throw new Error(`waiting for ${what}: ${dead}`);
    if (Date.now() - startedAt > bound) throw new Error(`timed out after ${Math.round(bound / 1000)} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function exitWithin(c: Child, what: string, ms = 60_000): Promise<number | null> {
  const bound = boundedWait(ms);
  return settleWithin(c.exited, bound, () => `timed out after ${Math.round(bound / 1000)} s waiting for ${what} to exit`);
}

const FINAL = ["completed", "failed", "cancelled"];

const PASSWORD = "a long enough test password";

describePg("a team installation on PostgreSQL (2 web servers, 2 workers on loopback, one scratch database)", () => {
  let scratch: ScratchPgDatabase | undefined;
  let db: PgDb | undefined;
  let store: Store;
  let artifacts: AsyncArtifactStore;
  let experimentId = 0;
  let engineer: SignedInActor;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-pg-workers-"));
    scratch = await createScratchPgDatabase();
    db = openPgDatabase(scratch.url, { max: 6 });
    await migratePg(db);
    store = pgStore(db);
    artifacts = pgArtifactStore(db.$client);
    // Through the users service (user.create in the ledger): the verifier checks every user row against its event.
    engineer = actorOf(
      await insertUser(store, SYSTEM_ACTOR, {
        email: "erin@example.com",
        name: "Erin Engineer",
        role: "engineer",
        passwordHash: await hashPassword(PASSWORD),
      }),
    );
    const ctx = { db: store, actor: engineer };
    const project = await createProject(ctx, { name: "Workers" });
    experimentId = (await createExperiment(ctx, { projectId: project.id, name: "iris on the workers" })).id;
  }, 60_000);

  afterAll(async () => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) signal(c, "SIGKILL");
    await Promise.all(children.map((c) => c.exited));
    await db?.$client.end();
    await scratch?.drop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** The reference run, created here as the runs service creates it (trained in this process, never queued). */
  async function createRun(config: ReturnType<typeof irisConfig>, rationale: string): Promise<number> {
    const ctx = { db: store, actor: engineer, artifacts };
    return (await createRunOnStore(ctx, { experimentId, config, rationale })).id;
  }

  const statusOf = async (runId: number) => {
    const { runs } = store.tables;
    return (await reader(store).select({ status: runs.status }).from(runs).where(eq(runs.id, runId)))[0]!.status;
  };
  /** One read for many runs: the test polls while the workers train on the same 2 cores. */
  const statusesOf = async (ids: number[]) => {
    const { runs } = store.tables;
    return reader(store).select({ id: runs.id, status: runs.status }).from(runs).where(inArray(runs.id, ids));
  };
  const leaseOf = async (runId: number) => {
    const { runLeases } = store.tables;
    return (await reader(store).select().from(runLeases).where(eq(runLeases.runId, runId)))[0];
  };
  const checkpointsOf = async (runId: number) => {
    const { checkpoints } = store.tables;
    return reader(store)
      .select({ epoch: checkpoints.epoch, sha256: checkpoints.sha256 })
      .from(checkpoints)
      .where(eq(checkpoints.runId, runId))
      .orderBy(asc(checkpoints.epoch));
  };
  /** The run's ledger actions, in ledger order. */
  const actionsOf = async (runId: number) => {
    const { auditEvents } = store.tables;
    const rows = await reader(store)
      .select({ action: auditEvents.action, entityType: auditEvents.entityType })
      .from(auditEvents)
      .where(eq(auditEvents.entityId, String(runId)))
      .orderBy(asc(auditEvents.seq));
    return rows.filter((r) => r.entityType === "run").map((r) => r.action);
  };
  const notEnded = async (runId: number, step: string) => {
    const status = await statusOf(runId);
    if (FINAL.includes(status)) throw new CannotHappen(`run ${runId} ended ${status} before ${step}`);
    return status;
  };

  it(
    "20 runs launched on 2 web servers complete exactly once across 2 workers; a SIGKILLed worker's run is resumed by the other to the uninterrupted weights; the web servers' checkpoints never collide and the ledger verifies",
    async () => {
      testDeadline = Date.now() + MULTI_PROCESS_TIMEOUT_MS - 20_000;
      const url = scratch!.url;
      try {
        // Web server A creates the installation's signing key; B gets a copy of it, as an operator would give it.
        const keyDirA = path.join(tmp, "keys-a");
        const keyDirB = path.join(tmp, "keys-b");
        const webA = startWebServer(url, "web-a", keyDirA);
        await until("web server A listening", async () => portOf(webA), 90_000);
        const [keyFile] = fs.readdirSync(keyDirA);
        fs.mkdirSync(keyDirB, { mode: 0o700 });
        fs.copyFileSync(path.join(keyDirA, keyFile!), path.join(keyDirB, keyFile!));
        fs.chmodSync(path.join(keyDirB, keyFile!), 0o600);
        const serverKeys = keysFromPrivatePem(fs.readFileSync(path.join(keyDirA, keyFile!), "utf8"));
        const webB = startWebServer(url, "web-b", keyDirB);
        const workers = [startWorker(url, "worker-a"), startWorker(url, "worker-b")];
        await until("web server B listening", async () => portOf(webB), 90_000);
        await until("both workers ready", async () => workers.every((w) => w.stdout().includes("] ready:")), 90_000);

        // The session made on A works on B (sessions live in PostgreSQL).
        const signIn = await trpc(webA, "auth.signIn", { email: "erin@example.com", password: PASSWORD });
        const cookie = signIn.headers.getSetCookie()[0]!.split(";")[0]!;
        expect((await trpc(webB, "auth.me", undefined, cookie)).data).toMatchObject({ email: "erin@example.com" });
        const launch = async (web: Child, config: ReturnType<typeof irisConfig>, rationale: string) =>
          ((await trpc(web, "runs.create", { experimentId, config, rationale }, cookie)).data as { id: number }).id;

        // 1. Twenty small runs, launched alternately on A and B, which queue them for the workers.
        const small: number[] = [];
        for (let i = 0; i < SMALL_RUNS; i++)
          small.push(await launch(i % 2 ? webB : webA, irisConfig({ epochs: 1, seed: 100 + i }), `small queued run ${i + 1}`));
        await until(
          `all ${SMALL_RUNS} small runs completed`,
          async () => {
            const statuses = await statusesOf(small);
            for (const { id, status } of statuses)
              if (status === "failed" || status === "cancelled") throw new CannotHappen(`small run ${id} ended ${status}`);
            return statuses.length === small.length && statuses.every((s) => s.status === "completed");
          },
          400_000,
        );
        expect(small).toHaveLength(new Set(small).size);
        const claimsOf = (w: Child) => [...w.stdout().matchAll(/\] claimed run (\d+) \(/g)].map((m) => Number(m[1]));
        const [claimsA, claimsB] = workers.map(claimsOf) as [number[], number[]];
        expect(claimsA.filter((id) => claimsB.includes(id))).toEqual([]);
        expect([...claimsA, ...claimsB].sort((x, y) => x - y)).toEqual(small);
        expect(claimsA.length).toBeGreaterThan(0);
        expect(claimsB.length).toBeGreaterThan(0);
        for (const id of small) {
          const actions = await actionsOf(id);
          expect(
            actions.filter((a) => a === "run.start"),
            `run ${id}: ${actions.join(", ")}`,
          ).toHaveLength(1);
          expect(
            actions.filter((a) => a === "run.interrupted"),
            `run ${id}: ${actions.join(", ")}`,
          ).toHaveLength(0);
          expect(
            actions.filter((a) => a === "run.complete" || a === "run.fail" || a === "run.cancel"),
            `run ${id}`,
          ).toEqual(["run.complete"]);
        }

        // 2. A longer run for the workers, and the same config trained uninterrupted in this process (the reference).
        const base = irisConfig({ epochs: LONG_EPOCHS, seed: 7 });
        const longConfig = { ...base, training: { ...base.training, batchSize: 4, checkpointEvery: 1 } };
        const longRunId = await launch(webB, longConfig, "trained by a worker that is killed");
        const referenceId = await createRun(longConfig, "the same config, uninterrupted");
        const inProcess = new RunOrchestrator({ db: store, artifacts, dataDir: path.join(tmp, "in-process") }, { backend: "cpu" });
        expect(await inProcess.launch(referenceId)).toBe(true);
        const referenceDone = inProcess.waitFor(referenceId);

        const victimPid = await until(`${KILL_AFTER_CHECKPOINTS} checkpoints of the long run, held by a worker`, async () => {
          await notEnded(longRunId, "its worker was killed");
          const lease = await leaseOf(longRunId);
          return (await checkpointsOf(longRunId)).length >= KILL_AFTER_CHECKPOINTS && lease?.owner.startsWith("worker:")
            ? lease.pid
            : undefined;
        });
        const victim = workers.find((w) => w.child.pid === victimPid);
        expect(victim, `the lease names pid ${victimPid}`).toBeDefined();
        signal(victim!, "SIGKILL");
        await victim!.exited;
        const survivor = workers.find((w) => w !== victim)!;
        const victimOwner = (await leaseOf(longRunId))?.owner;

        // The survivor's recovery moves it back to the queue (run.interrupted); the survivor claims and finishes it.
        await until("the long run taken over by the surviving worker", async () => {
          const lease = await leaseOf(longRunId);
          const status = await notEnded(longRunId, "the surviving worker took it over");
          return status === "running" && lease !== undefined && lease.pid === survivor.child.pid && lease.owner !== victimOwner;
        });
        await until("the long run completed", async () => {
          const status = await statusOf(longRunId);
          if (status === "failed" || status === "cancelled") throw new CannotHappen(`the long run ended ${status}`);
          return status === "completed";
        });
        await referenceDone;
        expect(await statusOf(referenceId)).toBe("completed");

        const longActions = await actionsOf(longRunId);
        expect(
          longActions.filter((a) => a === "run.interrupted"),
          longActions.join(", "),
        ).toHaveLength(1);
        expect(
          longActions.filter((a) => a === "run.start"),
          longActions.join(", "),
        ).toHaveLength(2);
        expect(
          longActions.filter((a) => a === "run.complete"),
          longActions.join(", "),
        ).toHaveLength(1);
        expect(claimsOf(survivor).filter((id) => id === longRunId)).toHaveLength(1);
        expect(claimsOf(victim!).filter((id) => id === longRunId)).toHaveLength(1);

        // Same weights and checkpoints, epoch by epoch, as the uninterrupted run of the same config.
        const { runs } = store.tables;
        const finals = await reader(store)
          .select({ id: runs.id, weights: runs.finalWeightsSha256, backend: runs.backend })
          .from(runs)
          .where(eq(runs.experimentId, experimentId));
        const weightsOf = (id: number) => finals.find((r) => r.id === id)!;
        expect(weightsOf(longRunId).weights).toMatch(/^[0-9a-f]{64}$/);
        expect(weightsOf(longRunId).weights).toBe(weightsOf(referenceId).weights);
        expect(weightsOf(longRunId).backend).toBe("cpu");
        const longCheckpoints = await checkpointsOf(longRunId);
        expect(longCheckpoints).toHaveLength(LONG_EPOCHS);
        expect(longCheckpoints).toEqual(await checkpointsOf(referenceId));
        expect(await until("no lease left", async () => (await reader(store).select().from(store.tables.runLeases)).length === 0)).toBe(
          true,
        );

        // 3. The web servers' timers sign the final events; no tree size twice; then the PostgreSQL verifier.
        const { auditEvents, auditCheckpoints } = store.tables;
        const lastRunEvent = (
          await reader(store)
            .select({ seq: auditEvents.seq })
            .from(auditEvents)
            .where(eq(auditEvents.entityType, "run"))
            .orderBy(desc(auditEvents.seq))
            .limit(1)
        )[0]!.seq;
        await until("a web server's checkpoint over the last run event", async () => {
          const [latest] = await reader(store).select().from(auditCheckpoints).orderBy(desc(auditCheckpoints.id)).limit(1);
          return latest !== undefined && latest.treeSize >= lastRunEvent;
        });
        const linesOf = (web: Child) => [...web.stdout().matchAll(/^checkpoint (\d+) (\d+)$/gm)].map((m) => Number(m[2]));
        const treeSizes = (sizes: number[]) => sizes.sort((x, y) => x - y).join(",");
        // Every checkpoint is one of the two servers' (its "checkpoint ID SIZE" line follows the commit), none twice.
        const signed = await until("each stored checkpoint reported by the web server that signed it", async () => {
          const rows = await reader(store).select().from(auditCheckpoints).orderBy(asc(auditCheckpoints.id));
          return treeSizes([...linesOf(webA), ...linesOf(webB)]) === treeSizes(rows.map((c) => c.treeSize)) ? rows : undefined;
        });
        expect(new Set(signed.map((c) => c.treeSize)).size).toBe(signed.length);
        expect(new Set(signed.map((c) => c.keyFingerprint))).toEqual(new Set([serverKeys.fingerprint]));
        console.log(`[pg-workers-cluster] checkpoints signed by A: ${linesOf(webA).length}, by B: ${linesOf(webB).length}`);
        expect(webA.stdout() + webB.stdout()).not.toContain("checkpoint error");
        const verified = await verifyPgStore(url, { publicKeyPem: serverKeys.publicKeyPem });
        expect(verified.ok, verified.problems.join("\n")).toBe(true);
        expect(verified.store.copyEqual).toBe(true);

        // A web server without the ledger's key refuses to start rather than sign with another key.
        const stranger = startWebServer(url, "web-without-the-key", path.join(tmp, "keys-c"));
        stranger.signalled = true; // its exit is expected
        expect(await exitWithin(stranger, "the web server without the key")).toBe(1);
        expect(stranger.stderr()).toContain(`is signed by ${serverKeys.fingerprint}`);

        // 4. The surviving worker, idle, stops cleanly.
        signal(survivor, "SIGTERM");
        expect(await exitWithin(survivor, "the surviving worker given SIGTERM"), survivor.stderr()).toBe(0);
        expect(survivor.stdout()).toContain("stopped (SIGTERM)");

        const waits = workers.flatMap((w) => [...w.stdout().matchAll(/claimed run \d+ \(queued (\d+) ms ago\)/g)].map((m) => Number(m[1])));
        console.log(`[pg-workers-cluster] claims: ${waits.length}, queued→claimed ms: ${waits.join(", ")}`);
      } catch (err) {
        printChildren();
        throw err;
      } finally {
        testDeadline = Infinity;
      }
    },
    MULTI_PROCESS_TIMEOUT_MS,
  );
});
