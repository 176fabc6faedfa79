/**
 * /api/2.0/runledger/*: Runledger's extension of the tracking API (contracts/mlflow/runledger.ts), beside MLflow's
 * routes and with the same token authentication and error shape: a script reads the pending interventions of its
 * run and acknowledges those it applied (server/mlflow/pilot.ts; documented in server/mlflow/README.md).
 */
import "server-only";
import { getAppServices } from "@/server/app-context/app-services";
import { handleRunledgerRequest } from "@/server/http/runledger-route";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

type Ctx = { params: Promise<{ path: string[] }> };

export async function GET(req: Request, { params }: Ctx): Promise<Response> {
  return handleRunledgerRequest(await getAppServices(), req, (await params).path);
}

export async function POST(req: Request, { params }: Ctx): Promise<Response> {
  return handleRunledgerRequest(await getAppServices(), req, (await params).path);
}
