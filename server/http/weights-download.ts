/**
 * GET /api/weights/checkpoints/[checkpointId] and /api/weights/model-versions/[modelVersionId]: a checkpoint's
 * weights as a TF.js model ZIP (?format=tfjs, the default) or the recorded weights file (?format=rlw1); what is in
 * each and the hash checks: server/runs/weights-download.ts.
 *
 * Invariants:
 * - A GET with no side effect: nothing is recorded or written; any signed-in role may download (the session as in
 *   route-session.ts: 401 signed out, 403 for a user who must change their password).
 * - Headers: Content-Disposition attachment with the file name, X-Content-SHA256 (the SHA-256 of the body) and
 *   X-Runledger-Weights-SHA256 (the checkpoint's recorded weights hash, the one the pages show).
 * - Errors are plain text with the status of their DomainError kind (a corrupted or missing file: 409).
 */
import { httpErrorOf } from "./domain-error-status";
import { asRouteCaller, type RouteCaller } from "./route-session";
import type { SignedInActor } from "@/server/app-context/service-context";
import type { Db } from "@/db/client";
import type { Store } from "@/db/store";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import {
  checkpointWeightsDownload,
  modelVersionWeightsDownload,
  WEIGHTS_FORMATS,
  type WeightsFormat,
} from "@/server/runs/weights-download";

const text = (status: number, message: string, headers: Record<string, string> = {}) =>
  new Response(message, { status, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers } });

export async function weightsDownloadGet(
  services: { db: Store | Db; artifacts: AnyArtifactStore },
  req: Request,
  caller: RouteCaller | SignedInActor | null,
  subject: "checkpoint" | "modelVersion",
  idParam: string,
): Promise<Response> {
  const { refusal } = asRouteCaller(caller);
  if (refusal) return text(refusal.status, refusal.message);
  const id = Number(idParam);
  // A safe integer: PostgreSQL would refuse a larger one as a bigint parameter instead of finding no row.
  if (!Number.isSafeInteger(id) || id < 1)
    return text(400, `${subject === "checkpoint" ? "checkpoint" : "model version"} id must be a whole number`);
  const format = new URL(req.url).searchParams.get("format") ?? "tfjs";
  if (!(WEIGHTS_FORMATS as readonly string[]).includes(format))
    return text(400, `unknown format "${format.slice(0, 40)}" (use tfjs or rlw1)`);
  try {
    const d =
      subject === "checkpoint"
        ? await checkpointWeightsDownload(services, id, format as WeightsFormat)
        : await modelVersionWeightsDownload(services, id, format as WeightsFormat);
    return new Response(new Uint8Array(d.bytes), {
      headers: {
        "content-type": d.contentType,
        "content-length": String(d.bytes.byteLength),
        "content-disposition": `attachment; filename="${d.fileName}"`,
        "cache-control": "private, no-store",
        "x-content-sha256": d.sha256,
        "x-runledger-weights-sha256": d.weightsSha256,
      },
    });
  } catch (err) {
    const mapped = httpErrorOf(err);
    return text(mapped.status, mapped.message, mapped.headers);
  }
}
