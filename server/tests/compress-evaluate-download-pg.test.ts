/**
 * Compression runs, on-demand evaluations and weights downloads on the store (issue 16; server/runs/compression.ts,
 * evaluations.ts, weights-download.ts and the GET handler server/http/weights-download.ts). One scenario runs on SQLite
 * (file artifacts) and on PostgreSQL (artifacts in PostgreSQL, pgArtifactStore), each with its own orchestrator
 * training on the CPU backend: a source run; refused compressions that write nothing; a float16 and an int8
 * compression launched and completed, read back with compressionResult; evaluations recorded with their
 * evaluation.create event, and refused ones; rlw1 and TF.js downloads of checkpoints and a model version whose bytes
 * hash to the recorded SHA-256; then a tampered stored artifact (a flipped byte: the file on SQLite, a chunk UPDATEd
 * as superuser on PostgreSQL) and a missing one, refused by both downloads and by evaluation with nothing recorded.
 * The two stores give the same results, rows and ledger events (timestamps and what hashes them aside: the clock runs
 * during training). On PostgreSQL the web app's own services (createPgAppServices) serve runs.compress,
 * runs.compression, runs.evaluate through tRPC and the two GET routes with a session cookie; and two pools (two web
 * servers) compress and evaluate at once: every request is recorded once, the ledger's seq stays gapless and the store
 * verifies (verifyPgStore).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { asc, eq, inArray } from "drizzle-orm";
import { migratePg, openPgDatabase, type PgDb } from "@/db/pg-client";
import { pgStore, reader, sqliteStore, type Store } from "@/db/store";
import { openDatabase, type Db } from "@/db/client";
import { sha256Hex } from "@/contracts/canonical";
import { artifactPath } from "@/contracts/artifact-layout";
import { awaitedArtifacts, type AnyArtifactStore } from "@/server/artifacts/async-store";
import { fileArtifactStore } from "@/server/artifacts/store";
import { pgArtifactStore } from "@/server/artifacts/pg-store";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import { decisionRecordSha256 } from "@/server/audit/content/records";
import { generateAuditKeys } from "@/server/audit/keys";
import { createAuditCheckpointOn } from "@/server/audit/checkpoints";
import { verifyPgStore } from "@/server/audit/verify-pg";
import type { SignedInActor } from "@/server/app-context/service-context";
import { createPgAppServices, type OwnedAppServices } from "@/server/app-context/app-services";
import { openSession } from "@/server/auth/sessions";
import { createCaller } from "@/server/trpc/root";
import { weightsDownloadGet } from "@/server/http/weights-download";
import { unzipStored } from "@/server/fs/zip";
import { createExperiment, createProject } from "@/server/projects/service";
import { registerModelVersion } from "@/server/registry/service";
import { compressionResult, launchCompression, type CompressRunInput } from "@/server/runs/compression";
import { evaluateRunCheckpoint } from "@/server/runs/evaluations";
import { RunOrchestrator } from "@/server/runs/orchestrator/orchestrator";
import { createRunOnStore } from "@/server/runs/service";
import { actorOf, insertUser } from "@/server/users/service";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";
import { refusal } from "./store-test-env";
import { irisConfig } from "./test-app";

vi.mock("server-only", () => ({}));

/** A store with its artifacts, and how a stored artifact is damaged on it (as someone with access to the storage). */
type Env = {
  store: Store;
  artifacts: AnyArtifactStore;
  dataDir: string;
  /** Changes the stored artifact's first byte (the same change on both stores, so the same hash in the messages). */
  tamper(sha256: string): Promise<void>;
  /** Removes the stored artifact. */
  remove(sha256: string): Promise<void>;
};

/** Drops what depends on the clock (timestamps, the decision hashes that cover them, measured speeds) to compare stores. */
function untimed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(untimed);
  if (value && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => !["createdAt", "sha256", "at"].includes(k) && !k.endsWith("inference_us_per_sample"))
        .map(([k, v]) => [k, untimed(v)]),
    );
  return value;
}

const request = (subject: "checkpoint" | "modelVersion", id: number | string, format?: string) =>
  new Request(
    `http://127.0.0.1:3000/api/weights/${subject === "checkpoint" ? "checkpoints" : "model-versions"}/${id}${format ? `?format=${format}` : ""}`,
  );

/** A GET of the download route's handler as `caller`: status, the headers that carry hashes, and the body. */
async function download(env: Env, caller: SignedInActor, subject: "checkpoint" | "modelVersion", id: number | string, format?: string) {
  const services = { db: env.store, artifacts: env.artifacts };
  const res = await weightsDownloadGet(services, request(subject, id, format), caller, subject, String(id));
  const body = new Uint8Array(await res.arrayBuffer());
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    contentSha256: res.headers.get("x-content-sha256"),
    weightsSha256: res.headers.get("x-runledger-weights-sha256"),
    bodySha256: sha256Hex(body),
    body,
    text: res.status === 200 ? null : new TextDecoder().decode(body),
  };
}

async function people(store: Store) {
  const add = async (email: string, name: string, role: "engineer" | "reviewer" | "auditor") =>
    actorOf(await insertUser(store, SYSTEM_ACTOR, { email, name, role, passwordHash: "x" }));
  return {
    engineer: await add("erin@example.com", "Erin Engineer", "engineer"),
    reviewer: await add("rey@example.com", "Rey Reviewer", "reviewer"),
    auditor: await add("aud@example.com", "Aud Auditor", "auditor"),
  };
}

async function scenario(env: Env) {
  const { store, artifacts } = env;
  const { engineer, reviewer, auditor } = await people(store);
  const project = await createProject({ db: store, actor: engineer }, { name: "Compression" });
  const experimentId = (await createExperiment({ db: store, actor: engineer }, { projectId: project.id, name: "iris" })).id;
  const orchestrator = new RunOrchestrator({ db: store, artifacts, dataDir: env.dataDir }, { backend: "cpu" });
  const as = (actor: SignedInActor) => ({ db: store, actor, artifacts, dataDir: env.dataDir });
  const { runs, checkpoints, evaluations, decisions, auditEvents } = store.tables;
  const read = reader(store);
  const ledgerSize = async () => (await read.select({ seq: auditEvents.seq }).from(auditEvents)).length;

  const source = await createRunOnStore(as(engineer), {
    experimentId,
    config: irisConfig({ epochs: 3, seed: 4 }),
    rationale: "source for compression",
  });
  expect(await orchestrator.launch(source.id)).toBe(true);
  await orchestrator.waitFor(source.id);
  const sourceCks = await read.select().from(checkpoints).where(eq(checkpoints.runId, source.id)).orderBy(asc(checkpoints.id));
  expect(sourceCks.length).toBeGreaterThanOrEqual(2);

  // Refused before anything is written.
  const compress = (actor: SignedInActor, input: Partial<CompressRunInput>) =>
    launchCompression(as(actor), orchestrator, { runId: source.id, method: "float16", rationale: "smaller", ...input } as CompressRunInput);
  const before = { runs: (await read.select({ id: runs.id }).from(runs)).length, ledger: await ledgerSize() };
  const refused: Record<string, unknown> = {
    "compress as a reviewer": await refusal(compress(reviewer, {})),
    "compress an unknown run": await refusal(compress(engineer, { runId: 999 })),
    "compress a missing epoch": await refusal(compress(engineer, { checkpoint: { epoch: 99 } })),
    "compress another run's checkpoint id": await refusal(compress(engineer, { checkpoint: { checkpointId: 999 } })),
    "prune without sparsity": await refusal(compress(engineer, { method: "prune" })),
    "prune with sparsity 1.5": await refusal(compress(engineer, { method: "prune", sparsity: 1.5 })),
    "float16 with a student": await refusal(compress(engineer, { student: { model: { layers: [] } } })),
    "compression result of a training run": await refusal(compressionResult(store, source.id)),
    "compression result of an unknown run": await refusal(compressionResult(store, 999)),
  };
  expect({ runs: (await read.select({ id: runs.id }).from(runs)).length, ledger: await ledgerSize() }).toEqual(before);

  // Two compressions launched, trained by the orchestrator, and read back.
  const float16 = await compress(engineer, { rationale: "half the memory" });
  await orchestrator.waitFor(float16.id);
  const int8 = await compress(engineer, { method: "int8", checkpoint: { epoch: sourceCks[0]!.epoch }, name: "iris int8" });
  await orchestrator.waitFor(int8.id);
  const results = { float16: await compressionResult(store, float16.id), int8: await compressionResult(store, int8.id) };
  expect(results.float16).toMatchObject({ status: "completed", method: "float16", parentRunId: source.id });
  expect(results.int8).toMatchObject({ status: "completed", method: "int8", parentCheckpointId: sourceCks[0]!.id });
  expect(results.float16.sizeBytes).toBeLessThan(results.float16.parentSizeBytes!);

  // Evaluations: recorded with their event; refused ones record nothing.
  const evaluated = {
    "source's first checkpoint by a reviewer": await evaluateRunCheckpoint(as(reviewer), {
      runId: source.id,
      checkpointId: sourceCks[0]!.id,
    }),
    "the float16 checkpoint by an engineer": await evaluateRunCheckpoint(as(engineer), {
      runId: float16.id,
      checkpointId: results.float16.checkpointId!,
    }),
  };
  const evaluationsBefore = (await read.select({ id: evaluations.id }).from(evaluations)).length;
  refused["evaluate as an auditor"] = await refusal(
    evaluateRunCheckpoint(as(auditor), { runId: source.id, checkpointId: sourceCks[0]!.id }),
  );
  refused["evaluate another run's checkpoint"] = await refusal(
    evaluateRunCheckpoint(as(engineer), { runId: source.id, checkpointId: results.float16.checkpointId! }),
  );
  refused["evaluate an unknown run"] = await refusal(evaluateRunCheckpoint(as(engineer), { runId: 999, checkpointId: sourceCks[0]!.id }));

  // Downloads: the recorded bytes, checked.
  const version = await registerModelVersion(as(engineer), { runId: float16.id, modelName: "iris-small" });
  const rlw1 = await download(env, auditor, "checkpoint", results.int8.checkpointId!, "rlw1");
  const versionRlw1 = await download(env, reviewer, "modelVersion", version.modelVersionId, "rlw1");
  const zip = await download(env, engineer, "checkpoint", results.float16.checkpointId!);
  const zipFiles = new Map(unzipStored(zip.body).map((f) => [f.name, f.data]));
  const downloads = {
    rlw1: { ...rlw1, body: undefined },
    versionRlw1: { ...versionRlw1, body: undefined },
    zip: { status: zip.status, contentType: zip.contentType, weightsSha256: zip.weightsSha256, files: [...zipFiles.keys()] },
    unknownCheckpoint: await download(env, engineer, "checkpoint", 999, "rlw1").then((d) => ({ status: d.status, text: d.text })),
    hugeId: await download(env, engineer, "checkpoint", "1e300", "rlw1").then((d) => ({ status: d.status, text: d.text })),
  };
  expect(rlw1).toMatchObject({ status: 200, bodySha256: results.int8.weightsSha256, contentSha256: results.int8.weightsSha256 });
  expect(versionRlw1).toMatchObject({ status: 200, bodySha256: results.float16.weightsSha256, weightsSha256: version.weightsSha256 });
  expect(zip).toMatchObject({ status: 200, contentType: "application/zip", bodySha256: zip.contentSha256 });
  expect(sha256Hex(zipFiles.get("checkpoint.rlw1")!)).toBe(results.float16.weightsSha256);
  expect(downloads.unknownCheckpoint.status).toBe(404);
  expect(downloads.hugeId.status).toBe(400);

  // A damaged stored artifact is never served nor evaluated; nothing is recorded.
  const ledgerBefore = await ledgerSize();
  const originals = await Promise.all(
    [sourceCks[0]!.sha256, results.int8.weightsSha256!].map(async (sha256) => ({
      sha256,
      bytes: await awaitedArtifacts(artifacts).get(sha256),
    })),
  );
  await env.tamper(sourceCks[0]!.sha256);
  await env.remove(results.int8.weightsSha256!);
  const damaged = {
    tamperedRlw1: await download(env, engineer, "checkpoint", sourceCks[0]!.id, "rlw1"),
    tamperedZip: await download(env, engineer, "checkpoint", sourceCks[0]!.id),
    tamperedEvaluation: await refusal(evaluateRunCheckpoint(as(engineer), { runId: source.id, checkpointId: sourceCks[0]!.id })),
    missingRlw1: await download(env, engineer, "checkpoint", results.int8.checkpointId!, "rlw1"),
    missingEvaluation: await refusal(evaluateRunCheckpoint(as(engineer), { runId: int8.id, checkpointId: results.int8.checkpointId! })),
  };
  for (const d of [damaged.tamperedRlw1, damaged.tamperedZip]) {
    expect(d.status).toBe(409);
    expect(d.text).toMatch(/do not match the recorded SHA-256/);
  }
  expect(damaged.missingRlw1.status).toBe(409);
  expect(damaged.missingRlw1.text).toMatch(/missing from the artifact store/);
  expect(damaged.tamperedEvaluation).toMatchObject({
    kind: "conflict",
    message: expect.stringMatching(/do not match their recorded SHA-256/),
  });
  expect(damaged.missingEvaluation).toMatchObject({ kind: "conflict", message: expect.stringMatching(/missing from the artifact store/) });
  expect((await read.select({ id: evaluations.id }).from(evaluations)).length).toBe(evaluationsBefore);
  expect(await ledgerSize()).toBe(ledgerBefore);
  // Put back (the verifier checks every stored artifact): then served again.
  for (const { sha256, bytes } of originals) {
    await env.remove(sha256);
    await awaitedArtifacts(artifacts).put(bytes);
  }
  expect((await download(env, engineer, "checkpoint", sourceCks[0]!.id, "rlw1")).bodySha256).toBe(sourceCks[0]!.sha256);

  // The ledger: gapless, and each compression's decisions bound by their recomputed record hash.
  const ledger = await read.select().from(auditEvents).orderBy(asc(auditEvents.seq));
  expect(ledger.map((e) => e.seq)).toEqual(ledger.map((_, i) => i + 1));
  const compressionDecisions = await read
    .select()
    .from(decisions)
    .where(inArray(decisions.runId, [float16.id, int8.id]))
    .orderBy(asc(decisions.id));
  const creates = ledger.filter((e) => e.action === "run.create" && [String(float16.id), String(int8.id)].includes(e.entityId));
  const boundRefs = creates.flatMap((e) => (JSON.parse(e.payload) as { decisions: { id: number; sha256: string }[] }).decisions);
  expect(boundRefs).toEqual(compressionDecisions.map((d) => ({ id: d.id, path: d.path, kind: d.kind, sha256: decisionRecordSha256(d) })));
  const recorded = ledger
    .filter((e) => ["run.create", "evaluation.create", "modelVersion.create"].includes(e.action))
    .map((e) => ({
      action: e.action,
      entityType: e.entityType,
      entityId: e.entityId,
      actorId: e.actorId,
      payload: JSON.parse(e.payload),
    }));
  // The trainer's evaluations of each run's best checkpoint, and the two requested ones.
  expect(recorded.filter((e) => e.action === "evaluation.create" && e.payload.requested === true)).toHaveLength(2);

  return untimed({
    refused,
    launched: { float16, int8 },
    results,
    evaluated,
    evaluations: await read.select().from(evaluations).orderBy(asc(evaluations.id)),
    downloads,
    damaged: Object.fromEntries(Object.entries(damaged).map(([k, v]) => [k, "body" in v ? { status: v.status, text: v.text } : v])),
    compressionDecisions,
    recorded,
  });
}

const outcomes: Partial<Record<Store["dialect"], unknown>> = {};

describe("compression, evaluation and weights downloads on SQLite", () => {
  let dir = "";
  let db: Db | undefined;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rl-compress-pg-sqlite-"));
    db = openDatabase(dir);
  });
  afterAll(() => {
    db?.$client.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("compresses, evaluates and downloads, refuses what it must and damaged artifacts, and writes the ledger", async () => {
    const env: Env = {
      store: sqliteStore(db!),
      artifacts: fileArtifactStore(dir),
      dataDir: dir,
      async tamper(sha256) {
        const file = artifactPath(dir, sha256);
        const bytes = fs.readFileSync(file);
        bytes[0] = (bytes[0]! + 1) % 256;
        fs.chmodSync(file, 0o644);
        fs.writeFileSync(file, bytes);
      },
      async remove(sha256) {
        fs.rmSync(artifactPath(dir, sha256), { force: true });
      },
    };
    outcomes.sqlite = await scenario(env);
  }, 300_000);
});

describePg("compression, evaluation and weights downloads on PostgreSQL", () => {
  let scratch: ScratchPgDatabase | undefined;
  let a: PgDb | undefined;
  let b: PgDb | undefined;
  let dir = "";
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rl-compress-pg-"));
    scratch = await createScratchPgDatabase();
    a = openPgDatabase(scratch.url, { max: 8 });
    b = openPgDatabase(scratch.url, { max: 8 });
    await migratePg(a);
  }, 60_000);
  afterAll(async () => {
    await a?.$client.end();
    await b?.$client.end();
    await scratch?.drop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("compresses, evaluates and downloads, refuses what it must and damaged artifacts, and writes the ledger", async () => {
    const env: Env = {
      store: pgStore(a!),
      artifacts: pgArtifactStore(a!.$client),
      dataDir: dir,
      // As a superuser with access to the database would: the chunk's first byte changed in place.
      async tamper(sha256) {
        const r = await a!.$client.query(
          "UPDATE artifact_chunks SET data = set_byte(data, 0, (get_byte(data, 0) + 1) % 256) WHERE sha256 = $1 AND idx = 0",
          [sha256],
        );
        expect(r.rowCount).toBe(1);
      },
      async remove(sha256) {
        await a!.$client.query("DELETE FROM artifact_chunks WHERE sha256 = $1", [sha256]);
        await a!.$client.query("DELETE FROM artifact_blobs WHERE sha256 = $1", [sha256]);
      },
    };
    outcomes.pg = await scenario(env);
  }, 300_000);

  it("gives the same results, rows, refusals and ledger events as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg).toEqual(outcomes.sqlite);
  });

  /** The web app's own services on the scratch database (set by the next test; its key signs the checkpoints). */
  let app: OwnedAppServices | undefined;
  afterAll(async () => {
    await app?.close();
  });

  it("through the web app on PostgreSQL (createPgAppServices): runs.compress, runs.compression, runs.evaluate and the weights routes", async () => {
    app = await createPgAppServices(scratch!.url, {
      localDir: path.join(dir, "web"),
      keyDir: path.join(dir, "web-keys"),
      backend: "cpu",
      poolSize: 4,
    });
    const { runs, checkpoints, evaluations, users } = pgStore(a!).tables;
    const read = reader(pgStore(a!));
    const [user] = await read.select().from(users).where(eq(users.email, "erin@example.com"));
    const [auditorRow] = await read.select().from(users).where(eq(users.email, "aud@example.com"));
    const [source] = await read.select().from(runs).where(eq(runs.origin, "new")).orderBy(asc(runs.id)).limit(1);
    const [first] = await read.select().from(checkpoints).where(eq(checkpoints.runId, source!.id)).orderBy(asc(checkpoints.id)).limit(1);
    const caller = createCaller({ services: app, user: actorOf(user!), sessionToken: undefined });

    const launched = await caller.runs.compress({
      runId: source!.id,
      checkpoint: { checkpointId: first!.id },
      method: "float16",
      rationale: "through tRPC",
    });
    await app.orchestrator.waitFor(launched.id);
    const result = await caller.runs.compression({ id: launched.id });
    expect(result).toMatchObject({ status: "completed", method: "float16", parentCheckpointId: first!.id });
    const evaluation = await caller.runs.evaluate({ runId: source!.id, checkpointId: first!.id });
    const [row] = await read.select().from(evaluations).where(eq(evaluations.id, evaluation.id));
    expect(row).toMatchObject({ runId: source!.id, checkpointId: first!.id, source: "requested", createdBy: user!.id });

    // The GET routes, as Next.js calls them, with a session cookie of an auditor (any signed-in role downloads).
    (globalThis as { __runledger?: unknown }).__runledger = app;
    const cookie = `runledger_session=${(await openSession(app.db, auditorRow!.id, "weights test")).token}`;
    const checkpointRoute = await import("@/app/api/weights/checkpoints/[checkpointId]/route");
    const res = await checkpointRoute.GET(
      new Request(`http://127.0.0.1:3000/api/weights/checkpoints/${result.checkpointId}?format=rlw1`, { headers: { cookie } }),
      { params: Promise.resolve({ checkpointId: String(result.checkpointId) }) },
    );
    expect(res.status).toBe(200);
    expect(sha256Hex(new Uint8Array(await res.arrayBuffer()))).toBe(result.weightsSha256);
    const version = await caller.models.register({ runId: launched.id, modelName: "iris-trpc" });
    const versionRoute = await import("@/app/api/weights/model-versions/[modelVersionId]/route");
    const zip = await versionRoute.GET(
      new Request(`http://127.0.0.1:3000/api/weights/model-versions/${version.modelVersionId}`, { headers: { cookie } }),
      { params: Promise.resolve({ modelVersionId: String(version.modelVersionId) }) },
    );
    expect(zip.status).toBe(200);
    const files = new Map(unzipStored(new Uint8Array(await zip.arrayBuffer())).map((f) => [f.name, f.data]));
    expect(sha256Hex(files.get("checkpoint.rlw1")!)).toBe(result.weightsSha256);
    const signedOut = await checkpointRoute.GET(new Request(`http://127.0.0.1:3000/api/weights/checkpoints/${result.checkpointId}`), {
      params: Promise.resolve({ checkpointId: String(result.checkpointId) }),
    });
    expect(signedOut.status).toBe(401);
    delete (globalThis as { __runledger?: unknown }).__runledger;
  }, 300_000);

  it("two servers at once: compressions and evaluations from two pools are each recorded once; the ledger is gapless and verifies", async () => {
    const servers = [pgStore(a!), pgStore(b!)] as const;
    const artifacts = [pgArtifactStore(a!.$client), pgArtifactStore(b!.$client)] as const;
    const orchestrators = servers.map(
      (store, i) =>
        new RunOrchestrator({ db: store, artifacts: artifacts[i]!, dataDir: path.join(dir, `server-${i}`) }, { backend: "cpu" }),
    );
    const { runs, checkpoints, evaluations, auditEvents, users } = servers[0].tables;
    const read = reader(servers[0]);
    const [user] = await read.select().from(users).where(eq(users.email, "erin@example.com"));
    const engineer = actorOf(user!);
    const [source] = await read.select().from(runs).where(eq(runs.origin, "new")).orderBy(asc(runs.id)).limit(1);
    const bestCk = (await read.select().from(checkpoints).where(eq(checkpoints.runId, source!.id))).find((c) => c.isBest)!;
    const before = {
      runs: (await read.select({ id: runs.id }).from(runs)).length,
      requested: (await read.select({ id: evaluations.id }).from(evaluations).where(eq(evaluations.source, "requested"))).length,
    };

    const ctx = (i: number) => ({ db: servers[i]!, actor: engineer, artifacts: artifacts[i]!, dataDir: path.join(dir, `server-${i}`) });
    const compressions = await Promise.all(
      [0, 1, 0, 1].map((i, k) =>
        launchCompression(ctx(i), orchestrators[i]!, {
          runId: source!.id,
          checkpoint: { checkpointId: bestCk.id },
          method: k % 2 ? "int8" : "float16",
          rationale: `server ${i}, request ${k}`,
        }),
      ),
    );
    const evaluationsAtOnce = await Promise.all(
      [0, 1, 0, 1].map((i) => evaluateRunCheckpoint(ctx(i), { runId: source!.id, checkpointId: bestCk.id })),
    );
    await Promise.all(compressions.map((c, k) => orchestrators[[0, 1, 0, 1][k]!]!.waitFor(c.id)));

    expect(new Set(compressions.map((c) => c.id)).size).toBe(4);
    expect(new Set(evaluationsAtOnce.map((e) => e.id)).size).toBe(4);
    expect((await read.select({ id: runs.id }).from(runs)).length).toBe(before.runs + 4);
    // Each compression also records the trainer's evaluation of its checkpoint; the requested ones are these four.
    expect((await read.select({ id: evaluations.id }).from(evaluations).where(eq(evaluations.source, "requested"))).length).toBe(
      before.requested + 4,
    );
    // The same evaluation four times: the same numbers (the trainer's, for the best checkpoint).
    expect(new Set(evaluationsAtOnce.map((e) => JSON.stringify(e.result))).size).toBe(1);
    for (const c of compressions) expect(await compressionResult(servers[1], c.id)).toMatchObject({ status: "completed" });
    const results = await Promise.all(compressions.map((c) => compressionResult(servers[0], c.id)));
    // The same method from the same checkpoint gives the same weights, whichever server trained it.
    expect(results[0]!.weightsSha256).toBe(results[2]!.weightsSha256);
    expect(results[1]!.weightsSha256).toBe(results[3]!.weightsSha256);

    const ledger = await read.select({ seq: auditEvents.seq, action: auditEvents.action }).from(auditEvents).orderBy(asc(auditEvents.seq));
    expect(ledger.map((e) => e.seq)).toEqual(ledger.map((_, i) => i + 1));

    // Rows, events and artifacts check out (the scenario put its damaged artifacts back): a checkpoint signed as a web
    // server's timer would, then the PostgreSQL verifier.
    // The web app's key when it ran (it signed checkpoints after its mutations), else a new one.
    const keys = app?.auditKeys ?? generateAuditKeys();
    await createAuditCheckpointOn(servers[0], keys, "test: after the compressions");
    const verified = await verifyPgStore(scratch!.url, { publicKeyPem: keys.publicKeyPem });
    expect(verified.problems, verified.problems.join("\n")).toEqual([]);
    expect(verified.ok).toBe(true);
  }, 300_000);
});
