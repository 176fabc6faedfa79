/**
 * MLflow's artifact proxy on the store (issue 16): the real route handlers (app/api/2.0/mlflow-artifacts/[...path],
 * app/api/2.0/mlflow/[...path]) on node:http (mlflow-http-fixture.ts), over the services of either store: the SQLite
 * file with the file artifact store, or PostgreSQL with its artifact store in PostgreSQL (pgArtifactStore: 1 MiB
 * chunks, re-hashed on every read). The same scenario (uploads of a 2.5 MB checkpoint and a note, downloads, proxy
 * and tracking listings, the same bytes again, other bytes at a logged path, a directory, traversal, an auditor, no
 * token, an unknown run, a declared size over the cap whose body is never read) gives the same answers, run_artifacts
 * rows and ledger rows (seq, payloads, chain hashes, under one fixed clock) on both stores. On PostgreSQL a chunk
 * edited in place is found on download (500, not served), and two web servers (two pools) racing uploads of one path
 * get one row and one run.log event: with the same bytes every call is answered 200, with other bytes one is stored
 * and the others are refused with RESOURCE_ALREADY_EXISTS, their bytes not kept (the record re-reads the path under
 * the ledger lock, and the bytes go in with the record; without the lock, checked by removing it, 7 of the 8
 * same-bytes calls failed on the unique index: 500). A writer's log-batch through the tracking route on PostgreSQL is written to PostgreSQL by the dispatcher, not handed
 * to the ingest worker (whose connection is SQLite's; without the route's store check the call never answered).
 */
import { describe, expect, it, vi } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import type { Db } from "@/db/client";
import { exec, pgStore, rows, transact, type Store } from "@/db/store";
import { sha256Hex } from "@/contracts/canonical";
import { MlflowClient } from "@/contracts/mlflow/client";
import { MLFLOW_ARTIFACT_MAX_BYTES } from "@/contracts/mlflow/types";
import { generateAuditKeys } from "@/server/audit/keys";
import { fileArtifactStore } from "@/server/artifacts/store";
import { pgArtifactStore } from "@/server/artifacts/pg-store";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { handleMlflowArtifactsRequest } from "@/server/http/mlflow-artifacts-route";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { describePg } from "./pg-test-env";
import { startMlflowServer } from "./mlflow-http-fixture";
import type { TestApp } from "./test-app";
import { fixedDateForEachTest, seedPeople, sqliteForSuite, TEST_PEOPLE, tempDirForSuite, twoPgServersForSuite } from "./store-test-env";

vi.mock("server-only", () => ({}));

const AT = "2026-12-04T12:00:00.000Z";
const TOKENS = { engineer: "rlt_engineer-token-for-the-artifacts-suite", auditor: "rlt_auditor-token-for-the-artifacts-suite" };
const auditKeys = generateAuditKeys();

/** The services the artifact routes read (db, artifacts, dataDir for the temp file, auditKeys for the checkpoint policy). */
type Services = { db: Store | Db; artifacts: AnyArtifactStore; dataDir: string; auditKeys: typeof auditKeys };
type HandlerServices = Parameters<typeof handleMlflowArtifactsRequest>[0];

async function seedPeopleAndTokens(store: Store): Promise<void> {
  await seedPeople(store, { at: AT, passwordHash: "x" });
  const { apiTokens } = store.tables;
  await transact(store, function* (tx) {
    for (const [i, [who, token]] of Object.entries(TOKENS).entries())
      yield* exec(
        tx
          .insert(apiTokens)
          .values({
            id: i + 1,
            userId: TEST_PEOPLE[who as keyof typeof TOKENS].id,
            name: who,
            tokenSha256: sha256Hex(token),
            prefix: token.slice(0, 8),
            createdAt: AT,
          })
          .onConflictDoNothing(),
      );
  });
}

/** 2.5 MB: three chunks in PostgreSQL's artifact store. */
const WEIGHTS = new Uint8Array(Array.from({ length: 2_500_000 }, (_, i) => (i * 31 + 7) % 251));
const NOTE = new TextEncoder().encode("trained on iris");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

type Answer = { status: number; body: unknown };

/** The upload, download and listing scenario through the real routes over HTTP; every answer, the rows and the ledger. */
async function scenario(services: Services, store: Store) {
  await seedPeopleAndTokens(store);
  const server = await startMlflowServer(services as unknown as TestApp);
  try {
    const engineer = new MlflowClient(server.base, TOKENS.engineer);
    const answers: Record<string, Answer> = {};
    const raw = async (name: string, method: "GET" | "PUT", url: string, body?: Uint8Array, token: string | null = TOKENS.engineer) => {
      const res = await fetch(`${server.base}/api/2.0/mlflow-artifacts/artifacts${url}`, {
        method,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        body: body as Uint8Array<ArrayBuffer> | undefined,
      });
      const isFile = res.headers.get("content-type") === "application/octet-stream";
      const answer = isFile
        ? {
            status: res.status,
            body: { sha256: sha(new Uint8Array(await res.arrayBuffer())), header: res.headers.get("x-content-sha256") },
          }
        : { status: res.status, body: (await res.json()) as unknown };
      answers[name] = answer;
      return answer;
    };

    const { experiment_id } = await engineer.call("experiments/create", { name: "artifacts on the store" });
    const { run } = await engineer.call("runs/create", { experiment_id, run_name: "with weights" });
    const uri = run.info.artifact_uri;
    const at = `/${experiment_id}/${run.info.run_id}/artifacts`;
    await engineer.logArtifact(uri, "checkpoints/epoch-3.bin", WEIGHTS);
    await engineer.logArtifact(uri, "notes.txt", NOTE);
    expect(sha(await engineer.downloadArtifact(uri, "checkpoints/epoch-3.bin"))).toBe(sha(WEIGHTS));
    expect(new TextDecoder().decode(await engineer.downloadArtifact(uri, "notes.txt"))).toBe("trained on iris");
    answers["list root"] = { status: 200, body: await engineer.listArtifactsProxy(uri) };
    answers["list checkpoints"] = { status: 200, body: await engineer.listArtifactsProxy(uri, "checkpoints") };
    answers["tracking list"] = { status: 200, body: await engineer.call("artifacts/list", { run_id: run.info.run_id }) };
    await raw("download weights", "GET", `${at}/checkpoints/epoch-3.bin`);
    await raw("same bytes again", "PUT", `${at}/notes.txt`, NOTE);
    await raw("other bytes at a logged path", "PUT", `${at}/notes.txt`, new TextEncoder().encode("other"));
    await raw("upload onto a directory", "PUT", `${at}/checkpoints`, NOTE);
    await raw("traversal", "PUT", `${at}/..%2F..%2F..%2Fescape.bin`, NOTE);
    await raw("auditor upload", "PUT", `${at}/audited.bin`, NOTE, TOKENS.auditor);
    await raw("auditor download", "GET", `${at}/notes.txt`, undefined, TOKENS.auditor);
    await raw("no token", "PUT", `${at}/anonymous.bin`, NOTE, null);
    await raw("unknown run", "PUT", `/${experiment_id}/999/artifacts/x.bin`, NOTE);
    await raw("wrong experiment", "GET", `/999/${run.info.run_id}/artifacts/notes.txt`);
    await raw("unknown file", "GET", `${at}/missing.bin`);

    // A declared size over the cap: refused before a byte of the body is read (through the handler: fetch computes it).
    let pulled = false;
    const body = new ReadableStream<Uint8Array>({ pull: () => void (pulled = true) }, { highWaterMark: 0 });
    const tooLarge = await handleMlflowArtifactsRequest(
      services as unknown as HandlerServices,
      new Request(`http://127.0.0.1/api/2.0/mlflow-artifacts/artifacts${at}/huge.bin`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKENS.engineer}`, "content-length": String(MLFLOW_ARTIFACT_MAX_BYTES + 1) },
        body,
        duplex: "half",
      } as RequestInit & { duplex: "half" }),
      ["artifacts", ...`${at}/huge.bin`.split("/").filter(Boolean)],
    );
    answers["declared too large"] = { status: tooLarge.status, body: await tooLarge.json() };
    expect(pulled).toBe(false);

    const t = store.tables;
    const stored = await transact(store, function* (tx) {
      return {
        runArtifacts: yield* rows(tx.select().from(t.runArtifacts).orderBy(t.runArtifacts.id)),
        ledger: yield* rows(tx.select().from(t.auditEvents).orderBy(t.auditEvents.seq)),
      };
    });
    const tempLeft = fs.readdirSync(path.join(services.dataDir, "tmp", "uploads"));
    return { answers, stored, tempLeft, runId: run.info.run_id, at };
  } finally {
    await server.close();
  }
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function checkOutcome(o: Outcome): void {
  const code = (name: string) => [o.answers[name]?.status, (o.answers[name]?.body as { error_code?: string }).error_code];
  expect(o.stored.runArtifacts.map((r) => [r.path, r.sha256, r.bytes])).toEqual([
    ["checkpoints/epoch-3.bin", sha(WEIGHTS), WEIGHTS.byteLength],
    ["notes.txt", sha(NOTE), NOTE.byteLength],
  ]);
  const logged = o.stored.ledger.filter((e) => e.action === "run.log" && e.payload.includes('"artifacts":'));
  expect(logged.map((e) => (JSON.parse(e.payload) as { artifacts: { path: string; sha256: string }[] }).artifacts[0])).toMatchObject([
    { path: "checkpoints/epoch-3.bin", sha256: sha(WEIGHTS) },
    { path: "notes.txt", sha256: sha(NOTE) },
  ]);
  expect(o.stored.ledger.map((e) => e.seq)).toEqual(o.stored.ledger.map((_, i) => i + 1));
  expect(o.answers["download weights"]).toEqual({ status: 200, body: { sha256: sha(WEIGHTS), header: sha(WEIGHTS) } });
  expect(o.answers["list root"]!.body).toEqual([
    { path: "checkpoints", is_dir: true },
    { path: "notes.txt", is_dir: false, file_size: NOTE.byteLength },
  ]);
  expect(code("same bytes again")).toEqual([200, undefined]);
  expect(code("other bytes at a logged path")).toEqual([400, "RESOURCE_ALREADY_EXISTS"]);
  expect(code("upload onto a directory")).toEqual([400, "INVALID_PARAMETER_VALUE"]);
  expect(code("traversal")).toEqual([400, "INVALID_PARAMETER_VALUE"]);
  expect(code("auditor upload")).toEqual([403, "PERMISSION_DENIED"]);
  expect(o.answers["auditor download"]?.status).toBe(200);
  expect(code("no token")).toEqual([401, "UNAUTHENTICATED"]);
  expect(code("unknown run")).toEqual([404, "RESOURCE_DOES_NOT_EXIST"]);
  expect(code("wrong experiment")).toEqual([404, "RESOURCE_DOES_NOT_EXIST"]);
  expect(code("unknown file")).toEqual([404, "RESOURCE_DOES_NOT_EXIST"]);
  expect(code("declared too large")).toEqual([413, "INVALID_PARAMETER_VALUE"]);
  expect(o.tempLeft).toEqual([]);
}

describe("the artifact proxy on SQLite (the file artifact store)", () => {
  const sqlite = sqliteForSuite("rl-mlflow-artifacts-");
  fixedDateForEachTest(AT);

  it("uploads, downloads, lists and refuses through the routes, writing rows and the ledger", async () => {
    const services: Services = { db: sqlite.db(), artifacts: fileArtifactStore(sqlite.dir()), dataDir: sqlite.dir(), auditKeys };
    const outcome = await scenario(services, sqlite.store());
    outcomes.sqlite = outcome;
    checkOutcome(outcome);
  });
});

describePg("the artifact proxy on PostgreSQL (artifacts in PostgreSQL)", () => {
  const pg = twoPgServersForSuite();
  const localDir = tempDirForSuite("rl-mlflow-artifacts-pg-");
  fixedDateForEachTest(AT);
  const servicesOf = (i: 0 | 1): Services => {
    const db = i === 0 ? pg.a() : pg.b();
    return { db: pgStore(db), artifacts: pgArtifactStore(db.$client), dataDir: localDir(), auditKeys };
  };

  it("uploads, downloads, lists and refuses through the routes, with the bytes in PostgreSQL's chunks", async () => {
    const outcome = await scenario(servicesOf(0), pgStore(pg.a()));
    outcomes.pg = outcome;
    checkOutcome(outcome);
    const blobs = await pg
      .a()
      .$client.query<{ sha256: string; bytes: string; chunks: number }>("SELECT sha256, bytes, chunks FROM artifact_blobs ORDER BY bytes");
    // The refused other bytes are not stored: they go in with the record only (mlflow-artifact-refusals.test.ts).
    expect(blobs.rows.map((r) => [r.sha256, Number(r.bytes), r.chunks])).toEqual([
      [sha(NOTE), NOTE.byteLength, 1],
      [sha(WEIGHTS), WEIGHTS.byteLength, 3],
    ]);
    // Nothing went to a data directory: the local directory holds only the (empty) temp folder.
    expect(fs.readdirSync(localDir())).toEqual(["tmp"]);
  });

  it("gives the same answers, run_artifacts rows and ledger rows (payloads, seq, chain hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg?.answers).toEqual(outcomes.sqlite!.answers);
    expect(outcomes.pg?.stored).toEqual(outcomes.sqlite!.stored);
  });

  it("finds a chunk edited in place on download: 500, the bytes not served", async () => {
    const { runId, at } = outcomes.pg!;
    const services = servicesOf(1);
    await pg
      .a()
      .$client.query("UPDATE artifact_chunks SET data = set_byte(data, 5, (get_byte(data, 5) + 1) % 256) WHERE sha256 = $1 AND idx = 1", [
        sha(WEIGHTS),
      ]);
    const res = await handleMlflowArtifactsRequest(
      services as unknown as HandlerServices,
      new Request(`http://127.0.0.1/api/2.0/mlflow-artifacts/artifacts${at}/checkpoints/epoch-3.bin`, {
        headers: { authorization: `Bearer ${TOKENS.engineer}` },
      }),
      ["artifacts", ...`${at}/checkpoints/epoch-3.bin`.split("/").filter(Boolean)],
    );
    expect(res.status).toBe(500);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(((await res.json()) as { message: string }).message).toMatch(/does not match its recorded sha256/);
    expect(runId).toBeTruthy();
  });

  it("log-batch through the tracking route on PostgreSQL is written to PostgreSQL, not by the ingest worker's SQLite connection", async () => {
    const store = pgStore(pg.a());
    await seedPeopleAndTokens(store);
    const server = await startMlflowServer(servicesOf(0) as unknown as TestApp);
    try {
      const client = new MlflowClient(server.base, TOKENS.engineer);
      const { experiment_id } = await client.call("experiments/create", { name: "batched" });
      const { run } = await client.call("runs/create", { experiment_id });
      const metrics = [0, 1, 2].map((step) => ({ key: "loss", value: 1 / (step + 1), timestamp: 1764849600000 + step, step }));
      await client.call("runs/log-batch", { run_id: run.info.run_id, metrics, params: [{ key: "lr", value: "0.01" }] });
      const t = store.tables;
      const points = await transact(store, (tx) => rows(tx.select().from(t.metrics).orderBy(t.metrics.step)));
      expect(points.filter((p) => p.runId === Number(run.info.run_id)).map((p) => [p.key, p.step, p.value])).toEqual(
        metrics.map((m) => ["loss", m.step, m.value]),
      );
      // No SQLite database was opened in the local directory.
      expect(fs.readdirSync(localDir()).filter((f) => f.endsWith(".db") || f.endsWith(".sqlite"))).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it("two servers racing uploads of one path: one row and one run.log event; other bytes refused with RESOURCE_ALREADY_EXISTS", async () => {
    const CALLS = 8;
    const store = pgStore(pg.a());
    await seedPeopleAndTokens(store);
    // The run, created through the tracking API on server A.
    const server = await startMlflowServer(servicesOf(0) as unknown as TestApp);
    let runPath = "";
    try {
      const client = new MlflowClient(server.base, TOKENS.engineer);
      const { experiment_id } = await client.call("experiments/create", { name: "raced uploads" });
      const { run } = await client.call("runs/create", { experiment_id });
      runPath = `${experiment_id}/${run.info.run_id}/artifacts`;
    } finally {
      await server.close();
    }

    /**
     * The test holds the ledger lock while every call's body arrives and its record starts; once all of them wait
     * (on the ledger lock, or the same bytes' copies on the first copy's blob row), it lets go, so the records run
     * together.
     */
    const race = async (file: string, bodyOf: (i: number) => Uint8Array) => {
      const gate = await pg.a().$client.connect();
      await gate.query("BEGIN");
      await gate.query("SELECT pg_advisory_xact_lock($1::bigint)", [PG_LOCK_KEYS.ledger.toString()]);
      // pg_stat_activity is read once per transaction unless its snapshot is cleared (the gate is in one).
      const waiting = async () => {
        await gate.query("SELECT pg_stat_clear_snapshot()");
        const r = await gate.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        return r.rows[0]!.n;
      };
      const servers = [servicesOf(0), servicesOf(1)];
      const calls = Promise.all(
        Array.from({ length: CALLS }, async (_, i) => {
          const res = await handleMlflowArtifactsRequest(
            servers[i % 2] as unknown as HandlerServices,
            new Request(`http://127.0.0.1/api/2.0/mlflow-artifacts/artifacts/${runPath}/${file}`, {
              method: "PUT",
              headers: { authorization: `Bearer ${TOKENS.engineer}` },
              body: bodyOf(i) as Uint8Array<ArrayBuffer>,
            }),
            ["artifacts", ...`${runPath}/${file}`.split("/")],
          );
          return [res.status, ((await res.json()) as { error_code?: string }).error_code ?? "ok"];
        }),
      );
      try {
        while ((await waiting()) < CALLS) await new Promise((r) => setTimeout(r, 20));
      } finally {
        await gate.query("COMMIT");
        gate.release();
      }
      return calls;
    };
    const runId = Number(runPath.split("/")[1]);
    const eventsOf = async (file: string) =>
      (await transact(store, (tx) => rows(tx.select().from(store.tables.auditEvents)))).filter(
        (e) => e.action === "run.log" && e.entityId === String(runId) && e.payload.includes(`"path":"${file}"`),
      );
    const rowsOf = async (file: string) =>
      (await transact(store, (tx) => rows(tx.select().from(store.tables.runArtifacts)))).filter(
        (r) => r.runId === runId && r.path === file,
      );

    const same = await race("same.bin", () => NOTE);
    expect(same).toEqual(Array.from({ length: CALLS }, () => [200, "ok"]));
    expect(await rowsOf("same.bin")).toHaveLength(1);
    expect(await eventsOf("same.bin")).toHaveLength(1);

    const other = await race("other.bin", (i) => new TextEncoder().encode(`version ${i}`));
    expect(other.filter(([s]) => s === 200)).toHaveLength(1);
    expect(other.filter(([s, c]) => s === 400 && c === "RESOURCE_ALREADY_EXISTS")).toHaveLength(CALLS - 1);
    expect(await rowsOf("other.bin")).toHaveLength(1);
    expect(await eventsOf("other.bin")).toHaveLength(1);
    // Only the stored version's bytes are in the artifact store: the refused ones rolled back with their records.
    const versions = Array.from({ length: CALLS }, (_, i) => sha(new TextEncoder().encode(`version ${i}`)));
    const kept = await pg.a().$client.query<{ sha256: string }>("SELECT sha256 FROM artifact_blobs WHERE sha256 = ANY($1)", [versions]);
    expect(kept.rows.map((r) => r.sha256)).toEqual([(await rowsOf("other.bin"))[0]!.sha256]);

    const ledger = await transact(store, (tx) => rows(tx.select().from(store.tables.auditEvents).orderBy(store.tables.auditEvents.seq)));
    expect(ledger.map((e) => e.seq)).toEqual(ledger.map((_, i) => i + 1));
    expect(fs.readdirSync(path.join(localDir(), "tmp", "uploads"))).toEqual([]);
  });
});
