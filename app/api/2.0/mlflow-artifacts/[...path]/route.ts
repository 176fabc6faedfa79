/**
 * /api/2.0/mlflow-artifacts/*: MLflow's artifact proxy (upload, download, list of a run's artifacts through the
 * content-addressed store) for training scripts with a personal access token; server/http/mlflow-artifacts-route.ts.
 */
import "server-only";
import { getAppServices } from "@/server/app-context/app-services";
import { handleMlflowArtifactsRequest } from "@/server/http/mlflow-artifacts-route";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

type Ctx = { params: Promise<{ path: string[] }> };

export async function GET(req: Request, { params }: Ctx): Promise<Response> {
  return handleMlflowArtifactsRequest(await getAppServices(), req, (await params).path);
}

export async function PUT(req: Request, { params }: Ctx): Promise<Response> {
  return handleMlflowArtifactsRequest(await getAppServices(), req, (await params).path);
}
