/**
 * `cli sweep` and `cli compress` on PostgreSQL (issue 16), as real processes (`node --import tsx server/cli/main.ts`),
 * once in a SQLite data directory and once with DATABASE_URL naming a scratch database, both seeded by
 * `seed --no-demo-run` and given the same trained source run.
 *
 * Checked:
 * - A small random sweep (two trials of two epochs, no early stop: the same trials whatever the timing) runs to its
 *   budget and prints the same JSON on both stores: trials, configs, metrics, best.
 * - compress --method float16 and int8 of the source run print the same JSON (sizes, metrics, the source's metrics;
 *   measured inference times aside) and record a derived run (origin "compress", parent the source) on both.
 * - An unknown --method and an unknown run exit 2 on both with the same message, and record nothing.
 * - Both stores hold the same ledger actions in order (sweep.create, the trials' run.create, sweep.complete, the
 *   compressions' run.create, …), SQLite's audit checkpoints aside.
 * - On PostgreSQL --data-dir and --key-dir are refused with exit 2.
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { asc, eq } from "drizzle-orm";
import { openDatabase } from "@/db/client";
import { openPgDatabase } from "@/db/pg-client";
import { pgStore, reader, sqliteStore, type Store } from "@/db/store";
import { irisConfig } from "./test-app";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";

import { runCli, type CliExit as Exit, type EnvChanges } from "./cli-process";

vi.mock("server-only", () => ({}));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-cli-pg-sweep-"));
const sqliteDir = path.join(tmp, "sqlite-data");
const sqliteKeys = path.join(tmp, "sqlite-keys");
const pgLocal = path.join(tmp, "pg-local");
const pgKeys = path.join(tmp, "pg-keys");

const cli = (args: string[], env: EnvChanges): Promise<Exit> => runCli(args, env, 240_000);

async function ledgerActions(store: Store): Promise<string[]> {
  const e = store.tables.auditEvents;
  const rows = await reader(store).select({ action: e.action }).from(e).orderBy(asc(e.seq));
  return rows.map((r) => r.action).filter((a) => a !== "audit.checkpoint");
}

async function runRow(store: Store, id: number) {
  const { runs } = store.tables;
  const [r] = await reader(store)
    .select({ origin: runs.origin, status: runs.status, parentRunId: runs.parentRunId })
    .from(runs)
    .where(eq(runs.id, id));
  return r;
}

type SweepOut = {
  sweepId: number;
  status: string;
  trials: { runId: number; status: string; params: Record<string, unknown>; metrics: Record<string, number> }[];
  best: { runId: number; metric: string; value: number } | null;
};
type CompressOut = {
  runId: number;
  method: string;
  status: string;
  sizeBytes: number;
  parentSizeBytes: number;
  metrics: Record<string, number>;
  parentMetrics: Record<string, number>;
};

/** The result without its measured inference times (wall-clock, differing from one process to the next). */
function withoutTimings(r: CompressOut) {
  const steady = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).filter(([k]) => !k.includes("inference_us")));
  return { ...r, metrics: steady(r.metrics), parentMetrics: steady(r.parentMetrics) };
}

describePg("cli sweep and compress on PostgreSQL", () => {
  let scratch: ScratchPgDatabase;
  let onPgEnv: EnvChanges;
  const onSqliteEnv: EnvChanges = { RUNLEDGER_KEY_DIR: sqliteKeys, RUNLEDGER_BACKEND: "cpu" };
  /** The same command on both stores at once (--data-dir only on SQLite), with the exit code expected of both. */
  const onBoth = async (args: string[], expected: number) => {
    const [sqlite, pg] = await Promise.all([cli([...args, "--data-dir", sqliteDir], onSqliteEnv), cli(args, onPgEnv)]);
    expect(sqlite.code, `${args.join(" ")} on SQLite: ${sqlite.stderr}`).toBe(expected);
    expect(pg.code, `${args.join(" ")} on PostgreSQL: ${pg.stderr}`).toBe(expected);
    return { sqlite, pg };
  };

  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    onPgEnv = { DATABASE_URL: scratch.url, RUNLEDGER_DATA_DIR: pgLocal, RUNLEDGER_KEY_DIR: pgKeys, RUNLEDGER_BACKEND: "cpu" };
    const seeded = await Promise.all([
      cli(["seed", "--no-demo-run", "--data-dir", sqliteDir], onSqliteEnv),
      cli(["seed", "--no-demo-run"], onPgEnv),
    ]);
    for (const out of seeded) expect(out.code, out.stderr).toBe(0);
    const configFile = path.join(tmp, "iris.json");
    fs.writeFileSync(configFile, JSON.stringify(irisConfig({ epochs: 2, seed: 7 })));
    const trained = await onBoth(["train", "--config", configFile, "--backend", "cpu", "--json"], 0);
    expect((JSON.parse(trained.pg.stdout) as { runId: number }).runId).toBe(1);
  }, 600_000);
  afterAll(async () => {
    await scratch?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("runs a small sweep to its budget, compresses a run (float16, int8), refuses bad input: the same on both stores", async () => {
    const example = JSON.parse(fs.readFileSync("examples/iris-sweep.json", "utf8")) as {
      base: { training: Record<string, unknown> };
    } & Record<string, unknown>;
    const { earlyTermination: _noEarlyStop, tpe: _noTpe, ...rest } = example;
    const small = {
      ...rest,
      method: "random",
      base: { ...example.base, training: { ...example.base.training, epochs: 2 } },
      budget: { maxTrials: 2, maxParallel: 1 },
    };
    const specFile = path.join(tmp, "small-sweep.json");
    fs.writeFileSync(specFile, JSON.stringify(small));

    const swept = await onBoth(["sweep", "--config", specFile, "--backend", "cpu", "--json"], 0);
    const sweep = JSON.parse(swept.pg.stdout) as SweepOut;
    expect(sweep).toEqual(JSON.parse(swept.sqlite.stdout));
    expect(sweep.status).toBe("completed");
    expect(sweep.trials.map((t) => [t.runId, t.status])).toEqual([
      [2, "completed"],
      [3, "completed"],
    ]);
    for (const t of sweep.trials) expect(typeof t.metrics.val_loss).toBe("number");
    expect(sweep.best?.metric).toBe("val_loss");
    expect(swept.pg.stderr).toMatch(/^sweep 1 \(iris-mlp-sweep\): random, up to 2 trials; spec sha256 [0-9a-f]{64}$/m);

    const compressed: CompressOut[] = [];
    for (const method of ["float16", "int8"]) {
      const out = await onBoth(["compress", "--run", "1", "--method", method, "--backend", "cpu", "--json"], 0);
      const result = JSON.parse(out.pg.stdout) as CompressOut;
      expect(withoutTimings(result)).toEqual(withoutTimings(JSON.parse(out.sqlite.stdout) as CompressOut));
      expect(result).toMatchObject({ method, status: "completed" });
      expect(result.sizeBytes).toBeLessThan(result.parentSizeBytes);
      expect(typeof result.metrics.accuracy).toBe("number");
      expect(typeof result.parentMetrics.accuracy).toBe("number");
      compressed.push(result);
    }
    expect(compressed.map((c) => c.runId)).toEqual([4, 5]);
    // The text form: the sizes and the metrics on stdout (the measured inference times aside, the same on both).
    const texts = await onBoth(["compress", "--run", "1", "--checkpoint", "1", "--method", "float16", "--backend", "cpu"], 0);
    const steadyLines = (out: string) => out.replace(/^.*inference_us.*\n/gm, "");
    expect(steadyLines(texts.pg.stdout)).toBe(steadyLines(texts.sqlite.stdout));
    const text = texts.pg;
    expect(text.stdout).toMatch(/^run 6 \(.*\) queued: float16 of run 1's checkpoint \d+$/m);
    expect(text.stdout).toMatch(/^run 6: completed$/m);
    expect(text.stdout).toMatch(/^ {2}size: \d+ bytes \(source \d+ bytes\)$/m);
    expect(text.stdout).toMatch(/^ {2}accuracy: /m);

    for (const [args, message] of [
      [["compress", "--run", "1", "--method", "zip"], /^compress: method: /m],
      [["compress", "--run", "99", "--method", "int8"], /^compress: run 99 was not found/m],
    ] as const) {
      const out = await onBoth([...args], 2);
      expect(out.pg.stderr).toMatch(message);
      expect(out.pg.stderr).toBe(out.sqlite.stderr);
      expect(out.pg.stdout).toBe("");
    }

    const sqliteDb = openDatabase(sqliteDir);
    const pgDb = openPgDatabase(scratch.url, { max: 1 });
    try {
      const pgActions = await ledgerActions(pgStore(pgDb));
      expect(pgActions).toEqual(await ledgerActions(sqliteStore(sqliteDb)));
      expect(pgActions.filter((a) => a.startsWith("sweep."))).toEqual(["sweep.create", "sweep.complete"]);
      for (const id of [4, 5, 6])
        expect(await runRow(pgStore(pgDb), id)).toEqual({ origin: "compress", status: "completed", parentRunId: 1 });
      expect(await runRow(pgStore(pgDb), 7), "the refused compressions recorded no run").toBeUndefined();
    } finally {
      sqliteDb.$client.close();
      await pgDb.$client.end();
    }
  }, 900_000);

  it("refuses --data-dir and --key-dir on PostgreSQL with exit 2", async () => {
    for (const args of [
      ["sweep", "--config", "examples/iris-sweep.json", "--data-dir", sqliteDir],
      ["sweep", "--config", "examples/iris-sweep.json", "--key-dir", pgKeys],
      ["compress", "--run", "1", "--method", "int8", "--data-dir", sqliteDir],
      ["compress", "--run", "1", "--method", "int8", "--key-dir", pgKeys],
    ]) {
      const out = await cli(args, onPgEnv);
      expect(out.code, out.stderr).toBe(2);
      expect(out.stderr).toMatch(
        new RegExp(`^${args[0]}: DATABASE_URL selects the PostgreSQL store; --data-dir and --key-dir name a SQLite`),
      );
      expect(out.stdout).toBe("");
    }
  }, 240_000);
});
