/**
 * Benchmark of crash recovery on a real small run (Iris, checkpoints every epoch, throw-away data and key dirs).
 *
 * resume_overhead_s: a `npm run cli -- train` child is killed with SIGKILL once it has written checkpoints; then a
 * new process is started (`npm run cli -- resume --run ID`, node + tsx) and the clock runs from its spawn until the
 * checkpoint of the first resumed epoch is committed (last checkpoint epoch + 1): process start, database open and
 * migrations check, the run marked interrupted, the resume state loaded, the worker and TF.js started, one epoch
 * trained and checkpointed. Median of REPS kills. The time to the resumed run.start (everything but the epoch) is
 * printed alongside. Polls the database read-only every 5 ms.
 *
 * Run alone: npx tsx bench/resume.ts
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { median, printFigure, type Figure } from "./figures";

const REPS = 3;
const CLI = ["--import", "tsx", "server/cli/main.ts"];

async function poll<T>(file: string, read: (db: Database.Database) => T | undefined, label: string, timeoutMs = 120_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    if (fs.existsSync(file)) {
      const db = new Database(file, { readonly: true, fileMustExist: true });
      try {
        db.pragma("busy_timeout = 5000");
        const v = read(db);
        if (v !== undefined) return v;
      } catch {
        // not migrated yet
      } finally {
        db.close();
      }
    }
    if (Date.now() - start > timeoutMs) throw new Error(`bench resume: timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.on("exit", () => resolve())));

export async function benchResumeOverhead(): Promise<Figure[]> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-resume-"));
  const keyDir = path.join(root, "keys");
  fs.mkdirSync(keyDir);
  const configFile = path.join(root, "config.json");
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      data: { dataset: { builtin: "iris" }, normalization: "standard" },
      model: { layers: [{ type: "dense", units: 12, activation: "relu" }] },
      training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 4, epochs: 400, seed: 1, checkpointEvery: 1 },
    }),
  );
  const env = { ...process.env };
  delete env.RUNLEDGER_AUTO_RESUME;
  const totals: number[] = [];
  const toStart: number[] = [];
  try {
    for (let rep = 0; rep < REPS; rep++) {
      const dataDir = path.join(root, `rep-${rep}`);
      const file = path.join(dataDir, "runledger.sqlite");
      const common = ["--data-dir", dataDir, "--key-dir", keyDir, "--backend", "cpu", "--json"];
      const train = spawn(process.execPath, [...CLI, "train", "--config", configFile, ...common], { env, stdio: "ignore" });
      await poll(
        file,
        (db) => ((db.prepare("SELECT count(*) AS n FROM checkpoints").get() as { n: number }).n >= 3 ? true : undefined),
        "checkpoints of the first process",
      );
      train.kill("SIGKILL");
      await exited(train);
      // Read after the kill: the process may have written more checkpoints in between.
      const lastEpoch = await poll(
        file,
        (db) => (db.prepare("SELECT max(epoch) AS e FROM checkpoints").get() as { e: number }).e,
        "last epoch",
      );
      const t0 = performance.now();
      const resume = spawn(process.execPath, [...CLI, "resume", "--run", "1", ...common], { env, stdio: "ignore" });
      await poll(
        file,
        (db) =>
          (db.prepare("SELECT count(*) AS n FROM audit_events WHERE action = 'run.start'").get() as { n: number }).n >= 2
            ? true
            : undefined,
        "the resumed start",
      );
      toStart.push((performance.now() - t0) / 1000);
      await poll(
        file,
        (db) => (db.prepare("SELECT 1 AS ok FROM checkpoints WHERE epoch = ?").get(lastEpoch + 1) ? true : undefined),
        "the first resumed epoch",
      );
      totals.push((performance.now() - t0) / 1000);
      resume.kill("SIGKILL");
      await exited(resume);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  const round = (x: number) => Math.round(x * 1000) / 1000;
  process.stdout.write(
    `(resume: ${REPS} kill -9 + cli resume; to the resumed run.start median ${round(median(toStart))} s; load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")})\n`,
  );
  return [
    {
      name: "resume_overhead_s",
      value: round(median(totals)),
      unit: "s",
      target: "< 10 s from process restart to the first resumed epoch's checkpoint (small run)",
    },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchResumeOverhead().then((figures) => {
    for (const f of figures) printFigure(f);
    process.exit(0);
  });
}
