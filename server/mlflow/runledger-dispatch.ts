/**
 * The dispatcher of Runledger's extension of the tracking API (/api/2.0/runledger/…, contracts/mlflow/runledger.ts):
 * the same token authentication (authenticateMlflow), body parsing (call-body.ts) and MLflow error shape as
 * /api/2.0/mlflow/ (dispatch.ts), for the endpoints MLflow has no counterpart of. Transport-free: server/http/runledger-route.ts reads
 * the request and writes the answer.
 *
 * Order of checks: unknown endpoint or method → 404 ENDPOINT_NOT_FOUND; missing or bad token → 401 UNAUTHENTICATED;
 * body not a JSON object → 400 INVALID_PARAMETER_VALUE; then the endpoint's own checks.
 */
import type { AnyAppServices } from "@/server/app-context/app-services";
import { RUNLEDGER_ROUTES, type RunledgerPath } from "@/contracts/mlflow/runledger";
import { MlflowError } from "./errors";
import { callBody, errorAnswer } from "./call-body";
import type { MlflowStoreCtx } from "./common";
import { authenticateMlflow, type MlflowAnswer, type MlflowCall } from "./dispatch";
import { ackIntervention, pendingInterventionsOfRun, rejectScriptIntervention } from "./pilot";

/** An endpoint: it runs on the caller's store (SQLite or PostgreSQL, issue 16) and answers a promise. */
export const RUNLEDGER_HANDLERS: Record<RunledgerPath, (ctx: MlflowStoreCtx, body: unknown) => Promise<unknown>> = {
  "runs/pending-interventions": pendingInterventionsOfRun,
  "runs/ack-intervention": ackIntervention,
  "runs/reject-intervention": rejectScriptIntervention,
};

export async function dispatchRunledger(services: AnyAppServices, call: MlflowCall): Promise<MlflowAnswer> {
  try {
    const path = call.path.replace(/^\/+|\/+$/g, "");
    const endpoint = Object.hasOwn(RUNLEDGER_ROUTES, path) ? (path as RunledgerPath) : undefined;
    if (!endpoint || RUNLEDGER_ROUTES[endpoint] !== call.method)
      throw new MlflowError(
        "ENDPOINT_NOT_FOUND",
        `No API endpoint ${call.method} /api/2.0/runledger/${path} (see server/mlflow/README.md)`,
      );
    const caller = await authenticateMlflow(services, call.authorization);
    if ("status" in caller) return caller;
    return { status: 200, body: await RUNLEDGER_HANDLERS[endpoint](caller, callBody(call)) };
  } catch (err) {
    return errorAnswer(err);
  }
}
