/**
 * Contract suite of the tracking API's model registry (issue 15 phase 2): registered-models and model-versions over
 * plain HTTP (the real route handlers on node:http), mapped onto Runledger's registry. A FINISHED API run's logged
 * checkpoint becomes a model version (checkpoint + modelVersion events); "production" cannot be set by a token
 * (403 PERMISSION_DENIED pointing at the promotion flow); models and versions are never deleted or renamed; audit
 * verify stays clean and finds an edited row.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createHash } from "node:crypto";
import { eq } from "drizzle-orm";
import { auditEvents, checkpoints, modelAliasEvents, modelVersions } from "@/db/schema";

import { verifyDatabase } from "@/server/audit/verify";
import { MlflowClient } from "@/contracts/mlflow/client";
import { expectMlflowError, startMlflowServer, tokenFor as tokenOf } from "./mlflow-http-fixture";
import { createTestApp, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

let app: TestApp;
let mlflow: Awaited<ReturnType<typeof startMlflowServer>>;
let base: string;
let engineer: MlflowClient;
let auditor: MlflowClient;
let engineerToken: string;
const tokenFor = (role: string, name?: string) => tokenOf(app, role, name);
const expectError = expectMlflowError;

beforeAll(async () => {
  app = createTestApp();
  mlflow = await startMlflowServer(app);
  base = mlflow.base;
  engineerToken = (await tokenFor("engineer")).token;
  engineer = new MlflowClient(base, engineerToken);
  auditor = new MlflowClient(base, (await tokenFor("auditor")).token);
});

afterAll(async () => {
  await mlflow.close();
  app.close();
});

const weights = new Uint8Array(Array.from({ length: 4096 }, (_, i) => (i * 17 + 3) % 256));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
let runId = "";
let artifactUri = "";

describe("registered models", () => {
  it("create, get, search, update (description) with MLflow's shapes and errors", async () => {
    const { registered_model } = await engineer.call("registered-models/create", { name: "api-iris", description: "first" });
    expect(registered_model).toMatchObject({ name: "api-iris", description: "first" });
    expect(typeof registered_model.creation_timestamp).toBe("number");
    await expectError(engineer.call("registered-models/create", { name: "api-iris" }), "RESOURCE_ALREADY_EXISTS", 400, /already exists/);
    await expectError(
      engineer.call("registered-models/create", { name: "bad name!" }),
      "INVALID_PARAMETER_VALUE",
      400,
      /Invalid registered model name/,
    );
    await expectError(auditor.call("registered-models/create", { name: "by-auditor" }), "PERMISSION_DENIED", 403);
    await expectError(
      engineer.call("registered-models/get", { name: "nope" }),
      "RESOURCE_DOES_NOT_EXIST",
      404,
      /Registered Model with name=nope not found/,
    );
    expect((await auditor.call("registered-models/get", { name: "api-iris" })).registered_model.name).toBe("api-iris");
    await engineer.call("registered-models/create", { name: "api-other" });
    const like = await engineer.call("registered-models/search", { filter: "name LIKE 'api-%'" });
    expect(like.registered_models?.map((m) => m.name)).toEqual(["api-iris", "api-other"]);
    const paged = await engineer.call("registered-models/search", { filter: "name LIKE 'api-%'", max_results: 1 });
    expect(paged.registered_models).toHaveLength(1);
    const next = await engineer.call("registered-models/search", {
      filter: "name LIKE 'api-%'",
      max_results: 1,
      page_token: paged.next_page_token,
    });
    expect(next.registered_models?.[0]?.name).toBe("api-other");
    await expectError(
      engineer.call("registered-models/search", { filter: "tags.x = 'y'" }),
      "INVALID_PARAMETER_VALUE",
      400,
      /Unsupported filter/,
    );

    const updated = await engineer.call("registered-models/update", { name: "api-iris", description: "logged from a script" });
    expect(updated.registered_model.description).toBe("logged from a script");
    const ev = app.db.select().from(auditEvents).where(eq(auditEvents.action, "model.update")).all().at(-1)!;
    expect(JSON.parse(ev.payload)).toMatchObject({ field: "description", before: "first", after: "logged from a script" });
  });

  it("refuses delete and rename of models and delete of versions (403): the registry keeps what it registered", async () => {
    await expectError(
      engineer.call("registered-models/delete", { name: "api-other" }),
      "PERMISSION_DENIED",
      403,
      /does not delete registered models/,
    );
    await expectError(engineer.call("registered-models/rename", { name: "api-other", new_name: "x" }), "PERMISSION_DENIED", 403, /rename/);
    expect((await engineer.call("registered-models/get", { name: "api-other" })).registered_model.name).toBe("api-other");
  });
});

describe("model versions from an API run's artifact", () => {
  it("registers a FINISHED run's logged checkpoint (runs:/ and mlflow-artifacts: sources), get, search, download URI", async () => {
    const { experiment_id } = await engineer.call("experiments/create", { name: "registry-contract" });
    const { run } = await engineer.call("runs/create", { experiment_id, run_name: "to-register" });
    runId = run.info.run_id;
    artifactUri = run.info.artifact_uri;
    await engineer.call("runs/log-batch", {
      run_id: runId,
      params: [{ key: "lr", value: "0.01" }],
      metrics: [
        { key: "loss", value: 0.5, timestamp: Date.now(), step: 1 },
        { key: "loss", value: 0.25, timestamp: Date.now(), step: 2 },
      ],
    });
    await engineer.call("runs/log-inputs", {
      run_id: runId,
      datasets: [
        {
          dataset: { name: "iris-train", digest: "d1g3st", source_type: "local", source: '{"uri": "/data/iris.csv"}' },
          tags: [{ key: "mlflow.data.context", value: "training" }],
        },
      ],
    });
    await engineer.logArtifact(artifactUri, "model/weights.bin", weights);
    await expectError(
      engineer.call("model-versions/create", { name: "api-iris", source: `runs:/${runId}/model/weights.bin`, run_id: runId }),
      "INVALID_PARAMETER_VALUE",
      400,
      /only artifacts of FINISHED runs/,
    );
    await engineer.call("runs/update", { run_id: runId, status: "FINISHED", end_time: Date.now() });
    await expectError(
      engineer.call("model-versions/create", { name: "api-iris", source: `runs:/${runId}/model/missing.bin` }),
      "RESOURCE_DOES_NOT_EXIST",
      404,
    );
    await expectError(
      engineer.call("model-versions/create", { name: "api-iris", source: "s3://bucket/x" }),
      "INVALID_PARAMETER_VALUE",
      400,
      /Unsupported model version source/,
    );
    await expectError(
      engineer.call("model-versions/create", { name: "no-such-model", source: `runs:/${runId}/model/weights.bin` }),
      "RESOURCE_DOES_NOT_EXIST",
      404,
    );
    await expectError(
      auditor.call("model-versions/create", { name: "api-iris", source: `runs:/${runId}/model/weights.bin` }),
      "PERMISSION_DENIED",
      403,
    );

    const { model_version: v1 } = await engineer.call("model-versions/create", {
      name: "api-iris",
      source: `runs:/${runId}/model`,
      run_id: runId,
    });
    expect(v1).toMatchObject({
      name: "api-iris",
      version: "1",
      run_id: runId,
      source: `runs:/${runId}/model/weights.bin`,
      status: "READY",
      current_stage: "None",
    });
    const row = app.db
      .select()
      .from(modelVersions)
      .where(eq(modelVersions.runId, Number(runId)))
      .get()!;
    expect(row.weightsSha256).toBe(sha(weights));
    const ck = app.db.select().from(checkpoints).where(eq(checkpoints.id, row.checkpointId)).get()!;
    expect(ck).toMatchObject({ runId: Number(runId), epoch: 0, step: 2, sha256: sha(weights), bytes: weights.byteLength, isBest: false });

    const { model_version: v2 } = await engineer.call("model-versions/create", {
      name: "api-iris",
      source: `${artifactUri}/model/weights.bin`,
    });
    expect(v2.version).toBe("2");
    expect(
      app.db
        .select()
        .from(checkpoints)
        .where(eq(checkpoints.runId, Number(runId)))
        .all(),
    ).toHaveLength(1);

    expect((await auditor.call("model-versions/get", { name: "api-iris", version: "1" })).model_version.source).toBe(v1.source);
    await expectError(engineer.call("model-versions/get", { name: "api-iris", version: "9" }), "RESOURCE_DOES_NOT_EXIST", 404, /version=9/);
    const byRun = await engineer.call("model-versions/search", { filter: `run_id = '${runId}'` });
    expect(byRun.model_versions?.map((v) => v.version)).toEqual(["1", "2"]);
    const byName = await engineer.call("model-versions/search", { filter: "name = 'api-iris'" });
    expect(byName.model_versions).toHaveLength(2);
    const { artifact_uri } = await engineer.call("model-versions/get-download-uri", { name: "api-iris", version: "1" });
    expect(artifact_uri).toBe(`${artifactUri}/model/weights.bin`);
    expect(sha(await engineer.downloadArtifact(artifactUri, "model/weights.bin"))).toBe(sha(weights));
    expect((await engineer.call("registered-models/get", { name: "api-iris" })).registered_model.latest_versions?.[0]?.version).toBe("2");

    await expectError(
      engineer.call("model-versions/update", { name: "api-iris", version: "1", description: "x" }),
      "INVALID_PARAMETER_VALUE",
      400,
      /immutable/,
    );
    await expectError(engineer.call("model-versions/delete", { name: "api-iris", version: "1" }), "PERMISSION_DENIED", 403);
  });

  it("sets, reads and deletes an alias; refuses 'production' with PERMISSION_DENIED pointing at the promotion flow", async () => {
    await engineer.call("registered-models/alias", { name: "api-iris", alias: "staging", version: "1" });
    expect((await engineer.call("registered-models/alias#get", { name: "api-iris", alias: "staging" })).model_version).toMatchObject({
      version: "1",
      aliases: ["staging"],
    });
    expect((await engineer.call("registered-models/get", { name: "api-iris" })).registered_model.aliases).toEqual([
      { alias: "staging", version: "1" },
    ]);
    const moves = () => app.db.select().from(modelAliasEvents).all().length;
    const before = moves();
    await engineer.call("registered-models/alias", { name: "api-iris", alias: "staging", version: "1" }); // same target: no move
    expect(moves()).toBe(before);

    await expectError(
      engineer.call("registered-models/alias", { name: "api-iris", alias: "production", version: "1" }),
      "PERMISSION_DENIED",
      403,
      /promotion request with independent reviewers' approval/,
    );
    await expectError(
      engineer.call("registered-models/alias#delete", { name: "api-iris", alias: "production" }),
      "PERMISSION_DENIED",
      403,
      /promotion/,
    );
    await expectError(auditor.call("registered-models/alias", { name: "api-iris", alias: "qa", version: "1" }), "PERMISSION_DENIED", 403);
    expect(
      app.db
        .select()
        .from(modelAliasEvents)
        .all()
        .some((m) => m.alias === "production"),
    ).toBe(false);

    await engineer.call("registered-models/alias#delete", { name: "api-iris", alias: "staging" });
    await expectError(
      engineer.call("registered-models/alias#get", { name: "api-iris", alias: "staging" }),
      "RESOURCE_DOES_NOT_EXIST",
      404,
      /alias staging not found/,
    );
    const ev = app.db.select().from(auditEvents).where(eq(auditEvents.action, "alias.move")).all().at(-1)!;
    expect(JSON.parse(ev.payload)).toMatchObject({ alias: "staging", toModelVersionId: null });
    expect(ev.payload).toMatch(/tracking API/);
  });

  it("shows the API-registered version in the app's registry reads (models list, model page, lineage, checklist)", async () => {
    const caller = app.as("reviewer");
    expect((await caller.models.list()).find((m) => m.name === "api-iris")?.versionCount).toBe(2);
    const model = await caller.models.get({ name: "api-iris" });
    expect(JSON.stringify(model)).toContain(sha(weights));
    const lineage = await caller.models.lineage({ modelName: "api-iris", version: 1 });
    expect(JSON.stringify(lineage)).toContain("logged through the MLflow-compatible API");
    expect(JSON.stringify(lineage)).toContain(sha(weights));
    const input = lineage.graph.nodes.find((n) => n.kind === "datasetInput");
    expect(input).toMatchObject({ title: "iris-train", hash: { label: "dataset digest", value: "d1g3st" } });
    expect(lineage.graph.edges).toContainEqual(
      expect.objectContaining({ source: input!.id, target: `run:${runId}`, label: "training data of" }),
    );
    await caller.models.documentationChecklist({ modelName: "api-iris", version: 1 });
  });

  it("keeps audit verify clean, and finds an edited checkpoint of an API run and an edited model description", async () => {
    const verify = () => verifyDatabase(app.dataDir, { publicKeyPem: app.auditKeys.publicKeyPem });
    const clean = await verify();
    expect(clean.ok, clean.problem ?? JSON.stringify(clean.problems.slice(0, 10))).toBe(true);
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
      `UPDATE checkpoints SET step = 99 WHERE run_id = ${runId}`,
      `UPDATE checkpoints SET step = 2 WHERE run_id = ${runId}`,
      /checkpoint \d+: step/,
    );
    await tamper(
      `UPDATE models SET description = 'sneaky' WHERE name = 'api-iris'`,
      `UPDATE models SET description = 'logged from a script' WHERE name = 'api-iris'`,
      /model description/,
    );
    expect((await verify()).ok).toBe(true);
  });
});
