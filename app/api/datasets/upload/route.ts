/**
 * POST /api/datasets/upload: streaming CSV upload (raw body). The caller comes from the session cookie
 * (server/http/route-session.ts: 401, or 403 until a reset password is changed); server/http/dataset-upload.ts
 * does the rest (documented there), on either store (issue 16: on PostgreSQL the bytes go to its artifact store).
 */
import "server-only";
import { getAppServices } from "@/server/app-context/app-services";
import { routeCaller } from "@/server/http/route-session";
import { handleDatasetUpload } from "@/server/http/dataset-upload";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function POST(req: Request): Promise<Response> {
  const services = await getAppServices();
  return handleDatasetUpload(services, req, await routeCaller(services.db, req));
}
