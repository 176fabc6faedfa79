/**
 * Benchmark of the sweep driver (issue 17), on real Iris trainings in worker threads (throw-away data and key
 * directories; one training slot, as a default server has).
 *
 * sweep_overhead_pct: the wall time of a sweep of TRIALS trials run to its budget by the sweep driver
 * (server/sweeps/driver.ts: trial generation, createTrialRun, the driver's polling between trials, sweep.complete),
 * against the same TRIALS configs launched by hand (createRun + the orchestrator queue, all queued at once), as a
 * percentage of the latter. Random search without early termination, so both sides train exactly the same configs to
 * the end; maxParallel 1 against one training slot, so both train one run at a time. Median over REPEATS pairs, the
 * order of the two sides alternating between pairs (the load of this shared machine drifts). Each side takes tens of
 * seconds, so a drifting load moves it a lot: on 2026-12-04, on 2 shared cores, one run's pairs read 101 / 62 / 5.6 %
 * while the load average fell from 10 to 4 (the pair at load 4: 5.6 %). Read the per-pair line, not the median alone.
 *
 * sweep_handoff_ms and hand_handoff_ms split that difference out of the training itself: the median time from one
 * run's end (finished_at) to the next run's start (started_at: its worker has loaded the trainer and begun), in the
 * sweep (the driver notices the end, creates the next trial and queues it) and by hand (the queue starts the next run).
 *
 * Run alone: npx tsx bench/sweeps.ts   (BENCH_SWEEP_TRIALS, BENCH_SWEEP_REPEATS change the size)
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { eq, inArray } from "drizzle-orm";
import { runs, sweeps, sweepTrials, users } from "@/db/schema";
import { parseSweepSpec, suggestTrial, trialConfig, type SweepSpecInput } from "@/contracts/sweep-spec";
import { createAppServices } from "@/server/app-context/app-services";
import { DEMO_USERS, ensureDemoUsersAndProject } from "@/server/demo/seed";
import { createRun } from "@/server/runs/service";
import { createSweep } from "@/server/sweeps/service";
import { driveSweep } from "@/server/sweeps/driver";
import { actorOf } from "@/server/users/service";
import { median, printFigure, type Figure } from "./figures";

const TRIALS = Number(process.env.BENCH_SWEEP_TRIALS ?? 20);
const REPEATS = Number(process.env.BENCH_SWEEP_REPEATS ?? 3);

function sweepSpec(seed: number): SweepSpecInput {
  return {
    name: `bench sweep ${seed}`,
    base: {
      data: { dataset: { builtin: "iris" }, normalization: "standard" },
      model: { layers: [{ type: "dense", units: 12, activation: "relu" }] },
      training: { optimizer: { name: "adam" }, learningRate: 0.02, batchSize: 16, epochs: 3, seed: 1 },
    },
    space: {
      "training.learningRate": { type: "logUniform", min: 0.001, max: 0.1 },
      "model.layers.0.units": { type: "int", min: 4, max: 32, step: 4 },
    },
    method: "random",
    budget: { maxTrials: TRIALS, maxParallel: 1 },
    metric: { name: "val_loss", direction: "minimize" },
    seed,
    rationale: "sweep overhead benchmark",
  };
}

export async function benchSweeps(): Promise<Figure[]> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-sweeps-"));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-sweeps-keys-"));
  const services = createAppServices(dataDir, { keyDir, maxConcurrent: 1 });
  try {
    const seed = ensureDemoUsersAndProject(services);
    const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
    const ctx = { ...services, actor: actorOf(services.db.select().from(users).where(eq(users.email, email)).get()!) };

    /** Gaps between consecutive runs (in id order): the next one's start minus the previous one's end, in ms. */
    const handoffs = (ids: number[]) => {
      const rows = services.db
        .select({ id: runs.id, startedAt: runs.startedAt, finishedAt: runs.finishedAt })
        .from(runs)
        .where(inArray(runs.id, ids))
        .all()
        .sort((a, b) => a.id - b.id);
      return rows.slice(1).map((r, i) => Date.parse(r.startedAt!) - Date.parse(rows[i]!.finishedAt!));
    };
    const sweepGaps: number[] = [];
    const handGaps: number[] = [];

    const viaSweep = async (specSeed: number) => {
      const t0 = performance.now();
      const s = await createSweep(ctx, { experimentId: seed.experimentId, spec: sweepSpec(specSeed) });
      await driveSweep(services, services.orchestrator, s.id);
      const ms = performance.now() - t0;
      const status = services.db.select({ status: sweeps.status }).from(sweeps).where(eq(sweeps.id, s.id)).get()!.status;
      if (status !== "completed") throw new Error(`bench sweeps: sweep ${s.id} ended ${status}`);
      const ids = services.db.select({ runId: sweepTrials.runId }).from(sweepTrials).where(eq(sweepTrials.sweepId, s.id)).all();
      sweepGaps.push(...handoffs(ids.map((t) => t.runId)));
      return ms;
    };
    const byHand = async (specSeed: number) => {
      const parsed = parseSweepSpec(sweepSpec(specSeed));
      if (!parsed.ok) throw new Error(parsed.message);
      // The configs the sweep generates (random search: a function of the spec and the trial index alone).
      const configs = Array.from({ length: TRIALS }, (_, i) =>
        trialConfig(parsed.spec, suggestTrial(parsed.spec, i, []), `by hand ${specSeed} · ${i + 1}`),
      );
      const t0 = performance.now();
      const ids: number[] = [];
      for (const config of configs) {
        const run = createRun(ctx, { experimentId: seed.experimentId, config, rationale: "sweep overhead benchmark: by hand" });
        await services.orchestrator.launch(run.id);
        ids.push(run.id);
      }
      for (const id of ids) await services.orchestrator.waitFor(id);
      const ms = performance.now() - t0;
      handGaps.push(...handoffs(ids));
      return ms;
    };

    const overheads: number[] = [];
    const sweepMs: number[] = [];
    const handMs: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const specSeed = 100 + r;
      let s: number;
      let h: number;
      if (r % 2 === 0) {
        s = await viaSweep(specSeed);
        h = await byHand(specSeed);
      } else {
        h = await byHand(specSeed);
        s = await viaSweep(specSeed);
      }
      sweepMs.push(s);
      handMs.push(h);
      overheads.push(((s - h) / h) * 100);
    }
    const round = (x: number) => Math.round(x * 10) / 10;
    process.stdout.write(
      `(sweeps: ${TRIALS} Iris trials × ${REPEATS} pairs; sweep ${sweepMs.map((x) => (x / 1000).toFixed(1)).join(" / ")} s, by hand ${handMs
        .map((x) => (x / 1000).toFixed(1))
        .join(" / ")} s; overhead per pair ${overheads.map((x) => x.toFixed(1)).join(" / ")} %; load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")})\n`,
    );
    return [
      {
        name: "sweep_overhead_pct",
        value: round(median(overheads)),
        unit: "%",
        target: `< 10 % (${TRIALS} trials through the sweep driver vs the same ${TRIALS} runs queued by hand)`,
      },
      {
        name: "sweep_handoff_ms",
        value: Math.round(median(sweepGaps)),
        unit: "ms",
        target: "informational: median from a trial's end to the next trial's start, through the driver",
      },
      {
        name: "hand_handoff_ms",
        value: Math.round(median(handGaps)),
        unit: "ms",
        target: "informational: median from a run's end to the next queued run's start",
      },
      {
        name: "sweep_trial_ms",
        value: Math.round(median(sweepMs) / TRIALS),
        unit: "ms",
        target: "informational: wall time per trial of the sweep (3 Iris epochs each)",
      },
    ];
  } finally {
    services.db.$client.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(keyDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchSweeps().then((figures) => {
    for (const f of figures) printFigure(f);
    process.exit(0);
  });
}
