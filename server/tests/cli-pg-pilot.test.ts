/**
 * Piloting from the command line on PostgreSQL (issue 16): `pilot`, `resume` and `rerun` as real processes
 * (`node --import tsx server/cli/main.ts`) with DATABASE_URL naming a scratch database seeded by `seed --no-demo-run`,
 * as cli-pg.test.ts seeds it. The same commands on SQLite: pilot.test.ts, pilot-replay.test.ts, crash-resume.test.ts.
 *
 * Checked:
 * - rerun of a completed run trains the re-run in the command's process and ends with the source's weights hash on
 *   the same backend (`reproduced`), the re-run recorded with origin "rerun"; pilot --rollback of that completed run
 *   trains its branch here and, settings unchanged, the branch ends with the same hash too.
 * - A run whose `train` process was killed (SIGKILL) mid-run: `resume` is refused while its lease is alive on the
 *   database clock (heartbeat younger than RUNLEDGER_LEASE_TIMEOUT_S); `pilot --set` records a pending intervention
 *   (its run.interventionRequested event); once the lease has expired `resume` marks the run interrupted, resumes it
 *   from its last checkpoint to completion, and the set is applied on the way (run.interventionApplied).
 * - Refusals: pilot and resume of an unknown run (exit 2), resume of a completed run (exit 2), --data-dir (pilot,
 *   resume, rerun) and --key-dir (resume, rerun, pilot --rollback: the commands that train here) with exit 2 and
 *   nothing written.
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { and, asc, count, desc, eq } from "drizzle-orm";
import { openPgDatabase, type PgDb } from "@/db/pg-client";
import { pgStore, reader, type Store } from "@/db/store";
import { DEMO_USERS } from "@/server/demo/seed";
import { irisConfig } from "./test-app";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";

vi.mock("server-only", () => ({}));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-cli-pg-pilot-"));
const localDir = path.join(tmp, "pg-local");
/** This machine's key directory: seed makes the installation's signing key there, as the first web server would. */
const keyDir = path.join(tmp, "keys");
const shortConfig = path.join(tmp, "short.json");
const longConfig = path.join(tmp, "long.json");
const LONG_EPOCHS = 30;

type Exit = { code: number | null; stdout: string; stderr: string };
type TrainJson = { runId: number; status: string; weightsSha256: string | null; checkpoints: { epoch: number }[] };

describePg("pilot, resume and rerun on PostgreSQL (real processes)", () => {
  let scratch: ScratchPgDatabase;
  let pgDb: PgDb;
  let store: Store;
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: scratch.url, RUNLEDGER_DATA_DIR: localDir, RUNLEDGER_KEY_DIR: keyDir };
    delete e.RUNLEDGER_AUTO_RESUME;
    delete e.RUNLEDGER_LEASE_TIMEOUT_S;
    e.RUNLEDGER_BACKEND = "cpu";
    return { ...e, ...extra };
  };
  const start = (args: string[], extra?: Record<string, string>): { child: ChildProcess; exited: Promise<Exit> } => {
    const child = spawn(process.execPath, ["--import", "tsx", "server/cli/main.ts", ...args], {
      env: env(extra),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 240_000);
    const exited = new Promise<Exit>((resolve) =>
      child.on("exit", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      }),
    );
    return { child, exited };
  };
  const cli = (args: string[], extra?: Record<string, string>) => start(args, extra).exited;

  const ledgerSize = async () => {
    const e = store.tables.auditEvents;
    return (await reader(store).select({ n: count() }).from(e))[0]!.n;
  };
  const runRow = async (id: number) => {
    const r = store.tables.runs;
    return (await reader(store).select().from(r).where(eq(r.id, id)).limit(1))[0]!;
  };
  const runActions = async (id: number) => {
    const e = store.tables.auditEvents;
    const rows = await reader(store)
      .select({ action: e.action })
      .from(e)
      .where(and(eq(e.entityType, "run"), eq(e.entityId, String(id))))
      .orderBy(asc(e.seq));
    return rows.map((r) => r.action);
  };
  const interventionActions = async (id: number) => {
    const e = store.tables.auditEvents;
    const rows = await reader(store)
      .select({ action: e.action })
      .from(e)
      .where(and(eq(e.entityType, "intervention"), eq(e.entityId, String(id))))
      .orderBy(asc(e.seq));
    return rows.map((r) => r.action);
  };
  /** Refused with this exit code (2: bad input; 1: a run in the wrong state, exit-codes.ts) and message, nothing in the ledger. */
  const expectRefused = async (args: string[], message: RegExp, code = 2) => {
    const before = await ledgerSize();
    const out = await cli(args);
    expect(out.code, `${args.join(" ")}: ${out.stderr}`).toBe(code);
    expect(out.stderr).toMatch(message);
    expect(out.stdout).toBe("");
    expect(await ledgerSize()).toBe(before);
  };

  let finished: TrainJson;

  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    const seeded = await cli(["seed", "--no-demo-run"]);
    expect(seeded.code, seeded.stderr).toBe(0);
    pgDb = openPgDatabase(scratch.url, { max: 1 });
    store = pgStore(pgDb);
    const short = irisConfig({ epochs: 3, seed: 7 });
    fs.writeFileSync(shortConfig, JSON.stringify({ ...short, training: { ...short.training, checkpointEvery: 1 } }));
    const long = irisConfig({ epochs: LONG_EPOCHS, seed: 5 });
    fs.writeFileSync(longConfig, JSON.stringify({ ...long, training: { ...long.training, batchSize: 4, checkpointEvery: 1 } }));
    const trained = await cli(["train", "--config", shortConfig, "--backend", "cpu", "--json"]);
    expect(trained.code, trained.stderr).toBe(0);
    finished = JSON.parse(trained.stdout) as TrainJson;
    expect(finished).toMatchObject({ status: "completed", weightsSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  }, 240_000);

  afterAll(async () => {
    await pgDb?.$client.end();
    await scratch?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("rerun reproduces a completed run's weights hash; pilot --rollback trains its branch here", async () => {
    const rerun = await cli(["rerun", "--run", String(finished.runId), "--backend", "cpu", "--json"]);
    expect(rerun.code, rerun.stderr).toBe(0);
    const out = JSON.parse(rerun.stdout) as TrainJson & { rerunOf: number; reproduced: boolean; backend: string };
    expect(out).toMatchObject({
      status: "completed",
      backend: "cpu",
      rerunOf: finished.runId,
      reproduced: true,
      weightsSha256: finished.weightsSha256,
    });
    expect(await runRow(out.runId)).toMatchObject({ origin: "rerun", parentRunId: finished.runId, status: "completed" });
    expect(await runActions(out.runId)).toEqual(["run.create", "run.start", "run.complete"]);

    const ck = store.tables.checkpoints;
    const [ck1] = await reader(store)
      .select()
      .from(ck)
      .where(and(eq(ck.runId, finished.runId), eq(ck.epoch, 1)))
      .limit(1);
    const rollbackArgs = [
      ...["pilot", "--run", String(finished.runId), "--rollback", String(ck1!.id), "--backend", "cpu"],
      ...["--rationale", "again from epoch 1"],
    ];
    await expectRefused(
      [...rollbackArgs, "--key-dir", keyDir],
      /^pilot: DATABASE_URL selects the PostgreSQL store; --data-dir and --key-dir/,
    );
    const rolled = await cli([...rollbackArgs, "--json"]);
    expect(rolled.code, rolled.stderr).toBe(0);
    const shown = JSON.parse(rolled.stdout) as { id: number; kind: string; status: string; branchRunId: number; branch: TrainJson };
    expect(shown).toMatchObject({
      kind: "rollback",
      status: "applied",
      branch: { status: "completed", weightsSha256: finished.weightsSha256 },
    });
    expect(await runRow(shown.branchRunId)).toMatchObject({ origin: "branch", parentCheckpointId: ck1!.id, status: "completed" });
    expect(shown.branch.checkpoints.map((c) => c.epoch)).toEqual([2, 3]);
    expect(await interventionActions(shown.id)).toEqual(["run.interventionRequested", "run.interventionApplied"]);
  }, 300_000);

  it("resume is refused while the killed trainer's lease lives, then resumes the run to completion; pilot --set reaches it", async () => {
    const training = start(["train", "--config", longConfig, "--backend", "cpu", "--json"]);
    // Killed once two checkpoints of the new run are committed (read from the database, no fixed sleep).
    const r = store.tables.runs;
    const ck = store.tables.checkpoints;
    let runId = 0;
    for (const startedAt = Date.now(); ;) {
      const [latest] = await reader(store).select({ id: r.id, status: r.status }).from(r).orderBy(desc(r.id)).limit(1);
      if (latest && latest.id > finished.runId && latest.status === "running") {
        const [n] = await reader(store).select({ n: count() }).from(ck).where(eq(ck.runId, latest.id));
        if (n!.n >= 2) {
          runId = latest.id;
          break;
        }
      }
      if (Date.now() - startedAt > 180_000) throw new Error("the long run never reached two checkpoints");
      await new Promise((res) => setTimeout(res, 25));
    }
    training.child.kill("SIGKILL");
    await training.exited;
    const killedAt = Date.now();
    expect((await runRow(runId)).status).toBe("running");

    // Its lease is younger than the timeout (30 s) on the database clock: the owner counts as alive.
    const held = await cli(["resume", "--run", String(runId), "--json"]);
    expect(held.code, held.stderr).toBe(1);
    expect(held.stderr).toMatch(new RegExp(`^resume: run ${runId} is held by another live process \\(it is running there\\)`, "m"));
    expect(held.stdout).toBe("");

    const pilot = await cli([
      "pilot",
      "--run",
      String(runId),
      "--set",
      "training.learningRate=0.01",
      "--rationale",
      "slower for the rest",
      "--json",
    ]);
    expect(pilot.code, pilot.stderr).toBe(0);
    expect(pilot.stderr).toBe("");
    const intervention = JSON.parse(pilot.stdout) as { id: number; status: string; changes: unknown[]; requestedBy: string };
    expect(intervention).toMatchObject({
      runId,
      kind: "set",
      status: "pending",
      changes: [{ path: "training.learningRate", oldValue: 0.03, newValue: 0.01 }],
      rationale: "slower for the rest",
      requestedBy: DEMO_USERS[1]!.email,
    });
    expect(await interventionActions(intervention.id)).toEqual(["run.interventionRequested"]);

    await expectRefused(["pilot", "--run", "999", "--pause", "--rationale", "x"], /^pilot: run 999 does not exist/);
    await expectRefused(["resume", "--run", "999"], /^resume: run 999 does not exist/);
    await expectRefused(
      ["resume", "--run", String(finished.runId)],
      new RegExp(`^resume: run ${finished.runId} is completed; resume needs a run that is interrupted, paused or queued$`, "m"),
      1,
    );
    await expectRefused(
      ["pilot", "--run", String(runId), "--pause", "--rationale", "x", "--data-dir", tmp],
      /^pilot: --data-dir names a SQLite data directory, but DATABASE_URL names PostgreSQL/,
    );
    for (const command of ["resume", "rerun"])
      for (const option of ["--data-dir", "--key-dir"])
        await expectRefused(
          [command, "--run", String(runId), option, tmp],
          new RegExp(`^${command}: DATABASE_URL selects the PostgreSQL store; --data-dir and --key-dir name a SQLite installation`),
        );

    // The dead trainer's heartbeat is older than a 2 s timeout now: resume marks the run interrupted and takes it over.
    await new Promise((res) => setTimeout(res, Math.max(0, killedAt + 2500 - Date.now())));
    const resumed = await cli(["resume", "--run", String(runId), "--backend", "cpu", "--json"], { RUNLEDGER_LEASE_TIMEOUT_S: "2" });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`run ${runId}: its training process is gone; marked interrupted`));
    const json = JSON.parse(resumed.stdout) as TrainJson;
    expect(json).toMatchObject({ runId, status: "completed", weightsSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(json.checkpoints.map((c) => c.epoch)).toEqual(Array.from({ length: LONG_EPOCHS }, (_, i) => i + 1));
    expect(await runActions(runId)).toEqual(["run.create", "run.start", "run.interrupted", "run.start", "run.complete"]);
    expect(await interventionActions(intervention.id)).toEqual(["run.interventionRequested", "run.interventionApplied"]);
    const ri = store.tables.runInterventions;
    const [applied] = await reader(store).select().from(ri).where(eq(ri.id, intervention.id)).limit(1);
    expect(applied).toMatchObject({ status: "applied" });
    const lease = store.tables.runLeases;
    expect(await reader(store).select().from(lease).where(eq(lease.runId, runId))).toEqual([]);
  }, 400_000);
});
