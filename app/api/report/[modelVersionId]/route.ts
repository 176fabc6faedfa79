/**
 * The auditor's report of one model version, for the browser. POST ?format=tar (default) downloads the bundle as a
 * .tar (unpack, then `npm run cli -- audit verify --bundle DIR`); POST ?format=html returns the report page itself
 * (the preview iframe is the target of a form post). Either way the export is recorded ("audit.export") and a
 * checkpoint is signed, so what is shown is exactly what the ledger bound. GET exports nothing (405): a GET must
 * have no side effects. Same-origin check, session and format: server/http/report-export.ts.
 */
import "server-only";
import { getAppServices } from "@/server/app-context/app-services";
import { routeCaller } from "@/server/http/route-session";
import { reportExportGet, reportExportPost } from "@/server/http/report-export";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export function GET(): Response {
  return reportExportGet();
}

export async function POST(req: Request, { params }: { params: Promise<{ modelVersionId: string }> }): Promise<Response> {
  const services = await getAppServices(); // either store: on PostgreSQL the export worker reads a copy of a snapshot
  return reportExportPost(services, req, await routeCaller(services.db, req), (await params).modelVersionId);
}
