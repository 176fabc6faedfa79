/**
 * The auditor's report of one model version, for the browser: GET ?format=tar (default) downloads the bundle as a
 * .tar (unpack, then `npm run cli -- audit verify --bundle DIR`); GET ?format=html returns the report page itself
 * (the preview). Either way the export is recorded ("audit.export") and a checkpoint is signed, so what is shown is
 * exactly what the ledger bound. Any signed-in role may export (auditors included); the session is checked here as
 * the tRPC context does.
 */
import "server-only";
import { getAppServices } from "@/server/app-services";
import { readCookie, SESSION_COOKIE } from "@/server/trpc/init";
import { userForSession } from "@/server/services/users";
import { exportReportTar, exportReportBundle } from "@/server/audit/report/export-bundle";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

const text = (status: number, message: string) => new Response(message, { status, headers: { "content-type": "text/plain; charset=utf-8" } });

export async function GET(req: Request, { params }: { params: Promise<{ modelVersionId: string }> }) {
  const services = getAppServices();
  const user = userForSession(services.db, readCookie(req.headers.get("cookie"), SESSION_COOKIE));
  if (!user) return text(401, "sign in first");
  const id = Number((await params).modelVersionId);
  if (!Number.isInteger(id) || id < 1) return text(400, "model version id must be a whole number");
  const format = new URL(req.url).searchParams.get("format") ?? "tar";
  try {
    if (format === "html") {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-report-"));
      try {
        const r = exportReportBundle(services, user, id, path.join(tmp, "bundle"));
        return new Response(fs.readFileSync(path.join(r.dir, "report.html")), { headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "x-runledger-export-seq": String(r.exportEventSeq) } });
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
    if (format !== "tar") return text(400, `unknown format "${format}" (use tar or html)`);
    const { fileName, bytes, result } = exportReportTar(services, user, id);
    return new Response(new Uint8Array(bytes), {
      headers: { "content-type": "application/x-tar", "content-disposition": `attachment; filename="${fileName}"`, "cache-control": "no-store", "x-runledger-export-seq": String(result.exportEventSeq) },
    });
  } catch (err) {
    const message = (err as Error).message;
    return text(/was not found/.test(message) ? 404 : 500, message);
  }
}
