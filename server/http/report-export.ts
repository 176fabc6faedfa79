/**
 * Exporting the auditor's report of one model version from the browser (app/api/report/[modelVersionId]/route.ts).
 *
 * Invariants:
 * - Only POST exports: an export records an "audit.export" event and signs a checkpoint, so a GET (a link or an
 *   <img> on another site riding the victim's cookie) must change nothing; GET answers 405 and writes nothing.
 * - POST is CSRF-safe: same origin only (server/http/same-origin.ts), then the session (route-session.ts: 401, or
 *   403 for a user who must change their password), then the export.
 * - The format comes from the query string (?format=tar, the default, or ?format=html); the body is never read, so
 *   a plain <form method="post"> works (its target may be the preview iframe).
 * - Any signed-in role may export (auditors included): exporting changes no project data.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Db } from "@/db/client";
import type { AuditKeys } from "@/server/audit/keys";
import type { SignedInActor } from "@/server/services/service-context";
import { exportReportBundle, exportReportTar } from "@/server/audit/report/export-bundle";
import { crossOriginRefusal } from "./same-origin";
import { asRouteCaller, type RouteCaller } from "./route-session";

const text = (status: number, message: string, headers: Record<string, string> = {}) =>
  new Response(message, { status, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers } });

/** GET (and HEAD): refused without side effects, saying how to export. */
export function reportExportGet(): Response {
  return text(405, "Exporting a report records it in the audit ledger, so it takes a POST from this site: use Preview report or Download bundle on the report page, or `npm run cli -- export`.", { allow: "POST" });
}

/** `caller`: the route's RouteCaller (server/http/route-session.ts), or a signed-in user / null (tests). */
export function reportExportPost(services: { db: Db; auditKeys: AuditKeys }, req: Request, caller: RouteCaller | SignedInActor | null, modelVersionIdParam: string): Response {
  const crossOrigin = crossOriginRefusal(req);
  if (crossOrigin) return text(403, crossOrigin);
  const { user, refusal } = asRouteCaller(caller);
  if (refusal) return text(refusal.status, refusal.message);
  const id = Number(modelVersionIdParam);
  if (!Number.isInteger(id) || id < 1) return text(400, "model version id must be a whole number");
  const format = new URL(req.url).searchParams.get("format") ?? "tar";
  if (format !== "tar" && format !== "html") return text(400, `unknown format "${format.slice(0, 40)}" (use tar or html)`);
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
    const { fileName, bytes, result } = exportReportTar(services, user, id);
    return new Response(new Uint8Array(bytes), {
      headers: { "content-type": "application/x-tar", "content-disposition": `attachment; filename="${fileName}"`, "cache-control": "no-store", "x-runledger-export-seq": String(result.exportEventSeq) },
    });
  } catch (err) {
    const message = (err as Error).message;
    return text(/was not found/.test(message) ? 404 : 500, message);
  }
}
