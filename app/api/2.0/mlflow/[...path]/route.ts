/**
 * /api/2.0/mlflow/*: the MLflow-compatible tracking API (MLflow REST 2.0 shapes, error codes and limits), for
 * training scripts with a personal access token. server/http/mlflow-route.ts reads the request; the dispatcher and
 * one file per resource live in server/mlflow/ (documented there and in server/mlflow/README.md).
 */
import "server-only";
import { getAppServices } from "@/server/app-context/app-services";
import { handleMlflowRequest } from "@/server/http/mlflow-route";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

type Ctx = { params: Promise<{ path: string[] }> };

export async function GET(req: Request, { params }: Ctx): Promise<Response> {
  return handleMlflowRequest(await getAppServices(), req, (await params).path);
}

export async function POST(req: Request, { params }: Ctx): Promise<Response> {
  return handleMlflowRequest(await getAppServices(), req, (await params).path);
}

export async function PATCH(req: Request, { params }: Ctx): Promise<Response> {
  return handleMlflowRequest(await getAppServices(), req, (await params).path);
}

export async function DELETE(req: Request, { params }: Ctx): Promise<Response> {
  return handleMlflowRequest(await getAppServices(), req, (await params).path);
}
