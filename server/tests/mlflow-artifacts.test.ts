/**
 * Contract suite of the tracking API's artifacts (issue 15 phase 2): the real route handlers
 * (app/api/2.0/mlflow-artifacts/[...path]/route.ts, app/api/2.0/mlflow/[...path]/route.ts) on node:http on a loopback
 * port, over a fresh data directory, driven through plain HTTP by the typed client. Uploads land in the
 * content-addressed store with a run.log event naming their sha256; reads check the hash; traversal, auditors and
 * missing tokens are refused with MLflow's codes; audit verify stays clean and finds a replaced file or an edited row.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import fs from "node:fs";
import { createHash } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { auditEvents, runArtifacts } from "@/db/schema";

import { verifyDatabase } from "@/server/audit/verify";
import { artifactPath } from "@/contracts/artifact-layout";
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

const weights = new Uint8Array(Array.from({ length: 70_000 }, (_, i) => (i * 31 + 7) % 251));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
let runId = "";
let artifactUri = "";

async function rawPut(path: string, body: Uint8Array<ArrayBuffer>, token: string | null = engineerToken) {
  const res = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${path}`, {
    method: "PUT",
    headers: token ? { authorization: `Bearer ${token}` } : {},
    body,
  });
  return { status: res.status, json: (await res.json()) as { error_code?: string; message?: string } };
}

describe("artifacts through the proxy", () => {
  it("uploads a checkpoint to the content-addressed store with a run.log event naming its sha256, and downloads it", async () => {
    const { experiment_id } = await engineer.call("experiments/create", { name: "artifact-contract" });
    const { run } = await engineer.call("runs/create", { experiment_id, run_name: "with-weights" });
    runId = run.info.run_id;
    artifactUri = run.info.artifact_uri;
    expect(artifactUri).toBe(`mlflow-artifacts:/${experiment_id}/${runId}/artifacts`);
    expect((await engineer.call("experiments/get", { experiment_id })).experiment.artifact_location).toBe(
      `mlflow-artifacts:/${experiment_id}`,
    );

    await engineer.logArtifact(artifactUri, "checkpoints/epoch-3.bin", weights);
    await engineer.logArtifact(artifactUri, "notes.txt", new TextEncoder().encode("trained on iris"));
    const row = app.db
      .select()
      .from(runArtifacts)
      .where(and(eq(runArtifacts.runId, Number(runId)), eq(runArtifacts.path, "checkpoints/epoch-3.bin")))
      .get()!;
    expect(row.sha256).toBe(sha(weights));
    expect(row.bytes).toBe(weights.byteLength);
    expect(fs.existsSync(artifactPath(app.dataDir, row.sha256))).toBe(true);
    const ev = app.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "run.log"), eq(auditEvents.entityId, runId)))
      .all()
      .map((e) => JSON.parse(e.payload) as { artifacts?: { id: number; path: string; sha256: string }[] })
      .find((p) => p.artifacts?.[0]?.id === row.id);
    expect(ev?.artifacts?.[0]).toMatchObject({ path: "checkpoints/epoch-3.bin", sha256: sha(weights), bytes: weights.byteLength });

    expect(sha(await engineer.downloadArtifact(artifactUri, "checkpoints/epoch-3.bin"))).toBe(sha(weights));
    // Every role reads.
    expect(new TextDecoder().decode(await auditor.downloadArtifact(artifactUri, "notes.txt"))).toBe("trained on iris");
  });

  it("lists a directory through the proxy and through artifacts/list (MLflow shapes)", async () => {
    expect(await engineer.listArtifactsProxy(artifactUri)).toEqual([
      { path: "checkpoints", is_dir: true },
      { path: "notes.txt", is_dir: false, file_size: 15 },
    ]);
    expect(await engineer.listArtifactsProxy(artifactUri, "checkpoints")).toEqual([
      { path: "epoch-3.bin", is_dir: false, file_size: weights.byteLength },
    ]);
    const listed = await engineer.call("artifacts/list", { run_id: runId, path: "checkpoints" });
    expect(listed).toEqual({
      root_uri: artifactUri,
      files: [{ path: "checkpoints/epoch-3.bin", is_dir: false, file_size: weights.byteLength }],
    });
    expect((await engineer.call("artifacts/list", { run_id: runId })).files.map((f) => f.path)).toEqual(["checkpoints", "notes.txt"]);
  });

  it("accepts the same bytes again without a new event, and refuses other bytes at a logged path", async () => {
    const count = () => app.db.select().from(auditEvents).where(eq(auditEvents.action, "run.log")).all().length;
    const before = count();
    await engineer.logArtifact(artifactUri, "checkpoints/epoch-3.bin", weights);
    expect(count()).toBe(before);
    await expectError(
      engineer.logArtifact(artifactUri, "checkpoints/epoch-3.bin", new Uint8Array([1, 2, 3])),
      "RESOURCE_ALREADY_EXISTS",
      400,
      /already exists with other bytes/,
    );
    expect(sha(await engineer.downloadArtifact(artifactUri, "checkpoints/epoch-3.bin"))).toBe(sha(weights));
  });

  it("refuses path traversal, auditors, missing tokens, unknown runs and files, with MLflow's codes", async () => {
    const root = artifactUri.replace("mlflow-artifacts:/", "");
    const traversal = await rawPut(`${root}/..%2F..%2F..%2Fescape.bin`, new Uint8Array([1]));
    expect(traversal.status).toBe(400);
    expect(traversal.json.error_code).toBe("INVALID_PARAMETER_VALUE");
    expect(traversal.json.message).toMatch(/Invalid path/);
    const dot = await rawPut(`${root}/a%2F.%2Fb`, new Uint8Array([1]));
    expect(dot.status).toBe(400);
    await expectError(engineer.call("artifacts/list", { run_id: runId, path: "../.." }), "INVALID_PARAMETER_VALUE", 400, /Invalid path/);
    expect(
      app.db
        .select()
        .from(runArtifacts)
        .all()
        .some((r) => r.path.includes("..")),
    ).toBe(false);

    await expectError(auditor.logArtifact(artifactUri, "x.bin", new Uint8Array([1])), "PERMISSION_DENIED", 403, /auditor cannot upload/);
    const anonymous = await rawPut(`${root}/x.bin`, new Uint8Array([1]), null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.json.error_code).toBe("UNAUTHENTICATED");
    await expectError(engineer.downloadArtifact(artifactUri, "no-such.bin"), "RESOURCE_DOES_NOT_EXIST", 404);
    await expectError(
      engineer.logArtifact("mlflow-artifacts:/1/999999/artifacts", "x.bin", new Uint8Array([1])),
      "RESOURCE_DOES_NOT_EXIST",
      404,
    );
    await expectError(engineer.call("artifacts/list", { run_id: "999999" }), "RESOURCE_DOES_NOT_EXIST", 404);
    // A file where a directory of the run already is.
    await expectError(
      engineer.logArtifact(artifactUri, "checkpoints", new Uint8Array([1])),
      "INVALID_PARAMETER_VALUE",
      400,
      /is a directory/,
    );
    expect(
      app.db
        .select()
        .from(runArtifacts)
        .where(eq(runArtifacts.runId, Number(runId)))
        .all(),
    ).toHaveLength(2);
  });

  it("keeps audit verify clean, and finds a replaced file (not served either) and an edited row", async () => {
    const verify = () => verifyDatabase(app.dataDir, { publicKeyPem: app.auditKeys.publicKeyPem });
    const clean = await verify();
    expect(clean.ok, clean.problem ?? JSON.stringify(clean.problems.slice(0, 10))).toBe(true);
    expect((clean.levels.content as { skipped?: string }).skipped).toBeUndefined();

    const sqlite = app.db.$client;
    sqlite.prepare(`UPDATE run_artifacts SET path = 'renamed.bin' WHERE path = 'notes.txt'`).run();
    try {
      const r = await verify();
      expect(r.ok).toBe(false);
      expect(JSON.stringify(r.problems)).toMatch(/run artifact \d+: artifact path/);
    } finally {
      sqlite.prepare(`UPDATE run_artifacts SET path = 'notes.txt' WHERE path = 'renamed.bin'`).run();
    }
    expect((await verify()).ok).toBe(true);

    const file = artifactPath(app.dataDir, sha(weights));
    const original = fs.readFileSync(file);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, Buffer.concat([original.subarray(0, 100), Buffer.from("tampered")]));
    try {
      const r = await verify();
      expect(r.ok).toBe(false);
      expect(JSON.stringify(r.problems)).toMatch(/run artifact \d+: artifact file was replaced/);
      const res = await fetch(
        `${base}/api/2.0/mlflow-artifacts/artifacts/${artifactUri.replace("mlflow-artifacts:/", "")}/checkpoints/epoch-3.bin`,
        {
          headers: { authorization: `Bearer ${engineerToken}` },
        },
      );
      expect(res.status).toBe(500);
      expect(((await res.json()) as { message: string }).message).toMatch(/does not match its recorded sha256/);
    } finally {
      fs.writeFileSync(file, original);
    }
    expect((await verify()).ok).toBe(true);
  });
});
