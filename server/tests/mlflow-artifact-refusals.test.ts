/**
 * A refused upload through MLflow's artifact proxy leaves no bytes behind (server/http/mlflow-artifacts-route.ts,
 * server/mlflow/artifacts.ts recordArtifact), on SQLite (the data directory's artifacts/) and on PostgreSQL (its
 * artifact_blobs and artifact_chunks): for each refusal the artifact store holds as many blobs before and after, no
 * run_artifacts row and no run.log event is added, and no temp file is left. The refusals: no token, an unknown
 * token, an auditor, traversal, an unknown run, a run of another experiment, a deleted run, a directory's path, a
 * declared size over MLFLOW_ARTIFACT_MAX_BYTES, other bytes at a logged path (refused at the record, after the body
 * arrived: its bytes used to stay in the store, unreferenced), and a run deleted while the body arrives (the same).
 * Every refused body is bytes never stored before, so a leftover is a new blob; an accepted upload, counted the same
 * way, adds one. A body without a declared size that never ends is cut off at the limit (413), read no further than
 * the stream's read-ahead, and leaves nothing either (the route's bound, the same before both stores).
 */
import { describe, expect, it, vi } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { pgStore, rows, transact, exec, type Store } from "@/db/store";
import { sha256Hex } from "@/contracts/canonical";
import { MlflowClient } from "@/contracts/mlflow/client";
import { MLFLOW_ARTIFACT_MAX_BYTES } from "@/contracts/mlflow/types";
import { generateAuditKeys } from "@/server/audit/keys";
import { fileArtifactStore } from "@/server/artifacts/store";
import { asyncFileArtifactStore, listFileArtifacts, type AnyArtifactStore } from "@/server/artifacts/async-store";
import { pgArtifactStore } from "@/server/artifacts/pg-store";
import { handleMlflowArtifactsRequest } from "@/server/http/mlflow-artifacts-route";
import type { Db } from "@/db/client";
import type { PgDb } from "@/db/pg-client";
import { describePg } from "./pg-test-env";
import { startMlflowServer } from "./mlflow-http-fixture";
import type { TestApp } from "./test-app";
import { seedPeople, sqliteForSuite, TEST_PEOPLE, tempDirForSuite, twoPgServersForSuite } from "./store-test-env";

vi.mock("server-only", () => ({}));

const AT = "2026-12-05T12:00:00.000Z";
const TOKENS = { engineer: "rlt_engineer-token-for-the-refusals-suite", auditor: "rlt_auditor-token-for-the-refusals-suite" };
const auditKeys = generateAuditKeys();

type Services = { db: Store | Db; artifacts: AnyArtifactStore; dataDir: string; auditKeys: typeof auditKeys };
type HandlerServices = Parameters<typeof handleMlflowArtifactsRequest>[0];

async function seedPeopleAndTokens(store: Store): Promise<void> {
  await seedPeople(store, { at: AT, passwordHash: "x" });
  await transact(store, function* (tx) {
    for (const [i, [who, token]] of Object.entries(TOKENS).entries())
      yield* exec(
        tx
          .insert(store.tables.apiTokens)
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

/** Bytes never uploaded before in this suite. */
let uploads = 0;
const freshBytes = (what: string) => new TextEncoder().encode(`${what} #${++uploads} ${"x".repeat(3000)}`);

function put(services: Services, proxyPath: string, body: Uint8Array | ReadableStream<Uint8Array>, headers: Record<string, string>) {
  return handleMlflowArtifactsRequest(
    services as unknown as HandlerServices,
    new Request(`http://127.0.0.1/api/2.0/mlflow-artifacts/artifacts/${proxyPath}`, {
      method: "PUT",
      headers,
      body: body as BodyInit,
      duplex: "half",
    } as RequestInit & { duplex: "half" }),
    ["artifacts", ...proxyPath.split("/").filter(Boolean)],
  );
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/**
 * The scenario on one store: `blobs` counts what the artifact store holds. Returns each refusal's answer and the
 * blob counts around it.
 */
async function scenario(services: Services, store: Store, blobs: () => Promise<number>, experiment = "refused uploads") {
  await seedPeopleAndTokens(store);
  const server = await startMlflowServer(services as unknown as TestApp);
  try {
    const engineer = new MlflowClient(server.base, TOKENS.engineer);
    const { experiment_id } = await engineer.call("experiments/create", { name: experiment });
    const { run } = await engineer.call("runs/create", { experiment_id, run_name: "takes artifacts" });
    const { run: doomed } = await engineer.call("runs/create", { experiment_id, run_name: "deleted while uploading" });
    const { run: deleted } = await engineer.call("runs/create", { experiment_id, run_name: "deleted" });
    await engineer.call("runs/delete", { run_id: deleted.info.run_id });
    const at = `${experiment_id}/${run.info.run_id}/artifacts`;
    await engineer.logArtifact(run.info.artifact_uri, "checkpoints/epoch-1.bin", freshBytes("weights"));
    await engineer.logArtifact(run.info.artifact_uri, "notes.txt", freshBytes("note"));

    const t = store.tables;
    const recorded = async () => {
      const [artifactRows, ledger] = await transact(store, function* (tx) {
        return [yield* rows(tx.select().from(t.runArtifacts)), yield* rows(tx.select().from(t.auditEvents))] as const;
      });
      return { artifactRows: artifactRows.length, runLogs: ledger.filter((e) => e.action === "run.log").length };
    };
    const outcomes: Record<string, { status: number; code: string; blobsBefore: number; blobsAfter: number; recordedAfter: unknown }> = {};
    const refusal = async (name: string, send: () => Promise<Response>) => {
      const blobsBefore = await blobs();
      const before = await recorded();
      const res = await send();
      const body = (await res.json()) as { error_code?: string };
      const after = await recorded();
      outcomes[name] = {
        status: res.status,
        code: body.error_code ?? "ok",
        blobsBefore,
        blobsAfter: await blobs(),
        recordedAfter: after.artifactRows === before.artifactRows && after.runLogs === before.runLogs ? "unchanged" : after,
      };
    };

    await refusal("no token", () => put(services, `${at}/anonymous.bin`, freshBytes("anonymous"), {}));
    await refusal("unknown token", () => put(services, `${at}/forged.bin`, freshBytes("forged"), bearer("rlt_not-a-token-of-anyone")));
    await refusal("auditor", () => put(services, `${at}/audited.bin`, freshBytes("audited"), bearer(TOKENS.auditor)));
    await refusal("traversal", () => put(services, `${at}/../../escape.bin`, freshBytes("escape"), bearer(TOKENS.engineer)));
    await refusal("unknown run", () =>
      put(services, `${experiment_id}/999/artifacts/x.bin`, freshBytes("nowhere"), bearer(TOKENS.engineer)),
    );
    await refusal("another experiment's run", () =>
      put(services, `999/${run.info.run_id}/artifacts/x.bin`, freshBytes("elsewhere"), bearer(TOKENS.engineer)),
    );
    await refusal("deleted run", () =>
      put(services, `${experiment_id}/${deleted.info.run_id}/artifacts/x.bin`, freshBytes("deleted"), bearer(TOKENS.engineer)),
    );
    await refusal("a directory's path", () => put(services, `${at}/checkpoints`, freshBytes("directory"), bearer(TOKENS.engineer)));
    await refusal("declared too large", () =>
      put(services, `${at}/huge.bin`, new ReadableStream<Uint8Array>({ pull: (c) => c.close() }), {
        ...bearer(TOKENS.engineer),
        "content-length": String(MLFLOW_ARTIFACT_MAX_BYTES + 1),
      }),
    );
    await refusal("other bytes at a logged path", () =>
      put(services, `${at}/notes.txt`, freshBytes("other note"), bearer(TOKENS.engineer)),
    );
    // The run passes the checks made before the body is read and is deleted while the body arrives.
    let sent = false;
    const lateBody = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (sent) return c.close();
        sent = true;
        await engineer.call("runs/delete", { run_id: doomed.info.run_id });
        c.enqueue(freshBytes("late"));
      },
    });
    await refusal("run deleted while the body arrives", () =>
      put(services, `${experiment_id}/${doomed.info.run_id}/artifacts/late.bin`, lateBody, bearer(TOKENS.engineer)),
    );

    const acceptedBefore = await blobs();
    const accepted = await put(services, `${at}/accepted.bin`, freshBytes("accepted"), bearer(TOKENS.engineer));
    expect(accepted.status).toBe(200);
    const acceptedAfter = await blobs();
    const tempLeft = fs.readdirSync(path.join(services.dataDir, "tmp", "uploads"));
    return { outcomes, accepted: acceptedAfter - acceptedBefore, tempLeft };
  } finally {
    await server.close();
  }
}

function checkOutcome(o: Awaited<ReturnType<typeof scenario>>): void {
  expect(Object.fromEntries(Object.entries(o.outcomes).map(([name, r]) => [name, [r.status, r.code]]))).toEqual({
    "no token": [401, "UNAUTHENTICATED"],
    "unknown token": [401, "UNAUTHENTICATED"],
    auditor: [403, "PERMISSION_DENIED"],
    traversal: [400, "INVALID_PARAMETER_VALUE"],
    "unknown run": [404, "RESOURCE_DOES_NOT_EXIST"],
    "another experiment's run": [404, "RESOURCE_DOES_NOT_EXIST"],
    "deleted run": [400, "INVALID_PARAMETER_VALUE"],
    "a directory's path": [400, "INVALID_PARAMETER_VALUE"],
    "declared too large": [413, "INVALID_PARAMETER_VALUE"],
    "other bytes at a logged path": [400, "RESOURCE_ALREADY_EXISTS"],
    "run deleted while the body arrives": [400, "INVALID_PARAMETER_VALUE"],
  });
  for (const [name, r] of Object.entries(o.outcomes)) {
    expect({ name, blobs: r.blobsAfter }).toEqual({ name, blobs: r.blobsBefore });
    expect({ name, recorded: r.recordedAfter }).toEqual({ name, recorded: "unchanged" });
  }
  expect(o.accepted).toBe(1);
  expect(o.tempLeft).toEqual([]);
}

describe("refused artifact uploads on SQLite (the data directory's artifacts/)", () => {
  const sqlite = sqliteForSuite("rl-mlflow-refusals-");

  it("leave no blob, row, event or temp file behind", async () => {
    const services: Services = { db: sqlite.db(), artifacts: fileArtifactStore(sqlite.dir()), dataDir: sqlite.dir(), auditKeys };
    checkOutcome(await scenario(services, sqlite.store(), async () => listFileArtifacts(sqlite.dir()).length));
  });
});

describe("an artifact body streamed past MLFLOW_ARTIFACT_MAX_BYTES without a declared size (the route, before either store)", () => {
  const sqlite = sqliteForSuite("rl-mlflow-refusals-stream-");

  it("an endless body is cut off at the limit with 413 and leaves no blob, row or temp file", async () => {
    const services: Services = { db: sqlite.db(), artifacts: fileArtifactStore(sqlite.dir()), dataDir: sqlite.dir(), auditKeys };
    await seedPeopleAndTokens(sqlite.store());
    const server = await startMlflowServer(services as unknown as TestApp);
    try {
      const engineer = new MlflowClient(server.base, TOKENS.engineer);
      const { experiment_id } = await engineer.call("experiments/create", { name: "streamed past the limit" });
      const { run } = await engineer.call("runs/create", { experiment_id });
      // One MiB chunk sent again and again, without end: only the limit stops the upload (never held whole).
      const chunk = new Uint8Array(1 << 20).fill(7);
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          sent += chunk.byteLength;
          c.enqueue(chunk);
        },
      });
      const res = await put(services, `${experiment_id}/${run.info.run_id}/artifacts/huge.bin`, body, bearer(TOKENS.engineer));
      expect([res.status, ((await res.json()) as { error_code?: string }).error_code]).toEqual([413, "INVALID_PARAMETER_VALUE"]);
      // Read up to the limit and no further than the stream's read-ahead past it.
      expect(sent).toBeGreaterThan(MLFLOW_ARTIFACT_MAX_BYTES);
      expect(sent).toBeLessThanOrEqual(MLFLOW_ARTIFACT_MAX_BYTES + 4 * chunk.byteLength);
      expect(listFileArtifacts(sqlite.dir())).toEqual([]);
      expect(fs.readdirSync(path.join(sqlite.dir(), "tmp", "uploads"))).toEqual([]);
      const t = sqlite.store().tables;
      expect(await transact(sqlite.store(), (tx) => rows(tx.select().from(t.runArtifacts)))).toEqual([]);
    } finally {
      await server.close();
    }
  }, 120_000);
});

describePg("refused artifact uploads on PostgreSQL (artifact_blobs and artifact_chunks)", () => {
  const pg = twoPgServersForSuite();
  const localDir = tempDirForSuite("rl-mlflow-refusals-pg-");
  const blobsIn = async (db: PgDb) => {
    const r = await db.$client.query<{ blobs: number; chunks: number }>(
      "SELECT (SELECT count(*) FROM artifact_blobs)::int AS blobs, (SELECT count(*) FROM artifact_chunks)::int AS chunks",
    );
    // One chunk per blob here (every body is under 1 MiB): a chunk without its blob row would show as a difference.
    expect(r.rows[0]!.chunks).toBe(r.rows[0]!.blobs);
    return r.rows[0]!.blobs;
  };

  it("leave no blob, chunk, row, event or temp file behind", async () => {
    const db = pg.a();
    const services: Services = { db: pgStore(db), artifacts: pgArtifactStore(db.$client), dataDir: localDir(), auditKeys };
    checkOutcome(await scenario(services, pgStore(db), () => blobsIn(db)));
    // Nothing went to a data directory: the local directory holds only the (empty) temp folder.
    expect(fs.readdirSync(localDir())).toEqual(["tmp"]);
  });

  it("with the file artifact store (a shared directory) leave no file, row, event or temp file behind", async () => {
    const db = pg.b();
    const shared = path.join(localDir(), "shared");
    const services: Services = { db: pgStore(db), artifacts: asyncFileArtifactStore(shared), dataDir: shared, auditKeys };
    checkOutcome(await scenario(services, pgStore(db), async () => listFileArtifacts(shared).length, "refused uploads (files)"));
  });
});
