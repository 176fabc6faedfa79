/**
 * Benchmark of the runs query core at real scale, on a throw-away database:
 * 10,000 runs (10 hyperparameters, 5 metric summaries each) over 4 experiments and 5 users, plus 20 long
 * runs with 1,000,000 points of batch_loss each. Rows are seeded directly with prepared statements in one
 * transaction (the benchmark measures queries, not services), with valid users/projects/experiments/
 * datasets rows so foreign keys hold; metric rollups are computed from the seeded points as insertMetricPoints
 * would have written them. Each figure is the median of several repetitions; the load average is printed
 * alongside (the machine is shared).
 *
 * PostgreSQL (issue 16: runs_filter_10k_ms_pg, compare_20_runs_ms_pg, the same calls through the same code on the
 * other store): set RUNLEDGER_BENCH_PG_URL to a PostgreSQL 15+ cluster the bench may create a scratch database on
 * (dropped at the end), e.g.
 *   RUNLEDGER_BENCH_PG_URL=$(bash scripts/pg-cluster.sh start) npm run bench -- runs
 * The same data set is seeded again on SQLite without the 20M batch_loss points and copied with migrate-store
 * (a copy of 20M points would take many minutes); the long series and their rollups are then generated in
 * PostgreSQL by the same formula (its own random noise, same spikes), and the database is VACUUMed and ANALYZEd
 * (seedRunsBenchPg). Without the variable the two figures are printed as skipped, with the reason.
 *
 * Run alone: npx tsx bench/runs.ts
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import { pathToFileURL } from "node:url";
import { openDatabase, type Db } from "@/db/client";
import { createScratchPgDatabase, openPgDatabase } from "@/db/pg-client";
import { searchRuns } from "@/server/runs/explore/runs-search";
import { compareRuns } from "@/server/runs/explore/compare";
import { fetchSeries, fetchSeriesOfRuns } from "@/server/runs/explore/downsample";
import { pgStore, sqliteStore, type ExploreStore } from "@/server/runs/explore/store";
import { generateAuditKeys } from "@/server/audit/keys";
import { migrateStore } from "@/server/backup/migrate-store";
import { METRIC_ROLLUP_BLOCK } from "@/db/schema";

export type { Figure as BenchResult } from "./figures";
import type { Figure as BenchResult } from "./figures";
import { mulberry32 } from "@/trainer/data/prng";

const RUNS = 10_000;
const LONG_RUNS = 20;
const LONG_POINTS = 1_000_000;
const POINTS_PER_EPOCH = 1_000;
const OPTIMIZERS = ["adam", "sgd", "momentum", "rmsprop"] as const;

/** Deterministic pseudo-random numbers (the trainer's mulberry32) so every bench run seeds the same data. */
const rng = mulberry32;

/**
 * Seeds the benchmark data set; `longRuns` = 0 skips the long runs (for quick profiling); `longSeries: false` keeps
 * the long runs (rows, params, val_loss curves) but leaves out their 1M-point batch_loss series (for the copy to
 * PostgreSQL, which generates them itself).
 */
export function seedRunsBench(
  db: Db,
  longRuns = LONG_RUNS,
  opts: { longSeries?: boolean } = {},
): { longRunIds: number[]; shortRunIds: number[] } {
  const s = db.$client;
  const random = rng(6);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const t0 = Date.parse("2025-01-01T00:00:00.000Z");
  const iso = (ms: number) => new Date(ms).toISOString();
  const sha = (text: string) => crypto.createHash("sha256").update(text).digest("hex");

  const insertRun = s.prepare(
    `INSERT INTO runs (experiment_id, name, status, config_json, config_sha256, seed, origin, dataset_version_id, split_id, backend, created_by, created_at, started_at, finished_at)
     VALUES (?, ?, ?, ?, ?, ?, 'new', ?, ?, 'wasm', ?, ?, ?, ?)`,
  );
  const insertParam = s.prepare("INSERT INTO run_params (run_id, key, value_text, value_num) VALUES (?, ?, ?, ?)");
  const insertSummary = s.prepare(
    "INSERT INTO metric_summaries (run_id, key, last, last_step, min, max, count) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const insertPoint = s.prepare("INSERT INTO metrics (run_id, key, step, epoch, value, wall_time_ms) VALUES (?, ?, ?, ?, ?, ?)");
  // A decaying noisy loss with a rare spike (a bad batch) that downsampling must keep. Generated inside SQLite
  // (one prepared INSERT ... SELECT per run): 20M rows through JS bindings took ~2.5 min, this takes far less.
  const insertLongSeries = s.prepare(
    `WITH RECURSIVE s(step) AS (SELECT 0 UNION ALL SELECT step + 1 FROM s WHERE step < @last)
     INSERT INTO metrics (run_id, key, step, epoch, value, wall_time_ms)
     SELECT @runId, 'batch_loss', step, step * 1.0 / @perEpoch,
            2.3 * exp(-step / 200000.0) + 0.05 + (abs(random()) % 100000) / 1000000.0 + CASE WHEN step % 99991 = 4242 THEN 5 ELSE 0 END,
            @start + step * 12
     FROM s`,
  );
  // Rollups as insertMetricPoints writes them (one row per 1,024 steps of a series: first/last step, min/max with the
  // earliest step where each occurs, count), computed from the seeded points in one INSERT ... SELECT ... GROUP BY.
  const seedRollups = s.prepare(
    `INSERT INTO metric_rollups (run_id, key, block, first_step, last_step, min_step, min_value, max_step, max_value, count)
     SELECT g.run_id, g.key, g.block, g.first_step, g.last_step,
            (SELECT m.step FROM metrics m WHERE m.run_id = g.run_id AND m.key = g.key AND m.step BETWEEN g.first_step AND g.last_step AND m.value = g.min_value ORDER BY m.step LIMIT 1), g.min_value,
            (SELECT m.step FROM metrics m WHERE m.run_id = g.run_id AND m.key = g.key AND m.step BETWEEN g.first_step AND g.last_step AND m.value = g.max_value ORDER BY m.step LIMIT 1), g.max_value,
            g.n
     FROM (SELECT run_id, key, step / ${METRIC_ROLLUP_BLOCK} AS block, min(step) AS first_step, max(step) AS last_step, min(value) AS min_value, max(value) AS max_value, count(*) AS n
           FROM metrics WHERE run_id NOT IN (SELECT run_id FROM metric_rollups) -- runs written by insertMetricPoints have theirs
           GROUP BY run_id, key, step / ${METRIC_ROLLUP_BLOCK}) g`,
  );
  const insertTag = s.prepare("INSERT INTO run_tags (run_id, tag, created_by, created_at) VALUES (?, ?, ?, ?)");
  const insertDecision = s.prepare(
    "INSERT INTO decisions (run_id, kind, path, old_value_json, new_value_json, rationale, author_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
  );

  const longRunIds: number[] = [];
  const shortRunIds: number[] = [];
  s.transaction(() => {
    const at = iso(t0);
    const userIds = ["ada", "grace", "alan", "barbara", "edsger"].map((n) =>
      Number(
        s
          .prepare("INSERT INTO users (email, name, role, password_hash, created_at) VALUES (?, ?, 'engineer', 'x', ?)")
          .run(`${n}@example.org`, n, at).lastInsertRowid,
      ),
    );
    const projectId = Number(
      s.prepare("INSERT INTO projects (name, created_by, created_at) VALUES ('bench', ?, ?)").run(userIds[0], at).lastInsertRowid,
    );
    const experimentIds = ["iris-sweep", "digits-sweep", "sentences-lstm", "long-training"].map((n) =>
      Number(
        s
          .prepare("INSERT INTO experiments (project_id, name, created_by, created_at) VALUES (?, ?, ?, ?)")
          .run(projectId, n, userIds[0], at).lastInsertRowid,
      ),
    );
    const datasetId = Number(
      s
        .prepare(
          "INSERT INTO datasets (name, source, builtin_name, sha256, byte_size, schema_json, row_count, created_by, created_at) VALUES ('iris', 'builtin', 'iris', ?, 4551, '{}', 150, ?, ?)",
        )
        .run(sha("iris"), userIds[0], at).lastInsertRowid,
    );
    const versionIds = [0, 1].map((v) =>
      Number(
        s
          .prepare(
            "INSERT INTO dataset_versions (dataset_id, recipe_json, recipe_sha256, report_json, sha256, row_count, created_at) VALUES (?, '[]', ?, '{}', ?, 150, ?)",
          )
          .run(datasetId, sha(`recipe${v}`), sha(`version${v}`), at).lastInsertRowid,
      ),
    );
    const splitIds = [0, 1, 2].map((k) =>
      Number(
        s
          .prepare("INSERT INTO splits (dataset_version_id, spec_json, manifest_json, sha256, created_at) VALUES (?, '{}', '{}', ?, ?)")
          .run(versionIds[k % 2], sha(`split${k}`), at).lastInsertRowid,
      ),
    );

    const addRun = (i: number, experimentId: number, long: boolean): number => {
      const optimizer = pick(OPTIMIZERS);
      const learningRate = Number((10 ** (-4 + random() * 3)).toPrecision(3));
      const batchSize = pick([16, 32, 64, 128, 256]);
      const epochs = long ? LONG_POINTS / POINTS_PER_EPOCH : pick([10, 20, 50, 100]);
      const seedValue = Math.floor(random() * 10_000);
      const units = pick([16, 32, 64, 128]);
      const dropout = pick([0, 0.1, 0.2, 0.5]);
      const config = {
        data: { dataset: { builtin: pick(["iris", "digits", "sentences"]) }, split: { seed: pick([1, 7, 42]) } },
        model: {
          layers: [
            { type: "dense", units },
            { type: "dropout", rate: dropout },
          ],
        },
        training: {
          optimizer: { name: optimizer },
          learningRate,
          lrSchedule: { type: pick(["constant", "step", "exponential"]) },
          batchSize,
          epochs,
          seed: seedValue,
        },
      };
      const configJson = JSON.stringify(config);
      const createdMs = t0 + i * 60_000;
      const status = long ? "completed" : random() < 0.85 ? "completed" : pick(["failed", "cancelled", "running"] as const);
      const finished = status === "running" ? null : iso(createdMs + 5_000 + Math.floor(random() * 600_000));
      const author = pick(userIds);
      const split = pick(splitIds);
      const runId = Number(
        insertRun.run(
          experimentId,
          `${optimizer}-lr${learningRate}-bs${batchSize}-${i}`,
          status,
          configJson,
          sha(configJson),
          seedValue,
          versionIds[(split - splitIds[0]!) % 2],
          split,
          author,
          iso(createdMs),
          iso(createdMs + 1_000),
          finished,
        ).lastInsertRowid,
      );
      const params: [string, string | null, number | null][] = [
        ["data.dataset.builtin", config.data.dataset.builtin, null],
        ["data.split.seed", null, config.data.split.seed],
        ["model.layers.0.units", null, units],
        ["model.layers.1.rate", null, dropout],
        ["training.optimizer.name", optimizer, null],
        ["training.learningRate", null, learningRate],
        ["training.lrSchedule.type", config.training.lrSchedule.type, null],
        ["training.batchSize", null, batchSize],
        ["training.epochs", null, epochs],
        ["training.seed", null, seedValue],
      ];
      for (const [key, text, num] of params) insertParam.run(runId, key, text, num);
      // Final metrics that depend on the hyperparameters, plus noise.
      const quality = Math.min(0.99, 0.55 + 0.1 * Math.log10(learningRate * 1e4) + (optimizer === "adam" ? 0.1 : 0) + random() * 0.2);
      const steps = epochs * (long ? POINTS_PER_EPOCH : 10);
      const summaries: [string, number, number, number][] = [
        ["loss", 1 - quality + 0.05, 0.9 - quality / 2, 2.3],
        ["accuracy", quality + 0.02, 0.1, Math.min(1, quality + 0.03)],
        ["val_loss", 1.05 - quality, 0.95 - quality, 2.4],
        ["val_accuracy", quality, 0.1, Math.min(1, quality + 0.01)],
        ["lr", learningRate, learningRate / 10, learningRate],
      ];
      for (const [key, last, min, max] of summaries)
        insertSummary.run(runId, key, last, steps, Math.min(min, last), Math.max(max, last), epochs);
      if (random() < 0.1) insertTag.run(runId, pick(["baseline", "candidate", "ablation"]), author, iso(createdMs));
      insertDecision.run(runId, "initial", "", null, configJson, "sweep point", author, iso(createdMs));
      return runId;
    };

    for (let i = 0; i < RUNS; i++) {
      const id = addRun(i, experimentIds[i % 3]!, false);
      if (i % 500 === 0 && shortRunIds.length < 20) shortRunIds.push(id);
    }
    // Epoch-level curves for 20 ordinary runs (what most comparisons chart).
    for (const id of shortRunIds) {
      for (let e = 0; e < 100; e++) {
        insertPoint.run(id, "val_loss", (e + 1) * 10, e + 1, 2.3 * Math.exp(-e / 20) + 0.1 + random() * 0.02, t0 + e * 1_000);
        insertPoint.run(id, "val_accuracy", (e + 1) * 10, e + 1, 0.95 - 0.85 * Math.exp(-e / 15) + random() * 0.01, t0 + e * 1_000);
      }
    }
    for (let r = 0; r < longRuns; r++) {
      const id = addRun(RUNS + r, experimentIds[3]!, true);
      longRunIds.push(id);
      const start = t0 + r * 86_400_000;
      if (opts.longSeries !== false) insertLongSeries.run({ runId: id, last: LONG_POINTS - 1, perEpoch: POINTS_PER_EPOCH, start });
      for (let e = 1; e <= LONG_POINTS / POINTS_PER_EPOCH; e++)
        insertPoint.run(
          id,
          "val_loss",
          e * POINTS_PER_EPOCH - 1,
          e,
          2.3 * Math.exp(-e / 200) + 0.1 + random() * 0.02,
          start + e * POINTS_PER_EPOCH * 12,
        );
    }
    seedRollups.run();
  })();
  s.pragma("wal_checkpoint(TRUNCATE)"); // a long-running server's file is checkpointed; a 1 GB WAL would slow every read
  s.pragma("optimize");
  return { longRunIds, shortRunIds };
}

async function median(reps: number, f: () => Promise<unknown>, warmUp = true): Promise<number> {
  if (warmUp) await f(); // statement preparation and page cache, as on a server that has been up for a while
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await f();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return Number((times[Math.floor(times.length / 2)] as number).toFixed(2));
}

const FILTER =
  '(params.optimizer = "adam" OR params.optimizer = "rmsprop") AND (metrics.val_accuracy > 0.7 OR params.lr >= 1e-2) AND NOT status = "failed"';

/** The runs table's call measured by runs_filter_10k_ms, with its sanity check. */
async function searchCall(store: ExploreStore): Promise<() => Promise<unknown>> {
  const search = () =>
    searchRuns(store, {
      filter: FILTER,
      sort: [{ field: "metrics.val_accuracy", dir: "desc" }],
      columns: ["params.optimizer", "params.lr", "params.batchSize", "metrics.val_accuracy", "metrics.val_loss"],
      offset: 0,
      limit: 50,
    });
  const found = await search();
  if (found.rows.length !== 50 || found.total < 1000)
    throw new Error(`bench sanity (${store.dialect}): filter matched ${found.total} runs`);
  return search;
}

/**
 * The compare view: compareRuns plus its two charts, each one metric of every run (what compare_20_runs_ms measures).
 * A chart's runs are read by fetchSeriesOfRuns: on PostgreSQL concurrently, their statements batched; on SQLite one
 * run after another, as fetchSeries.
 */
const compareCall = (store: ExploreStore, ids: number[], keys: [string, string]) => async () => {
  await compareRuns(store, ids);
  for (const key of keys) await fetchSeriesOfRuns(store, ids, { key, xAxis: "step", maxPoints: 1000 });
};

async function checkSpike(store: ExploreStore, longId: number): Promise<void> {
  const series = await fetchSeries(store, { runId: longId, key: "batch_loss", maxPoints: 1000 });
  if (!series.downsampled || series.total !== LONG_POINTS || series.points.length > 1000 || !series.points.some((pt) => pt.y > 5))
    throw new Error(`bench sanity (${store.dialect}): downsampled series lost its spike`);
}

export const BENCH_PG_URL_VAR = "RUNLEDGER_BENCH_PG_URL";

export async function benchRuns(): Promise<BenchResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-runs-"));
  const db = openDatabase(dir);
  let results: BenchResult[];
  try {
    db.$client.pragma("synchronous = OFF"); // a throw-away database: only query speed matters here
    const seeded = performance.now();
    const { longRunIds, shortRunIds } = seedRunsBench(db);
    const seedSeconds = (performance.now() - seeded) / 1000;
    const store = sqliteStore(db);

    const search = await searchCall(store);
    const longId = longRunIds[0]!;
    await checkSpike(store, longId);

    results = [
      { name: "runs_filter_10k_ms", value: await median(9, search), unit: "ms", target: "< 100 ms" },
      {
        name: "compare_20_runs_ms",
        value: await median(3, compareCall(store, longRunIds, ["batch_loss", "val_loss"]), false),
        unit: "ms",
        target: "< 300 ms",
      },
      {
        name: "compare_20_runs_epoch_curves_ms",
        value: await median(5, compareCall(store, shortRunIds, ["val_loss", "val_accuracy"])),
        unit: "ms",
        target: "< 300 ms",
      },
      {
        name: "series_1m_downsampled_ms",
        value: await median(5, () => fetchSeries(store, { runId: longId, key: "batch_loss", xAxis: "step", maxPoints: 1000 })),
        unit: "ms",
        target: "< 100 ms",
      },
      {
        name: "series_1m_zoomed_10pct_ms",
        value: await median(5, () =>
          fetchSeries(store, { runId: longId, key: "batch_loss", xAxis: "epoch", from: 450, to: 550, maxPoints: 1000 }),
        ),
        unit: "ms",
        target: "< 100 ms",
      },
      { name: "runs_bench_seed_s", value: Number(seedSeconds.toFixed(1)), unit: "s", target: "informational" },
      {
        name: "runs_bench_load_avg_1m",
        value: Number(os.loadavg()[0]!.toFixed(2)),
        unit: `(on ${os.cpus().length} cores)`,
        target: "informational: the machine is shared",
      },
    ];
  } finally {
    db.$client.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return [...results, ...(await benchRunsPg())];
}

/**
 * Seeds the bench's data set into the (new, empty) PostgreSQL database at `url`, as the header says: the SQLite seed
 * without the long batch_loss series copied by migrate-store, then the long series and their rollups generated in
 * PostgreSQL, then VACUUM ANALYZE. Exported for probes that keep the database between runs.
 */
export async function seedRunsBenchPg(
  url: string,
): Promise<{ longRunIds: number[]; shortRunIds: number[]; copySeconds: number; generateSeconds: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-runs-pg-"));
  const pgDb = openPgDatabase(url, { max: 1 });
  try {
    const t = performance.now();
    const seeding = openDatabase(dir);
    seeding.$client.pragma("synchronous = OFF");
    const { longRunIds, shortRunIds } = seedRunsBench(seeding, LONG_RUNS, { longSeries: false });
    seeding.$client.close();
    fs.writeFileSync(path.join(dir, "audit-ed25519.pub"), generateAuditKeys().publicKeyPem); // migrate-store's check reads it
    await migrateStore({ dataDir: dir, url });
    const copySeconds = (performance.now() - t) / 1000;
    // The long batch_loss series, as seedRunsBench writes them on SQLite, and their rollups (one row per block:
    // first/last step, min/max with the earliest step where each occurs, count).
    const g = performance.now();
    const c = await pgDb.$client.connect();
    try {
      await c.query("SET synchronous_commit = off");
      for (const [r, runId] of longRunIds.entries()) {
        const start = Date.parse("2025-01-01T00:00:00.000Z") + r * 86_400_000;
        await c.query(
          `INSERT INTO metrics (run_id, key, step, epoch, value, wall_time_ms)
           SELECT $1, 'batch_loss', step, step * 1.0 / $3,
                  2.3 * exp(-step / 200000.0) + 0.05 + floor(random() * 100000) / 1000000.0 + CASE WHEN step % 99991 = 4242 THEN 5 ELSE 0 END,
                  $4::bigint + step * 12
           FROM generate_series(0, $2::bigint) AS step`,
          [runId, LONG_POINTS - 1, POINTS_PER_EPOCH, start],
        );
        await c.query(
          `INSERT INTO metric_rollups (run_id, key, block, first_step, last_step, min_step, min_value, max_step, max_value, count)
           SELECT run_id, key, step / ${METRIC_ROLLUP_BLOCK}, min(step), max(step),
                  (array_agg(step ORDER BY value ASC, step ASC))[1], min(value),
                  (array_agg(step ORDER BY value DESC, step ASC))[1], max(value), count(*)
           FROM metrics WHERE run_id = $1 AND key = 'batch_loss'
           GROUP BY run_id, key, step / ${METRIC_ROLLUP_BLOCK}`,
          [runId],
        );
      }
      // VACUUM: what autovacuum does to a server's tables after a bulk insert (hint bits, visibility map), done here
      // instead of during the measured calls (seen running then: the first calls after seeding were the slow ones).
      // ANALYZE: without statistics the planner guessed 2 rows where thousands matched.
      await c.query("VACUUM ANALYZE");
    } finally {
      c.release();
    }
    const generateSeconds = (performance.now() - g) / 1000;

    return { longRunIds, shortRunIds, copySeconds, generateSeconds };
  } finally {
    await pgDb.$client.end().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** runs_filter_10k_ms_pg and compare_20_runs_ms_pg: the same calls on PostgreSQL (see the header), or skipped. */
async function benchRunsPg(): Promise<BenchResult[]> {
  const base = process.env[BENCH_PG_URL_VAR]?.trim();
  const names = [
    ["runs_filter_10k_ms_pg", "< 100 ms"],
    ["compare_20_runs_ms_pg", "< 300 ms"],
  ] as const;
  if (!base) {
    const why = `${BENCH_PG_URL_VAR} is not set (a PostgreSQL 15+ cluster URL, e.g. $(bash scripts/pg-cluster.sh start))`;
    return names.map(([name, target]) => ({ name, value: Number.NaN, unit: "ms", target, skipped: why }));
  }
  const scratch = await createScratchPgDatabase(base, "rl_bench");
  const pgDb = openPgDatabase(scratch.url, { max: 4 });
  try {
    const { longRunIds, copySeconds, generateSeconds } = await seedRunsBenchPg(scratch.url);
    const store = pgStore(pgDb);
    const search = await searchCall(store);
    await checkSpike(store, longRunIds[0]!);
    return [
      { name: "runs_filter_10k_ms_pg", value: await median(9, search), unit: "ms", target: "< 100 ms" },
      {
        name: "compare_20_runs_ms_pg",
        value: await median(3, compareCall(store, longRunIds, ["batch_loss", "val_loss"]), false),
        unit: "ms",
        target: "< 300 ms",
      },
      { name: "runs_bench_pg_copy_s", value: Number(copySeconds.toFixed(1)), unit: "s", target: "informational" },
      { name: "runs_bench_pg_series_s", value: Number(generateSeconds.toFixed(1)), unit: "s", target: "informational" },
      {
        name: "runs_bench_pg_load_avg_1m",
        value: Number(os.loadavg()[0]!.toFixed(2)),
        unit: `(on ${os.cpus().length} cores)`,
        target: "informational: the machine is shared",
      },
    ];
  } finally {
    await pgDb.$client.end().catch(() => undefined);
    await scratch.drop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchRuns().then((results) => console.table(results));
}
