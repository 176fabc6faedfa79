/**
 * insertMetricPoints writes full chunks of points with one multi-row INSERT each; a chunk holding a point stored
 * before is rolled back to its savepoint and written row by row. Either way each (run, key, step) is stored once, the
 * summary and rollup counts count stored points only, and each point stored before is reported (the tracking API
 * refuses another value there).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertMetricPoints, type MetricPoint } from "@/server/runs/orchestrator/persist-events";
import { createFixture, type Fixture } from "./fixtures";

let f: Fixture;
beforeAll(() => {
  f = createFixture();
});
afterAll(() => f.close());

const point = (key: string, step: number, value = step / 7): MetricPoint => ({ key, step, epoch: step, value, wallTimeMs: 1_000 + step });

describe("insertMetricPoints", () => {
  it("stores each step once across full and partial chunks, and reports the points stored before", () => {
    const runId = f.ids.adam!;
    const first = Array.from({ length: 450 }, (_, i) => point("chunked", i * 3));
    insertMetricPoints(f.db, runId, first);
    // 700 points: every third one (from the first call) stored before, in full chunks of 200 and a tail of 100; one
    // point twice in this call.
    const second = Array.from({ length: 700 }, (_, i) => point("chunked", i));
    second.push(point("chunked", 5000), point("chunked", 5000));
    const before: MetricPoint[] = [];
    insertMetricPoints(f.db, runId, second, (p) => before.push(p));
    const q = (sql: string) => f.db.$client.prepare(sql).get(runId) as Record<string, number>;
    const stored = q("SELECT count(*) AS n, count(DISTINCT step) AS d, max(step) AS m FROM metrics WHERE run_id = ? AND key = 'chunked'");
    const expected = new Set([...first, ...second].map((p) => p.step)).size;
    expect(stored).toEqual({ n: expected, d: expected, m: 5000 });
    expect(before.map((p) => p.step)).toEqual([...second.filter((p) => p.step % 3 === 0 && p.step < 1350).map((p) => p.step), 5000]);
    expect(q("SELECT count FROM metric_summaries WHERE run_id = ? AND key = 'chunked'").count).toBe(expected);
    expect(q("SELECT sum(count) AS c FROM metric_rollups WHERE run_id = ? AND key = 'chunked'").c).toBe(expected);
  });

  it("stores a full chunk of new points in one go and skips non-finite values", () => {
    const runId = f.ids.adam!;
    const pts = Array.from({ length: 400 }, (_, i) => point("fresh", i));
    pts[10] = point("fresh", 10, Number.NaN);
    const before: MetricPoint[] = [];
    insertMetricPoints(f.db, runId, pts, (p) => before.push(p));
    expect(before).toEqual([]);
    const n = f.db.$client.prepare("SELECT count(*) FROM metrics WHERE run_id = ? AND key = 'fresh'").pluck().get(runId);
    expect(n).toBe(399);
  });
});
