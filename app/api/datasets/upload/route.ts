/**
 * POST /api/datasets/upload: streaming CSV upload (raw body). The caller comes from the session cookie
 * (server/http/route-session.ts: 401, or 403 until a reset password is changed); server/http/dataset-upload.ts
 * does the rest (documented there).
 */
import "server-only";
import { getAppServices } from "@/server/app-context/app-services";
import { sqliteServicesOrResponse } from "@/server/app-context/sqlite-only";
import { routeCaller } from "@/server/http/route-session";
import { handleDatasetUpload } from "@/server/http/dataset-upload";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function POST(req: Request): Promise<Response> {
  const services = sqliteServicesOrResponse(await getAppServices(), "Dataset upload");
  if (services instanceof Response) return services;
  return handleDatasetUpload(services, req, await routeCaller(services.db, req));
}
