/**
 * Artifacts of API runs through the content-addressed store (server/artifacts/store.ts), as MLflow's artifact proxy
 * serves them (the MLflow client's default with `mlflow server --serve-artifacts`):
 * - a run's artifact_uri is `mlflow-artifacts:/<experiment_id>/<run_id>/artifacts`, so the client PUTs a file to
 *   /api/2.0/mlflow-artifacts/artifacts/<experiment_id>/<run_id>/artifacts/<path> and GETs it back from the same URL;
 *   GET /api/2.0/mlflow-artifacts/artifacts?path=<experiment_id>/<run_id>/artifacts[/<dir>] lists a directory;
 * - GET /api/2.0/mlflow/artifacts/list?run_id=&path= lists the same directory by run (tracking server shape, root_uri).
 *
 * Invariants: a file is kept once per (run, path) in run_artifacts (the same bytes again are a no-op; other bytes
 * are refused with RESOURCE_ALREADY_EXISTS: what was logged is never replaced); the bytes live in the store under
 * their sha256, which every read checks (a tampered file answers 500 and is not served); each new file is one run.log
 * event naming the row's id, path, sha256 and size (the content check recomputes the file's hash); the bytes go
 * into the store with that record, so a refused upload leaves none behind (recordArtifact). Paths are
 * relative, "/"-separated, without empty, "." or ".." segments, backslashes or NUL (MLflow: "Invalid path").
 * Only engineers upload (the writer role of the API); every role reads.
 *
 * On the store (issue 16): every read and the record run on SQLite or PostgreSQL (the record under the ledger lock,
 * re-checking the run and the path), and the bytes live in either artifact store (the data directory's files, or
 * PostgreSQL's chunks: pg-store.ts, hash-checked on every read as the files are).
 */
import { and, asc, eq, like, sql } from "drizzle-orm";
import { z } from "zod";
import type pg from "pg";
import type { Tx } from "@/db/client";
import { PG_LOCK_KEYS, type PgTx } from "@/db/pg-client";
import { asStore, native, row, rows, transact, type StoreTables, type TxBody } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
import { now } from "@/server/app-context/service-context";
import { awaitedArtifacts } from "@/server/artifacts/async-store";
import type { ArtifactStore } from "@/server/artifacts/store";
import { putArtifactFilePg } from "@/server/artifacts/pg-store";
import { MlflowError, doesNotExist, invalidParam } from "./errors";
import { idField, parseRequest, readPart, requireWriter, type MlflowStoreCtx } from "./common";
import { runRowIn, type RunRow } from "./runs";
import type { FileInfo } from "@/contracts/mlflow/types";

export type ArtifactRow = StoreTables["runArtifacts"]["$inferSelect"];
export type { FileInfo } from "@/contracts/mlflow/types";

/** The caller of the artifact proxy: either store (issue 16), and either artifact store (files, or PostgreSQL's chunks). */
export type MlflowArtifactCtx = Pick<MlflowStoreCtx, "db" | "actor" | "artifacts">;

/** An artifact path as given (relative), checked; "" is the run's root. */
export function safeArtifactPath(raw: string, allowRoot: boolean): string {
  const p = raw.replace(/^\/+|\/+$/g, "");
  if (p === "") {
    if (allowRoot) return "";
    invalidParam("Invalid path: an artifact needs a file name");
  }
  if (/[\\\0]/.test(p) || raw.startsWith("/") || /^[A-Za-z]:/.test(p))
    invalidParam(`Invalid path: '${raw}' (artifact paths are relative and use '/')`);
  for (const seg of p.split("/"))
    if (seg === "" || seg === "." || seg === "..") invalidParam(`Invalid path: '${raw}' ('..', '.' and empty segments are refused)`);
  return p;
}

/** A proxy path `<experiment_id>/<run_id>/artifacts[/<rel>]` → the run and the path inside its artifact root. */
export function* resolveProxyPathIn(q: Tx, t: StoreTables, raw: string, allowRoot: boolean): TxBody<{ run: RunRow; rel: string }> {
  const m = /^\/*(\d{1,15})\/(\d{1,15})\/artifacts(?:\/(.*))?$/.exec(raw);
  if (!m) {
    safeArtifactPath(raw, true); // traversal is "Invalid path" before "not found"
    return doesNotExist(`No artifact at '${raw}': artifact paths are <experiment_id>/<run_id>/artifacts/<path>`);
  }
  const rel = safeArtifactPath(m[3] ?? "", allowRoot);
  const run = yield* runRowIn(q, t, m[2]!);
  if (String(run.experimentId) !== m[1]) doesNotExist(`Run ${run.id} is not in experiment ${m[1]}`);
  return { run, rel };
}

export function* artifactAtIn(q: Tx, t: StoreTables, runId: number, rel: string): TxBody<ArtifactRow | undefined> {
  const { runArtifacts } = t;
  return yield* row(
    q
      .select()
      .from(runArtifacts)
      .where(and(eq(runArtifacts.runId, runId), eq(runArtifacts.path, rel)))
      .limit(1),
  );
}

/** The run and path of an upload, if it may take one: an API run, not deleted, and `rel` not one of its directories. */
function* uploadTargetIn(q: Tx, t: StoreTables, raw: string): TxBody<{ run: RunRow; rel: string }> {
  const { run, rel } = yield* resolveProxyPathIn(q, t, raw, false);
  if (run.deletedAt) invalidParam(`The run ${run.id} must be in the 'active' state. Current state is deleted.`);
  if (run.origin !== "api")
    invalidParam(`Run ${run.id} was trained by Runledger (origin "${run.origin}"): only runs created through this API take artifacts`);
  if ((yield* listDirectoryIn(q, t, run.id, rel)).length > 0) invalidParam(`Invalid path: '${rel}' is a directory of run ${run.id}`);
  return { run, rel };
}

/** Checks made before the body is read: the writer role and the run (an API run, not deleted). */
export async function checkUpload(ctx: MlflowArtifactCtx, raw: string): Promise<{ run: RunRow; rel: string }> {
  requireWriter(ctx, "upload artifacts");
  const store = asStore(ctx.db);
  return readPart(store, (q) => uploadTargetIn(q, store.tables, raw));
}

/** A received upload: a temp file on the data directory's file system, with the sha256 and size of its bytes. */
export type ReceivedFile = { path: string; sha256: string; bytes: number };

/**
 * The existing row at the upload's path, if any: the same bytes again are answered without writing anything; other
 * bytes are RESOURCE_ALREADY_EXISTS (Runledger keeps what was logged).
 */
function* refuseOtherBytesIn(
  q: Tx,
  t: StoreTables,
  raw: string,
  file: ReceivedFile,
): TxBody<{ run: RunRow; rel: string; existing?: ArtifactRow }> {
  const { run, rel } = yield* uploadTargetIn(q, t, raw);
  const existing = yield* artifactAtIn(q, t, run.id, rel);
  if (existing && existing.sha256 !== file.sha256)
    throw new MlflowError(
      "RESOURCE_ALREADY_EXISTS",
      `Artifact '${rel}' of run ${run.id} already exists with other bytes (sha256 ${existing.sha256.slice(0, 12)}…): Runledger keeps what was logged; upload under another path`,
    );
  return { run, rel, existing };
}

/** The client under a drizzle node-postgres transaction (its session's `client`, not in drizzle's public types). */
function pgClientOfTx(pgTx: PgTx): pg.PoolClient {
  const client = (pgTx as unknown as { session?: { client?: pg.PoolClient } }).session?.client;
  if (!client || typeof client.query !== "function") throw new Error("no node-postgres client under this transaction");
  return client;
}

/**
 * Stores a received upload and records it at `raw` (the proxy path checkUpload accepted) with its run.log event, in
 * one transaction under the ledger lock, so that a refused upload leaves no bytes behind. The run and the path are
 * checked again inside it (the body took a while to arrive: the run may have been deleted or the path become a
 * directory meanwhile); same bytes at the same path: nothing is written (created false); other bytes:
 * RESOURCE_ALREADY_EXISTS, also when two uploads of one path race (the second finds the first's row under the lock).
 *
 * Where the bytes go in, by artifact store:
 * - the file store (SQLite's, or a directory on PostgreSQL): moved in (a rename: the temp file is on the data
 *   directory's file system) as the last step of the record, under the lock; a failure of the move rolls it back;
 * - PostgreSQL's chunks (pg-store.ts, the store's own database: pg-store-services.ts builds both on one pool): copied
 *   on the record's own connection, after an unlocked look at the path (a refusal known then copies nothing) and
 *   before the ledger lock is taken (other writers do not wait for the copy), so the blob commits with the row or
 *   rolls back with a refusal.
 * The temp file is the caller's to remove (the file store leaves none; PostgreSQL's copy leaves it in place).
 */
export async function recordArtifact(
  ctx: MlflowArtifactCtx,
  raw: string,
  file: ReceivedFile,
): Promise<{ row: ArtifactRow; created: boolean }> {
  requireWriter(ctx, "upload artifacts");
  const store = asStore(ctx.db);
  const t = store.tables;
  const artifacts = ctx.artifacts;
  const chunksInThisDatabase = store.dialect === "pg" && "kind" in artifacts && artifacts.kind === "postgres";
  if (store.dialect === "sqlite" && "kind" in artifacts)
    throw new Error("the SQLite store's uploads take the synchronous file artifact store (server/artifacts/store.ts)");
  return transact(
    store,
    function* (tx) {
      if (chunksInThisDatabase) {
        const seen = yield* refuseOtherBytesIn(tx, t, raw, file);
        if (seen.existing) return { row: seen.existing, created: false };
        yield* native({
          sqlite: () => {
            throw new Error("unreachable: PostgreSQL's chunks on SQLite");
          },
          pg: (pgTx) => putArtifactFilePg(pgClientOfTx(pgTx), file.path, file.sha256),
        });
      }
      if (store.dialect === "pg")
        yield* native({
          sqlite: () => undefined,
          pg: (pgTx) => pgTx.execute(sql`SELECT pg_advisory_xact_lock(${PG_LOCK_KEYS.ledger.toString()}::bigint)`),
        });
      const { run, rel, existing } = yield* refuseOtherBytesIn(tx, t, raw, file);
      if (existing) return { row: existing, created: false };
      const created = (yield* row(
        tx
          .insert(t.runArtifacts)
          .values({ runId: run.id, path: rel, sha256: file.sha256, bytes: file.bytes, createdBy: ctx.actor.id, createdAt: now() })
          .returning(),
      ))!;
      yield* appendEvent({
        actor: ctx.actor,
        action: "run.log",
        entityType: "run",
        entityId: run.id,
        payload: {
          artifacts: [{ id: created.id, path: created.path, sha256: created.sha256, bytes: created.bytes, createdAt: created.createdAt }],
        },
      });
      // Last, so that nothing after it can roll the record back and leave the moved file unreferenced.
      if (!chunksInThisDatabase)
        yield* native({
          sqlite: () => (artifacts as ArtifactStore).putFile(file.path, file.sha256),
          pg: () => awaitedArtifacts(artifacts).putFile(file.path, file.sha256),
        });
      return { row: created, created: true };
    },
    // On PostgreSQL the body takes the ledger lock itself, after the copy.
    {},
  );
}

/** The bytes of a file artifact (hash checked by the artifact store), or RESOURCE_DOES_NOT_EXIST. */
export async function readArtifact(ctx: MlflowArtifactCtx, raw: string): Promise<{ row: ArtifactRow; bytes: Uint8Array }> {
  const store = asStore(ctx.db);
  const found = await readPart(store, function* (q) {
    const { run, rel } = yield* resolveProxyPathIn(q, store.tables, raw, false);
    const file = yield* artifactAtIn(q, store.tables, run.id, rel);
    if (!file) return doesNotExist(`No artifact '${rel}' in run ${run.id}`);
    return file;
  });
  return { row: found, bytes: await awaitedArtifacts(ctx.artifacts).get(found.sha256) };
}

/**
 * The direct children of a directory of a run's artifacts (files with sizes, sub-directories), sorted by path (code
 * units, in JS: the same on both stores). The LIKE narrows the rows (SQLite's is case-insensitive and has no escape
 * character, PostgreSQL's escapes with a backslash); the prefix test decides.
 */
export function* listDirectoryIn(q: Tx, t: StoreTables, runId: number, dir: string): TxBody<FileInfo[]> {
  const prefix = dir === "" ? "" : `${dir}/`;
  const { runArtifacts } = t;
  const found = (yield* rows(
    q
      .select({ path: runArtifacts.path, bytes: runArtifacts.bytes })
      .from(runArtifacts)
      .where(and(eq(runArtifacts.runId, runId), like(runArtifacts.path, `${prefix.replace(/[%_\\]/g, "\\$&")}%`)))
      .orderBy(asc(runArtifacts.path)),
  )).filter((r) => r.path.startsWith(prefix));
  const out = new Map<string, FileInfo>();
  for (const r of found) {
    const rest = r.path.slice(prefix.length);
    const slash = rest.indexOf("/");
    if (slash < 0) out.set(r.path, { path: r.path, is_dir: false, file_size: r.bytes });
    else {
      const sub = prefix + rest.slice(0, slash);
      if (!out.has(sub)) out.set(sub, { path: sub, is_dir: true });
    }
  }
  return [...out.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** GET /api/2.0/mlflow-artifacts/artifacts?path=…: paths relative to the listed directory, as the proxy answers. */
export async function listProxy(ctx: Pick<MlflowStoreCtx, "db">, raw: string): Promise<{ files: FileInfo[] }> {
  const store = asStore(ctx.db);
  return readPart(store, function* (q) {
    const { run, rel } = yield* resolveProxyPathIn(q, store.tables, raw, true);
    const prefix = rel === "" ? "" : `${rel}/`;
    const files = (yield* listDirectoryIn(q, store.tables, run.id, rel)).map((f) => ({ ...f, path: f.path.slice(prefix.length) }));
    return { files };
  });
}

/** GET /api/2.0/mlflow/artifacts/list (run_id, path): paths relative to the run's artifact root. On the store (issue 16). */
export async function listArtifacts(ctx: MlflowStoreCtx, body: unknown): Promise<{ root_uri: string; files: FileInfo[] }> {
  const req = parseRequest(
    z.object({ run_id: idField.optional(), run_uuid: idField.optional(), path: z.string().default(""), page_token: z.string().optional() }),
    body,
  );
  const id = req.run_id ?? req.run_uuid;
  if (!id) invalidParam("Missing value for required parameter 'run_id'. See the API docs for more information about request parameters.");
  const store = asStore(ctx.db);
  return readPart(store, function* (q) {
    const run = yield* runRowIn(q, store.tables, id!);
    const rel = safeArtifactPath(req.path, true);
    return {
      root_uri: `mlflow-artifacts:/${run.experimentId}/${run.id}/artifacts`,
      files: yield* listDirectoryIn(q, store.tables, run.id, rel),
    };
  });
}

/**
 * The artifact a model version source names: `runs:/<run_id>/<path>` or `mlflow-artifacts:/<exp>/<run>/artifacts/<path>`
 * (one file: Runledger registers weights files). Directory sources holding exactly one file resolve to that file.
 */
export function* artifactOfSourceIn(
  q: Tx,
  t: StoreTables,
  source: string,
  runIdHint: string | undefined,
): TxBody<{ run: RunRow; row: ArtifactRow }> {
  let run: RunRow;
  let rel: string;
  const runs = /^runs:\/([^/]+)\/?(.*)$/.exec(source);
  const proxy = /^mlflow-artifacts:(?:\/\/[^/]*)?(\/.*)$/.exec(source);
  if (runs) {
    run = yield* runRowIn(q, t, runs[1]!);
    rel = safeArtifactPath(runs[2] ?? "", true);
  } else if (proxy) {
    ({ run, rel } = yield* resolveProxyPathIn(q, t, proxy[1]!, true));
  } else
    return invalidParam(
      `Unsupported model version source '${source}': use runs:/<run_id>/<path> or mlflow-artifacts:/<experiment_id>/<run_id>/artifacts/<path> (an artifact logged to the run)`,
    );
  if (runIdHint !== undefined && runIdHint !== "" && runIdHint !== String(run.id))
    invalidParam(`The source '${source}' belongs to run ${run.id}, not to run_id ${runIdHint}`);
  const file = yield* artifactAtIn(q, t, run.id, rel);
  if (file) return { run, row: file };
  const inDir = (yield* rows(
    q.select().from(t.runArtifacts).where(eq(t.runArtifacts.runId, run.id)).orderBy(asc(t.runArtifacts.id)),
  )).filter((r) => rel === "" || r.path.startsWith(`${rel}/`));
  if (inDir.length === 1) return { run, row: inDir[0]! };
  if (inDir.length === 0) return doesNotExist(`Run ${run.id} has no artifact at '${rel}' (log the weights file as an artifact first)`);
  return invalidParam(
    `'${rel}' of run ${run.id} is a directory of ${inDir.length} files: name the weights file (e.g. runs:/${run.id}/${inDir[0]!.path})`,
  );
}
