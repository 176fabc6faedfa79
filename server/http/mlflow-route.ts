/**
 * The HTTP side of the tracking API (/api/2.0/mlflow/[...path], server/mlflow/dispatch.ts does the rest): reads the
 * body up to its limit (log-batch: MLflow's 1,000,000 bytes, answered as INVALID_PARAMETER_VALUE like MLflow; other
 * calls: the JSON API limit, 1 MiB), refuses a POST whose Content-Type is not JSON (as MLflow does), and writes the
 * JSON answer. After a write it signs a ledger checkpoint when the policy says one is due (as tRPC mutations do).
 * A writer's log-batch is answered by the ingest worker (server/mlflow/ingest.ts: off the main thread, group commit)
 * after the token and role were checked here; every other call by the dispatcher on this thread.
 */
import type { AnyAppServices } from "@/server/app-context/app-services";
import { isSqliteDb, sqliteServices } from "@/server/app-context/sqlite-only";
import { applyCheckpointPolicy } from "@/server/audit/checkpoint-policy";
import { authenticateMlflow, dispatchMlflow, type MlflowAnswer } from "@/server/mlflow/dispatch";
import { JsonText, WRITER_ROLES, type MlflowCtx } from "@/server/mlflow/common";
import { ingestWorkerEnabled, logBatchInWorker } from "@/server/mlflow/ingest";
import { MLFLOW_LIMITS } from "@/contracts/mlflow/types";
import { DEFAULT_JSON_BODY_LIMIT } from "./body-limit";

/**
 * The parts of a JsonText as one body: a string as it is; bytes through a stream of the parts (a Uint8Array given to
 * Response would be copied whole first), with their total length declared.
 */
function jsonTextBody(t: JsonText): { body: string | ReadableStream<Uint8Array>; length?: number } {
  if (t.parts.every((p) => typeof p === "string")) return { body: t.parts.join("") };
  const chunks = t.parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : p));
  return {
    body: new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(c);
        controller.close();
      },
    }),
    length: chunks.reduce((n, c) => n + c.byteLength, 0),
  };
}

const json = (a: MlflowAnswer): Response => {
  const { body, length } = a.body instanceof JsonText ? jsonTextBody(a.body) : { body: JSON.stringify(a.body), length: undefined };
  return new Response(body, {
    status: a.status,
    headers: {
      "content-type": "application/json",
      "cache-control": "no-store",
      ...(length !== undefined ? { "content-length": String(length) } : {}),
      ...(a.headers ?? {}),
    },
  });
};

const isWriter = (ctx: Pick<MlflowCtx, "actor">): boolean => (WRITER_ROLES as readonly string[]).includes(ctx.actor.role);

const error = (status: number, error_code: string, message: string) => json({ status, body: { error_code, message } });

/** The body's bytes (in an ArrayBuffer of their own, so they can be transferred), or null when over `limit` bytes (reading stops there). */
async function readLimited(req: Request, limit: number): Promise<Uint8Array<ArrayBuffer> | null> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    await req.body?.cancel().catch(() => undefined);
    return null;
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  // Not Buffer.concat: a small result could be a slice of Node's shared pool, which must never be transferred.
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

const utf8 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8");

export async function handleMlflowRequest(services: AnyAppServices, req: Request, segments: string[]): Promise<Response> {
  const path = segments.join("/");
  let bodyText: string | null = null;
  const withBody = req.method === "POST" || req.method === "PATCH" || req.method === "DELETE";
  if (withBody) {
    const type = (req.headers.get("content-type") ?? "").toLowerCase();
    if (type && !type.startsWith("application/json") && req.method !== "DELETE")
      return error(400, "INVALID_PARAMETER_VALUE", "Bad Request. Content-Type must be one of ['application/json'].");
    const batch = path === "runs/log-batch";
    const limit = batch ? MLFLOW_LIMITS.maxBatchRequestBytes : DEFAULT_JSON_BODY_LIMIT;
    const bytes = await readLimited(req, limit);
    if (bytes === null)
      return batch
        ? error(400, "INVALID_PARAMETER_VALUE", `Batched logging API requests must be at most ${limit} bytes in size`)
        : error(413, "INVALID_PARAMETER_VALUE", `The request body is over the ${Math.round(limit / 1024)} KiB limit for API calls`);
    // The ingest worker writes through its own SQLite connection: on PostgreSQL every call is dispatched here.
    if (batch && req.method === "POST" && ingestWorkerEnabled() && isSqliteDb(services.db)) {
      // A writer's log-batch goes to the ingest worker (server/mlflow/ingest.ts); anyone else's, as every call.
      const caller = await authenticateMlflow(services, req.headers.get("authorization"));
      if ("status" in caller) return json(caller);
      if (isWriter(caller)) {
        const answer = await logBatchInWorker(sqliteServices(services, "The ingest worker"), caller.actor, bytes, (job) =>
          dispatchMlflow(services, {
            method: "POST",
            path,
            query: new URLSearchParams(),
            authorization: req.headers.get("authorization"),
            bodyText: utf8(job.body),
          }),
        );
        if (answer.status < 500) applyCheckpointPolicy(services);
        return json(answer);
      }
    }
    bodyText = utf8(bytes);
  }
  const answer = await dispatchMlflow(services, {
    method: req.method,
    path,
    query: new URL(req.url).searchParams,
    authorization: req.headers.get("authorization"),
    bodyText,
  });
  if (withBody && answer.status < 500) applyCheckpointPolicy(services);
  return json(answer);
}
