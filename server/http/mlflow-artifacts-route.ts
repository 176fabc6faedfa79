/**
 * MLflow's artifact proxy, /api/2.0/mlflow-artifacts/artifacts/… (server/mlflow/artifacts.ts has the rules):
 * PUT <experiment_id>/<run_id>/artifacts/<path> uploads one file (the raw body, any Content-Type), GET of the same
 * path downloads it (its hash checked by the store), GET artifacts?path=<dir> lists a directory.
 *
 * The token and the caller's role and the run are checked before the body is read; the body is streamed to a temp
 * file in the data directory while hashed (never held whole in memory), at most MLFLOW_ARTIFACT_MAX_BYTES (413
 * INVALID_PARAMETER_VALUE past it), then recorded with its run.log event, the run and path checked again then, and
 * moved into the artifact store under its sha256 (on PostgreSQL copied into its chunks, re-hashed while copied) in
 * the record's transaction (recordArtifact): a refused upload (a missing or bad token, an auditor, a bad path, an
 * unknown or deleted run, a body over the limit, other bytes at a logged path) leaves no bytes in the artifact store,
 * and the temp file is removed whatever the outcome.
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import type { AnyAppServices } from "@/server/app-context/app-services";
import { applyCheckpointPolicy } from "@/server/audit/checkpoint-policy";
import { authenticateMlflow, type MlflowAnswer } from "@/server/mlflow/dispatch";
import { mlflowErrorOf } from "@/server/mlflow/errors";
import { checkUpload, listProxy, readArtifact, recordArtifact } from "@/server/mlflow/artifacts";
import { MLFLOW_ARTIFACT_MAX_BYTES } from "@/contracts/mlflow/types";
import { uploadTempDir } from "@/server/datasets/service";
import { BodyTooLargeError, receiveBodyToFile } from "@/server/datasets/upload/receive-body";
import { ArtifactIntegrityError } from "@/server/artifacts/store";

const json = (a: MlflowAnswer): Response =>
  new Response(JSON.stringify(a.body), {
    status: a.status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...(a.headers ?? {}) },
  });

const errorAnswer = (err: unknown): Response => {
  if (err instanceof ArtifactIntegrityError) {
    console.error("mlflow artifacts:", err);
    return json({
      status: 500,
      body: {
        error_code: "INTERNAL_ERROR",
        message: `The stored file does not match its recorded sha256 and is not served: ${err.message}`,
      },
    });
  }
  const e = mlflowErrorOf(err);
  if (e.status === 500) console.error("mlflow artifacts:", err);
  return json({ status: e.status, body: e.body });
};

export async function handleMlflowArtifactsRequest(services: AnyAppServices, req: Request, segments: string[]): Promise<Response> {
  const [head, ...rest] = segments;
  const method = req.method;
  if (head !== "artifacts" || !["GET", "PUT"].includes(method) || (method === "PUT" && rest.length === 0)) {
    await req.body?.cancel().catch(() => undefined);
    return json({
      status: 404,
      body: { error_code: "ENDPOINT_NOT_FOUND", message: `No API endpoint ${method} /api/2.0/mlflow-artifacts/${segments.join("/")}` },
    });
  }
  const caller = await authenticateMlflow(services, req.headers.get("authorization"));
  if ("status" in caller) {
    await req.body?.cancel().catch(() => undefined);
    return json(caller);
  }
  try {
    if (method === "GET") {
      if (rest.length === 0) return json({ status: 200, body: await listProxy(caller, new URL(req.url).searchParams.get("path") ?? "") });
      const { row, bytes } = await readArtifact(caller, rest.join("/"));
      return new Response(Buffer.from(bytes), {
        status: 200,
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(row.bytes),
          "content-disposition": `attachment; filename="${path.posix.basename(row.path).replace(/[^\w.-]/g, "_")}"`,
          "x-content-sha256": row.sha256,
          "cache-control": "no-store",
        },
      });
    }
    await checkUpload(caller, rest.join("/"));
    const declared = Number(req.headers.get("content-length") ?? NaN);
    if (Number.isFinite(declared) && declared > MLFLOW_ARTIFACT_MAX_BYTES) {
      await req.body?.cancel().catch(() => undefined);
      return tooLarge();
    }
    const tmp = path.join(uploadTempDir(services.dataDir), `artifact-${randomBytes(12).toString("hex")}`);
    let received: { bytes: number; sha256: string };
    try {
      received = req.body ? await receiveBodyToFile(req.body, tmp, { maxBytes: MLFLOW_ARTIFACT_MAX_BYTES }) : emptyFile(tmp);
    } catch (e) {
      if (e instanceof BodyTooLargeError) return tooLarge();
      throw e;
    }
    try {
      // Flushed before the record's transaction, so the move into the file store inside it does not wait for the disk.
      syncFile(tmp);
      // Stored only once the record's checks pass, in its transaction: a refused upload leaves no bytes behind.
      await recordArtifact(caller, rest.join("/"), { path: tmp, ...received });
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    await applyCheckpointPolicy(services);
    return json({ status: 200, body: {} });
  } catch (err) {
    await req.body?.cancel().catch(() => undefined);
    return errorAnswer(err);
  }
}

function syncFile(file: string): void {
  const fd = fs.openSync(file, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function emptyFile(file: string): { bytes: number; sha256: string } {
  fs.writeFileSync(file, new Uint8Array(0), { flag: "wx", mode: 0o600 });
  return { bytes: 0, sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" };
}

const tooLarge = () =>
  json({
    status: 413,
    body: {
      error_code: "INVALID_PARAMETER_VALUE",
      message: `The artifact is larger than the limit of ${MLFLOW_ARTIFACT_MAX_BYTES} bytes for one upload`,
    },
  });
