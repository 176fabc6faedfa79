/**
 * The runs explorer on both stores (issue 16): the explore fixture plus runs chosen to make the stores disagree if
 * the SQL were dialect-naive (mixed-case and non-ASCII names, equal durations from different start times, an author
 * whose name sorts differently under a linguistic collation, an API run whose watched metric comes from its metrics),
 * seeded in SQLite, copied with migrate-store into a PostgreSQL database whose default collation is ICU en-US (not
 * byte order), then searchRuns, compareRuns, fetchSeries, listColumns and groupRuns must return equal results from both.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "@/server/tests/pg-test-env";
import { openPgDatabase, type PgDb } from "@/db/pg-client";
import { generateAuditKeys } from "@/server/audit/keys";
import { migrateStore } from "@/server/backup/migrate-store";
import { insertMetricPoints, type MetricPoint } from "@/server/runs/orchestrator/persist-events";
import { searchRuns, type SearchRunsInput } from "../runs-search";
import { compareRuns } from "../compare";
import { listColumns } from "../columns";
import { groupRuns, type GroupRunsInput } from "../group-runs";
import { RunsQueryError } from "../errors";
import { fetchSeries, type FetchSeriesInput } from "../downsample";
import { pgStore, sqliteStore, type ExploreStore } from "../store";
import { createFixture, type Fixture } from "./fixtures";

let f: Fixture;
let lite: ExploreStore;
let pgDb: PgDb;
let onPg: ExploreStore;
let scratch: ScratchPgDatabase | undefined;
const extra: Record<string, number> = {};

/** Runs that make byte order, ASCII case folding and exact durations matter. */
function seedExtra(fx: Fixture): void {
  const s = fx.db.$client;
  const at = "2025-01-01T00:00:00.000Z";
  const bob = Number(
    s
      .prepare("INSERT INTO users (email, name, role, password_hash, created_at) VALUES ('Bob@Example.org', 'Bob', 'engineer', 'x', ?)")
      .run(at).lastInsertRowid,
  );
  const experiment = Number(
    s
      .prepare(
        "INSERT INTO experiments (project_id, name, created_by, created_at) SELECT project_id, 'Zebra', ?, ? FROM experiments LIMIT 1",
      )
      .run(bob, at).lastInsertRowid,
  );
  const insertRun = s.prepare(
    `INSERT INTO runs (experiment_id, name, status, config_json, config_sha256, seed, origin, backend, created_by, created_at, started_at, finished_at)
     VALUES (?, ?, 'completed', '{}', ?, 1, ?, 'wasm', ?, ?, ?, ?)`,
  );
  const param = s.prepare("INSERT INTO run_params (run_id, key, value_text, value_num) VALUES (?, ?, ?, ?)");
  const summary = s.prepare("INSERT INTO metric_summaries (run_id, key, last, last_step, min, max, count) VALUES (?, ?, ?, 100, ?, ?, 10)");
  const tag = s.prepare("INSERT INTO run_tags (run_id, tag, created_by, created_at) VALUES (?, ?, ?, ?)");
  // Equal durations (90.000 s) from start times whose julianday() differences carry different float noise.
  const starts = ["2025-03-06T10:00:00.123Z", "2025-03-06T13:17:41.987Z", "2025-03-07T02:03:04.005Z", "2025-03-08T23:59:30.001Z"];
  const names = ["Zeta", "alpha", "Émile", "_under"];
  const optimizers = ["Adamax", "adam", "éta", "SGD"];
  starts.forEach((start, i) => {
    const finished = new Date(Date.parse(start) + 90_000).toISOString();
    const id = Number(
      insertRun.run(i % 2 ? experiment : 1, names[i], "e".repeat(64), i === 3 ? "api" : "new", i % 2 ? bob : 1, start, start, finished)
        .lastInsertRowid,
    );
    extra[names[i]!] = id;
    param.run(id, "training.optimizer.name", optimizers[i], null);
    param.run(id, "training.learningRate", null, 0.01);
    summary.run(id, "val_loss", 0.3 + i / 10, 0.2, 1.1);
    summary.run(id, "Val_Acc", 0.5, 0.1, 0.6);
    tag.run(id, i % 2 ? "Zed" : "alpha-tag", bob, at);
    tag.run(id, "baseline", bob, at);
  });
  // compareModels' reads: a best and a later checkpoint, with an evaluation of the best.
  const ck = s.prepare(
    "INSERT INTO checkpoints (run_id, epoch, step, sha256, bytes, metrics_json, is_best, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const best = Number(ck.run(fx.ids.adam, 3, 30, "c".repeat(64), 1234, '{"params":99}', 1, at).lastInsertRowid);
  ck.run(fx.ids.adam, 5, 50, "d".repeat(64), 1300, "{}", 0, at);
  s.prepare(
    `INSERT INTO evaluations (run_id, checkpoint_id, partition, data_sha256, metrics_json, created_by, created_at)
     VALUES (?, ?, 'test', ?, '{"accuracy":0.93}', ?, ?)`,
  ).run(fx.ids.adam, best, "f".repeat(64), bob, at);
  // An applied intervention on the API run with no watched metric in its snapshot (the fallback reads its metrics).
  s.prepare(
    `INSERT INTO run_interventions (run_id, kind, changes_json, rationale, requested_by, requested_at, status, applied_at_epoch, applied_at_step, applied_at)
     VALUES (?, 'pause', '[]', 'look', ?, ?, 'applied', 2, 20, ?)`,
  ).run(extra._under, bob, at, at);

  // Series: a long one (rollups, zoomed-in per-bucket reader, epoch and wall ranges) and a short one.
  const points: MetricPoint[] = [];
  for (let step = 0; step < 6_000; step++)
    points.push({
      key: "batch_loss",
      step,
      epoch: step / 100,
      value: step === 4_321 ? 50 : Math.round(Math.sin(step / 300) * 4) / 4,
      wallTimeMs: 1_000_000 + step * 10,
    });
  for (let e = 1; e <= 30; e++) points.push({ key: "val_loss", step: e * 20, epoch: e / 5, value: 1 / e, wallTimeMs: 1_000_000 + e * 200 });
  for (let i = 0; i < points.length; i += 777) insertMetricPoints(fx.db, extra._under!, points.slice(i, i + 777));
}

/**
 * Params and metrics on the existing runs (no new runs: the search cases above count them) for grouping and the
 * column chooser: one param of mixed types whose values have equal text across types ("3" and 3, "true" and true,
 * "null" and null) or are canonically equivalent ("é" and "e" + U+0301, equal under localeCompare), runs without it,
 * param paths that order differently in byte order and en-US, and a metric whose three values in one author's group
 * have a correctly rounded mean (0.29) that a plain float sum misses (0.29000000000000004) in any order.
 */
function seedGrouping(fx: Fixture): void {
  const s = fx.db.$client;
  const param = s.prepare("INSERT INTO run_params (run_id, key, value_text, value_num) VALUES (?, ?, ?, ?)");
  const variants: [number, string | null, number | null][] = [
    [fx.ids.adam!, null, 3],
    [fx.ids.sgd!, "3", null],
    [fx.ids.rmsprop!, "true", 1],
    [fx.ids.bare!, "true", null],
    [fx.ids.evil!, "null", null],
    [extra.Zeta!, "\u00e9", null],
    [extra.alpha!, "e\u0301", null],
    [extra["Émile"]!, null, 3],
  ]; // extra._under has none
  for (const [runId, text, num] of variants) param.run(runId, "sweep.variant", text, num);
  param.run(fx.ids.adam, "Zoo.size", null, 2);
  param.run(fx.ids.sgd, "_x", "on", null);
  param.run(extra.alpha, "Émile.depth", null, 4);
  const summary = s.prepare(
    "INSERT INTO metric_summaries (run_id, key, last, last_step, min, max, count) VALUES (?, 'score', ?, 9, ?, ?, 3)",
  );
  const scores: [number, number][] = [
    [fx.ids.adam!, 0.04],
    [fx.ids.rmsprop!, 0.67],
    [fx.ids.evil!, 0.16],
    [fx.ids.sgd!, 0.5],
    [extra.alpha!, 0.03],
    [extra._under!, 0.04],
  ];
  for (const [runId, v] of scores) summary.run(runId, v, v - 0.01, v * 2);
}

/** UTF-8 byte order, SQLite's BINARY collation. */
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

describePg("[explore-pg] the runs explorer's queries give the same results on SQLite and PostgreSQL", () => {
  beforeAll(async () => {
    f = createFixture();
    seedExtra(f);
    seedGrouping(f);
    lite = sqliteStore(f.db);
    // A database whose default collation is linguistic (ICU en-US): byte order must come from the SQL, not the cluster.
    scratch = await createScratchPgDatabase({ linguisticCollation: true });
    fs.writeFileSync(path.join(f.dir, "audit-ed25519.pub"), generateAuditKeys().publicKeyPem); // migrate-store's check reads it
    await migrateStore({ dataDir: f.dir, url: scratch.url });
    pgDb = openPgDatabase(scratch.url, { max: 3 });
    onPg = pgStore(pgDb);
  }, 120_000);
  afterAll(async () => {
    await pgDb?.$client.end().catch(() => undefined);
    await scratch?.drop();
    f?.close();
  });

  it("is a database where a plain ORDER BY would not give byte order", async () => {
    const c = await pgDb.$client.connect();
    try {
      const r = await c.query<{ names: string[] }>(
        "SELECT array_agg(name ORDER BY name) AS names FROM runs WHERE name IN ('Zeta', 'alpha')",
      );
      expect(r.rows[0]!.names).toEqual(["alpha", "Zeta"]); // byte order (SQLite) is Zeta, alpha
    } finally {
      c.release();
    }
  });

  const sorts: SearchRunsInput["sort"][] = [
    undefined,
    [{ field: "duration", dir: "desc" }],
    [{ field: "duration", dir: "asc" }],
    [{ field: "name", dir: "asc" }],
    [{ field: "name", dir: "desc" }],
    [{ field: "params.optimizer", dir: "asc" }],
    [{ field: "author", dir: "asc" }],
    [{ field: "experiment", dir: "desc" }],
    [{ field: "status", dir: "asc" }],
    [{ field: "finished", dir: "asc" }],
    [{ field: "metrics.val_loss.min", dir: "asc" }],
    [
      { field: "batchSize", dir: "asc" },
      { field: "lr", dir: "desc" },
    ],
  ];
  const filters = [
    undefined,
    '(params.optimizer = "adam" OR params.optimizer = "rmsprop") AND metrics.val_accuracy > 0.7',
    'name ~ "É"',
    'name ~ "émile" OR name ~ "ZETA"',
    'author = "BOB" OR author ~ "example.ORG"',
    'name > "Z" AND name < "a"',
    'params.optimizer >= "a"',
    'tag = "baseline" AND NOT tag = "Zed"',
    'experiment = "Zebra" OR experiment IN ("sweep")',
    'tag ~ "ZED" OR tag IN ("alpha-tag")',
    'params.data.dataset.builtin < "digitz" OR name <= "_under"',
    'created >= "2025-03-04" AND finished < "2025-03-08T00:00:00Z"',
    "NOT metrics.val_loss < 0.4",
    "metrics.Val_Acc.max = 0.6",
  ];

  it("searchRuns: the same pages, totals and rows for each filter and sort", async () => {
    let compared = 0;
    for (const filter of filters)
      for (const sort of sorts) {
        const input: SearchRunsInput = { filter, sort, columns: ["params.optimizer", "lr", "metrics.val_loss", "metrics.Val_Acc"] };
        const [a, b] = [await searchRuns(lite, input), await searchRuns(onPg, input)];
        expect(b, JSON.stringify(input)).toEqual(a);
        compared += a.rows.length;
      }
    expect(compared).toBeGreaterThan(300);
    // The duration sort breaks the 90-second tie by newest id on both stores.
    const byDuration = await searchRuns(onPg, { sort: [{ field: "duration", dir: "asc" }] });
    const tied = [extra.Zeta, extra.alpha, extra["Émile"], extra._under].sort((x, y) => y! - x!);
    expect(byDuration.rows.slice(1, 5).map((r) => r.id)).toEqual(tied);
    // Text sorts are in byte order: upper case before underscore before lower case, non-ASCII last.
    const byName = await searchRuns(onPg, { sort: [{ field: "name", dir: "asc" }], filter: `id >= ${extra.Zeta}` });
    expect(byName.rows.map((r) => r.name)).toEqual(["Zeta", "_under", "alpha", "Émile"]);
    // `~` folds ASCII only, as SQLite's lower(): "é" does not match "É".
    expect((await searchRuns(onPg, { filter: 'name ~ "émile"' })).total).toBe(0);
  });

  it("searchRuns: paging past the end and within, default columns", async () => {
    for (const input of [
      { offset: 3, limit: 2 },
      { offset: 50, limit: 5 },
      { filter: 'name ~ "a"', offset: 1, limit: 3, sort: [{ field: "name", dir: "desc" as const }] },
      { experimentId: 1 },
    ])
      expect(await searchRuns(onPg, input)).toEqual(await searchRuns(lite, input));
  });

  it("compareRuns: the same comparison (params, data, decisions, metrics, interventions, models)", async () => {
    const sets = [
      [f.ids.sgd!, f.ids.adam!],
      [f.ids.adam!, f.ids.bare!, f.ids.rmsprop!],
      [extra._under!, extra.Zeta!, f.ids.evil!, extra["Émile"]!],
      [f.ids.adam!, f.ids.sgd!, f.ids.rmsprop!, f.ids.bare!, f.ids.evil!, extra.Zeta!, extra.alpha!, extra["Émile"]!, extra._under!],
    ];
    for (const ids of sets) expect(await compareRuns(onPg, ids)).toEqual(await compareRuns(lite, ids));
    const withModel = await compareRuns(onPg, [f.ids.adam!, f.ids.sgd!]);
    expect(withModel.models[0]).toMatchObject({ epoch: 3, sizeBytes: 1234, params: 99, accuracy: 0.93 });
    const withIntervention = await compareRuns(onPg, [extra._under!, f.ids.adam!]);
    expect(withIntervention.interventions[0]![0]!.effect?.metric).toBe("val_loss");
    await expect(compareRuns(onPg, [f.ids.adam!, 9999])).rejects.toThrow("compare: unknown run id 9999");
  });

  it("fetchSeries: the same points raw, downsampled from rollups, zoomed in per bucket, on each axis", async () => {
    const runId = extra._under!;
    const inputs: FetchSeriesInput[] = [
      { runId, key: "val_loss" },
      { runId, key: "val_loss", xAxis: "epoch", from: 1.5, to: 4.2, maxPoints: 5 },
      { runId, key: "batch_loss", maxPoints: 1000 },
      { runId, key: "batch_loss", maxPoints: 8 },
      { runId, key: "batch_loss", maxPoints: 40, xAxis: "epoch", from: 3.333, to: 51.5 },
      { runId, key: "batch_loss", maxPoints: 30, xAxis: "wall", from: 1_000_000 + 1_234, to: 1_000_000 + 44_444 },
      { runId, key: "batch_loss", xAxis: "step", from: 4_000, to: 4_999, maxPoints: 100 },
      { runId, key: "batch_loss", from: 7_000 },
      { runId, key: "nope" },
    ];
    for (const input of inputs) {
      const [a, b] = [await fetchSeries(lite, input), await fetchSeries(onPg, input)];
      expect(b, JSON.stringify(input)).toEqual(a);
    }
    const spike = await fetchSeries(onPg, { runId, key: "batch_loss", maxPoints: 8 });
    expect(spike).toMatchObject({ total: 6_000, downsampled: true });
    expect(spike.points).toContainEqual({ x: 4_321, y: 50, step: 4_321 });
  });

  it("listColumns: the same paths, types, run counts and byte order, per experiment", async () => {
    for (const experimentId of [undefined, 1, 2, 3, 999])
      expect(await listColumns(onPg, experimentId)).toEqual(await listColumns(lite, experimentId));
    const all = await listColumns(onPg);
    const paths = all.params.map((p) => p.path);
    const keys = all.metrics.map((m) => m.key);
    expect(paths).toEqual([...paths].sort(byteOrder));
    expect(keys).toEqual([...keys].sort(byteOrder));
    // The case is live: the database's own collation (en-US) orders them differently.
    const enUs = new Intl.Collator("en-US").compare;
    expect([...paths].sort(enUs)).not.toEqual(paths);
    expect([...keys].sort(enUs)).not.toEqual(keys);
    expect(paths.slice(0, 2)).toEqual(["Zoo.size", "_x"]);
    // Types come from counts that node-postgres returns as text: a boolean, a mixed and a number param.
    expect(all.params.find((p) => p.path === "training.shuffle")).toEqual({ path: "training.shuffle", type: "boolean", runs: 3 });
    expect(all.params.find((p) => p.path === "sweep.variant")).toEqual({ path: "sweep.variant", type: "mixed", runs: 8 });
    expect(all.params.find((p) => p.path === "training.learningRate")).toEqual({ path: "training.learningRate", type: "number", runs: 9 });
    expect(all.metrics.find((m) => m.key === "score")).toEqual({ key: "score", runs: 6 });
  });

  it("groupRuns: the same groups, counts, order and min/mean/max for each field, metric and filter", async () => {
    const bys = [
      "optimizer",
      "params.sweep.variant",
      "lr",
      "batchSize",
      "params.training.shuffle",
      "params.Zoo.size",
      "status",
      "experiment",
      "author",
    ];
    const metrics = [
      "metrics.score",
      "metrics.score.min",
      "metrics.val_loss.min",
      "metrics.Val_Acc.max",
      "metrics.val_accuracy",
      "metrics.nope",
    ];
    const scopes: Pick<GroupRunsInput, "filter" | "experimentId">[] = [
      {},
      { filter: 'tag = "baseline"' },
      { filter: 'params.optimizer >= "a" AND name ~ "A"' },
      { filter: "NOT metrics.val_loss < 0.4" },
      { filter: 'author = "BOB" OR experiment = "other"' },
      { experimentId: 1 },
      { experimentId: 3, filter: "metrics.score > 0" },
      { filter: 'name = "no such run"' },
    ];
    let groups = 0;
    for (const by of bys)
      for (const metric of metrics)
        for (const scope of scopes) {
          const input = { by, metric, ...scope };
          const [a, b] = [await groupRuns(lite, input), await groupRuns(onPg, input)];
          expect(b, JSON.stringify(input)).toEqual(a);
          groups += a.groups.length;
        }
    expect(groups).toBeGreaterThan(900);

    // Values with equal text order by type, then bytes; the missing param is the null group.
    const variant = await groupRuns(onPg, { by: "params.sweep.variant", metric: "metrics.score" });
    expect(variant.groups.map((g) => [g.value, g.count])).toEqual([
      [3, 2],
      ["3", 1],
      ["e\u0301", 1],
      ["\u00e9", 1],
      [null, 1],
      ["null", 1],
      [true, 1],
      ["true", 1],
    ]);
    expect(variant.groups[0]!.metric).toEqual({ runs: 1, mean: 0.04, min: 0.04, max: 0.04 }); // adam; Émile has no score
    expect(variant.groups[4]!.metric).toEqual({ runs: 1, mean: 0.04, min: 0.04, max: 0.04 }); // extra._under
    // The mean is the correctly rounded sum / count on both stores; PostgreSQL's avg() would give 0.29000000000000004.
    const byAuthor = await groupRuns(onPg, { by: "author", metric: "metrics.score" });
    expect(byAuthor.groups.find((g) => g.value === "ada")).toEqual({
      value: "ada",
      count: 5,
      metric: { runs: 3, mean: 0.29, min: 0.04, max: 0.67 },
    });
    const avg = await pgDb.$client.query<{ mean: number }>(
      "SELECT avg(last) AS mean FROM metric_summaries WHERE key = 'score' AND run_id = ANY($1)",
      [[f.ids.adam, f.ids.rmsprop, f.ids.evil]],
    );
    expect(avg.rows[0]!.mean).toBe(0.29000000000000004);

    for (const store of [lite, onPg]) {
      await expect(groupRuns(store, { by: "tag", metric: "metrics.score" })).rejects.toThrow(RunsQueryError);
      await expect(groupRuns(store, { by: "status", metric: "name" })).rejects.toThrow(/is not a metric/);
    }
  });
});
