/**
 * The streaming dataset upload (server/http/dataset-upload.ts, POST /api/datasets/upload) on the store (issue 16):
 * the handler with the caller read from a real session cookie (routeCaller, as the route does), on SQLite with the
 * file artifact store and on PostgreSQL with its artifact store in PostgreSQL. An engineer's CSV is received in the
 * local directory, checked in the worker, copied into PostgreSQL's chunks and recorded, and the dataset list shows it
 * with the sha256 of the bytes sent; the same bytes again give the same row and no event. The refusals (not signed in,
 * a role that cannot upload, a cross-site post, a declared size over the cap: each before a byte of the body is read;
 * a body passing the cap mid-stream; a malformed CSV) write nothing: no dataset, no artifact, no ledger event, no temp
 * file. Both stores give the same answers and ledger rows (seq, payloads, chain hashes, under one fixed clock).
 * (A body passing the cap in its first small chunks left an empty temp file on both stores before receive-body.ts
 * opened its file synchronously: its write stream opened the file after the cleanup had run.)
 */
import { describe, expect, it, vi } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import type { Db } from "@/db/client";
import { pgStore, rows, transact, type Store } from "@/db/store";
import { openSession } from "@/server/auth/sessions";
import { SESSION_COOKIE } from "@/server/auth/cookies";
import { fileArtifactStore } from "@/server/artifacts/store";
import { pgArtifactStore } from "@/server/artifacts/pg-store";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { listDatasets } from "@/server/datasets/service";
import { DEFAULT_UPLOAD_LIMITS } from "@/server/datasets/upload/limits";
import { handleDatasetUpload } from "@/server/http/dataset-upload";
import { routeCaller } from "@/server/http/route-session";
import { describePg } from "./pg-test-env";
import { fixedDateForEachTest, seedPeople, sqliteForSuite, TEST_PEOPLE, tempDirForSuite, twoPgServersForSuite } from "./store-test-env";
import { uploadRequest, type UploadQuery } from "./upload-helpers";

vi.mock("server-only", () => ({}));

const AT = "2026-12-04T12:00:00.000Z";
const IRIS_LIKE = "sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n4.9,1.5,setosa\n";
const sha = (text: string) => createHash("sha256").update(text).digest("hex");

type Services = { db: Store | Db; artifacts: AnyArtifactStore; dataDir: string };
type Answer = { status: number; body: unknown; bodyRead: boolean };

/** A body that records whether the handler read from it. */
function watchedBody(text: string) {
  const state = { pulled: false };
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        state.pulled = true;
        controller.enqueue(new TextEncoder().encode(text));
        controller.close();
      },
    },
    { highWaterMark: 0 },
  );
  return { body, state };
}

/** Everything an upload may write: datasets, the ledger, the artifacts (by name), and the temp files left. */
async function written(services: Services, store: Store, artifactNames: () => Promise<string[]>) {
  const t = store.tables;
  const stored = await transact(store, function* (tx) {
    return {
      datasets: yield* rows(tx.select().from(t.datasets).orderBy(t.datasets.id)),
      ledger: yield* rows(tx.select().from(t.auditEvents).orderBy(t.auditEvents.seq)),
    };
  });
  const tempDir = path.join(services.dataDir, "tmp", "uploads");
  return { ...stored, artifacts: await artifactNames(), tempFiles: fs.existsSync(tempDir) ? fs.readdirSync(tempDir) : [] };
}

async function scenario(services: Services, store: Store, artifactNames: () => Promise<string[]>) {
  await seedPeople(store, { at: AT, passwordHash: "x" });
  const cookieOf = async (who: keyof typeof TEST_PEOPLE) =>
    `${SESSION_COOKIE}=${(await openSession(store, TEST_PEOPLE[who].id, "test", new Date(AT))).token}`;
  const engineer = await cookieOf("engineer");
  const reviewer = await cookieOf("reviewer");
  const answers: Record<string, Answer> = {};
  /** One POST as the route handles it: the caller from the session cookie, then the handler. */
  const post = async (
    name: string,
    csv: string | ReadableStream<Uint8Array>,
    opts: { cookie?: string; query?: UploadQuery; headers?: Record<string, string>; maxBytes?: number } = {},
  ) => {
    const watched = typeof csv === "string" ? watchedBody(csv) : { body: csv, state: { pulled: true } };
    const req = uploadRequest(watched.body, opts.query ?? { name }, { ...(opts.cookie ? { cookie: opts.cookie } : {}), ...opts.headers });
    const res = await handleDatasetUpload(services, req, await routeCaller(services.db, req), {
      limits: { ...DEFAULT_UPLOAD_LIMITS, maxBytes: opts.maxBytes ?? DEFAULT_UPLOAD_LIMITS.maxBytes },
    });
    answers[name] = { status: res.status, body: await res.json(), bodyRead: watched.state.pulled };
    return answers[name];
  };

  const before = await written(services, store, artifactNames);
  await post("not signed in", IRIS_LIKE);
  await post("a reviewer", IRIS_LIKE, { cookie: reviewer });
  await post("cross-site", IRIS_LIKE, { cookie: engineer, headers: { "sec-fetch-site": "cross-site", origin: "https://evil.example" } });
  await post("declared over the cap", IRIS_LIKE, { cookie: engineer, headers: { "content-length": "101" }, maxBytes: 100 });
  const overflowing = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < 4; i++) controller.enqueue(new TextEncoder().encode(IRIS_LIKE));
      controller.close();
    },
  });
  await post("over the cap mid-stream", overflowing, { cookie: engineer, maxBytes: 100 });
  await post("malformed", "a,b\n1\n", { cookie: engineer });
  await post("bad settings", IRIS_LIKE, { cookie: engineer, query: { name: "" } });
  const afterRefusals = await written(services, store, artifactNames);

  await post("upload", IRIS_LIKE, { cookie: engineer, query: { name: "Iris-like", labelColumn: "species", licence: "CC0" } });
  await post("the same bytes again", IRIS_LIKE, { cookie: engineer, query: { name: "again" } });
  const listed = (await listDatasets(store)).map((d) => [d.id, d.name, d.sha256, d.byteSize, d.rowCount, d.schema.labelColumn]);
  return { answers, before, afterRefusals, after: await written(services, store, artifactNames), listed };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function checkOutcome(o: Outcome): void {
  const refusal = (name: string) => {
    const a = o.answers[name]!;
    return [a.status, (a.body as { error?: { message: string } }).error?.message];
  };
  expect(refusal("not signed in")).toEqual([401, expect.stringMatching(/sign in first/)]);
  expect(refusal("a reviewer")).toEqual([403, "a reviewer cannot upload datasets (needs: engineer)"]);
  expect(refusal("cross-site")).toEqual([403, expect.stringMatching(/cross-origin request refused/)]);
  expect(refusal("declared over the cap")[0]).toBe(413);
  for (const name of ["not signed in", "a reviewer", "cross-site", "declared over the cap"])
    expect(o.answers[name]!.bodyRead, `${name}: body read`).toBe(false);
  expect(refusal("over the cap mid-stream")).toEqual([
    413,
    "The file is larger than the limit of 100 bytes (server setting RUNLEDGER_UPLOAD_MAX_BYTES)",
  ]);
  expect(refusal("malformed")[0]).toBe(400);
  expect(refusal("bad settings")[0]).toBe(400);
  // The refusals wrote nothing anywhere.
  expect(o.afterRefusals).toEqual(o.before);
  expect(o.afterRefusals.datasets).toEqual([]);
  expect(o.afterRefusals.artifacts).toEqual([]);

  expect(o.answers.upload).toMatchObject({ status: 200, body: { name: "Iris-like", sha256: sha(IRIS_LIKE), rowCount: 4 } });
  expect(o.answers["the same bytes again"]).toEqual(o.answers.upload);
  expect(o.listed).toEqual([[1, "Iris-like", sha(IRIS_LIKE), IRIS_LIKE.length, 4, "species"]]);
  expect(o.after.artifacts).toEqual([sha(IRIS_LIKE)]);
  expect(o.after.ledger.filter((e) => e.action === "dataset.create").map((e) => e.entityId)).toEqual(["1"]);
  expect(o.after.ledger.map((e) => e.seq)).toEqual(o.after.ledger.map((_, i) => i + 1));
  expect(o.after.tempFiles).toEqual([]);
}

/** The file store's artifact names under a data directory. */
function fileArtifactNames(dir: string): () => Promise<string[]> {
  return async () => {
    const root = path.join(dir, "artifacts");
    if (!fs.existsSync(root)) return [];
    return fs
      .readdirSync(root)
      .flatMap((shard) => fs.readdirSync(path.join(root, shard)))
      .sort();
  };
}

describe("dataset upload on SQLite (the file artifact store)", () => {
  const sqlite = sqliteForSuite("rl-upload-store-");
  fixedDateForEachTest(AT);

  it("uploads through the handler into the store, lists it, and refuses without writing", async () => {
    const services: Services = { db: sqlite.db(), artifacts: fileArtifactStore(sqlite.dir()), dataDir: sqlite.dir() };
    const outcome = await scenario(services, sqlite.store(), fileArtifactNames(sqlite.dir()));
    outcomes.sqlite = outcome;
    checkOutcome(outcome);
  });
});

describePg("dataset upload on PostgreSQL (artifacts in PostgreSQL)", () => {
  const pg = twoPgServersForSuite();
  const localDir = tempDirForSuite("rl-upload-pg-");
  fixedDateForEachTest(AT);

  it("uploads through the handler into PostgreSQL, lists it with its sha256, and refuses without writing", async () => {
    const db = pg.a();
    const artifacts = pgArtifactStore(db.$client);
    const services: Services = { db: pgStore(db), artifacts, dataDir: localDir() };
    const names = async () =>
      (await db.$client.query<{ sha256: string }>("SELECT sha256 FROM artifact_blobs ORDER BY sha256")).rows.map((r) => r.sha256);
    const outcome = await scenario(services, pgStore(db), names);
    outcomes.pg = outcome;
    checkOutcome(outcome);
    // The bytes in PostgreSQL are the bytes sent (re-hashed on read), and nothing but the temp folder is local.
    expect(new TextDecoder().decode(await artifacts.get(sha(IRIS_LIKE)))).toBe(IRIS_LIKE);
    expect(fs.readdirSync(localDir())).toEqual(["tmp"]);
  });

  it("the route (app/api/datasets/upload) on PostgreSQL services: a signed-in engineer's upload is stored there; no cookie: 401", async () => {
    const db = pg.b();
    const store = pgStore(db);
    const artifacts = pgArtifactStore(db.$client);
    const g = globalThis as { __runledger?: unknown };
    const before = g.__runledger;
    g.__runledger = { db: store, artifacts, dataDir: localDir() }; // what getAppServices() gives the route (the parts it reads)
    try {
      const route = await import("@/app/api/datasets/upload/route");
      const csv = "x,y,label\n1,2,a\n3,4,b\n";
      const cookie = `${SESSION_COOKIE}=${(await openSession(store, TEST_PEOPLE.engineer.id, "test", new Date(AT))).token}`;
      const anonymous = await route.POST(uploadRequest(csv, { name: "anonymous" }));
      expect(anonymous.status).toBe(401);
      const res = await route.POST(uploadRequest(csv, { name: "through the route" }, { cookie }));
      expect(res.status).toBe(200);
      const row = (await res.json()) as { id: number; sha256: string };
      expect(row.sha256).toBe(sha(csv));
      expect((await listDatasets(store)).find((d) => d.id === row.id)).toMatchObject({ name: "through the route", sha256: sha(csv) });
      expect(new TextDecoder().decode(await artifacts.get(sha(csv)))).toBe(csv);
      expect(fs.readdirSync(path.join(localDir(), "tmp", "uploads"))).toEqual([]);
    } finally {
      g.__runledger = before;
    }
  });

  it("gives the same answers and ledger rows (payloads, seq, chain hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg?.answers).toEqual(outcomes.sqlite!.answers);
    expect(outcomes.pg?.after.ledger).toEqual(outcomes.sqlite!.after.ledger);
    expect(outcomes.pg?.listed).toEqual(outcomes.sqlite!.listed);
  });
});
