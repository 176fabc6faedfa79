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
 * - The heavy work (content check, the whole ledger into events.jsonl, tar) runs in a worker thread
 *   (server/audit/report/export-in-worker.ts); this thread records the export and streams the tar from a temp
 *   file, removed when the stream closes. Two exports at a time; more get 429 with Retry-After. On PostgreSQL the
 *   worker reads a copy of one snapshot of the store (server/audit/report/export-pg-copy.ts) and this thread records
 *   on the store.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Db } from "@/db/client";
import type { Store } from "@/db/store";
import type { AuditKeys } from "@/server/audit/keys";
import type { SignedInActor } from "@/server/app-context/service-context";
import { Readable } from "node:stream";
import { bundleName } from "@/server/audit/report/bundle-layout";
import { ExportBusyError, exportReportInWorker, reserveExportSlot, type ExportSlot } from "@/server/audit/report/export-in-worker";
import { crossOriginRefusal } from "./same-origin";
import { asRouteCaller, type RouteCaller } from "./route-session";
import { httpErrorOf } from "./domain-error-status";

const text = (status: number, message: string, headers: Record<string, string> = {}) =>
  new Response(message, { status, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers } });

/** GET (and HEAD): refused without side effects, saying how to export. */
export function reportExportGet(): Response {
  return text(
    405,
    "Exporting a report records it in the audit ledger, so it takes a POST from this site: use Preview report or Download bundle on the report page, or `npm run cli -- export`.",
    { allow: "POST" },
  );
}

/** `caller`: the route's RouteCaller (server/http/route-session.ts), or a signed-in user / null (tests). */
export async function reportExportPost(
  services: { db: Store | Db; auditKeys: AuditKeys; dataDir: string },
  req: Request,
  caller: RouteCaller | SignedInActor | null,
  modelVersionIdParam: string,
): Promise<Response> {
  const crossOrigin = crossOriginRefusal(req);
  if (crossOrigin) return text(403, crossOrigin);
  const { user, refusal } = asRouteCaller(caller);
  if (refusal) return text(refusal.status, refusal.message);
  const id = Number(modelVersionIdParam);
  if (!Number.isInteger(id) || id < 1) return text(400, "model version id must be a whole number");
  const format = new URL(req.url).searchParams.get("format") ?? "tar";
  if (format !== "tar" && format !== "html") return text(400, `unknown format "${format.slice(0, 40)}" (use tar or html)`);
  // The slot is taken before the first await: a third request that arrives while two run is refused, whatever order
  // the file system finishes the temp folders in.
  let slot: ExportSlot;
  try {
    slot = reserveExportSlot();
  } catch (err) {
    if (err instanceof ExportBusyError) return text(429, err.message, { "retry-after": String(err.retryAfterSeconds) });
    throw err;
  }
  let tmp: string | undefined;
  let handedOver = false; // once the tar streams out, the stream removes the folder when it closes
  try {
    tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), "runledger-report-"));
    const outDir = path.join(tmp, "bundle");
    if (format === "html") {
      const r = await exportReportInWorker(services, user, id, { outDir, slot });
      return new Response(await fs.promises.readFile(path.join(r.dir, "report.html")), {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-store",
          "x-runledger-export-seq": String(r.exportEventSeq),
        },
      });
    }
    const tarPath = path.join(tmp, "bundle.tar");
    const r = await exportReportInWorker(services, user, id, { outDir, tar: { path: tarPath }, slot });
    const size = (await fs.promises.stat(tarPath)).size;
    const file = fs.createReadStream(tarPath);
    const folder = tmp;
    file.once("close", () => void fs.promises.rm(folder, { recursive: true, force: true }));
    handedOver = true;
    return new Response(Readable.toWeb(file) as ReadableStream<Uint8Array>, {
      headers: {
        "content-type": "application/x-tar",
        "content-length": String(size),
        "content-disposition": `attachment; filename="${bundleName(r.model, r.version)}.tar"`,
        "cache-control": "no-store",
        "x-runledger-export-seq": String(r.exportEventSeq),
      },
    });
  } catch (err) {
    if (err instanceof ExportBusyError) return text(429, err.message, { "retry-after": String(err.retryAfterSeconds) });
    const mapped = httpErrorOf(err);
    if (mapped.status !== 500) return text(mapped.status, mapped.message, mapped.headers);
    // Errors from the export worker arrive as plain errors (their class does not cross the thread): match the text.
    const message = (err as Error).message;
    return text(/was not found/.test(message) ? 404 : 500, message);
  } finally {
    slot.release(); // a no-op when the export already released it; frees the slot if mkdtemp failed before it started
    if (!handedOver && tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}
