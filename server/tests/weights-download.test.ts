/**
 * Weights downloads (GET /api/weights/checkpoints/[id] and /api/weights/model-versions/[id];
 * server/http/weights-download.ts, server/runs/weights-download.ts): the ZIP is a TF.js model that
 * tf.loadLayersModel loads with exactly the checkpoint's weights, its checkpoint.rlw1 and the rlw1 download hash to
 * the recorded weights SHA-256, the headers carry both hashes; a tampered stored file is refused (409, no bytes);
 * signed-out callers get 401; any signed-in role may download; nothing is written.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import fs from "node:fs";
import { eq } from "drizzle-orm";
import * as tf from "@tensorflow/tfjs";
import { users } from "@/db/schema";
import { sha256Hex } from "@/contracts/canonical";
import { artifactPath } from "@/contracts/artifact-layout";
import { openSession } from "@/server/auth/sessions";
import { DEMO_USERS } from "@/server/demo/seed";
import { deserializeWeights } from "@/trainer/checkpoint";
import { unzipStored } from "@/server/fs/zip";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

let app: TestApp;
let checkpoint: { id: number; sha256: string };
let modelVersionId: number;
const SITE = "http://127.0.0.1:3000";

beforeAll(async () => {
  app = createTestApp();
  (globalThis as { __runledger?: unknown }).__runledger = app; // the route handlers use getAppServices()
  const eng = app.as("engineer");
  const { id } = await eng.runs.create({
    experimentId: app.experimentId,
    config: irisConfig({ epochs: 2 }),
    rationale: "weights download test",
  });
  await app.orchestrator.waitFor(id);
  const run = await eng.runs.get({ id });
  checkpoint = run.checkpoints.at(-1)!;
  modelVersionId = (await eng.models.register({ runId: id, modelName: "weights-dl" })).modelVersionId;
}, 120_000);
afterAll(() => app.close());

const cookieOf = async (role: string) => {
  const user = app.db
    .select()
    .from(users)
    .where(eq(users.email, DEMO_USERS.find((u) => u.role === role)!.email))
    .get()!;
  return `runledger_session=${(await openSession(app.db, user.id, "weights test")).token}`;
};
const checkpointRoute = () => import("@/app/api/weights/checkpoints/[checkpointId]/route");
const versionRoute = () => import("@/app/api/weights/model-versions/[modelVersionId]/route");
const get = async (kind: "checkpoint" | "version", id: number, cookie?: string, query = "") => {
  const req = new Request(`${SITE}/api/weights/${kind === "checkpoint" ? "checkpoints" : "model-versions"}/${id}${query}`, {
    headers: cookie ? { cookie } : {},
  });
  return kind === "checkpoint"
    ? (await checkpointRoute()).GET(req, { params: Promise.resolve({ checkpointId: String(id) }) })
    : (await versionRoute()).GET(req, { params: Promise.resolve({ modelVersionId: String(id) }) });
};
const eventCount = () => (app.db.$client.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n;

describe("weights download", () => {
  it("serves a TF.js model ZIP whose weights are the checkpoint's, with both hashes in the headers", async () => {
    const before = eventCount();
    const res = await get("checkpoint", checkpoint.id, await cookieOf("auditor"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/zip");
    expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename="run\d+-epoch2-[0-9a-f]{12}-tfjs\.zip"$/);
    const body = new Uint8Array(await res.arrayBuffer());
    expect(res.headers.get("x-content-sha256")).toBe(sha256Hex(body));
    expect(res.headers.get("x-runledger-weights-sha256")).toBe(checkpoint.sha256);
    const files = new Map(unzipStored(body).map((e) => [e.name, e.data]));
    expect([...files.keys()]).toEqual(["model.json", "weights.bin", "checkpoint.rlw1", "SHA256SUMS"]);
    expect(sha256Hex(files.get("checkpoint.rlw1")!)).toBe(checkpoint.sha256);
    expect(new TextDecoder().decode(files.get("SHA256SUMS"))).toContain(`${checkpoint.sha256}  checkpoint.rlw1`);

    // TF.js loads it (strict: every weight has its variable) and holds exactly the recorded values.
    const modelJson = JSON.parse(new TextDecoder().decode(files.get("model.json"))) as {
      modelTopology: object;
      weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
    };
    expect(modelJson.weightsManifest[0]!.paths).toEqual(["weights.bin"]);
    const bin = files.get("weights.bin")!;
    const model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: modelJson.modelTopology,
        weightSpecs: modelJson.weightsManifest[0]!.weights,
        weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
      }),
    );
    const recorded = deserializeWeights(files.get("checkpoint.rlw1")!);
    const loaded = model.weights.map((w) => ({ name: w.originalName, data: Array.from(w.read().dataSync()) }));
    expect(loaded.map((w) => w.name).sort()).toEqual([...recorded.values.keys()].sort());
    for (const w of loaded) expect(w.data).toEqual(Array.from(recorded.values.get(w.name)!.data));
    expect((model.predict(tf.zeros([1, 4])) as tf.Tensor).shape).toEqual([1, 3]);
    model.dispose();

    // Same bytes again (a deterministic archive), and nothing recorded.
    const again = new Uint8Array(await (await get("checkpoint", checkpoint.id, await cookieOf("reviewer"))).arrayBuffer());
    expect(sha256Hex(again)).toBe(sha256Hex(body));
    expect(eventCount()).toBe(before);
  }, 120_000);

  it("serves the recorded weights file byte for byte (?format=rlw1), for a model version too", async () => {
    const res = await get("checkpoint", checkpoint.id, await cookieOf("engineer"), "?format=rlw1");
    expect(res.status).toBe(200);
    const body = new Uint8Array(await res.arrayBuffer());
    expect(sha256Hex(body)).toBe(checkpoint.sha256);
    expect(res.headers.get("x-content-sha256")).toBe(checkpoint.sha256);

    const mv = await get("version", modelVersionId, await cookieOf("admin"), "?format=rlw1");
    expect(mv.status).toBe(200);
    expect(mv.headers.get("content-disposition")).toMatch(/filename="weights-dl-v1-[0-9a-f]{12}\.rlw1"/);
    expect(sha256Hex(new Uint8Array(await mv.arrayBuffer()))).toBe(checkpoint.sha256);
    const zip = await get("version", modelVersionId, await cookieOf("reviewer"));
    expect(zip.status).toBe(200);
    const files = new Map(unzipStored(new Uint8Array(await zip.arrayBuffer())).map((e) => [e.name, e.data]));
    expect(sha256Hex(files.get("checkpoint.rlw1")!)).toBe(checkpoint.sha256);
  }, 120_000);

  it("prepares at most two TF.js downloads at once; one more gets 429 with Retry-After, and the slots free up after", async () => {
    const cookie = await cookieOf("auditor");
    const responses = await Promise.all([1, 2, 3].map(() => get("checkpoint", checkpoint.id, cookie)));
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 429]);
    const busy = responses.find((r) => r.status === 429)!;
    expect(busy.headers.get("retry-after")).toBe("5");
    expect(await busy.text()).toMatch(/being prepared; try again/);
    expect((await get("checkpoint", checkpoint.id, cookie)).status).toBe(200);
  }, 120_000);

  it("refuses signed-out callers, bad ids and unknown formats", async () => {
    const anon = await get("checkpoint", checkpoint.id);
    expect(anon.status).toBe(401);
    expect(await anon.text()).toMatch(/sign in/);
    expect((await get("version", modelVersionId)).status).toBe(401);
    expect((await get("checkpoint", 999_999, await cookieOf("auditor"))).status).toBe(404);
    expect((await get("checkpoint", checkpoint.id, await cookieOf("auditor"), "?format=h5")).status).toBe(400);
  });

  it("refuses a tampered weights file instead of serving wrong bytes", async () => {
    const file = artifactPath(app.dataDir, checkpoint.sha256);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, bytes);
    for (const query of ["", "?format=rlw1"]) {
      const res = await get("checkpoint", checkpoint.id, await cookieOf("auditor"), query);
      expect(res.status).toBe(409);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
      expect(await res.text()).toMatch(/do not match the recorded SHA-256/);
    }
    expect((await get("version", modelVersionId, await cookieOf("auditor"))).status).toBe(409);
  });
});
