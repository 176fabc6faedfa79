/**
 * The request body of a tracking API call as every endpoint reads it, and the answer to an error: shared by the
 * dispatcher (dispatch.ts, on the server's main thread) and the ingest worker (ingest-worker.ts, log-batch calls on a
 * thread of their own), so both parse and refuse alike. Kept apart from dispatch.ts so the worker's bundle does not
 * take every endpoint in.
 */
import { MlflowError, mlflowErrorOf } from "./errors";

export type MlflowAnswer = { status: number; body: unknown; headers?: Record<string, string> };

/** Query parameters as MLflow's GET handlers read them (repeated fields such as order_by become lists). */
function queryBody(query: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of new Set(query.keys())) {
    const all = query.getAll(key);
    const k = key.replace(/\[\]$/, "");
    out[k] = k === "order_by" || k === "experiment_ids" || all.length > 1 ? all : all[0];
  }
  return out;
}

/** The parsed body of a call (GET: its query); INVALID_PARAMETER_VALUE when it is not a JSON object. */
export function callBody(call: { method: string; query: URLSearchParams; bodyText: string | null }): unknown {
  if (call.method === "GET" || (call.method === "DELETE" && (call.bodyText ?? "").trim() === "")) return queryBody(call.query);
  const text = call.bodyText ?? "";
  if (text.trim() === "") return {};
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch (err) {
    throw new MlflowError("INVALID_PARAMETER_VALUE", `The request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof body === "string") {
    // Older MLflow clients double-encode their JSON as a string (handlers.py does the same second decode).
    try {
      body = JSON.parse(body) as unknown;
    } catch {
      throw new MlflowError("INVALID_PARAMETER_VALUE", "The request body is a JSON string that is not JSON itself");
    }
  }
  if (body === null || typeof body !== "object" || Array.isArray(body))
    throw new MlflowError("INVALID_PARAMETER_VALUE", "The request body must be a JSON object");
  return body;
}

/** The answer to an error thrown while answering a call (unexpected ones are logged: 500 INTERNAL_ERROR). */
export function errorAnswer(err: unknown): MlflowAnswer {
  const e = mlflowErrorOf(err);
  if (e.status === 500) console.error("mlflow api:", err);
  return { status: e.status, body: e.body };
}
