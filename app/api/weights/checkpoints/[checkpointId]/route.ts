/**
 * GET: a checkpoint's weights, as a TF.js model ZIP (default) or the recorded file (?format=rlw1); any signed-in
 * role, no side effects. Session, formats, hash checks and headers: server/http/weights-download.ts.
 */
import "server-only";
import { getAppServices } from "@/server/app-context/app-services";
import { routeCaller } from "@/server/http/route-session";
import { weightsDownloadGet } from "@/server/http/weights-download";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function GET(req: Request, { params }: { params: Promise<{ checkpointId: string }> }): Promise<Response> {
  const services = await getAppServices();
  return weightsDownloadGet(services, req, await routeCaller(services.db, req), "checkpoint", (await params).checkpointId);
}
