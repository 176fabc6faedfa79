/** compareRuns (param diffs, like-for-like data, decisions, errors) and fetchSeries downsampling on real SQLite. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareRuns } from "../compare";
import { fetchSeries, fetchSeriesFrom } from "../downsample";
import { insertMetricPoints, type MetricPoint } from "@/server/runs/orchestrator/persist-events";
import { filterToSql } from "../filter-sql";
import { parseFilter } from "../filter-parser";
import { RunsQueryError } from "../errors";
import { runs } from "@/db/schema";
import { createFixture, type Fixture } from "./fixtures";

let f: Fixture;
beforeAll(() => {
  f = createFixture();
});
afterAll(() => f.close());

describe("compareRuns", () => {
  it("lines params up side by side and flags the paths that differ", async () => {
    const c = await compareRuns(f.db, [f.ids.sgd!, f.ids.adam!]);
    expect(c.runs.map((r) => r.name)).toEqual(["sgd-slow", "adam-fast"]);
    const byPath = Object.fromEntries(c.params.map((p) => [p.path, p]));
    expect(byPath["training.optimizer.name"]).toEqual({ path: "training.optimizer.name", values: ["sgd", "adam"], differs: true });
    expect(byPath["training.epochs"]).toEqual({ path: "training.epochs", values: [10, 10], differs: false });
    expect(byPath["training.shuffle"]).toEqual({ path: "training.shuffle", values: [false, true], differs: true });
    expect(c.params.map((p) => p.path)).toEqual([...c.params.map((p) => p.path)].sort());
  });

  it("counts a path missing from one run as a difference", async () => {
    const c = await compareRuns(f.db, [f.ids.adam!, f.ids.bare!]);
    expect(c.params.find((p) => p.path === "training.optimizer.name")).toEqual({
      path: "training.optimizer.name",
      values: ["adam", null],
      differs: true,
    });
    expect(c.params.find((p) => p.path === "training.earlyStopping")).toEqual({
      path: "training.earlyStopping",
      values: [null, null],
      differs: false,
    });
  });

  it("is like-for-like only when dataset version and split match", async () => {
    const same = await compareRuns(f.db, [f.ids.adam!, f.ids.sgd!]);
    expect(same.likeForLike).toBe(true);
    expect(same.dataNotes).toEqual([]);
    expect(same.runs[0]!.data).toEqual({
      datasetName: "iris",
      datasetVersionId: f.ids.version,
      datasetVersionSha256: "v".repeat(64),
      splitId: f.ids.splitA,
      splitSha256: "a".repeat(64),
    });

    const otherSplit = await compareRuns(f.db, [f.ids.adam!, f.ids.sgd!, f.ids.rmsprop!]);
    expect(otherSplit.likeForLike).toBe(false);
    expect(otherSplit.dataNotes).toEqual([
      `different splits: runs ${f.ids.adam}, ${f.ids.sgd} used aaaaaaaaaaaa; run ${f.ids.rmsprop} used bbbbbbbbbbbb`,
    ]);

    const unknownData = await compareRuns(f.db, [f.ids.adam!, f.ids.bare!]);
    expect(unknownData.likeForLike).toBe(false);
    expect(unknownData.dataNotes).toEqual([`no recorded dataset version for run ${f.ids.bare}`, `no recorded split for run ${f.ids.bare}`]);
  });

  it("returns each run's decisions and metric summaries in the order asked", async () => {
    const c = await compareRuns(f.db, [f.ids.sgd!, f.ids.rmsprop!]);
    expect(c.decisions[0]!.map((d) => [d.kind, d.path, d.oldValue, d.newValue, d.author])).toEqual([
      ["initial", "", null, {}, "grace"],
      ["change", "training.optimizer.name", "adam", "sgd", "grace"],
    ]);
    expect(c.decisions[1]!.map((d) => d.rationale)).toEqual(["start rmsprop"]);
    expect(c.metrics).toEqual([
      {
        key: "val_accuracy",
        values: [
          { last: 0.8, lastStep: 100, min: 0.4, max: 0.85, count: 10 },
          { last: 0.92, lastStep: 100, min: 0.3, max: 0.93, count: 10 },
        ],
      },
      { key: "val_loss", values: [{ last: 0.5, lastStep: 100, min: 0.45, max: 1.3, count: 10 }, null] },
    ]);
  });

  it("refuses fewer than 2, more than 20, repeated or unknown ids", async () => {
    await expect(compareRuns(f.db, [f.ids.adam!])).rejects.toThrow(new RunsQueryError("compare: choose between 2 and 20 runs (got 1)"));
    await expect(
      compareRuns(
        f.db,
        Array.from({ length: 21 }, (_, i) => i + 1),
      ),
    ).rejects.toThrow(/between 2 and 20 runs \(got 21\)/);
    await expect(compareRuns(f.db, [f.ids.adam!, f.ids.adam!])).rejects.toThrow(/only once/);
    await expect(compareRuns(f.db, [f.ids.adam!, 999, 998])).rejects.toThrow(new RunsQueryError("compare: unknown run ids 999, 998"));
  });
});

describe("filter SQL binding", () => {
  it("never puts user values or keys into the SQL text", async () => {
    const hostile = '"; DROP TABLE runs; --';
    const tree = parseFilter(`name = ${JSON.stringify(hostile)} OR params.evil_key = "x" OR tag ~ "50%"`);
    const query = f.db.select({ id: runs.id }).from(runs).where(filterToSql(tree!)).toSQL();
    expect(query.sql).not.toContain("DROP");
    expect(query.sql).not.toContain("evil_key");
    expect(query.params).toEqual(expect.arrayContaining([hostile, "evil_key", "%50\\%%"]));
  });
});

describe("fetchSeries", () => {
  const N = 20_000;
  const spikes = new Map([
    [4_321, 50],
    [15_000, -40],
  ]);
  // Written as the orchestrator writes them (points + summaries + rollups), in batches that straddle rollup blocks.
  const plateau = (step: number) => Math.round(Math.sin(step / 300) * 4) / 4; // many equal values: tie-breaking
  beforeAll(() => {
    const points: MetricPoint[] = [];
    for (let step = 0; step < N; step++) {
      points.push({
        key: "batch_loss",
        step,
        epoch: step / 100,
        value: spikes.get(step) ?? Math.sin(step / 500),
        wallTimeMs: 1_000_000 + step * 10,
      });
      points.push({ key: "plateau", step, epoch: step / 100, value: plateau(step), wallTimeMs: 1_000_000 + step * 10 });
    }
    for (let e = 1; e <= 30; e++)
      points.push({ key: "val_loss", step: e * 100 - 1, epoch: e, value: 1 / e, wallTimeMs: 1_000_000 + e * 1_000 });
    for (let i = 0; i < points.length; i += 777) insertMetricPoints(f.db, f.ids.adam!, points.slice(i, i + 777));
  });

  it("returns few points raw", async () => {
    const s = await fetchSeries(f.db, { runId: f.ids.adam!, key: "val_loss", xAxis: "epoch", maxPoints: 100 });
    expect(s.downsampled).toBe(false);
    expect(s.total).toBe(30);
    expect(s.points).toHaveLength(30);
    expect(s.points[0]).toEqual({ x: 1, y: 1, step: 99 });
    expect(s.points[29]).toEqual({ x: 30, y: 1 / 30, step: 2999 });
  });

  it("downsamples to at most maxPoints, keeping spikes and both ends", async () => {
    const s = await fetchSeries(f.db, { runId: f.ids.adam!, key: "batch_loss", maxPoints: 200 });
    expect(s.downsampled).toBe(true);
    expect(s.total).toBe(N);
    expect(s.points.length).toBeLessThanOrEqual(200);
    expect(s.points.length).toBeGreaterThan(150);
    expect(s.points[0]).toEqual({ x: 0, y: 0, step: 0 });
    expect(s.points.at(-1)).toEqual({ x: N - 1, y: Math.sin((N - 1) / 500), step: N - 1 });
    expect(s.points).toContainEqual({ x: 4_321, y: 50, step: 4_321 });
    expect(s.points).toContainEqual({ x: 15_000, y: -40, step: 15_000 });
    const steps = s.points.map((p) => p.step);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    // Every point is a real one.
    for (const p of s.points) expect(p.y).toBe(spikes.get(p.step) ?? Math.sin(p.step / 500));
  });

  it("limits to a range on step, epoch or wall time", async () => {
    const byStep = await fetchSeries(f.db, {
      runId: f.ids.adam!,
      key: "batch_loss",
      xAxis: "step",
      from: 4_000,
      to: 4_999,
      maxPoints: 100,
    });
    expect(byStep).toMatchObject({ total: 1_000, downsampled: true });
    expect(byStep.points[0]!.step).toBe(4_000);
    expect(byStep.points.at(-1)!.step).toBe(4_999);
    expect(byStep.points).toContainEqual({ x: 4_321, y: 50, step: 4_321 });

    const byEpoch = await fetchSeries(f.db, {
      runId: f.ids.adam!,
      key: "batch_loss",
      xAxis: "epoch",
      from: 10.005,
      to: 10.5,
      maxPoints: 1000,
    });
    expect(byEpoch.downsampled).toBe(false);
    expect(byEpoch.points.map((p) => p.step)).toEqual(Array.from({ length: 50 }, (_, i) => 1_001 + i));
    expect(byEpoch.points[0]!.x).toBeCloseTo(10.01, 10);

    const byWall = await fetchSeries(f.db, {
      runId: f.ids.adam!,
      key: "batch_loss",
      xAxis: "wall",
      from: 1_000_000 + 100,
      to: 1_000_000 + 195,
      maxPoints: 1000,
    });
    expect(byWall.points.map((p) => p.step)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);

    expect(await fetchSeries(f.db, { runId: f.ids.adam!, key: "batch_loss", from: N + 5 })).toEqual({
      points: [],
      total: 0,
      downsampled: false,
    });
    expect(await fetchSeries(f.db, { runId: f.ids.adam!, key: "nope" })).toEqual({ points: [], total: 0, downsampled: false });
    await expect(fetchSeries(f.db, { runId: f.ids.adam!, key: "batch_loss", from: 5, to: 1 })).rejects.toThrow(RunsQueryError);
    await expect(fetchSeries(f.db, { runId: f.ids.adam!, key: "batch_loss", maxPoints: 1 })).rejects.toThrow(/maxPoints/);
  });

  it("keeps rollups equal to the raw points they summarise, merged across batches", async () => {
    const raw = f.db.$client
      .prepare(
        `SELECT key, step / 1024 AS block, min(step) AS firstStep, max(step) AS lastStep, count(*) AS count, min(value) AS minValue, max(value) AS maxValue,
                (SELECT m2.step FROM metrics m2 WHERE m2.run_id = m.run_id AND m2.key = m.key AND m2.step / 1024 = m.step / 1024 ORDER BY m2.value ASC, m2.step ASC LIMIT 1) AS minStep,
                (SELECT m2.step FROM metrics m2 WHERE m2.run_id = m.run_id AND m2.key = m.key AND m2.step / 1024 = m.step / 1024 ORDER BY m2.value DESC, m2.step ASC LIMIT 1) AS maxStep
         FROM metrics m WHERE run_id = ? GROUP BY key, step / 1024 ORDER BY key, block`,
      )
      .all(f.ids.adam);
    const rollups = f.db.$client
      .prepare(
        "SELECT key, block, first_step AS firstStep, last_step AS lastStep, count, min_value AS minValue, max_value AS maxValue, min_step AS minStep, max_step AS maxStep FROM metric_rollups WHERE run_id = ? ORDER BY key, block",
      )
      .all(f.ids.adam);
    expect(rollups).toHaveLength(2 * Math.ceil(N / 1024) + 3); // val_loss: steps 99..2999, blocks 0..2
    expect(rollups).toEqual(raw);
  });

  it("gives the same extremes from rollups as from raw points, and reads rollups for long ranges", async () => {
    const cases = [
      { key: "batch_loss", maxPoints: 20 },
      { key: "batch_loss", maxPoints: 40, from: 1_500, to: 17_777 },
      { key: "plateau", maxPoints: 12 },
      { key: "plateau", maxPoints: 30, xAxis: "epoch" as const, from: 12.345, to: 190.5 },
      { key: "plateau", maxPoints: 200 },
    ];
    for (const c of cases) {
      const input = { runId: f.ids.adam!, ...c };
      const fromRollups = await fetchSeriesFrom(f.db, input, "rollups");
      expect(fromRollups.downsampled).toBe(true);
      expect(fromRollups.points.length).toBeLessThanOrEqual(c.maxPoints);
      expect(fromRollups).toEqual(await fetchSeriesFrom(f.db, input, "points"));
    }
    // maxPoints 20 over 20,000 steps: buckets span blocks, so the default reader uses rollups and keeps both spikes.
    const auto = await fetchSeries(f.db, { runId: f.ids.adam!, key: "batch_loss", maxPoints: 20 });
    expect(auto).toEqual(await fetchSeriesFrom(f.db, { runId: f.ids.adam!, key: "batch_loss", maxPoints: 20 }, "points"));
    expect(auto.points).toContainEqual({ x: 4_321, y: 50, step: 4_321 });
    expect(auto.points).toContainEqual({ x: 15_000, y: -40, step: 15_000 });
    expect(auto.total).toBe(N);
    expect(auto.points[0]!.step).toBe(0);
    expect(auto.points.at(-1)!.step).toBe(N - 1);
    // total from rollups + partial edge blocks equals a raw count.
    const zoom = await fetchSeries(f.db, { runId: f.ids.adam!, key: "batch_loss", from: 1_000, to: 18_500, maxPoints: 20 });
    expect(zoom.total).toBe(17_501);
  });
});
