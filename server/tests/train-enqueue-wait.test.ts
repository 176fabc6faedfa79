/**
 * `cli train --enqueue` with no training worker to take the run (server/cli/queue-wait.ts), through the real CLI
 * process (node --import tsx server/cli/main.ts): after 5 s in the queue it says on stderr that the run is queued, that
 * no worker has taken it and how to start one; with --wait-timeout it gives up, exits 3 with a message naming the run,
 * and the run is still queued afterwards, exactly as created (its ledger events unchanged, claimable by a worker).
 * With a live worker busy on another run, the notice names that worker instead. Bad --wait-timeout values are refused
 * with exit code 2 before anything is opened.
 */
import { afterAll, describe, expect, it, vi } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { and, asc, eq } from "drizzle-orm";
import { auditEvents, runs, users } from "@/db/schema";
import { createAppServices } from "@/server/app-context/app-services";
import { createRun } from "@/server/runs/service";
import { LeaseHolder, runHolder } from "@/server/runs/orchestrator/leases";
import { actorOf } from "@/server/users/service";
import { DEMO_USERS, ensureDemoUsersAndProject } from "@/server/demo/seed";
import { verifyDatabase } from "@/server/audit/verify";
import { irisConfig } from "./test-app";
import { settleWithin } from "./settle-within";

vi.mock("server-only", () => ({}));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-enqueue-wait-"));
const keyDir = path.join(tmp, "keys");
const configFile = path.join(tmp, "iris.json");
fs.writeFileSync(configFile, JSON.stringify(irisConfig({ epochs: 2 })));

const env = () => {
  const e: NodeJS.ProcessEnv = { ...process.env, RUNLEDGER_WORKER_POLL_MS: "100" };
  delete e.RUNLEDGER_TRAINING;
  return e;
};

type Proc = {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Its exit, bounded: a hang fails with what the process said (and the process is killed). */
  exit: (ms?: number) => Promise<{ code: number | null; stdout: string; stderr: string }>;
};
const procs: Proc[] = [];

function startProc(args: string[]): Proc {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], { env: env(), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const exit = (ms = 120_000) =>
    settleWithin(
      exited.then((code) => ({ code, stdout, stderr })),
      ms,
      () => `${args.slice(0, 2).join(" ")} did not exit within ${ms} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
      () => child.kill("SIGKILL"),
    );
  const p = { child, stdout: () => stdout, stderr: () => stderr, exit };
  procs.push(p);
  return p;
}

const startTrain = (args: string[], config = configFile) => startProc(["server/cli/main.ts", "train", "--config", config, ...args]);
const cliTrain = (args: string[], config = configFile) => startTrain(args, config).exit();

/** Resolves when the process has written `text` on stderr (bounded; fails with its output, or at once if it exited). */
async function stderrSays(p: Proc, text: string, ms = 60_000): Promise<void> {
  const startedAt = Date.now();
  while (!p.stderr().includes(text)) {
    if (p.child.exitCode !== null || p.child.signalCode !== null)
      throw new Error(`exited (${p.child.exitCode ?? p.child.signalCode}) before saying "${text}"\nstderr: ${p.stderr()}`);
    if (Date.now() - startedAt > ms) throw new Error(`did not say "${text}" within ${ms} ms\nstderr: ${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

afterAll(() => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("cli train --enqueue with no worker", () => {
  it("says the run is queued and how to start a worker, gives up at --wait-timeout with exit 3, and the run stays queued", async () => {
    const dataDir = path.join(tmp, "no-worker");
    const out = await cliTrain(["--data-dir", dataDir, "--key-dir", keyDir, "--enqueue", "--wait-timeout", "7", "--json"]);
    expect(out.code, out.stderr).toBe(3);
    const result = JSON.parse(out.stdout) as { runId: number; status: string; weightsSha256: string | null };
    expect(result).toMatchObject({ status: "queued", weightsSha256: null });
    const runId = result.runId;
    const worker = `npm run worker -- --data-dir ${dataDir} --key-dir ${keyDir}`;
    // The notice, once, then the give-up naming the run.
    const notice = `train: run ${runId} is queued: no training worker has taken it after 5 s; no training worker is running on this data directory`;
    expect(out.stderr).toContain(notice);
    expect(out.stderr.split(notice)).toHaveLength(2);
    expect(out.stderr).toContain(`Start one: ${worker}.`);
    expect(out.stderr).toContain(
      `train: gave up waiting after --wait-timeout 7 s: no training worker took run ${runId}. The run stays queued as it is (nothing was changed or lost)`,
    );
    expect(out.stderr.indexOf(notice)).toBeLessThan(out.stderr.indexOf("gave up waiting"));

    // Still queued, exactly as created: its only event is run.create, the queue holds it and a worker can claim it.
    const services = createAppServices(dataDir, { keyDir, training: "worker" });
    try {
      const run = services.db.select().from(runs).where(eq(runs.id, runId)).get()!;
      expect(run.status).toBe("queued");
      expect(runHolder(services.db, runId)).toMatchObject({ kind: "queue" });
      const actions = services.db
        .select({ action: auditEvents.action })
        .from(auditEvents)
        .where(and(eq(auditEvents.entityType, "run"), eq(auditEvents.entityId, String(runId))))
        .orderBy(asc(auditEvents.seq))
        .all()
        .map((e) => e.action);
      expect(actions).toEqual(["run.create"]);
      const verified = await verifyDatabase(dataDir, { publicKeyPem: services.auditKeys.publicKeyPem });
      expect(verified.ok, verified.problem ?? JSON.stringify(verified.problems)).toBe(true);
      const holder = new LeaseHolder(services.db, "worker");
      expect((await services.orchestrator.queue!.claim(holder, 1)).map((c) => c.runId)).toEqual([runId]);
      holder.abandon();
    } finally {
      services.db.$client.close();
    }
  }, 150_000);

  it("with a live worker busy on another run, the notice names that worker and its run", async () => {
    const dataDir = path.join(tmp, "busy-worker");
    fs.mkdirSync(keyDir, { recursive: true });
    const services = createAppServices(dataDir, { keyDir, training: "workers" });
    const busy = new LeaseHolder(services.db, "worker");
    try {
      // A run held by a live worker (this process, which stays alive while the CLI waits).
      const { experimentId } = ensureDemoUsersAndProject(services);
      const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
      const ctx = { ...services, actor: actorOf(services.db.select().from(users).where(eq(users.email, email)).get()!) };
      const other = createRun(ctx, { experimentId, config: irisConfig({ seed: 5 }), rationale: "held by a busy worker" });
      expect(await busy.acquireOn(other.id)).toBe(true);

      const out = await cliTrain(["--data-dir", dataDir, "--key-dir", keyDir, "--enqueue", "--wait-timeout", "6"]);
      expect(out.code, out.stderr).toBe(3);
      expect(out.stderr).toMatch(
        new RegExp(
          `train: run \\d+ is queued: no training worker has taken it after 5 s; 1 training worker\\(s\\) are busy \\(pid ${process.pid} on run ${other.id}\\)`,
        ),
      );
      expect(out.stderr).not.toContain("no training worker is running");
      expect(out.stderr).toContain("gave up waiting after --wait-timeout 6 s");
    } finally {
      busy.abandon();
      services.db.$client.close();
    }
  }, 150_000);

  it("a worker started after the notice takes the run: the CLI says so and prints train's result, exit 0", async () => {
    const dataDir = path.join(tmp, "late-worker");
    const train = startTrain(["--data-dir", dataDir, "--key-dir", keyDir, "--enqueue", "--json"]);
    await stderrSays(train, "no training worker is running on this data directory");
    expect(train.stderr()).toContain("Still waiting (Ctrl-C stops waiting; the run stays queued");
    const worker = startProc(["server/worker/main.ts", "--data-dir", dataDir, "--key-dir", keyDir, "--backend", "cpu"]);
    const out = await train.exit();
    expect(out.code, out.stderr).toBe(0);
    const result = JSON.parse(out.stdout) as { runId: number; status: string; backend: string };
    expect(result).toMatchObject({ status: "completed", backend: "cpu" });
    expect(out.stderr).toMatch(new RegExp(`train: run ${result.runId} taken by the training worker pid ${worker.child.pid} on `));
    worker.child.kill("SIGTERM");
    expect((await worker.exit()).code).toBe(0);
  }, 150_000);

  it("a fine-tune whose parent config no worker trains: gives up on the parent, which stays queued; no fine-tune run is created", async () => {
    const dataDir = path.join(tmp, "queued-parent");
    const childConfig = path.join(tmp, "fine-tune.json");
    fs.writeFileSync(
      childConfig,
      JSON.stringify({ ...irisConfig({ epochs: 2 }), fineTune: { parentCheckpointId: `config:${configFile}@best` } }),
    );
    const out = await cliTrain(["--data-dir", dataDir, "--key-dir", keyDir, "--enqueue", "--wait-timeout", "2", "--json"], childConfig);
    expect(out.code, out.stderr).toBe(3);
    expect(out.stderr).toContain(
      `train: gave up waiting after --wait-timeout 2 s: no training worker took run 1 (the parent config ${configFile}, trained before the fine-tune; the fine-tune run was not created`,
    );
    expect(JSON.parse(out.stdout)).toMatchObject({ runId: 1, status: "queued" });
    const services = createAppServices(dataDir, { keyDir });
    try {
      expect(services.db.select({ id: runs.id, status: runs.status }).from(runs).all()).toEqual([{ id: 1, status: "queued" }]);
      expect(runHolder(services.db, 1)).toMatchObject({ kind: "queue" });
    } finally {
      services.db.$client.close();
    }
  }, 120_000);

  it("refuses a bad --wait-timeout, or one without --enqueue, with exit code 2 before opening anything", () => {
    const dataDir = path.join(tmp, "never-created");
    for (const [args, message] of [
      [["--enqueue", "--wait-timeout", "0"], 'train: --wait-timeout must be a number of seconds above 0, got "0"'],
      [["--enqueue", "--wait-timeout", "soon"], 'train: --wait-timeout must be a number of seconds above 0, got "soon"'],
      [["--wait-timeout", "5"], "train: --wait-timeout needs --enqueue"],
    ] as const) {
      const out = spawnSync(
        process.execPath,
        ["--import", "tsx", "server/cli/main.ts", "train", "--config", configFile, "--data-dir", dataDir, ...args],
        { env: env(), encoding: "utf8", timeout: 60_000 },
      );
      expect(out.status, out.stderr).toBe(2);
      expect(out.stderr).toContain(message);
    }
    expect(fs.existsSync(dataDir)).toBe(false);
  }, 120_000);
});
