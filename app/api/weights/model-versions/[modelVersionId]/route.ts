/**
 * GET: a model version's weights (those of the checkpoint it points at), as a TF.js model ZIP (default) or the
 * recorded file (?format=rlw1); any signed-in role, no side effects. Details: server/http/weights-download.ts.
 */
import "server-only";
import { getAppServices } from "@/server/app-context/app-services";
import { routeCaller } from "@/server/http/route-session";
import { weightsDownloadGet } from "@/server/http/weights-download";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function GET(req: Request, { params }: { params: Promise<{ modelVersionId: string }> }): Promise<Response> {
  const services = await getAppServices();
  return weightsDownloadGet(services, req, await routeCaller(services.db, req), "modelVersion", (await params).modelVersionId);
}
