/**
 * Contract suite of the MLflow-compatible tracking API (issue 15): the real route handler
 * (app/api/2.0/mlflow/[...path]/route.ts) mounted on node:http on a loopback port, over a fresh data directory,
 * driven through plain HTTP by the typed client (contracts/mlflow/client.ts) with MLflow's request shapes. Errors are
 * asserted with MLflow's error_code and HTTP status. Ends with `audit verify` (chain and content) on the database.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { spawnSync } from "node:child_process";
import { and, eq } from "drizzle-orm";
import { auditEvents, decisions, metrics } from "@/db/schema";
import { revokeToken } from "@/server/auth/tokens";
import { verifyDatabase } from "@/server/audit/verify";
import { MlflowClient } from "@/contracts/mlflow/client";
import type { Metric } from "@/contracts/mlflow/types";
import { expectMlflowError, startMlflowServer, tokenFor as tokenOf, userOf as userIn } from "./mlflow-http-fixture";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

let app: TestApp;
let mlflow: Awaited<ReturnType<typeof startMlflowServer>>;
let base: string;
let engineer: MlflowClient;
let auditor: MlflowClient;
let engineerTokenId: number;
const userOf = (role: string) => userIn(app, role);
const tokenFor = (role: string, name?: string) => tokenOf(app, role, name);
const expectError = expectMlflowError;

beforeAll(async () => {
  app = createTestApp();
  mlflow = await startMlflowServer(app);
  base = mlflow.base;
  const t = await tokenFor("engineer");
  engineerTokenId = t.id;
  engineer = new MlflowClient(base, t.token);
  auditor = new MlflowClient(base, (await tokenFor("auditor")).token);
});

afterAll(async () => {
  await mlflow.close();
  app.close();
});

describe("authentication", () => {
  it("refuses a call without a token, with a revoked token and with a garbage token: 401 UNAUTHENTICATED", async () => {
    await expectError(new MlflowClient(base, null).call("experiments/search", {}), "UNAUTHENTICATED", 401, /access token is required/);
    await expectError(new MlflowClient(base, "rlt_not-a-real-token").call("experiments/search", {}), "UNAUTHENTICATED", 401, /not valid/);
    const t = await tokenFor("engineer", "to revoke");
    const c = new MlflowClient(base, t.token);
    await c.call("experiments/search", {});
    const u = userOf("engineer");
    await revokeToken(app.db, { id: u.id, name: u.name, role: u.role }, u.id, { tokenId: t.id });
    await expectError(c.call("experiments/search", {}), "UNAUTHENTICATED", 401, /revoked/);
  });

  it("accepts the token as the password of basic auth (as MLflow clients send it)", async () => {
    const t = await tokenFor("engineer", "basic");
    const basic = Buffer.from(`anyone:${t.token}`).toString("base64");
    const r = await new MlflowClient(base, null).raw("POST", "experiments/search", "{}", {
      authorization: `Basic ${basic}`,
      "content-type": "application/json",
    });
    expect(r.status).toBe(200);
  });

  it("lets an auditor read but answers 403 PERMISSION_DENIED to each write", async () => {
    await auditor.call("experiments/search", {});
    await expectError(auditor.call("experiments/create", { name: "auditor-may-not" }), "PERMISSION_DENIED", 403);
    const { experiment_id } = await engineer.call("experiments/create", { name: "auditor-target" });
    const { run } = await engineer.call("runs/create", { experiment_id, start_time: Date.now() });
    await auditor.call("runs/get", { run_id: run.info.run_id });
    await expectError(auditor.call("runs/create", { experiment_id }), "PERMISSION_DENIED", 403);
    await expectError(auditor.call("runs/log-parameter", { run_id: run.info.run_id, key: "lr", value: "1" }), "PERMISSION_DENIED", 403);
    await expectError(
      auditor.call("runs/log-batch", { run_id: run.info.run_id, metrics: [{ key: "m", value: 1, timestamp: 1, step: 0 }] }),
      "PERMISSION_DENIED",
      403,
    );
    await expectError(auditor.call("runs/update", { run_id: run.info.run_id, status: "FINISHED" }), "PERMISSION_DENIED", 403);
    await expectError(auditor.call("experiments/delete", { experiment_id }), "PERMISSION_DENIED", 403);
  });
});

describe("npm run cli -- token", () => {
  const cli = (args: string[]) =>
    spawnSync(process.execPath, ["--import", "tsx", "server/cli/main.ts", "token", ...args, "--data-dir", app.dataDir, "--json"], {
      env: { ...process.env, RUNLEDGER_KEY_DIR: app.keyDir },
      encoding: "utf8",
      timeout: 120_000,
    });

  it("create prints {token} once (only its sha256 is stored); the token works until `token revoke`", async () => {
    const email = userOf("engineer").email;
    const created = cli(["create", "--user", email, "--name", "ci script"]);
    expect(created.status, created.stderr).toBe(0);
    const { token, id } = JSON.parse(created.stdout) as { token: string; id: number };
    expect(token).toMatch(/^rlt_[A-Za-z0-9_-]{40,}$/);
    expect(JSON.stringify(app.db.$client.prepare("SELECT * FROM api_tokens").all())).not.toContain(token);
    const c = new MlflowClient(base, token);
    await c.call("experiments/search", {});
    const listed = JSON.parse(cli(["list", "--user", email]).stdout) as {
      tokens: { id: number; name: string; lastUsedAt: string | null }[];
    };
    expect(listed.tokens.find((t) => t.id === id)).toMatchObject({ name: "ci script" });
    expect(listed.tokens.find((t) => t.id === id)!.lastUsedAt).not.toBeNull();
    const revoked = cli(["revoke", "--user", email, "--id", String(id)]);
    expect(revoked.status, revoked.stderr).toBe(0);
    await expectError(c.call("experiments/search", {}), "UNAUTHENTICATED", 401, /revoked/);
    const again = cli(["revoke", "--user", email, "--id", String(id)]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already revoked/);
    const events = app.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.entityId, String(id)))
      .all();
    expect(events.filter((e) => e.entityType === "token").map((e) => e.action)).toEqual(["token.create", "token.revoke"]);
    expect(cli(["create", "--user", "nobody@example.org"]).status).toBe(2); // an unknown user is bad input (server/cli/exit-codes.ts)
  }, 240_000);
});

describe("experiments", () => {
  it("create, get, get-by-name, search, update, set tag, delete, restore — with MLflow's shapes and errors", async () => {
    const { experiment_id } = await engineer.call("experiments/create", { name: "contract-exp", tags: [{ key: "team", value: "vision" }] });
    expect(experiment_id).toMatch(/^\d+$/);
    const { experiment } = await engineer.call("experiments/get", { experiment_id });
    expect(experiment).toMatchObject({
      experiment_id,
      name: "contract-exp",
      lifecycle_stage: "active",
      tags: [{ key: "team", value: "vision" }],
    });
    expect(typeof experiment.creation_time).toBe("number");
    expect(experiment.artifact_location).toContain(experiment_id);
    expect((await engineer.call("experiments/get-by-name", { experiment_name: "contract-exp" })).experiment.experiment_id).toBe(
      experiment_id,
    );
    // The demo project's experiment is visible as "<project>/<experiment>"; its runs read as MLflow runs.
    const all = await engineer.call("experiments/search", { max_results: 1000 });
    expect(all.experiments!.some((e) => e.name.includes("/"))).toBe(true);
    const embedded = await app.as("engineer").runs.create({
      experimentId: app.experimentId,
      config: { ...irisConfig(), training: { ...irisConfig().training, epochs: 1 } },
      rationale: "an embedded run read through the API",
    });
    await app.orchestrator.waitFor(embedded.id);
    const read = (await engineer.call("runs/get", { run_id: String(embedded.id) })).run;
    expect(read.info).toMatchObject({ experiment_id: String(app.experimentId), status: "FINISHED" });
    expect(read.data.params).toContainEqual({ key: "training.learningRate", value: "0.03" });
    await expectError(
      engineer.call("runs/log-parameter", { run_id: String(embedded.id), key: "x", value: "1" }),
      "INVALID_PARAMETER_VALUE",
      400,
      /trained by Runledger/,
    );

    await expectError(engineer.call("experiments/create", { name: "contract-exp" }), "RESOURCE_ALREADY_EXISTS", 400);
    await expectError(engineer.call("experiments/get", { experiment_id: "987654" }), "RESOURCE_DOES_NOT_EXIST", 404);
    await expectError(engineer.call("experiments/get-by-name", { experiment_name: "nope-nope" }), "RESOURCE_DOES_NOT_EXIST", 404);
    await expectError(
      engineer.call("experiments/create", {} as never),
      "INVALID_PARAMETER_VALUE",
      400,
      /Missing value for required parameter 'name'/,
    );

    await engineer.call("experiments/set-experiment-tag", { experiment_id, key: "stage", value: "dev" });
    await engineer.call("experiments/update", { experiment_id, new_name: "contract-exp-renamed" });
    const found = await engineer.call("experiments/search", { filter: "name = 'contract-exp-renamed' AND tags.stage = 'dev'" });
    expect(found.experiments!.map((e) => e.experiment_id)).toEqual([experiment_id]);
    expect((await engineer.call("experiments/search", { filter: "name LIKE 'contract-exp-ren%'" })).experiments).toHaveLength(1);

    await engineer.call("experiments/delete", { experiment_id });
    expect((await engineer.call("experiments/get", { experiment_id })).experiment.lifecycle_stage).toBe("deleted");
    expect((await engineer.call("experiments/search", { filter: "name = 'contract-exp-renamed'" })).experiments).toBeUndefined();
    expect(
      (await engineer.call("experiments/search", { filter: "name = 'contract-exp-renamed'", view_type: "DELETED_ONLY" })).experiments,
    ).toHaveLength(1);
    await expectError(engineer.call("runs/create", { experiment_id }), "INVALID_PARAMETER_VALUE", 400, /active/);
    await engineer.call("experiments/restore", { experiment_id });
    expect((await engineer.call("experiments/get", { experiment_id })).experiment.lifecycle_stage).toBe("active");

    // Paging.
    for (const i of [1, 2, 3]) await engineer.call("experiments/create", { name: `page-exp-${i}` });
    const p1 = await engineer.call("experiments/search", { filter: "name LIKE 'page-exp-%'", max_results: 2, order_by: ["name ASC"] });
    expect(p1.experiments!.map((e) => e.name)).toEqual(["page-exp-1", "page-exp-2"]);
    const p2 = await engineer.call("experiments/search", {
      filter: "name LIKE 'page-exp-%'",
      max_results: 2,
      order_by: ["name ASC"],
      page_token: p1.next_page_token!,
    });
    expect(p2.experiments!.map((e) => e.name)).toEqual(["page-exp-3"]);
    expect(p2.next_page_token).toBeUndefined();
  });
});

describe("runs and logging", () => {
  let experimentId: string;
  let runId: string;
  beforeAll(async () => {
    experimentId = (await engineer.call("experiments/create", { name: "contract-runs" })).experiment_id;
  });

  it("creates a run RUNNING with its tags, logs metrics, params (write-once) and tags, and reads it back", async () => {
    const start = Date.now();
    const { run } = await engineer.call("runs/create", {
      experiment_id: experimentId,
      run_name: "mlp-baseline",
      start_time: start,
      tags: [{ key: "runledger.rationale", value: "baseline before tuning the learning rate" }],
    });
    runId = run.info.run_id;
    expect(run.info).toMatchObject({
      run_id: runId,
      run_uuid: runId,
      run_name: "mlp-baseline",
      experiment_id: experimentId,
      status: "RUNNING",
      start_time: start,
      lifecycle_stage: "active",
      user_id: userOf("engineer").email,
    });
    expect(run.data.tags).toEqual(
      expect.arrayContaining([
        { key: "mlflow.runName", value: "mlp-baseline" },
        { key: "runledger.rationale", value: "baseline before tuning the learning rate" },
      ]),
    );

    await engineer.call("runs/log-parameter", { run_id: runId, key: "lr", value: "0.01" });
    await engineer.call("runs/log-parameter", { run_id: runId, key: "lr", value: "0.01" }); // same value again: fine
    await expectError(
      engineer.call("runs/log-parameter", { run_id: runId, key: "lr", value: "0.02" }),
      "INVALID_PARAMETER_VALUE",
      400,
      /Changing param values is not allowed/,
    );
    await engineer.call("runs/log-metric", { run_id: runId, key: "loss", value: 1.5, timestamp: start + 1, step: 0 });
    const points: Metric[] = Array.from({ length: 10 }, (_, i) => ({
      key: "loss",
      value: 1 / (i + 2),
      timestamp: start + 10 + i,
      step: i + 1,
    }));
    await engineer.call("runs/log-batch", {
      run_id: runId,
      metrics: [...points, { key: "acc", value: 0.9, timestamp: start + 50, step: 10 }],
      params: [
        { key: "batch_size", value: "32" },
        { key: "optimizer", value: "adam" },
      ],
      tags: [{ key: "phase", value: "train" }],
    });
    await engineer.call("runs/set-tag", { run_id: runId, key: "tmp", value: "x" });
    await engineer.call("runs/delete-tag", { run_id: runId, key: "tmp" });
    await expectError(engineer.call("runs/delete-tag", { run_id: runId, key: "tmp" }), "RESOURCE_DOES_NOT_EXIST", 404);

    const got = (await engineer.call("runs/get", { run_id: runId })).run;
    expect(got.data.params).toEqual([
      { key: "batch_size", value: "32" },
      { key: "lr", value: "0.01" },
      { key: "optimizer", value: "adam" },
    ]);
    expect(got.data.metrics).toEqual(
      expect.arrayContaining([
        { key: "loss", value: 1 / 11, timestamp: start + 19, step: 10 },
        { key: "acc", value: 0.9, timestamp: start + 50, step: 10 },
      ]),
    );
    expect(got.data.tags!.map((t) => t.key)).toContain("phase");
    expect(got.data.tags!.map((t) => t.key)).not.toContain("tmp");

    // Params are decisions by the token's user, with the rationale tag; points are in the metrics table of the UI's curves.
    const params = app.db
      .select()
      .from(decisions)
      .where(and(eq(decisions.runId, Number(runId)), eq(decisions.kind, "param")))
      .all();
    expect(params.map((d) => [d.path, d.newValueJson, d.rationale, d.authorId])).toContainEqual([
      "lr",
      '"0.01"',
      "baseline before tuning the learning rate",
      userOf("engineer").id,
    ]);
    expect(
      app.db
        .select()
        .from(metrics)
        .where(and(eq(metrics.runId, Number(runId)), eq(metrics.key, "loss")))
        .all(),
    ).toHaveLength(11);

    // Every event this token caused names it; one run.log per batch, with the batch's sha256.
    const events = app.db.select().from(auditEvents).where(eq(auditEvents.entityId, runId)).all();
    const logs = events.filter((e) => e.action === "run.log");
    expect(logs.length).toBeGreaterThanOrEqual(4);
    for (const e of events.filter((x) => x.entityType === "run")) expect(JSON.parse(e.payload).viaTokenId).toBe(engineerTokenId);
    const batch = logs.map((e) => JSON.parse(e.payload) as { metrics: number; batchSha256: string }).find((p) => p.metrics === 11);
    expect(batch?.batchSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("log-inputs records the run's datasets (name, digest, source, context) once, with MLflow's limits", async () => {
    const iris = {
      tags: [{ key: "mlflow.data.context", value: "training" }],
      dataset: {
        name: "iris",
        digest: "a1b2c3d4",
        source_type: "local",
        source: '{"uri": "data/iris.csv"}',
        schema: '{"mlflow_colspec": []}',
      },
    };
    await engineer.call("runs/log-inputs", { run_id: runId, datasets: [iris] });
    await engineer.call("runs/log-inputs", { run_id: runId, datasets: [iris] }); // the same again: nothing new
    await engineer.call("runs/log-inputs", {
      run_id: runId,
      datasets: [
        { tags: [{ key: "mlflow.data.context", value: "validation" }], dataset: { ...iris.dataset, name: "iris-val", digest: "e5f6" } },
      ],
    });
    const got = (await engineer.call("runs/get", { run_id: runId })).run;
    expect(got.inputs.dataset_inputs).toEqual([
      iris,
      { tags: [{ key: "mlflow.data.context", value: "validation" }], dataset: { ...iris.dataset, name: "iris-val", digest: "e5f6" } },
    ]);
    const events = app.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.entityId, runId), eq(auditEvents.action, "run.logInputs")))
      .all();
    expect(events).toHaveLength(2);
    await expectError(
      engineer.call("runs/log-inputs", { run_id: runId, datasets: [{ dataset: { ...iris.dataset, digest: "x".repeat(37) } }] }),
      "INVALID_PARAMETER_VALUE",
      400,
      /digest/,
    );
    await expectError(
      auditor.call("runs/log-inputs", { run_id: runId, datasets: [{ dataset: { ...iris.dataset, name: "other" } }] }),
      "PERMISSION_DENIED",
      403,
    );
  });

  it("gets a metric's history whole, and in pages", async () => {
    const whole = await engineer.call("metrics/get-history", { run_id: runId, metric_key: "loss" });
    expect(whole.metrics!.map((m) => m.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const steps: number[] = [];
    let token: string | undefined;
    do {
      const page = await engineer.call("metrics/get-history", { run_id: runId, metric_key: "loss", max_results: 4, page_token: token });
      expect(page.metrics!.length).toBeLessThanOrEqual(4);
      steps.push(...page.metrics!.map((m) => m.step));
      token = page.next_page_token;
    } while (token);
    expect(steps).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await expectError(engineer.call("metrics/get-history", { run_id: "999999", metric_key: "loss" }), "RESOURCE_DOES_NOT_EXIST", 404);
  });

  it("answers MLflow's errors: unknown run, batch limits, malformed JSON, bad values", async () => {
    await expectError(engineer.call("runs/get", { run_id: "999999" }), "RESOURCE_DOES_NOT_EXIST", 404, /Run with id=999999 not found/);
    await expectError(
      engineer.call("runs/log-metric", { run_id: "999999", key: "m", value: 1, timestamp: 1 }),
      "RESOURCE_DOES_NOT_EXIST",
      404,
    );
    const m = (n: number): Metric[] => Array.from({ length: n }, (_, i) => ({ key: "lim", value: i, timestamp: 1, step: i }));
    const kv = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => ({ key: `${prefix}${i}`, value: "v" }));
    await expectError(
      engineer.call("runs/log-batch", { run_id: runId, metrics: m(1001) }),
      "INVALID_PARAMETER_VALUE",
      400,
      /at most 1000 metrics/,
    );
    await expectError(
      engineer.call("runs/log-batch", { run_id: runId, params: kv(101, "p") }),
      "INVALID_PARAMETER_VALUE",
      400,
      /at most 100 params/,
    );
    await expectError(
      engineer.call("runs/log-batch", { run_id: runId, tags: kv(101, "t") }),
      "INVALID_PARAMETER_VALUE",
      400,
      /at most 100 tags/,
    );
    await expectError(
      engineer.call("runs/log-batch", { run_id: runId, metrics: m(950), params: kv(30, "p"), tags: kv(30, "t") }),
      "INVALID_PARAMETER_VALUE",
      400,
      /in total/,
    );
    const big = await engineer.raw(
      "POST",
      "runs/log-batch",
      JSON.stringify({ run_id: runId, tags: [{ key: "big", value: "x".repeat(1_000_001) }] }),
      { "content-type": "application/json" },
    );
    expect(big.status).toBe(400);
    expect(big.json).toMatchObject({ error_code: "INVALID_PARAMETER_VALUE" });
    // Nothing of a refused batch was written.
    expect(
      app.db
        .select()
        .from(metrics)
        .where(and(eq(metrics.runId, Number(runId)), eq(metrics.key, "lim")))
        .all(),
    ).toHaveLength(0);

    const malformed = await engineer.raw("POST", "runs/log-batch", '{"run_id": "1", "metrics": [', { "content-type": "application/json" });
    expect(malformed.status).toBe(400);
    expect(malformed.json).toMatchObject({ error_code: "INVALID_PARAMETER_VALUE" });
    expect(String((malformed.json as { message: string }).message)).toMatch(/not valid JSON/);
    const wrongType = await engineer.raw("POST", "runs/create", "{}", { "content-type": "text/plain" });
    expect(wrongType).toMatchObject({ status: 400, json: { error_code: "INVALID_PARAMETER_VALUE" } });
    const unknown = await engineer.raw("POST", "runs/no-such-thing", "{}", { "content-type": "application/json" });
    expect(unknown).toMatchObject({ status: 404, json: { error_code: "ENDPOINT_NOT_FOUND" } });

    await expectError(
      engineer.call("runs/log-metric", { run_id: runId, key: "bad key!", value: 1, timestamp: 1 }),
      "INVALID_PARAMETER_VALUE",
      400,
    );
    await expectError(
      engineer.call("runs/log-metric", { run_id: runId, key: "loss", value: 42, timestamp: 1, step: 3 }),
      "INVALID_PARAMETER_VALUE",
      400,
      /already has the value/,
    );
    await expectError(
      engineer.call("runs/log-parameter", { run_id: runId, key: "long", value: "x".repeat(6001) }),
      "INVALID_PARAMETER_VALUE",
      400,
    );
    await expectError(engineer.call("runs/update", { run_id: runId, status: "DONE" as never }), "INVALID_PARAMETER_VALUE", 400);
  });

  it("searches runs with MLflow's filter syntax, order_by and paging", async () => {
    const ids: string[] = [];
    for (const [i, lr] of ["0.1", "0.01", "0.001"].entries()) {
      const { run } = await engineer.call("runs/create", {
        experiment_id: experimentId,
        run_name: `sweep-${i}`,
        start_time: 1_700_000_000_000 + i,
      });
      ids.push(run.info.run_id);
      await engineer.call("runs/log-batch", {
        run_id: run.info.run_id,
        params: [{ key: "lr", value: lr }],
        metrics: [{ key: "val_acc", value: 0.5 + i / 10, timestamp: 1, step: 0 }],
        tags: [{ key: "sweep", value: "lr" }],
      });
    }
    const s = (req: Parameters<MlflowClient["call"]>[1] & object) =>
      engineer.call("runs/search", { experiment_ids: [experimentId], ...req });
    expect((await s({ filter: "metrics.val_acc > 0.55" })).runs!.map((r) => r.info.run_id).sort()).toEqual([ids[1], ids[2]].sort());
    expect((await s({ filter: "params.lr = '0.01' AND tags.sweep = 'lr'" })).runs!.map((r) => r.info.run_id)).toEqual([ids[1]]);
    expect(
      (await s({ filter: "attributes.run_name LIKE 'sweep-%' AND metrics.val_acc <= 0.6" })).runs!.map((r) => r.info.run_id).sort(),
    ).toEqual([ids[0], ids[1]].sort());
    expect((await s({ filter: "attributes.status = 'RUNNING' AND tags.`sweep` = 'lr'" })).runs).toHaveLength(3);
    expect((await s({ filter: `attributes.run_id IN ('${ids[0]}', '${ids[2]}')` })).runs).toHaveLength(2);
    const ordered = await s({ filter: "tags.sweep = 'lr'", order_by: ["metrics.val_acc DESC"] });
    expect(ordered.runs!.map((r) => r.info.run_id)).toEqual([ids[2], ids[1], ids[0]]);
    const p1 = await s({ filter: "tags.sweep = 'lr'", order_by: ["params.lr ASC"], max_results: 2 });
    expect(p1.runs!.map((r) => r.data.params![0]!.value)).toEqual(["0.001", "0.01"]);
    const p2 = await s({ filter: "tags.sweep = 'lr'", order_by: ["params.lr ASC"], max_results: 2, page_token: p1.next_page_token });
    expect(p2.runs!.map((r) => r.data.params![0]!.value)).toEqual(["0.1"]);
    expect(p2.next_page_token).toBeUndefined();
    await expectError(s({ filter: "metrics.val_acc > 'high'" }), "INVALID_PARAMETER_VALUE", 400);
    await expectError(s({ filter: "foo.bar = 'x'" }), "INVALID_PARAMETER_VALUE", 400);
  });

  it("updates (rename, end with FINISHED), deletes and restores a run; an ended run takes no metrics", async () => {
    const end = Date.now();
    const { run_info } = await engineer.call("runs/update", { run_id: runId, status: "FINISHED", end_time: end, run_name: "mlp-final" });
    expect(run_info).toMatchObject({ status: "FINISHED", end_time: end, run_name: "mlp-final" });
    await expectError(
      engineer.call("runs/log-metric", { run_id: runId, key: "loss", value: 0.01, timestamp: end, step: 99 }),
      "INVALID_PARAMETER_VALUE",
      400,
      /ended/,
    );
    await engineer.call("runs/log-parameter", { run_id: runId, key: "notes", value: "after the end" });
    await engineer.call("runs/delete", { run_id: runId });
    expect((await engineer.call("runs/get", { run_id: runId })).run.info.lifecycle_stage).toBe("deleted");
    expect(
      (await engineer.call("runs/search", { experiment_ids: [experimentId], filter: `attributes.run_id = '${runId}'` })).runs,
    ).toBeUndefined();
    await expectError(
      engineer.call("runs/log-parameter", { run_id: runId, key: "x", value: "1" }),
      "INVALID_PARAMETER_VALUE",
      400,
      /active/,
    );
    await engineer.call("runs/restore", { run_id: runId });
    expect((await engineer.call("runs/get", { run_id: runId })).run.info.lifecycle_stage).toBe("active");
    const { run } = await engineer.call("runs/create", { experiment_id: experimentId });
    await engineer.call("runs/update", { run_id: run.info.run_id, status: "FAILED" });
    const killed = (await engineer.call("runs/create", { experiment_id: experimentId })).run.info.run_id;
    await engineer.call("runs/update", { run_id: killed, status: "KILLED" });
    expect((await engineer.call("runs/get", { run_id: killed })).run.info.status).toBe("KILLED");
  });

  it("reads in the app like an embedded run (list, page, curves, params as decisions); the app does not cancel, adjust or fork it", async () => {
    const { run } = await engineer.call("runs/create", { experiment_id: experimentId, run_name: "in-the-app" });
    const id = Number(run.info.run_id);
    await engineer.call("runs/log-batch", {
      run_id: run.info.run_id,
      params: [{ key: "lr", value: "0.05" }],
      tags: [{ key: "runledger.rationale", value: "try a larger step" }],
      metrics: [0, 1, 2].map((step) => ({ key: "train/loss", value: 1 / (step + 1), timestamp: 1000 + step, step })),
    });
    const caller = app.as("engineer");
    const listed = await caller.runs.list({ experimentId: Number(experimentId) });
    expect(listed.find((r) => r.id === id)).toMatchObject({ origin: "api", params: null, metrics: { "train/loss": 1 / 3 } });
    expect((await caller.runs.get({ id })).origin).toBe("api");
    expect((await caller.runs.metrics({ runId: id })).series["train/loss"]!.map((p) => p.value)).toEqual([1, 1 / 2, 1 / 3]);
    const timeline = await caller.decisions.timeline({ runId: id });
    expect(timeline.entries[0]!.decisions.map((d) => [d.kind, d.path, d.rationale])).toContainEqual(["param", "lr", "try a larger step"]);
    await expect(caller.runs.cancel({ id, reason: "not needed any more" })).rejects.toThrow(/tracking API/);
    // A pilot may pause, resume or stop it, or change one of its logged params (its script applies them:
    // server/tests/mlflow-pilot.test.ts); a trainer setting it never logged is refused, naming its params.
    await expect(
      caller.runs.pilot.request({ runId: id, kind: "set", set: { "training.learningRate": 0.01 }, rationale: "x" }),
    ).rejects.toThrow(/training\.learningRate: not a param of run \d+ \(its params: lr/);
    await expect(caller.runs.rerun({ runId: id })).rejects.toThrow(/tracking API|config/);
  });

  it("keeps audit verify (chain and content) passing on a database with API runs, and finds an edit made outside the API", async () => {
    const verify = () => verifyDatabase(app.dataDir, { publicKeyPem: app.auditKeys.publicKeyPem });
    const verified = await verify();
    expect(verified.ok, verified.problem ?? JSON.stringify(verified.problems.slice(0, 10))).toBe(true);
    expect((verified.levels.content as { skipped?: string }).skipped).toBeUndefined();
    const sqlite = app.db.$client;
    const tamper = async (edit: string, undo: string, finding: RegExp) => {
      sqlite.prepare(edit).run();
      try {
        const r = await verify();
        expect(r.ok, `verify should fail after: ${edit}`).toBe(false);
        expect(JSON.stringify(r.problems)).toMatch(finding);
      } finally {
        sqlite.prepare(undo).run();
      }
    };
    await tamper(
      `UPDATE run_tag_values SET value = 'edited' WHERE key = 'phase'`,
      `UPDATE run_tag_values SET value = 'train' WHERE key = 'phase'`,
      /tag phase/,
    );
    await tamper(
      "UPDATE run_inputs SET digest = 'ffff' WHERE name = 'iris'",
      "UPDATE run_inputs SET digest = 'a1b2c3d4' WHERE name = 'iris'",
      /run input \d+: record/,
    );
    await tamper(
      `UPDATE runs SET deleted_at = '2026-01-01T00:00:00.000Z' WHERE id = ${runId}`,
      `UPDATE runs SET deleted_at = NULL WHERE id = ${runId}`,
      /deleted at/,
    );
    await tamper(
      `UPDATE experiments SET name = 'sneaky' WHERE id = ${experimentId}`,
      `UPDATE experiments SET name = 'contract-runs' WHERE id = ${experimentId}`,
      /experiment name/,
    );
    const tok = sqlite.prepare("SELECT id, name FROM api_tokens ORDER BY id LIMIT 1").get() as { id: number; name: string };
    await tamper(
      `UPDATE api_tokens SET revoked_at = NULL, name = 'x' WHERE id = ${tok.id}`,
      `UPDATE api_tokens SET name = '${tok.name}' WHERE id = ${tok.id}`,
      /token name/,
    );
    const metricRun = Number(runId);
    await tamper(
      `UPDATE metrics SET value = 123 WHERE run_id = ${metricRun} AND key = 'loss' AND step = 3`,
      `UPDATE metrics SET value = ${1 / 4} WHERE run_id = ${metricRun} AND key = 'loss' AND step = 3`,
      /metric points/,
    );
    expect((await verify()).ok).toBe(true);
    // Decisions are immutable (triggers): a param slipped in by SQL, without its run.log event, is found. Last: no undo.
    sqlite
      .prepare(
        `INSERT INTO decisions (run_id, kind, path, new_value_json, rationale, author_id, created_at) VALUES (${runId}, 'param', 'sneaky', '"1"', 'x', 1, '2026-01-01T00:00:00.000Z')`,
      )
      .run();
    const after = await verify();
    expect(after.ok).toBe(false);
    expect(JSON.stringify(after.problems)).toMatch(/no run\.log \(of its batch\) event/);
  }, 240_000);
});
