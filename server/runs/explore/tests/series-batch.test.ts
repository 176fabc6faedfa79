/**
 * The compare view's series reads (issue 16, compare_20_runs_ms_pg): fetchSeriesOfRuns, the rollups reader reading only
 * the extremes of the partial end blocks, and on PostgreSQL the batched statements of series-batch-pg.ts (the calls
 * made together go out as one statement, their fields as text). Each must give what fetchSeries gives on SQLite, call by
 * call, to the last bit of every number.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "@/server/tests/pg-test-env";
import { openPgDatabase, type PgDb } from "@/db/pg-client";
import { generateAuditKeys } from "@/server/audit/keys";
import { migrateStore } from "@/server/backup/migrate-store";
import { insertMetricPoints, type MetricPoint } from "@/server/runs/orchestrator/persist-events";
import { compareRuns } from "../compare";
import { fetchSeries, fetchSeriesFrom, fetchSeriesOfRuns, type FetchSeriesInput } from "../downsample";
import { pgStore, sqliteStore, type ExploreStore } from "../store";
import { createFixture, type Fixture } from "./fixtures";

let f: Fixture;
let lite: ExploreStore;
let runIds: number[];

/** Plateaus (many equal values: ties), a spike, gaps in the steps, a start off a block edge, an empty run. */
function seedSeries(fx: Fixture): number[] {
  const plateau = (step: number) => Math.round(Math.sin(step / 300) * 4) / 4;
  const series: [number, MetricPoint[]][] = [];
  const adam: MetricPoint[] = [];
  for (let step = 0; step < 6_000; step++) {
    adam.push({
      key: "batch_loss",
      step,
      epoch: step / 100,
      value: step === 4_321 ? 50 : plateau(step),
      wallTimeMs: 1_000_000 + step * 10,
    });
  }
  for (let e = 1; e <= 30; e++)
    adam.push({ key: "val_loss", step: e * 200, epoch: e * 2, value: 1 / e, wallTimeMs: 1_000_000 + e * 2_000 });
  // Numbers whose text is easy to get wrong: the shortest exact digits, exponents, the smallest subnormal, the
  // largest double, integers near 2^53 (the batched statements send every field as text on PostgreSQL).
  const edges = [0.1 + 0.2, 5e-324, 1.7976931348623157e308, -1e21, 1e-7, 123456789.12345679, -2.5e-310, 1 / 3, 0, 2 ** 52 + 0.5];
  for (let i = 0; i < 50; i++)
    adam.push({
      key: "edge_values",
      step: 2 ** 40 + i * 3,
      epoch: edges[(i + 3) % edges.length]!,
      value: edges[i % edges.length]! * (i % 2 ? -1 : 1),
      wallTimeMs: Number.MAX_SAFE_INTEGER - 1000 + i,
    });
  series.push([fx.ids.adam!, adam]);
  const sgd: MetricPoint[] = [];
  for (let step = 500; step < 3_500; step++) {
    if (step % 7 === 3 || (step > 2_100 && step < 2_300)) continue; // gaps, one wider than a zoomed-in bucket
    sgd.push({
      key: "batch_loss",
      step,
      epoch: step / 50,
      value: Math.cos(step / 40) + (step === 1_023 ? -9 : 0),
      wallTimeMs: 2_000_000 + step * 5,
    });
  }
  series.push([fx.ids.sgd!, sgd]);
  const evil: MetricPoint[] = [];
  for (let step = 0; step < 1_500; step++)
    evil.push({ key: "batch_loss", step, epoch: step / 10, value: plateau(step * 7), wallTimeMs: 3_000_000 + step });
  series.push([fx.ids.evil!, evil]);
  for (const [runId, points] of series)
    for (let i = 0; i < points.length; i += 777) insertMetricPoints(fx.db, runId, points.slice(i, i + 777));
  return [fx.ids.adam!, fx.ids.sgd!, fx.ids.rmsprop!, fx.ids.evil!]; // rmsprop: no points
}

type Input = Omit<FetchSeriesInput, "runId">;
const INPUTS: Input[] = [
  { key: "batch_loss" },
  { key: "batch_loss", maxPoints: 8 },
  { key: "batch_loss", maxPoints: 40, xAxis: "epoch", from: 3.333, to: 51.5 },
  { key: "batch_loss", maxPoints: 30, xAxis: "wall", from: 1_000_000 + 1_234, to: 2_000_000 + 9_999 },
  { key: "batch_loss", from: 1_000, to: 1_100, maxPoints: 4 },
  { key: "batch_loss", from: 1_020, to: 2_050, maxPoints: 6 },
  { key: "batch_loss", from: 4_000, to: 4_999, maxPoints: 100 },
  { key: "batch_loss", from: 7_000 },
  { key: "val_loss", xAxis: "epoch", from: 1.5, to: 44.2, maxPoints: 5 },
  { key: "val_loss" },
  { key: "edge_values", xAxis: "epoch" },
  { key: "edge_values", xAxis: "wall", maxPoints: 6 },
  { key: "nope" },
];

beforeAll(() => {
  f = createFixture();
  runIds = seedSeries(f);
  lite = sqliteStore(f.db);
});
afterAll(() => f?.close());

describe("series of the compare view on SQLite", () => {
  it("reads rollups with only the extremes of the partial end blocks, as exactly as every point", async () => {
    let compared = 0;
    for (const runId of runIds)
      for (const input of INPUTS) {
        const forced = { runId, ...input, maxPoints: input.maxPoints ?? 12 };
        const fromRollups = await fetchSeriesFrom(lite, forced, "rollups");
        expect(fromRollups, JSON.stringify(forced)).toEqual(await fetchSeriesFrom(lite, forced, "points"));
        if (fromRollups.downsampled) compared++;
      }
    expect(compared).toBeGreaterThan(15);
    // A range inside two partial blocks, across the block edge at 1,024, with the spike at 1,023 kept.
    const across = await fetchSeriesFrom(lite, { runId: f.ids.sgd!, key: "batch_loss", from: 1_000, to: 1_100, maxPoints: 4 }, "rollups");
    expect(across.points).toContainEqual(expect.objectContaining({ step: 1_023 }));
  });

  it("fetchSeriesOfRuns gives each run's fetchSeries, in the order asked", async () => {
    const order = [runIds[3]!, runIds[0]!, runIds[2]!, runIds[1]!];
    for (const input of INPUTS) {
      const each = [];
      for (const runId of order) each.push({ runId, ...(await fetchSeries(lite, { runId, ...input })) });
      expect(await fetchSeriesOfRuns(lite, order, input), JSON.stringify(input)).toEqual(each);
    }
  });
});

describePg("[series-batch-pg] batched series statements on PostgreSQL give SQLite's series", () => {
  let scratch: ScratchPgDatabase;
  let pgDb: PgDb;
  let onPg: ExploreStore;
  let statements = 0;

  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    fs.writeFileSync(path.join(f.dir, "audit-ed25519.pub"), generateAuditKeys().publicKeyPem); // migrate-store's check reads it
    await migrateStore({ dataDir: f.dir, url: scratch.url });
    pgDb = openPgDatabase(scratch.url, { max: 3 });
    const query = pgDb.$client.query.bind(pgDb.$client) as (...a: unknown[]) => unknown;
    (pgDb.$client as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => {
      statements++;
      return query(...a);
    };
    onPg = pgStore(pgDb);
  }, 120_000);
  afterAll(async () => {
    await pgDb?.$client.end().catch(() => undefined);
    await scratch?.drop();
  });

  it("fetchSeriesOfRuns: the same series as SQLite, in a few statements whatever the number of runs", async () => {
    for (const input of INPUTS) {
      const expected = await fetchSeriesOfRuns(lite, runIds, input);
      statements = 0;
      expect(await fetchSeriesOfRuns(onPg, runIds, input), JSON.stringify(input)).toEqual(expected);
      // About one batched statement per kind and step of fetchSeries for all runs together (up to 8 on the step axis;
      // a batch answered before another lets its runs go on alone, so a few more); the binary searches of epoch/wall
      // ranges add ~2 per halving. Unbatched, every run sends its own statements for each of those steps.
      expect(statements, JSON.stringify(input)).toBeLessThanOrEqual(input.xAxis && input.xAxis !== "step" ? 40 : 12);
    }
  });

  it("the per-bucket and rollups readers, batched, equal SQLite's; calls of different series sent together too", async () => {
    const calls: { input: FetchSeriesInput; source: "auto" | "points" | "rollups" }[] = [];
    for (const runId of runIds)
      for (const input of INPUTS)
        for (const source of ["auto", "points", "rollups"] as const)
          calls.push({ input: { runId, ...input, maxPoints: input.maxPoints ?? 50 }, source });
    const expected = [];
    for (const c of calls) expected.push(await fetchSeriesFrom(lite, c.input, c.source));
    // All at once: one flush mixes runs, keys, ranges and readers in each batched statement.
    expect(await Promise.all(calls.map((c) => fetchSeriesFrom(onPg, c.input, c.source)))).toEqual(expected);
    const zoomed = await fetchSeries(onPg, { runId: f.ids.adam!, key: "batch_loss", from: 4_000, to: 4_999, maxPoints: 100 });
    expect(zoomed).toMatchObject({ total: 1_000, downsampled: true });
    expect(zoomed.points).toContainEqual({ x: 4_321, y: 50, step: 4_321 });
  });

  it("compareRuns: the same comparison with its reads sent together", async () => {
    expect(await compareRuns(onPg, runIds)).toEqual(await compareRuns(lite, runIds));
    await expect(compareRuns(onPg, [runIds[0]!, 9999])).rejects.toThrow("compare: unknown run id 9999");
  });
});
