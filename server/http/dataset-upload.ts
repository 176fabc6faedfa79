/**
 * POST /api/datasets/upload: a CSV dataset upload as a raw request body (Content-Type text/csv), its settings in
 * the query string (name, labelColumn, kind, imageShape=H,W,C, textColumn, licence, origin, uploadId).
 *
 * Order of checks (each refusal happens before the body is read): same origin (CSRF), signed in (401; a user who
 * must change their password: 403, server/http/route-session.ts), engineer
 * (403), settings (400), Content-Length over the byte cap (413), uploads at once (429 + Retry-After). Then the body
 * streams to a temp file while hashed (passing the cap mid-stream: 413), a worker thread checks it, and the dataset
 * is registered. Replies are JSON: the dataset row, or { error: { message } }.
 * Invariants: the handler never holds the body whole nor parses it on the main thread; the temp file is removed
 * in every outcome (moved into the artifact store on success). On PostgreSQL (issue 16) the body is received the same
 * way in this machine's local directory, then copied into the artifact store in PostgreSQL and the dataset recorded
 * there: the same checks, limits and answers, and a refusal writes nothing to either.
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { httpErrorOf } from "./domain-error-status";
import type { Db } from "@/db/client";
import type { Store } from "@/db/store";
import type { SignedInActor } from "@/server/app-context/service-context";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { uploadDatasetFile, uploadMetaSchema, uploadTempDir, type UploadDatasetMeta } from "@/server/datasets/service";
import { crossOriginRefusal, refusedResponse } from "./same-origin";
import { asRouteCaller, type RouteCaller } from "./route-session";
import { tooLargeError } from "@/trainer/data/csv-scan";
import type { CsvCaps } from "@/trainer/data/csv-scan";
import { MAX_CONCURRENT_UPLOADS, UPLOAD_LIMIT_SETTINGS, uploadLimits } from "@/server/datasets/upload/limits";
import { BodyTooLargeError, receiveBodyToFile } from "@/server/datasets/upload/receive-body";
import { reportUploadProgress } from "@/server/datasets/upload/progress";

const g = globalThis as unknown as { __runledgerUploadsActive?: { n: number } };
const active = (g.__runledgerUploadsActive ??= { n: 0 });

function json(status: number, value: unknown): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
}

/** The upload's settings from the query string, or the message saying which one is wrong. */
export function uploadMetaFromQuery(params: URLSearchParams): { ok: true; meta: UploadDatasetMeta } | { ok: false; message: string } {
  const opt = (k: string) => params.get(k) ?? undefined;
  const shape = params.get("imageShape");
  const raw = {
    name: params.get("name") ?? "",
    labelColumn: opt("labelColumn") || undefined,
    origin: opt("origin"),
    licence: opt("licence"),
    kind: opt("kind") || undefined,
    imageShape: shape ? shape.split(",").map((v) => (v.trim() === "" ? Number.NaN : Number(v))) : undefined,
    textColumn: opt("textColumn") || undefined,
  };
  const parsed = uploadMetaSchema.safeParse(raw);
  if (parsed.success) return { ok: true, meta: parsed.data };
  return { ok: false, message: parsed.error.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`).join("; ") };
}

/**
 * What the upload needs of the services, on either store (issue 16): the store, its artifact store (the data
 * directory's files, or PostgreSQL's chunks) and this machine's local directory, where the body is received first.
 */
export type DatasetUploadServices = { db: Store | Db; artifacts: AnyArtifactStore; dataDir: string };

/** `caller`: the route's RouteCaller (server/http/route-session.ts), or a signed-in user / null (tests, scripts). */
export async function handleDatasetUpload(
  services: DatasetUploadServices,
  req: Request,
  caller: RouteCaller | SignedInActor | null,
  opts: { limits?: CsvCaps } = {},
): Promise<Response> {
  const crossOrigin = crossOriginRefusal(req);
  if (crossOrigin) return refusedResponse(crossOrigin, 403);
  const { user, refusal } = asRouteCaller(caller);
  if (refusal) return refusedResponse(refusal.message, refusal.status);
  if (user.role !== "engineer") return refusedResponse(`a ${user.role} cannot upload datasets (needs: engineer)`, 403);
  const url = new URL(req.url);
  const meta = uploadMetaFromQuery(url.searchParams);
  if (!meta.ok) return refusedResponse(meta.message, 400);
  const uploadIdRaw = url.searchParams.get("uploadId");
  const uploadId = uploadIdRaw && /^[A-Za-z0-9_-]{8,64}$/.test(uploadIdRaw) ? uploadIdRaw : null;
  const limits = opts.limits ?? uploadLimits();
  const declared = req.headers.get("content-length");
  const declaredBytes = declared !== null && /^\d+$/.test(declared) ? Number(declared) : null;
  if (declaredBytes !== null && declaredBytes > limits.maxBytes)
    return refusedResponse(tooLargeError(declaredBytes, limits.maxBytes, UPLOAD_LIMIT_SETTINGS.maxBytes).message, 413);
  if (!req.body) return refusedResponse("choose a CSV file: the request has no body", 400);
  if (active.n >= MAX_CONCURRENT_UPLOADS)
    return refusedResponse(`${active.n} uploads are being processed; try again in a few seconds`, 429, { "retry-after": "5" });

  active.n++;
  const progress = (patch: Parameters<typeof reportUploadProgress>[2]) => reportUploadProgress(user.id, uploadId, patch);
  const file = path.join(uploadTempDir(services.dataDir), `upload-${randomBytes(8).toString("hex")}.csv`);
  try {
    progress({ phase: "receiving", totalBytes: declaredBytes, receivedBytes: 0, message: null });
    let lastReport = 0;
    const received = await receiveBodyToFile(req.body, file, {
      maxBytes: limits.maxBytes,
      onBytes: (bytes) => {
        if (bytes - lastReport < 1024 * 1024) return;
        lastReport = bytes;
        progress({ receivedBytes: bytes });
      },
    });
    progress({ phase: "checking", receivedBytes: received.bytes, totalBytes: received.bytes });
    const row = await uploadDatasetFile(
      { ...services, actor: user },
      {
        file,
        sha256: received.sha256,
        meta: meta.meta,
        limits,
        signal: req.signal,
        onProgress: (p) => progress({ checkedBytes: p.bytes, rows: p.rows }),
      },
    );
    progress({ phase: "done", checkedBytes: received.bytes, rows: row.rowCount });
    return json(200, row);
  } catch (e) {
    const { status, message } = describeFailure(e, limits);
    progress({ phase: "failed", message });
    return refusedResponse(message, status);
  } finally {
    active.n--;
    fs.rmSync(file, { force: true });
  }
}

function describeFailure(e: unknown, limits: CsvCaps): { status: number; message: string } {
  if (e instanceof BodyTooLargeError)
    return {
      status: 413,
      message: `The file is larger than the limit of ${limits.maxBytes} bytes (server setting ${UPLOAD_LIMIT_SETTINGS.maxBytes})`,
    };
  const { status, message } = httpErrorOf(e);
  return { status, message };
}
