/**
 * The tracking API's fast paths (issue 15, Speed) answer what the general paths answer:
 * - log-batch reads a plain body without zod (server/mlflow/logging.ts plainLogBatch): the same batch as the zod
 *   schema for every plain body, and null (zod then answers the error) for anything else;
 * - get-history has SQLite write the JSON of the points (server/mlflow/history.ts): a client parses exactly the
 *   stored doubles, in step order, whole and in pages;
 * - a token is checked with its user in one query (server/auth/tokens.ts): a disabled user's token is refused.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { eq } from "drizzle-orm";
import { users } from "@/db/schema";
import { logBatchInput, plainLogBatch } from "@/server/mlflow/logging";
import { MlflowClient } from "@/contracts/mlflow/client";
import { expectMlflowError, startMlflowServer, tokenFor, userOf } from "./mlflow-http-fixture";
import { createTestApp, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

let app: TestApp;
let mlflow: Awaited<ReturnType<typeof startMlflowServer>>;
let engineer: MlflowClient;

beforeAll(async () => {
  app = createTestApp();
  mlflow = await startMlflowServer(app);
  engineer = new MlflowClient(mlflow.base, (await tokenFor(app, "engineer")).token);
});

afterAll(async () => {
  await mlflow.close();
  app.close();
});

describe("plainLogBatch", () => {
  const viaZod = (body: unknown) => {
    const r = logBatchInput.parse(body);
    return { runId: r.run_id ?? r.run_uuid, batch: { metrics: r.metrics, params: r.params, tags: r.tags } };
  };

  it("gives the zod schema's batch for plain bodies", () => {
    const plain: unknown[] = [
      { run_id: "7", metrics: [{ key: "loss", value: 0.5, timestamp: 1700000000000, step: 3 }] },
      { run_id: "7", metrics: [{ key: "loss", value: -0, timestamp: 0 }] }, // step left out: 0
      { run_uuid: "8", metrics: [{ key: "a", value: 1e-7, timestamp: 1, step: -4, extra: "dropped" }], ignored: true },
      { run_id: 9, params: [{ key: "lr", value: "0.01" }], tags: [{ key: "t", value: "" }] },
      { run_id: "7", run_uuid: "8" },
      { metrics: [{ key: "x", value: Number.MAX_VALUE, timestamp: Number.MAX_SAFE_INTEGER, step: Number.MIN_SAFE_INTEGER }] },
      {},
    ];
    for (const body of plain) expect(plainLogBatch(body)).toEqual(viaZod(body));
    const withExtra = plainLogBatch(plain[2]);
    expect(Object.keys(withExtra!.batch.metrics[0]!)).toEqual(["key", "value", "timestamp", "step"]);
  });

  it("leaves every other body to zod (numbers as strings, NaN, wrong types)", () => {
    const other: unknown[] = [
      { run_id: "7", metrics: [{ key: "m", value: "NaN", timestamp: 1 }] },
      { run_id: "7", metrics: [{ key: "m", value: 1, timestamp: "1700000000000" }] },
      { run_id: "7", metrics: [{ key: "m", value: 1, timestamp: 1, step: "2" }] },
      { run_id: "7", metrics: [{ key: "m", value: Infinity, timestamp: 1 }] }, // JSON.parse("1e400")
      { run_id: "7", metrics: [{ key: "m", value: 1, timestamp: 1.5 }] },
      { run_id: "7", metrics: [{ key: "m", value: 1, timestamp: 2 ** 60 }] },
      { run_id: "7", metrics: [{ key: 5, value: 1, timestamp: 1 }] },
      { run_id: "7", metrics: [null] },
      { run_id: "7", metrics: {} },
      { run_id: 1.5 },
      { run_id: null },
      { run_id: "7", params: [{ key: "p", value: 1 }] },
      { run_id: "7", tags: [{ key: "t" }] },
      [],
      null,
    ];
    for (const body of other) expect(plainLogBatch(body)).toBeNull();
  });
});

describe("get-history", () => {
  it("answers the stored doubles in step order, whole and in pages, and {} for no points", async () => {
    const { experiment_id } = await engineer.call("experiments/create", { name: "fast paths" });
    const { run } = await engineer.call("runs/create", { experiment_id, start_time: 1 });
    const run_id = run.info.run_id;
    const values = [1 / 3, 1e-7, 5e-324, -2.5, 1.7976931348623157e308, 0.1 + 0.2, 3, 123456789.12345679, -1e21, 2 ** 53];
    // Steps logged out of order, over two calls.
    const points = values.map((value, i) => ({ key: "loss", value, timestamp: 1_700_000_000_000 + i, step: (i * 7) % values.length }));
    await engineer.call("runs/log-batch", { run_id, metrics: points.slice(5) });
    await engineer.call("runs/log-batch", { run_id, metrics: points.slice(0, 5) });
    const expected = [...points].sort((a, b) => a.step - b.step);

    const whole = await engineer.call("metrics/get-history", { run_id, metric_key: "loss" });
    expect(whole.metrics).toEqual(expected);
    expect(whole.next_page_token).toBeUndefined();

    for (const max_results of [1, 3, 5, 10, 11]) {
      const got: unknown[] = [];
      let page_token: string | undefined;
      let pages = 0;
      do {
        const page = await engineer.call("metrics/get-history", { run_id, metric_key: "loss", max_results, page_token });
        expect(page.metrics!.length).toBeLessThanOrEqual(max_results);
        got.push(...page.metrics!);
        page_token = page.next_page_token;
        pages++;
      } while (page_token);
      expect(got).toEqual(expected);
      expect(pages).toBe(Math.ceil(values.length / max_results)); // no empty last page
    }

    expect(await engineer.call("metrics/get-history", { run_id, metric_key: "absent" })).toEqual({});
    expect(await engineer.call("metrics/get-history", { run_id, metric_key: "absent", max_results: 5 })).toEqual({});
    await expectMlflowError(engineer.call("metrics/get-history", { run_id: "999999", metric_key: "loss" }), "RESOURCE_DOES_NOT_EXIST", 404);
  });
});

describe("tokens", () => {
  it("refuses the token of a disabled user: 401 UNAUTHENTICATED", async () => {
    const t = await tokenFor(app, "reviewer", "to disable");
    const reviewer = new MlflowClient(mlflow.base, t.token);
    await reviewer.call("experiments/search", {});
    app.db
      .update(users)
      .set({ disabled: true })
      .where(eq(users.id, userOf(app, "reviewer").id))
      .run();
    try {
      await expectMlflowError(reviewer.call("experiments/search", {}), "UNAUTHENTICATED", 401, /disabled/);
    } finally {
      app.db
        .update(users)
        .set({ disabled: false })
        .where(eq(users.id, userOf(app, "reviewer").id))
        .run();
    }
  });
});
