/**
 * `npm run cli -- sweep` for real (a child process on a fresh data directory): a small Iris sweep from the example
 * spec runs to its budget and prints {sweepId, trials: [{runId, config, metrics, …}], best: {runId, metric, value}};
 * `audit verify` is clean afterwards; an invalid space exits 2 naming the path, and creates no sweep and no run.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-sweep-cli-"));
const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-sweep-cli-keys-"));
afterAll(() => {
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(keyDir, { recursive: true, force: true });
});
const cli = (args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", "server/cli/main.ts", ...args, "--data-dir", dataDir], {
    env: { ...process.env, RUNLEDGER_KEY_DIR: keyDir },
    encoding: "utf8",
    timeout: 280_000,
  });
type ExampleSpec = { base: { training: Record<string, unknown> }; space: Record<string, unknown> } & Record<string, unknown>;
const example = JSON.parse(fs.readFileSync("examples/iris-sweep.json", "utf8")) as ExampleSpec;
const specFile = (name: string, spec: unknown) => {
  const f = path.join(dataDir, name);
  fs.writeFileSync(f, JSON.stringify(spec));
  return f;
};
const count = (table: string) => {
  const db = new Database(path.join(dataDir, "runledger.sqlite"), { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
};

describe("npm run cli -- sweep", () => {
  it("refuses an invalid space with exit code 2 and the path at fault, creating nothing", () => {
    const bad = { ...example, space: { ...example.space, "training.learningRate": { type: "logUniform", min: 0, max: 0.1 } } };
    const r = cli(["sweep", "--config", specFile("bad.json", bad), "--json"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("invalid sweep: space.training.learningRate: min must be > 0 for log scale");
    expect(r.stdout).toBe("");
    expect(count("sweeps")).toBe(0);
    expect(count("runs WHERE origin = 'sweep'")).toBe(0);
  }, 300_000);

  it("runs the example sweep (made smaller) to its budget and prints trials and the best; audit verify is clean", () => {
    const small = {
      ...example,
      base: { ...example.base, training: { ...example.base.training, epochs: 4 } },
      budget: { maxTrials: 3, maxParallel: 1 },
      earlyTermination: { type: "asha", rungs: [2], eta: 3 },
      tpe: { startupTrials: 2, gamma: 0.25, candidates: 24 },
    };
    const r = cli(["sweep", "--config", specFile("small.json", small), "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      sweepId: number;
      status: string;
      trials: {
        runId: number;
        status: string;
        config: { training: { learningRate: number } };
        params: Record<string, unknown>;
        metrics: Record<string, number>;
        value: number | null;
      }[];
      best: { runId: number; metric: string; value: number };
    };
    expect(out.status).toBe("completed");
    expect(out.trials).toHaveLength(3);
    for (const t of out.trials) {
      expect(t.config.training.learningRate).toBe(t.params["training.learningRate"]);
      expect(typeof t.metrics.val_loss).toBe("number");
    }
    const completed = out.trials.filter((t) => t.status === "completed");
    expect(completed.length).toBeGreaterThanOrEqual(1);
    expect(out.best.metric).toBe("val_loss");
    expect(out.best.value).toBe(Math.min(...completed.map((t) => t.value!)));
    expect(completed.map((t) => t.runId)).toContain(out.best.runId);
    const v = cli(["audit", "verify", "--json"]);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    expect((JSON.parse(v.stdout) as { ok: boolean }).ok).toBe(true);
  }, 300_000);
});
