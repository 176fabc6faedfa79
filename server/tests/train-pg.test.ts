/**
 * `cli train` on PostgreSQL (issue 16, "Done when": a CLI training run on PostgreSQL gives the same weightsSha256 as on
 * SQLite for the same config and backend), with real processes: `node --import tsx server/cli/main.ts train` with
 * DATABASE_URL set to a scratch database, and `npm run worker` (node --import tsx server/worker/main.ts) on it.
 *
 * Checked:
 * - The same small Iris config (fixed seeds, backend cpu) trained with `train --json` in a SQLite data directory and on
 *   PostgreSQL prints the same JSON (the run id aside: there are no times in it), so the same weights and checkpoint
 *   hashes, metrics and test evaluation; the run's ledger events are the same actions in the same order on both.
 * - `train --enqueue --json` on PostgreSQL is trained by one PostgreSQL worker process and prints the same JSON; the
 *   worker exits 0 on SIGTERM.
 * - On PostgreSQL the CLI signs no audit checkpoint (the signing key stays with the web servers); `audit verify
 *   --database URL --public-key FILE` afterwards reports the ledger intact, with 0 signed checkpoints and says so.
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { and, asc, eq } from "drizzle-orm";
import { openDatabase } from "@/db/client";
import { openPgDatabase } from "@/db/pg-client";
import { pgStore, reader, sqliteStore, type Store } from "@/db/store";
import { generateAuditKeys } from "@/server/audit/keys";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";
import { irisConfig } from "./test-app";
import { settleWithin } from "./settle-within";

vi.mock("server-only", () => ({}));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-train-pg-"));
const configFile = path.join(tmp, "iris.json");
fs.writeFileSync(configFile, JSON.stringify(irisConfig({ epochs: 3, seed: 11 })));

type Proc = { child: ChildProcess; stdout: () => string; stderr: () => string; exit: (ms?: number) => Promise<Exit> };
type Exit = { code: number | null; stdout: string; stderr: string; ms: number };
const procs: Proc[] = [];

/** env: variables to set, or to remove (undefined). */
type EnvChanges = Record<string, string | undefined>;

function start(args: string[], env: EnvChanges): Proc {
  const e: NodeJS.ProcessEnv = { ...process.env, RUNLEDGER_BACKEND: "cpu" };
  delete e.RUNLEDGER_TRAINING;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete e[k];
    else e[k] = v;
  }
  const startedAt = Date.now();
  const child = spawn(process.execPath, ["--import", "tsx", ...args], { env: e, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<Exit>((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr, ms: Date.now() - startedAt })));
  const exit = (ms = 150_000) =>
    settleWithin(
      exited,
      ms,
      () => `${args.slice(0, 2).join(" ")} did not exit within ${ms} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
      () => child.kill("SIGKILL"),
    );
  const p = { child, stdout: () => stdout, stderr: () => stderr, exit };
  procs.push(p);
  return p;
}

type TrainJson = { runId: number; status: string; backend: string; weightsSha256: string | null; checkpoints: unknown[] };

/** `cli train --json`; its JSON, checked to be its only stdout line, and how long the process took. */
async function cliTrain(extra: string[], env: EnvChanges): Promise<{ result: TrainJson; line: string; ms: number; stderr: string }> {
  const out = await start(["server/cli/main.ts", "train", "--config", configFile, "--json", ...extra], env).exit();
  expect(out.code, out.stderr).toBe(0);
  const lines = out.stdout.trim().split("\n");
  expect(lines, out.stdout).toHaveLength(1);
  return { result: JSON.parse(lines[0]!) as TrainJson, line: lines[0]!, ms: out.ms, stderr: out.stderr };
}

const withoutId = ({ runId: _runId, ...rest }: TrainJson) => rest;
/** The printed line with its run id blanked: the same text, key order included, on both stores. */
const printedWithoutId = (line: string) => line.replace(/^\{"runId":\d+,/, '{"runId":"-",');

/** The actions of a run's ledger events, in ledger order. */
async function runActions(store: Store, runId: number): Promise<string[]> {
  const { auditEvents } = store.tables;
  const events = await reader(store)
    .select({ action: auditEvents.action })
    .from(auditEvents)
    .where(and(eq(auditEvents.entityType, "run"), eq(auditEvents.entityId, String(runId))))
    .orderBy(asc(auditEvents.seq));
  return events.map((e) => e.action);
}

let scratch: ScratchPgDatabase;
let pgDb: ReturnType<typeof openPgDatabase>;
/** The reference: the config trained in a SQLite data directory. */
let onSqlite: { result: TrainJson; line: string; actions: string[] };
const pgEnv = () => ({ DATABASE_URL: scratch.url, RUNLEDGER_DATA_DIR: path.join(tmp, "pg-scratch") });

afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  await pgDb?.$client.end();
  await scratch?.drop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describePg("cli train on PostgreSQL (DATABASE_URL)", () => {
  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    pgDb = openPgDatabase(scratch.url, { max: 2 });
  });

  it("trains in this process and prints the same JSON, weights and run events as on SQLite", async () => {
    const dataDir = path.join(tmp, "sqlite");
    const sqlite = await cliTrain(["--data-dir", dataDir, "--key-dir", path.join(tmp, "keys"), "--backend", "cpu"], {
      DATABASE_URL: undefined,
    });
    const db = openDatabase(dataDir);
    try {
      onSqlite = { result: sqlite.result, line: sqlite.line, actions: await runActions(sqliteStore(db), sqlite.result.runId) };
    } finally {
      db.$client.close();
    }
    expect(onSqlite.result).toMatchObject({ status: "completed", backend: "cpu" });
    expect(onSqlite.result.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(onSqlite.result.checkpoints).toHaveLength(3);

    const pg = await cliTrain(["--backend", "cpu"], pgEnv());
    expect(withoutId(pg.result)).toEqual(withoutId(onSqlite.result));
    expect(printedWithoutId(pg.line)).toBe(printedWithoutId(onSqlite.line));
    expect(await runActions(pgStore(pgDb), pg.result.runId)).toEqual(onSqlite.actions);
    // The trainer's scratch directory stays empty: the record and the artifacts are in PostgreSQL.
    expect(fs.existsSync(pgEnv().RUNLEDGER_DATA_DIR) ? fs.readdirSync(pgEnv().RUNLEDGER_DATA_DIR) : []).toEqual([]);
    console.log(`[train-pg] cli train --json: SQLite ${sqlite.ms} ms, PostgreSQL ${pg.ms} ms (process start to exit)`);
  }, 300_000);

  it("--enqueue: one PostgreSQL worker trains it; same JSON; the worker exits 0 on SIGTERM", async () => {
    expect(onSqlite, "the SQLite reference run of the first test").toBeDefined();
    const worker = start(["server/worker/main.ts"], pgEnv());
    const queued = await cliTrain(["--enqueue"], pgEnv());
    expect(withoutId(queued.result)).toEqual(withoutId(onSqlite.result));
    expect(printedWithoutId(queued.line)).toBe(printedWithoutId(onSqlite.line));
    expect(worker.stdout()).toContain(`claimed run ${queued.result.runId} (queued `);
    expect(await runActions(pgStore(pgDb), queued.result.runId)).toEqual(onSqlite.actions);
    worker.child.kill("SIGTERM");
    const stopped = await worker.exit(60_000);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain("stopped (SIGTERM)");
    console.log(`[train-pg] cli train --enqueue --json with one worker: ${queued.ms} ms (process start to exit)`);
  }, 300_000);

  it("signs no audit checkpoint on PostgreSQL; audit verify --database reports the ledger intact with 0 checkpoints", async () => {
    const { auditCheckpoints } = pgStore(pgDb).tables;
    expect(await reader(pgStore(pgDb)).select({ id: auditCheckpoints.id }).from(auditCheckpoints)).toEqual([]);
    // No signing key ever touched this database; verify still needs a key the verifier holds (never one from the store).
    const publicKeyFile = path.join(tmp, "verifier.pub");
    fs.writeFileSync(publicKeyFile, generateAuditKeys().publicKeyPem);
    const out = await start(["server/cli/main.ts", "audit", "verify", "--database", scratch.url, "--public-key", publicKeyFile], {
      DATABASE_URL: undefined,
    }).exit();
    console.log(`[train-pg] audit verify --database (${out.ms} ms):\n${out.stdout}`);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    expect(out.stdout).toContain("INTACT");
    expect(out.stdout).toMatch(/chain intact: \d+ events, 0 signed checkpoints/);
    expect(out.stdout).toContain("no signed checkpoint yet");
  }, 120_000);
});
