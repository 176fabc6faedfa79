/**
 * The tracking API's dispatcher: one MLflow REST 2.0 call (method, path under /api/2.0/mlflow/, query, the
 * Authorization header, body text) → an HTTP status and a JSON body. Transport-free (the route handler,
 * server/http/mlflow-route.ts, reads the request and writes the response), so tests and benches can drive it too.
 *
 * Order of checks (what a caller sees first): unknown endpoint or method → 404 ENDPOINT_NOT_FOUND; missing or bad
 * token → 401 UNAUTHENTICATED; body not JSON → 400 INVALID_PARAMETER_VALUE; then the endpoint's own checks (role:
 * 403 PERMISSION_DENIED for a write by a non-engineer). Authentication: `Authorization: Bearer <token>`, or Basic with
 * the token as password (MLflow clients send MLFLOW_TRACKING_USERNAME/PASSWORD that way; the user name is ignored).
 */
import type { AnyAppServices } from "@/server/app-context/app-services";
import type { Db } from "@/db/client";
import type { Store } from "@/db/store";
import { actorForToken, TOKEN_REFUSALS } from "@/server/auth/tokens";
import { MLFLOW_GET_ENDPOINTS, MLFLOW_ROUTES, type MlflowPath } from "@/contracts/mlflow/types";
import { MlflowError } from "./errors";
import { callBody, errorAnswer, type MlflowAnswer } from "./call-body";
import type { MlflowCtx, MlflowStoreCtx } from "./common";
import * as experiments from "./experiments";
import * as runs from "./runs";
import * as logging from "./logging";
import { searchRuns } from "./search-runs";
import { getMetricHistory } from "./history";
import { logInputs } from "./inputs";
import { listArtifacts } from "./artifacts";
import * as registry from "./registry";

/** An endpoint: it runs on the caller's store (SQLite or PostgreSQL, issue 16) and may answer a promise. */
type Handler = (ctx: MlflowStoreCtx, body: unknown) => unknown;

export const MLFLOW_HANDLERS: Record<MlflowPath, Handler> = {
  "experiments/create": experiments.createExperiment,
  "experiments/get": experiments.getExperiment,
  "experiments/get-by-name": experiments.getExperimentByName,
  "experiments/search": experiments.searchExperiments,
  "experiments/update": experiments.updateExperiment,
  "experiments/delete": experiments.deleteExperiment,
  "experiments/restore": experiments.restoreExperiment,
  "experiments/set-experiment-tag": experiments.setExperimentTag,
  "runs/create": runs.createRun,
  "runs/get": runs.getRun,
  "runs/update": runs.updateRun,
  "runs/delete": runs.deleteRun,
  "runs/restore": runs.restoreRun,
  "runs/search": searchRuns,
  "runs/log-metric": logging.logMetric,
  "runs/log-parameter": logging.logParam,
  "runs/log-batch": logging.logBatchOnStore,
  "runs/log-inputs": logInputs,
  "runs/set-tag": logging.setTag,
  "runs/delete-tag": logging.deleteTag,
  "metrics/get-history": getMetricHistory,
  "artifacts/list": listArtifacts,
  "registered-models/create": registry.createRegisteredModel,
  "registered-models/get": registry.getRegisteredModel,
  "registered-models/search": registry.searchRegisteredModels,
  "registered-models/update": registry.updateRegisteredModel,
  "registered-models/delete": registry.refuseModelRemoval("delete registered models"),
  "registered-models/rename": registry.refuseModelRemoval("rename registered models"),
  "registered-models/alias": registry.setRegisteredModelAlias,
  "registered-models/alias#delete": registry.deleteRegisteredModelAlias,
  "registered-models/alias#get": registry.getModelVersionByAlias,
  "model-versions/create": registry.createModelVersion,
  "model-versions/get": registry.getModelVersion,
  "model-versions/search": registry.searchModelVersions,
  "model-versions/update": registry.updateModelVersion,
  "model-versions/delete": registry.refuseModelRemoval("delete model versions"),
  "model-versions/get-download-uri": registry.getModelVersionDownloadUri,
};

/** (method, URL path) → endpoint: one URL may serve several endpoints by method (registered-models/alias). */
function endpointOf(method: string, path: string): MlflowPath | undefined {
  for (const [endpoint, r] of Object.entries(MLFLOW_ROUTES)) if (r.path === path && r.method === method) return endpoint as MlflowPath;
  if (path.includes("#") || !Object.hasOwn(MLFLOW_HANDLERS, path)) return undefined;
  const p = path as MlflowPath;
  if (MLFLOW_ROUTES[p]) return undefined; // served only by its own method (matched above)
  const isGet = MLFLOW_GET_ENDPOINTS.includes(p);
  return (isGet ? method === "GET" : method === "POST" || (method === "GET" && ALSO_GET.has(p))) ? p : undefined;
}

/** GET endpoints that MLflow also serves by GET (search endpoints accept both). */
const ALSO_GET = new Set<string>(["experiments/search"]);

export type MlflowCall = {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string | null;
  bodyText: string | null;
};
export type { MlflowAnswer };

/** The token of an Authorization header: Bearer, or Basic with the token as password. */
export function tokenOf(authorization: string | null): string | null {
  if (!authorization) return null;
  const m = /^(Bearer|Basic)\s+(\S+)\s*$/i.exec(authorization);
  if (!m) return null;
  if (m[1]!.toLowerCase() === "bearer") return m[2]!;
  const decoded = Buffer.from(m[2]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon >= 0 ? decoded.slice(colon + 1) : null;
}

/** What the dispatcher needs of the services: the app's (SQLite handle), or the same with a Store (tests, issue 16). */
export type MlflowServices = Omit<AnyAppServices, "db"> & { db: Store | Db };

export async function dispatchMlflow(services: MlflowServices, call: MlflowCall): Promise<MlflowAnswer> {
  try {
    const path = call.path.replace(/^\/+|\/+$/g, "");
    const endpoint = endpointOf(call.method, path);
    const handler = endpoint ? MLFLOW_HANDLERS[endpoint] : undefined;
    if (!handler)
      throw new MlflowError("ENDPOINT_NOT_FOUND", `No API endpoint ${call.method} /api/2.0/mlflow/${path} (see server/mlflow/README.md)`);

    const caller = await authenticateMlflow(services, call.authorization);
    if ("status" in caller) return caller;

    const body = callBody(call);
    return { status: 200, body: await handler(caller, body) };
  } catch (err) {
    return errorAnswer(err);
  }
}

/** The caller of a request (the token's user), or the 401 answer for a missing or bad token or a disabled user. */
export async function authenticateMlflow<S extends MlflowServices>(
  services: S,
  authorization: string | null,
): Promise<(S & { actor: MlflowCtx["actor"] }) | MlflowAnswer> {
  const token = tokenOf(authorization);
  if (!token) return unauthenticated("an access token is required: send Authorization: Bearer <token> (create one on your account page)");
  const who = await actorForToken(services.db, token); // refuses a disabled user's token too (read with the token)
  if ("refusal" in who) return unauthenticated(TOKEN_REFUSALS[who.refusal]);
  return { ...services, actor: who.actor };
}

function unauthenticated(message: string): MlflowAnswer {
  return {
    status: 401,
    body: { error_code: "UNAUTHENTICATED", message },
    headers: { "www-authenticate": 'Bearer realm="runledger", Basic realm="runledger"' },
  };
}
