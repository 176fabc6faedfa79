/** Filter semantics in SQL, injection safety, sorting, paging, columns and grouping on a small real database. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { searchRuns } from "../runs-search";
import { listColumns } from "../columns";
import { groupRuns } from "../group-runs";
import { FilterSyntaxError, RunsQueryError } from "../errors";
import { createFixture, type Fixture } from "./fixtures";

let f: Fixture;
beforeAll(() => {
  f = createFixture();
});
afterAll(() => f.close());

/** The fixture keys of the runs a filter selects, in id order. */
async function match(filter: string): Promise<string[]> {
  const byId = new Map(Object.entries(f.ids).map(([k, v]) => [v, k]));
  const { rows, total } = await searchRuns(f.db, { filter, sort: [{ field: "id", dir: "asc" }], limit: 100 });
  expect(total).toBe(rows.length);
  return rows.map((r) => byId.get(r.id)!);
}

describe("filter semantics", () => {
  it("combines OR, AND and parentheses", async () => {
    expect(await match('(params.optimizer = "adam" OR params.optimizer = "rmsprop") AND metrics.val_accuracy > 0.9')).toEqual([
      "adam",
      "rmsprop",
    ]);
    expect(await match('params.optimizer = "adam" OR params.optimizer = "rmsprop" AND metrics.val_accuracy > 0.9')).toEqual([
      "adam",
      "rmsprop",
      "evil",
    ]);
    expect(await match("lr >= 0.005 AND lr <= 0.02")).toEqual(["adam", "rmsprop", "evil"]);
  });

  it("never matches a missing field, negated or not", async () => {
    // "bare" has no optimizer param and no metrics.
    expect(await match('params.optimizer != "adam"')).toEqual(["sgd", "rmsprop"]);
    expect(await match('NOT params.optimizer = "adam"')).toEqual(["sgd", "rmsprop"]);
    expect(await match("NOT metrics.val_accuracy > 0.9")).toEqual(["sgd", "evil"]);
    expect(await match("NOT metrics.val_loss < 1")).toEqual([]);
    // A param present with a null value (earlyStopping: null) matches nothing either.
    expect(await match("params.training.earlyStopping = 0 OR NOT params.training.earlyStopping = 0")).toEqual([]);
    // Unfinished runs have no finish time.
    expect(await match('NOT finished < "2025-03-03"')).toEqual(["rmsprop", "evil"]);
    // De Morgan: NOT (a OR b) = NOT a AND NOT b, each over runs that have the field.
    expect(await match('NOT (params.optimizer = "adam" OR lr < 0.002)')).toEqual(["rmsprop"]);
  });

  it("negates always-present fields plainly", async () => {
    expect(await match('NOT status = "completed"')).toEqual(["rmsprop", "bare"]);
    expect(await match('NOT experiment = "sweep"')).toEqual(["bare", "evil"]);
    expect(await match('author != "ADA@example.org"')).toEqual(["sgd", "bare"]);
  });

  it("matches IN lists of text, numbers and booleans", async () => {
    expect(await match('optimizer IN ("sgd", "rmsprop")')).toEqual(["sgd", "rmsprop"]);
    expect(await match("batchSize IN (16, 128)")).toEqual(["bare", "evil"]);
    expect(await match('optimizer NOT IN ("adam")')).toEqual(["sgd", "rmsprop"]);
    expect(await match("params.training.shuffle = true")).toEqual(["adam", "rmsprop"]);
    expect(await match("params.training.shuffle IN (false)")).toEqual(["sgd"]);
    expect(await match('status IN ("running", "FAILED")')).toEqual(["rmsprop", "bare"]);
    expect(await match("id IN (" + [f.ids.sgd, f.ids.evil].join(", ") + ")")).toEqual(["sgd", "evil"]);
  });

  it("does case-insensitive contains with % and _ taken literally", async () => {
    expect(await match('name ~ "RMS"')).toEqual(["rmsprop"]);
    expect(await match('name ~ "%_"')).toEqual(["bare"]);
    expect(await match('name ~ "_"')).toEqual(["bare"]);
    expect(await match('name !~ "-"')).toEqual(["bare"]);
    expect(await match('author ~ "GRA"')).toEqual(["sgd", "bare"]);
    expect(await match('optimizer ~ "prop"')).toEqual(["rmsprop"]);
  });

  it("filters on metric min/max, tags, experiment, author and dates", async () => {
    expect(await match("metrics.val_loss.min < 0.1")).toEqual(["adam"]);
    expect(await match("metrics.val_accuracy.max >= 0.93")).toEqual(["adam", "rmsprop"]);
    expect(await match('tag = "baseline"')).toEqual(["adam"]);
    expect(await match('tags ~ "baseline"')).toEqual(["adam", "rmsprop"]);
    expect(await match('NOT tag = "baseline"')).toEqual(["sgd", "rmsprop", "bare", "evil"]);
    expect(await match('experiment = "other"')).toEqual(["bare", "evil"]);
    expect(await match(`experiment = ${f.ids.adam ? 1 : 0}`)).toEqual(["adam", "sgd", "rmsprop"]);
    expect(await match('author = "grace"')).toEqual(["sgd", "bare"]);
    expect(await match('created = "2025-03-02"')).toEqual(["sgd"]);
    expect(await match('created > "2025-03-03"')).toEqual(["bare", "evil"]);
    expect(await match('created <= "2025-03-02"')).toEqual(["adam", "sgd"]);
    expect(await match('created >= "2025-03-04T10:00:00Z"')).toEqual(["bare", "evil"]);
  });

  it("treats hostile values as plain data", async () => {
    expect(await match('name = "\\"; DROP TABLE runs; --"')).toEqual(["evil"]);
    await expect(match("params.x' OR 1=1 -- = 1")).rejects.toThrow(FilterSyntaxError);
    expect(await match("params.x = \"1' OR '1'='1\"")).toEqual([]);
    expect(await match('params.training.learningRate = 0.01 OR params.a = "\') OR 1=1; DROP TABLE runs; --"')).toEqual(["adam"]);
    expect(await match("tag = \"' OR '1'='1\"")).toEqual([]);
    expect((await searchRuns(f.db, {})).total).toBe(5);
  });

  it("reports filter errors as FilterSyntaxError", async () => {
    await expect(searchRuns(f.db, { filter: "metric.acc > 1" })).rejects.toThrow(FilterSyntaxError);
  });
});

describe("sorting, paging and rows", () => {
  it("sorts by a param (text and number) with missing values last in both directions", async () => {
    const order = async (field: string, dir: "asc" | "desc") => (await searchRuns(f.db, { sort: [{ field, dir }] })).rows.map((r) => r.id);
    const { adam, sgd, rmsprop, bare, evil } = f.ids as Record<string, number>;
    expect(await order("params.optimizer", "asc")).toEqual([evil, adam, rmsprop, sgd, bare]);
    expect(await order("params.optimizer", "desc")).toEqual([sgd, rmsprop, evil, adam, bare]);
    expect(await order("lr", "desc")).toEqual([bare, evil, adam, rmsprop, sgd]);
    expect(await order("metrics.val_accuracy", "desc")).toEqual([adam, rmsprop, sgd, evil, bare]);
    expect(await order("metrics.val_accuracy", "asc")).toEqual([evil, sgd, rmsprop, adam, bare]);
    // Missing values come last, ties broken by newest id.
    expect(await order("metrics.val_loss.max", "asc")).toEqual([adam, sgd, evil, bare, rmsprop]);
    expect((await order("author", "asc")).slice(0, 3).sort()).toEqual([adam, rmsprop, evil].sort());
    expect(await order("duration", "desc")).toEqual([sgd, adam, evil, rmsprop, bare]);
    // Several keys: batch size, then learning rate.
    expect(
      (
        await searchRuns(f.db, {
          sort: [
            { field: "batchSize", dir: "asc" },
            { field: "lr", dir: "desc" },
          ],
        })
      ).rows.map((r) => r.id),
    ).toEqual([bare, adam, rmsprop, sgd, evil]);
  });

  it("pages with a stable total", async () => {
    const all = (await searchRuns(f.db, { sort: [{ field: "created", dir: "asc" }] })).rows.map((r) => r.id);
    const pages = await Promise.all(
      [0, 2, 4].map((offset) => searchRuns(f.db, { sort: [{ field: "created", dir: "asc" }], offset, limit: 2 })),
    );
    expect(pages.map((p) => p.total)).toEqual([5, 5, 5]);
    expect(pages.flatMap((p) => p.rows.map((r) => r.id))).toEqual(all);
    expect(await searchRuns(f.db, { filter: 'experiment = "sweep"', offset: 2, limit: 2 })).toMatchObject({ total: 3, rows: [{}] });
    expect((await searchRuns(f.db, { experimentId: 2, limit: 10 })).total).toBe(2);
  });

  it("returns the row details and only the requested columns", async () => {
    const { rows } = await searchRuns(f.db, {
      filter: `id = ${f.ids.adam}`,
      columns: ["params.lr", "optimizer", "metrics.val_loss", "params.training.shuffle"],
    });
    expect(rows).toEqual([
      {
        id: f.ids.adam,
        name: "adam-fast",
        description: "",
        status: "completed",
        experimentId: 1,
        experimentName: "sweep",
        author: "ada",
        createdAt: "2025-03-01T10:00:00.000Z",
        finishedAt: "2025-03-01T10:05:00.000Z",
        durationMs: 300_000,
        tags: ["baseline"],
        params: { "training.learningRate": 0.01, "training.optimizer.name": "adam", "training.shuffle": true },
        metrics: { val_loss: 0.1, "val_loss.min": 0.09, "val_loss.max": 1.2 },
      },
    ]);
    const defaults = (await searchRuns(f.db, { filter: `id = ${f.ids.adam}` })).rows[0]!;
    expect(Object.keys(defaults.params).sort()).toEqual([
      "training.batchSize",
      "training.epochs",
      "training.learningRate",
      "training.optimizer.name",
    ]);
    expect(Object.keys(defaults.metrics)).toHaveLength(6);
  });

  it("rejects unknown sort fields and columns with a clear message", async () => {
    await expect(searchRuns(f.db, { sort: [{ field: "metric.loss", dir: "asc" }] })).rejects.toThrow(
      new RunsQueryError("sort: unknown field 'metric.loss'; did you mean 'metrics.loss'?"),
    );
    await expect(searchRuns(f.db, { sort: [{ field: "tag", dir: "asc" }] })).rejects.toThrow(/cannot be sorted by tag/);
    await expect(searchRuns(f.db, { columns: ["colour"] })).rejects.toThrow(/column: unknown field 'colour'/);
  });
});

describe("column chooser and grouping", () => {
  it("lists param paths with their types and metric keys, per experiment", async () => {
    const all = await listColumns(f.db);
    expect(all.params.find((p) => p.path === "training.learningRate")).toEqual({ path: "training.learningRate", type: "number", runs: 5 });
    expect(all.params.find((p) => p.path === "training.optimizer.name")).toEqual({
      path: "training.optimizer.name",
      type: "text",
      runs: 4,
    });
    expect(all.params.find((p) => p.path === "training.shuffle")?.type).toBe("boolean");
    expect(all.metrics).toEqual([
      { key: "val_accuracy", runs: 4 },
      { key: "val_loss", runs: 2 },
    ]);
    const other = await listColumns(f.db, 2);
    expect(other.params.map((p) => p.path)).toEqual([
      "training.batchSize",
      "training.earlyStopping",
      "training.learningRate",
      "training.optimizer.name",
    ]);
    expect(other.metrics).toEqual([{ key: "val_accuracy", runs: 1 }]);
  });

  it("groups by a param with count and mean/min/max of a metric", async () => {
    const g = await groupRuns(f.db, { by: "optimizer", metric: "metrics.val_accuracy" });
    expect(g.by).toBe("params.training.optimizer.name");
    expect(g.groups).toEqual([
      { value: "adam", count: 2, metric: { runs: 2, mean: expect.closeTo(0.825, 9), min: 0.7, max: 0.95 } },
      { value: null, count: 1, metric: { runs: 0, mean: null, min: null, max: null } },
      { value: "rmsprop", count: 1, metric: { runs: 1, mean: 0.92, min: 0.92, max: 0.92 } },
      { value: "sgd", count: 1, metric: { runs: 1, mean: 0.8, min: 0.8, max: 0.8 } },
    ]);
    const filtered = await groupRuns(f.db, {
      by: "params.training.shuffle",
      metric: "metrics.val_accuracy.max",
      filter: 'experiment = "sweep"',
    });
    expect(filtered.groups).toEqual([
      { value: true, count: 2, metric: { runs: 2, mean: expect.closeTo(0.945, 9), min: 0.93, max: 0.96 } },
      { value: false, count: 1, metric: { runs: 1, mean: 0.85, min: 0.85, max: 0.85 } },
    ]);
    expect((await groupRuns(f.db, { by: "status", metric: "metrics.val_accuracy" })).groups.map((x) => [x.value, x.count])).toEqual([
      ["completed", 3],
      ["failed", 1],
      ["running", 1],
    ]);
    await expect(groupRuns(f.db, { by: "id", metric: "metrics.loss" })).rejects.toThrow(RunsQueryError);
  });
});
