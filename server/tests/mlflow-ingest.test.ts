/**
 * log-batch's group commit and ingest worker (issue 15, Speed; server/mlflow/ingest-group.ts, ingest.ts):
 * - calls written together in one transaction each keep their own savepoint and run.log event: a refused call
 *   (conflicting point, malformed JSON, unknown run) stores nothing and gets MLflow's error, the others commit;
 * - when the group's transaction cannot be had or committed, no call of it is acknowledged and nothing is stored;
 * - over HTTP, concurrent writers go through the worker (its own connection) with the same answers as before, and
 *   audit verify (chain and content checks of metrics and run.log events) is clean afterwards;
 * - a worker that cannot start hands its calls back to the main thread (answered and stored as before).
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { and, eq } from "drizzle-orm";
import { auditEvents, decisions } from "@/db/schema";
import { sha256Hex } from "@/contracts/canonical";
import { MlflowClient } from "@/contracts/mlflow/client";
import { verifyDatabase } from "@/server/audit/verify";
import { actorForToken } from "@/server/auth/tokens";
import { batchCanonicalJson, plainLogBatch } from "@/server/mlflow/logging";
import { logBatchGroup, type IngestJob } from "@/server/mlflow/ingest-group";
import { ingestWorkerEnabled, ingestWorkerRunning } from "@/server/mlflow/ingest";
import { handleMlflowRequest } from "@/server/http/mlflow-route";
import { expectMlflowError, startMlflowServer, tokenFor } from "./mlflow-http-fixture";
import { createTestApp, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

let app: TestApp;
let mlflow: Awaited<ReturnType<typeof startMlflowServer>>;
let engineer: MlflowClient;
let engineerToken: string;

beforeAll(async () => {
  app = createTestApp();
  mlflow = await startMlflowServer(app);
  engineerToken = (await tokenFor(app, "engineer")).token;
  engineer = new MlflowClient(mlflow.base, engineerToken);
});

afterAll(async () => {
  await mlflow.close();
  app.close();
});

const enc = new TextEncoder();
let experimentId: string | undefined;

async function newRun(name: string): Promise<string> {
  experimentId ??= (await engineer.call("experiments/create", { name: "ingest group commit" })).experiment_id;
  const { run } = await engineer.call("runs/create", { experiment_id: experimentId, run_name: name, start_time: 1 });
  return run.info.run_id;
}

/** `steps` steps of keys a, b, c from `first` (step-major, as scripts send them). */
function metrics(first: number, steps: number, value = (s: number, k: number) => s * 3 + k) {
  const out = [];
  for (let s = first; s < first + steps; s++)
    for (const [k, key] of ["a", "b", "c"].entries()) out.push({ key, value: value(s, k), timestamp: 1_700_000_000_000 + s, step: s });
  return out;
}

const count = (sql: string, ...args: unknown[]) =>
  app.db.$client
    .prepare(sql)
    .pluck()
    .get(...args) as number;
const points = (runId: string) => count("SELECT count(*) FROM metrics WHERE run_id = ?", Number(runId));
const runLogs = (runId: string) =>
  app.db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.action, "run.log"), eq(auditEvents.entityId, runId)))
    .all()
    .map((e) => JSON.parse(e.payload) as { batchSha256: string; metrics: number; params: number; viaTokenId: number })
    .filter((e) => e.metrics > 0); // not runs/create's (its tags)

/** The batch hash a run.log event must carry for `body`. */
const hashOf = (body: unknown) => sha256Hex(batchCanonicalJson(plainLogBatch(body)!.batch));

async function expectVerified() {
  const verified = await verifyDatabase(app.dataDir, { publicKeyPem: app.auditKeys.publicKeyPem });
  expect(verified.ok, verified.problem ?? JSON.stringify(verified.problems.slice(0, 10))).toBe(true);
  expect((verified.levels.content as { skipped?: string }).skipped).toBeUndefined();
}

describe("group commit (logBatchGroup)", () => {
  it("commits the calls that pass, each with its own run.log event, and stores nothing of a refused one", async () => {
    const [a, b, c] = [await newRun("group a"), await newRun("group b"), await newRun("group c")];
    await engineer.call("runs/log-batch", { run_id: c, metrics: metrics(0, 1) }); // c holds steps 0 (3 points)
    const before = { c: runLogs(c).length, events: count("SELECT count(*) FROM audit_events") };
    const actor = ((await actorForToken(app.db, engineerToken)) as { actor: IngestJob["actor"] }).actor;
    const bodies: unknown[] = [
      { run_id: a, metrics: metrics(0, 100) },
      { run_id: b, metrics: metrics(0, 10), params: [{ key: "lr", value: "0.1" }], tags: [{ key: "runledger.rationale", value: "why" }] },
      { run_id: c, metrics: [...metrics(1, 20), ...metrics(0, 1, () => 99)] }, // another value at a stored step
      "{not json",
      { run_id: "999999", metrics: metrics(0, 1) },
      { run_id: a, metrics: metrics(100, 5) }, // a second call to the same run in the same group
    ];
    const jobs: IngestJob[] = bodies.map((body, id) => ({
      id,
      actor,
      body: enc.encode(typeof body === "string" ? body : JSON.stringify(body)),
    }));
    const answers = logBatchGroup(app.db, jobs);

    expect(answers.map((x) => x.status)).toEqual([200, 200, 400, 400, 404, 200]);
    expect(answers[0]!.body).toEqual({});
    expect(answers[2]!.body).toMatchObject({
      error_code: "INVALID_PARAMETER_VALUE",
      message: expect.stringMatching(/already has the value/),
    });
    expect(answers[3]!.body).toMatchObject({ error_code: "INVALID_PARAMETER_VALUE", message: expect.stringMatching(/not valid JSON/) });
    expect(answers[4]!.body).toMatchObject({ error_code: "RESOURCE_DOES_NOT_EXIST" });

    expect(points(a)).toBe(315);
    expect(points(b)).toBe(30);
    expect(points(c)).toBe(3); // none of the refused call's 63 points
    expect(runLogs(a).map((e) => [e.batchSha256, e.metrics])).toEqual([
      [hashOf(bodies[0]), 300],
      [hashOf(bodies[5]), 15],
    ]);
    expect(runLogs(b)).toMatchObject([{ batchSha256: hashOf(bodies[1]), metrics: 30, params: 1, viaTokenId: actor.tokenId }]);
    expect(runLogs(c)).toHaveLength(before.c);
    expect(count("SELECT count(*) FROM audit_events") - before.events).toBe(3);
    expect(
      app.db
        .select()
        .from(decisions)
        .where(eq(decisions.runId, Number(b)))
        .all(),
    ).toMatchObject([{ path: "lr", rationale: "why" }]);
    await expectVerified();
  }, 60_000);

  it("acknowledges no call of a group whose transaction cannot be had, and stores nothing of it", async () => {
    const run = await newRun("group locked out");
    const actor = ((await actorForToken(app.db, engineerToken)) as { actor: IngestJob["actor"] }).actor;
    const other = new (app.db.$client.constructor as typeof import("better-sqlite3"))(`${app.dataDir}/runledger.sqlite`);
    other.exec("BEGIN IMMEDIATE"); // another process holds the write lock
    app.db.$client.pragma("busy_timeout = 20");
    try {
      const jobs: IngestJob[] = [0, 1].map((id) => ({
        id,
        actor,
        body: enc.encode(JSON.stringify({ run_id: run, metrics: metrics(id * 10, 10) })),
      }));
      const answers = logBatchGroup(app.db, jobs);
      expect(answers.map((x) => [x.status, (x.body as { error_code: string }).error_code])).toEqual([
        [500, "INTERNAL_ERROR"],
        [500, "INTERNAL_ERROR"],
      ]);
    } finally {
      other.exec("ROLLBACK");
      other.close();
      app.db.$client.pragma("busy_timeout = 5000");
    }
    expect(points(run)).toBe(0);
    expect(runLogs(run)).toHaveLength(0);
  });
});

describe("log-batch over HTTP through the ingest worker", () => {
  it("answers concurrent writers after their commits; a refused call stores nothing; audit verify is clean", async () => {
    const runIds = await Promise.all([0, 1, 2, 3].map((i) => newRun(`writer ${i}`)));
    // Writer 3's second call repeats a step of its first with another value: refused; the rest are accepted.
    const calls = runIds.map((run_id, w) =>
      Array.from({ length: 5 }, (_, c) => ({
        run_id,
        metrics: w === 3 && c === 1 ? metrics(0, 2, () => -1) : metrics(c * 300, 300, (s, k) => Math.sin(s + k + w)),
      })),
    );
    const answers = await Promise.all(
      calls.map(async (bodies) => {
        const out: string[] = [];
        for (const body of bodies)
          out.push(
            await engineer.call("runs/log-batch", body).then(
              () => "ok",
              (e: Error) => e.message,
            ),
          );
        return out;
      }),
    );
    expect(ingestWorkerRunning(app.dataDir)).toBe(true);
    expect(answers.slice(0, 3)).toEqual([0, 1, 2].map(() => ["ok", "ok", "ok", "ok", "ok"]));
    expect(answers[3]![0]).toBe("ok");
    expect(answers[3]![1]).toMatch(/already has the value/);
    expect(answers[3]!.slice(2)).toEqual(["ok", "ok", "ok"]);
    for (const [w, run] of runIds.entries()) {
      expect(points(run)).toBe(w === 3 ? 4 * 900 : 5 * 900);
      expect(runLogs(run).map((e) => e.batchSha256)).toEqual(calls[w]!.filter((_, c) => w !== 3 || c !== 1).map(hashOf));
    }
    // What the dispatcher answers, the worker answers: malformed JSON, limits; the main thread: token and role.
    const malformed = await fetch(`${mlflow.base}/api/2.0/mlflow/runs/log-batch`, {
      method: "POST",
      headers: { authorization: `Bearer ${engineerToken}`, "content-type": "application/json" },
      body: "{",
    });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({
      error_code: "INVALID_PARAMETER_VALUE",
      message: expect.stringMatching(/not valid JSON/),
    });
    await expectMlflowError(
      engineer.call("runs/log-batch", { run_id: runIds[0]!, metrics: metrics(10_000, 334) }),
      "INVALID_PARAMETER_VALUE",
      400,
      /at most 1000 metrics/,
    );
    const auditor = new MlflowClient(mlflow.base, (await tokenFor(app, "auditor")).token);
    await expectMlflowError(auditor.call("runs/log-batch", { run_id: runIds[0]!, metrics: metrics(20_000, 1) }), "PERMISSION_DENIED", 403);
    await expectMlflowError(
      new MlflowClient(mlflow.base, "rl_pat_nope").call("runs/log-batch", { run_id: runIds[0]! }),
      "UNAUTHENTICATED",
      401,
    );
    expect(points(runIds[0]!)).toBe(5 * 900);
    await expectVerified();
  }, 120_000);
});

// Last in this file: after it, this process answers log-batch on the main thread (the worker is marked broken).
describe("an ingest worker that cannot start", () => {
  it("hands its calls back to the main thread, which answers them as before", async () => {
    const run_id = await newRun("worker cannot start");
    const notADir = path.join(app.dataDir, "not-a-directory");
    fs.writeFileSync(notADir, "");
    // Same services, but the worker is pointed at a data directory it cannot open (a file).
    const services = { ...app, dataDir: notADir };
    const body = { run_id, metrics: metrics(0, 10) };
    const answer = await handleMlflowRequest(
      services,
      new Request(`${mlflow.base}/api/2.0/mlflow/runs/log-batch`, {
        method: "POST",
        headers: { authorization: `Bearer ${engineerToken}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      }),
      ["runs", "log-batch"],
    );
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({});
    expect(points(run_id)).toBe(30);
    expect(runLogs(run_id).map((e) => e.batchSha256)).toEqual([hashOf(body)]);
    expect(ingestWorkerEnabled()).toBe(false);
    await expectVerified();
  }, 60_000);
});
