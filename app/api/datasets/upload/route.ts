/**
 * POST /api/datasets/upload: streaming CSV upload (raw body). The session is read from the cookie here, as the tRPC
 * context does, before anything else; server/uploads/handle-upload.ts does the rest (documented there).
 */
import "server-only";
import { getAppServices } from "@/server/app-services";
import { readCookie, SESSION_COOKIE } from "@/server/trpc/init";
import { userForSession } from "@/server/services/users";
import { handleDatasetUpload } from "@/server/uploads/handle-upload";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function POST(req: Request): Promise<Response> {
  const services = getAppServices();
  const user = userForSession(services.db, readCookie(req.headers.get("cookie"), SESSION_COOKIE));
  return handleDatasetUpload(services, req, user);
}
