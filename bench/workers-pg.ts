/**
 * Benchmark of the training workers' queue on PostgreSQL (issue 16), beside bench/workers.ts's SQLite figures: a real
 * worker process (`DATABASE_URL=postgres://… npm run worker`, backend cpu) on a scratch database, idle between runs.
 * - queue_dispatch_ms_pg: from `launch()` on an orchestrator with the workers' queue (the web server's path: the run's
 *   queue entry and its graphile-worker job committed together) to the moment the worker's claim has committed (the
 *   run's lease names the worker): graphile-worker's LISTEN/NOTIFY wake-up, its job fetch and the lease
 *   compare-and-set. Target under 500 ms (the issue's).
 * - queue_to_start_ms_pg: from the same launch to the run's run.start (status "running"): the claim plus the trainer
 *   thread's start (tsx, TF.js) and data preparation.
 * Median of REPS runs; each run (Iris, 2 epochs) ends before the next is queued. The database is polled every 5 ms.
 * Needs RUNLEDGER_BENCH_PG_URL (a PostgreSQL 15+ cluster the bench may create a scratch database on); without it the
 * figures are printed as skipped, with the reason.
 *
 * Run alone: RUNLEDGER_BENCH_PG_URL=$(bash scripts/pg-cluster.sh url) npx tsx bench/workers-pg.ts
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { pathToFileURL } from "node:url";
import { eq } from "drizzle-orm";
import { createScratchPgDatabase, migratePg, openPgDatabase } from "@/db/pg-client";
import { pgStore, reader, type Store } from "@/db/store";
import { pgArtifactStore } from "@/server/artifacts/pg-store";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import { createExperiment, createProject } from "@/server/projects/service";
import { RunOrchestrator } from "@/server/runs/orchestrator/orchestrator";
import { StoreRunQueue } from "@/server/runs/orchestrator/run-queue";
import { createRunOnStore } from "@/server/runs/service";
import { actorOf, insertUser } from "@/server/users/service";
import { median, printFigure, type Figure } from "./figures";

const REPS = 7;
const BENCH_PG_URL_VAR = "RUNLEDGER_BENCH_PG_URL";
const FINAL = ["completed", "failed", "cancelled"];

async function poll<T>(read: () => Promise<T | undefined>, label: string, timeoutMs = 120_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await read();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`bench workers (PostgreSQL): timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** queue_dispatch_ms_pg and queue_to_start_ms_pg (see the header), or skipped without a PostgreSQL URL. */
export async function benchWorkersPg(): Promise<Figure[]> {
  const figures = [
    ["queue_dispatch_ms_pg", "< 500 (graphile-worker LISTEN/NOTIFY)"],
    ["queue_to_start_ms_pg", undefined],
  ] as const;
  const base = process.env[BENCH_PG_URL_VAR]?.trim();
  if (!base) {
    const why = `${BENCH_PG_URL_VAR} is not set (a PostgreSQL 15+ cluster URL, e.g. $(bash scripts/pg-cluster.sh start))`;
    return figures.map(([name, target]) => ({ name, value: Number.NaN, unit: "ms", ...(target ? { target } : {}), skipped: why }));
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-workers-pg-"));
  const scratch = await createScratchPgDatabase(base, "rl_bench_workers");
  const db = openPgDatabase(scratch.url, { max: 4 });
  const dispatch: number[] = [];
  const toStart: number[] = [];
  let worker: ReturnType<typeof spawn> | undefined;
  let load = os.loadavg()[0]!;
  try {
    await migratePg(db);
    const store: Store = pgStore(db);
    const artifacts = pgArtifactStore(db.$client);
    const engineer = actorOf(
      await insertUser(store, SYSTEM_ACTOR, { email: "bench@example.org", name: "Bench Engineer", role: "engineer", passwordHash: "x" }),
    );
    const project = await createProject({ db: store, actor: engineer }, { name: "Bench workers" });
    const { id: experimentId } = await createExperiment({ db: store, actor: engineer }, { projectId: project.id, name: "dispatch" });
    const ctx = { db: store, actor: engineer, artifacts };
    // The web server's path with training workers: launch() enqueues (queue entry and job in one transaction).
    const web = new RunOrchestrator({ db: store, artifacts, dataDir: path.join(root, "web") }, { queue: new StoreRunQueue(store) });

    const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: scratch.url, RUNLEDGER_DATA_DIR: path.join(root, "worker") };
    delete env.RUNLEDGER_TRAINING;
    worker = spawn(process.execPath, ["--import", "tsx", "server/worker/main.ts", "--backend", "cpu"], {
      env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const w = worker;
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const onData = (d: Buffer) => {
        out += d.toString();
        if (!out.includes("] ready:")) return;
        w.stdout!.off("data", onData);
        w.stdout!.resume();
        resolve();
      };
      w.stdout!.on("data", onData);
      w.once("exit", (code) => reject(new Error(`bench workers (PostgreSQL): the worker exited (code ${code}) before it was ready`)));
    });

    const { runs, runLeases } = store.tables;
    const ownerOf = async (runId: number) =>
      (await reader(store).select({ owner: runLeases.owner }).from(runLeases).where(eq(runLeases.runId, runId)))[0]?.owner;
    const statusOf = async (runId: number) =>
      (await reader(store).select({ status: runs.status }).from(runs).where(eq(runs.id, runId)))[0]!.status;
    load = os.loadavg()[0]!;
    for (let i = 0; i < REPS; i++) {
      const run = await createRunOnStore(ctx, {
        experimentId,
        config: {
          data: { dataset: { builtin: "iris" }, normalization: "standard" },
          model: { layers: [{ type: "dense", units: 12, activation: "relu" }] },
          training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 2, seed: i + 1 },
        },
        rationale: `bench: queue dispatch on PostgreSQL ${i + 1}`,
      });
      const t0 = performance.now();
      if (!(await web.launch(run.id))) throw new Error(`bench workers (PostgreSQL): run ${run.id} was not queued`);
      const claimed = await poll(
        async () => ((await ownerOf(run.id))?.startsWith("worker:") ? performance.now() : undefined),
        `the claim of run ${run.id}`,
      );
      dispatch.push(claimed - t0);
      const started = await poll(
        async () => ((await statusOf(run.id)) !== "queued" ? performance.now() : undefined),
        `the start of run ${run.id}`,
      );
      toStart.push(started - t0);
      await poll(
        async () => (FINAL.includes(await statusOf(run.id)) && (await ownerOf(run.id)) === undefined ? true : undefined),
        `the end of run ${run.id}`,
      );
      const status = await statusOf(run.id);
      if (status !== "completed") throw new Error(`bench workers (PostgreSQL): run ${run.id} ended ${status}`);
    }
    load = (load + os.loadavg()[0]!) / 2;
    const ms = (xs: number[]) => xs.map((x) => Math.round(x)).join(", ");
    process.stderr.write(`bench workers (PostgreSQL): dispatch ms ${ms(dispatch)}; to start ms ${ms(toStart)}\n`);
  } finally {
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      const exited = new Promise((r) => worker!.once("exit", r));
      worker.kill("SIGTERM");
      await exited;
    }
    await db.$client.end();
    await scratch.drop();
    fs.rmSync(root, { recursive: true, force: true });
  }
  return [
    { name: figures[0][0], value: Math.round(median(dispatch)), unit: "ms", target: figures[0][1] },
    { name: figures[1][0], value: Math.round(median(toStart)), unit: "ms" },
    {
      name: "queue_bench_pg_load_avg_1m",
      value: Math.round(load * 100) / 100,
      unit: `(on ${os.cpus().length} cores)`,
      target: "informational",
    },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  void benchWorkersPg().then((figures) => {
    for (const f of figures) printFigure(f);
    process.exit(0);
  });
}
