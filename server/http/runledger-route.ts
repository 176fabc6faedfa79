/**
 * The HTTP side of Runledger's tracking-API extension (/api/2.0/runledger/[...path]; server/mlflow/runledger-dispatch.ts
 * does the rest): as server/http/mlflow-route.ts, a POST must be JSON and at most the JSON API limit (1 MiB); after
 * a write it signs a ledger checkpoint when the policy says one is due.
 */
import type { AnyAppServices } from "@/server/app-context/app-services";
import { applyCheckpointPolicy } from "@/server/audit/checkpoint-policy";
import { dispatchRunledger } from "@/server/mlflow/runledger-dispatch";
import { DEFAULT_JSON_BODY_LIMIT, limitRequestBody } from "./body-limit";

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "cache-control": "no-store", ...headers } });

export async function handleRunledgerRequest(services: AnyAppServices, req: Request, segments: string[]): Promise<Response> {
  let bodyText: string | null = null;
  const withBody = req.method === "POST";
  if (withBody) {
    const type = (req.headers.get("content-type") ?? "").toLowerCase();
    if (type && !type.startsWith("application/json"))
      return json(400, {
        error_code: "INVALID_PARAMETER_VALUE",
        message: "Bad Request. Content-Type must be one of ['application/json'].",
      });
    const limited = await limitRequestBody(req, DEFAULT_JSON_BODY_LIMIT);
    if (limited instanceof Response)
      return json(413, {
        error_code: "INVALID_PARAMETER_VALUE",
        message: `The request body is over the ${Math.round(DEFAULT_JSON_BODY_LIMIT / 1024)} KiB limit for API calls`,
      });
    bodyText = await limited.text();
  }
  const answer = await dispatchRunledger(services, {
    method: req.method,
    path: segments.join("/"),
    query: new URL(req.url).searchParams,
    authorization: req.headers.get("authorization"),
    bodyText,
  });
  if (withBody && answer.status < 500) applyCheckpointPolicy(services);
  return json(answer.status, answer.body, answer.headers);
}
