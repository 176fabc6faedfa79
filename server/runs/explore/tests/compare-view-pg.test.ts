/**
 * The compare view as bench/runs.ts measures it (compare_20_runs_ms / compare_20_runs_ms_pg): compareRuns, then one
 * chart per metric of every compared run (fetchSeriesOfRuns over the whole range). Its output must be the same on
 * SQLite and PostgreSQL for the same data, to the last bit of every number. The series are long enough for the chart
 * to read rollups with several blocks per bucket (on PostgreSQL reduced to each bucket's extremes in SQL), start and
 * end off block edges (partial end blocks), hold plateaus (ties between blocks of one bucket) and a spike, next to
 * short epoch curves read raw.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "@/server/tests/pg-test-env";
import { openPgDatabase, type PgDb } from "@/db/pg-client";
import { generateAuditKeys } from "@/server/audit/keys";
import { migrateStore } from "@/server/backup/migrate-store";
import { insertMetricPoints, type MetricPoint } from "@/server/runs/orchestrator/persist-events";
import { compareRuns } from "../compare";
import { fetchSeriesOfRuns, type XAxis } from "../downsample";
import { pgStore, sqliteStore, type ExploreStore } from "../store";
import { createFixture, type Fixture } from "./fixtures";

let f: Fixture;
let lite: ExploreStore;
let runIds: number[];

/** Per run: a long batch_loss series (steps [first, first + n), plateaus, one spike) and a val_loss epoch curve. */
function seedCurves(fx: Fixture): number[] {
  const runs = [
    { id: fx.ids.adam!, first: 0, n: 40_000, spikeAt: 17_003 },
    { id: fx.ids.sgd!, first: 700, n: 33_333, spikeAt: 4_095 },
    { id: fx.ids.evil!, first: 1_024, n: 30_000, spikeAt: 30_000 },
  ];
  for (const [r, run] of runs.entries()) {
    const points: MetricPoint[] = [];
    for (let i = 0; i < run.n; i++) {
      const step = run.first + i;
      // Values on a coarse grid: equal minima and maxima recur in neighbouring blocks (ties across a bucket).
      const value = step === run.spikeAt ? 9.5 : Math.round((2 * Math.exp(-step / 20_000) + Math.sin(step / 900 + r) / 2) * 8) / 8;
      points.push({ key: "batch_loss", step, epoch: step / 1_000, value, wallTimeMs: 1_700_000_000_000 + r * 1e8 + step * 12 });
    }
    for (let e = 1; e <= 40; e++)
      points.push({
        key: "val_loss",
        step: run.first + e * 1_000 - 1,
        epoch: e,
        value: 1 / e + r / 10,
        wallTimeMs: 1_700_000_000_000 + e * 12_000,
      });
    for (let i = 0; i < points.length; i += 5_000) insertMetricPoints(fx.db, run.id, points.slice(i, i + 5_000));
  }
  return [...runs.map((r) => r.id), fx.ids.rmsprop!]; // rmsprop: no points
}

/** The view: the comparison, then a chart of each metric (the bench's call, on each axis and at two resolutions). */
async function compareView(store: ExploreStore, ids: number[], xAxis: XAxis, maxPoints: number) {
  const comparison = await compareRuns(store, ids);
  const charts = [];
  for (const key of ["batch_loss", "val_loss"]) charts.push(await fetchSeriesOfRuns(store, ids, { key, xAxis, maxPoints }));
  return { comparison, charts };
}

beforeAll(() => {
  f = createFixture();
  runIds = seedCurves(f);
  lite = sqliteStore(f.db);
});
afterAll(() => f?.close());

describePg("[compare-view-pg] the compare view gives the same output on SQLite and PostgreSQL", () => {
  let scratch: ScratchPgDatabase;
  let pgDb: PgDb;
  let onPg: ExploreStore;

  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    fs.writeFileSync(path.join(f.dir, "audit-ed25519.pub"), generateAuditKeys().publicKeyPem); // migrate-store's check reads it
    await migrateStore({ dataDir: f.dir, url: scratch.url });
    pgDb = openPgDatabase(scratch.url, { max: 3 });
    onPg = pgStore(pgDb);
  }, 120_000);
  afterAll(async () => {
    await pgDb?.$client.end().catch(() => undefined);
    await scratch?.drop();
  });

  it("compareRuns and its charts, on each axis, whole and coarse (rollups with several blocks per bucket)", async () => {
    for (const xAxis of ["step", "epoch", "wall"] as const)
      for (const maxPoints of [1_000, 40, 9]) {
        const expected = await compareView(lite, runIds, xAxis, maxPoints);
        expect(await compareView(onPg, runIds, xAxis, maxPoints), `${xAxis}, ${maxPoints} points`).toEqual(expected);
        const [batchLoss, valLoss] = expected.charts;
        // What the case exercises: batch_loss downsampled (with its spike), val_loss raw, the empty run empty.
        expect(
          batchLoss!.slice(0, 3).every((s) => s.downsampled && s.points.length <= maxPoints && s.points.some((p) => p.y === 9.5)),
        ).toBe(true);
        expect(valLoss!.slice(0, 3).every((s) => s.downsampled === maxPoints < 40 && s.total === 40)).toBe(true);
        expect(batchLoss![3]).toEqual({ runId: runIds[3], points: [], total: 0, downsampled: false });
      }
    // The order asked is kept, and an unknown run is refused on both stores.
    const reversed = [...runIds].reverse();
    expect(await compareView(onPg, reversed, "step", 40)).toEqual(await compareView(lite, reversed, "step", 40));
    await expect(compareRuns(onPg, [runIds[0]!, 9_999])).rejects.toThrow("compare: unknown run id 9999");
  });
});
