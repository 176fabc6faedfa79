/**
 * `pilot --rollback` chooses the backend its branch trains on as `train`, `resume` and `rerun` do: `--backend
 * auto|wasm|cpu`, default auto, whatever RUNLEDGER_BACKEND says (that is the web server's and the worker's setting),
 * and the branch records the backend it trained on. Real processes on a SQLite data directory, with
 * RUNLEDGER_BACKEND=cpu set throughout: a run trained by `train` without --backend, then rolled back without and with
 * `--backend cpu`. Before, the branch followed RUNLEDGER_BACKEND and `--backend` was an unknown option. A --backend no
 * trainer knows (a typo) is refused with exit 2 by every command that trains here; before, it trained on wasm.
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { and, count, eq } from "drizzle-orm";
import { openDatabase } from "@/db/client";
import { auditEvents, checkpoints, runs } from "@/db/schema";
import { irisConfig } from "./test-app";
import { runCli } from "./cli-process";

vi.mock("server-only", () => ({}));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-cli-pilot-backend-"));
const dataDir = path.join(tmp, "data");
const configFile = path.join(tmp, "iris.json");
const cli = (args: string[]) =>
  runCli([...args, "--data-dir", dataDir], { RUNLEDGER_KEY_DIR: path.join(tmp, "keys"), RUNLEDGER_BACKEND: "cpu" }, 240_000);

type RunJson = { runId: number; status: string; backend: string | null; weightsSha256: string | null };
type RollbackJson = { kind: string; status: string; branchRunId: number; branch: RunJson };

function recorded(runId: number): { backend: string | null; origin: string } {
  const db = openDatabase(dataDir);
  try {
    return db.select({ backend: runs.backend, origin: runs.origin }).from(runs).where(eq(runs.id, runId)).get()!;
  } finally {
    db.$client.close();
  }
}

/** How many runs and ledger events the data directory holds. */
function sizes(): { runs: number; events: number } {
  const db = openDatabase(dataDir);
  try {
    return {
      runs: db.select({ n: count() }).from(runs).get()!.n,
      events: db.select({ n: count() }).from(auditEvents).get()!.n,
    };
  } finally {
    db.$client.close();
  }
}

function checkpointId(runId: number, epoch: number): number {
  const db = openDatabase(dataDir);
  try {
    return db
      .select({ id: checkpoints.id })
      .from(checkpoints)
      .where(and(eq(checkpoints.runId, runId), eq(checkpoints.epoch, epoch)))
      .get()!.id;
  } finally {
    db.$client.close();
  }
}

let trained: RunJson;

beforeAll(async () => {
  fs.writeFileSync(configFile, JSON.stringify(irisConfig({ epochs: 3, seed: 5 })));
  const seeded = await cli(["seed", "--no-demo-run"]);
  expect(seeded.code, seeded.stderr).toBe(0);
  const out = await cli(["train", "--config", configFile, "--json"]);
  expect(out.code, out.stderr).toBe(0);
  trained = JSON.parse(out.stdout) as RunJson;
  expect(trained.status).toBe("completed");
}, 300_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

it("without --backend the branch trains on auto, as train chose, and reproduces the run; --backend cpu is taken and recorded", async () => {
  expect(trained.backend).toBe(recorded(trained.runId).backend);
  const rollback = ["pilot", "--run", String(trained.runId), "--rollback", String(checkpointId(trained.runId, 1))];

  const auto = await cli([...rollback, "--rationale", "again from epoch 1", "--json"]);
  expect(auto.code, auto.stderr).toBe(0);
  const onAuto = JSON.parse(auto.stdout) as RollbackJson;
  expect(onAuto).toMatchObject({ kind: "rollback", status: "applied", branch: { status: "completed", backend: trained.backend } });
  expect(recorded(onAuto.branchRunId)).toEqual({ backend: trained.backend, origin: "branch" });
  expect(onAuto.branch.weightsSha256).toBe(trained.weightsSha256);

  const cpu = await cli([...rollback, "--backend", "cpu", "--rationale", "again on cpu", "--json"]);
  expect(cpu.code, cpu.stderr).toBe(0);
  const onCpu = JSON.parse(cpu.stdout) as RollbackJson;
  expect(onCpu.branch).toMatchObject({ status: "completed", backend: "cpu" });
  expect(recorded(onCpu.branchRunId)).toEqual({ backend: "cpu", origin: "branch" });
}, 300_000);

it("--backend without --rollback is refused (exit 2): nothing trains here; so is a backend no trainer knows, on every command that trains", async () => {
  const run = String(trained.runId);
  const out = await cli(["pilot", "--run", run, "--pause", "--backend", "cpu", "--rationale", "x"]);
  expect(out.code, out.stderr).toBe(2);
  expect(out.stderr).toMatch(/^pilot: --backend applies to --rollback only/);
  expect(out.stdout).toBe("");

  // The trainer would take "gpu" for wasm and record that: refused before anything is recorded.
  const before = sizes();
  const refusals = await Promise.all(
    [
      ["pilot", "--run", run, "--rollback", String(checkpointId(trained.runId, 1)), "--rationale", "x"],
      ["train", "--config", configFile],
      ["rerun", "--run", run],
      ["resume", "--run", run],
    ].map(async (args) => [args[0]!, await cli([...args, "--backend", "gpu"])] as const),
  );
  for (const [command, refused] of refusals) {
    expect(refused.code, `${command}: ${refused.stderr}`).toBe(2);
    expect(refused.stderr).toBe(`${command}: --backend takes auto, tensorflow, wasm, cpu, not "gpu"\n`);
    expect(refused.stdout).toBe("");
  }
  expect(sizes()).toEqual(before);
});
