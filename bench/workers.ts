/**
 * Benchmark of the training workers' queue (issue 16) on SQLite, with a real worker process (`npm run worker`, backend
 * cpu) on a throw-away data directory, idle between runs:
 * - queue_dispatch_ms: from `launch()` on an orchestrator with RUNLEDGER_TRAINING=workers (the web server's path) to the
 *   moment the worker's claim has committed (the run's lease names the worker). Target under 500 ms (the issue's, for
 *   PostgreSQL with LISTEN/NOTIFY); SQLite polls every RUNLEDGER_WORKER_POLL_MS (200 ms), so about half of that on average.
 * - queue_to_start_ms: from the same launch to the run's run.start (status "running"): the claim plus the trainer
 *   thread's start (tsx, TF.js) and data preparation.
 * Median of REPS runs; each run (Iris, 2 epochs) ends before the next is queued. The database is polled read-only
 * every 5 ms. The same two figures on PostgreSQL (queue_dispatch_ms_pg, queue_to_start_ms_pg: graphile-worker's
 * LISTEN/NOTIFY instead of the poll) follow, from bench/workers-pg.ts (skipped without RUNLEDGER_BENCH_PG_URL).
 *
 * Run alone: npx tsx bench/workers.ts
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { eq } from "drizzle-orm";
import { users } from "@/db/schema";
import { createAppServices } from "@/server/app-context/app-services";
import { ensureDemoUsersAndProject, DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { createRun } from "@/server/runs/service";
import { median, printFigure, type Figure } from "./figures";
import { benchWorkersPg } from "./workers-pg";

const REPS = 7;

async function poll<T>(file: string, read: (db: Database.Database) => T | undefined, label: string, timeoutMs = 120_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      db.pragma("busy_timeout = 5000");
      const v = read(db);
      if (v !== undefined) return v;
    } finally {
      db.close();
    }
    if (Date.now() - start > timeoutMs) throw new Error(`bench workers: timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function benchWorkers(): Promise<Figure[]> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-workers-"));
  const keyDir = path.join(root, "keys");
  const dataDir = path.join(root, "data");
  fs.mkdirSync(keyDir);
  const web = createAppServices(dataDir, { keyDir, training: "workers" });
  const { experimentId } = ensureDemoUsersAndProject(web);
  const user = web.db
    .select()
    .from(users)
    .where(eq(users.email, DEMO_USERS.find((u) => u.role === "engineer")!.email))
    .get()!;
  const ctx = { ...web, actor: actorOf(user) };
  const env = { ...process.env };
  delete env.RUNLEDGER_TRAINING;
  const worker = spawn(
    process.execPath,
    ["--import", "tsx", "server/worker/main.ts", "--data-dir", dataDir, "--key-dir", keyDir, "--backend", "cpu"],
    {
      env,
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const file = path.join(dataDir, "runledger.sqlite");
  const dispatch: number[] = [];
  const toStart: number[] = [];
  try {
    await new Promise<void>((resolve) => worker.stdout!.once("data", () => resolve())); // "ready"
    worker.stdout!.resume();
    for (let i = 0; i < REPS; i++) {
      const run = createRun(ctx, {
        experimentId,
        config: {
          data: { dataset: { builtin: "iris" }, normalization: "standard" },
          model: { layers: [{ type: "dense", units: 12, activation: "relu" }] },
          training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 2, seed: i + 1 },
        },
        rationale: `bench: queue dispatch ${i + 1}`,
      });
      const t0 = performance.now();
      await web.orchestrator.launch(run.id);
      const claimed = await poll(
        file,
        (db) =>
          (db.prepare("SELECT owner FROM run_leases WHERE run_id = ?").get(run.id) as { owner: string } | undefined)?.owner.startsWith(
            "worker:",
          )
            ? performance.now()
            : undefined,
        `the claim of run ${run.id}`,
      );
      dispatch.push(claimed - t0);
      const started = await poll(
        file,
        (db) =>
          (db.prepare("SELECT status FROM runs WHERE id = ?").get(run.id) as { status: string }).status !== "queued"
            ? performance.now()
            : undefined,
        `the start of run ${run.id}`,
      );
      toStart.push(started - t0);
      await poll(
        file,
        (db) =>
          ["completed", "failed", "cancelled"].includes(
            (db.prepare("SELECT status FROM runs WHERE id = ?").get(run.id) as { status: string }).status,
          ) && !db.prepare("SELECT 1 FROM run_leases WHERE run_id = ?").get(run.id)
            ? true
            : undefined,
        `the end of run ${run.id}`,
      );
    }
  } finally {
    worker.kill("SIGTERM");
    await new Promise((r) => worker.once("exit", r));
    web.db.$client.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
  return [
    {
      name: "queue_dispatch_ms",
      value: Math.round(median(dispatch)),
      unit: "ms",
      target: "< 500 (SQLite: 200 ms poll)",
    },
    { name: "queue_to_start_ms", value: Math.round(median(toStart)), unit: "ms" },
    ...(await benchWorkersPg()),
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  void benchWorkers().then((figures) => {
    for (const f of figures) printFigure(f);
  });
}
