/**
 * A typed client for Runledger's MLflow-compatible tracking API (/api/2.0/mlflow/), for TypeScript training scripts
 * and the contract tests. Uses the global fetch only (Node 20+, browsers); imports nothing from the server.
 *
 *   const ml = new MlflowClient("http://127.0.0.1:3000", process.env.RUNLEDGER_TOKEN!);
 *   const { experiment_id } = await ml.call("experiments/create", { name: "my-experiment" });
 *   const { run } = await ml.call("runs/create", { experiment_id, tags: [{ key: "runledger.rationale", value: "why" }] });
 *   await ml.call("runs/log-batch", { run_id: run.info.run_id, params: [{ key: "lr", value: "0.01" }], metrics: [...] });
 *   await ml.logArtifact(run.info.artifact_uri, "checkpoints/epoch-3.bin", weightsBytes); // through the artifact proxy
 *   await ml.call("runs/update", { run_id: run.info.run_id, status: "FINISHED", end_time: Date.now() });
 *
 * A call resolves after the server committed it (the point is then durable and in the ledger); an error answer
 * rejects with MlflowApiError (its errorCode and status are MLflow's).
 */
import { mlflowRoute, type FileInfo, type MlflowEndpoints, type MlflowErrorBody, type MlflowPath } from "./types";

/** The proxy path of an artifact: `mlflow-artifacts:/<exp>/<run>/artifacts` + "/" + path → `<exp>/<run>/artifacts/<path>`. */
function proxyPath(artifactUri: string, path: string): string {
  const root = artifactUri.replace(/^mlflow-artifacts:(\/\/[^/]*)?\/*/, "").replace(/\/+$/, "");
  const rel = path.replace(/^\/+/, "");
  return [root, rel].filter(Boolean).join("/").split("/").map(encodeURIComponent).join("/");
}

export class MlflowApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(`${errorCode} (HTTP ${status}): ${message}`);
    this.name = "MlflowApiError";
  }
}

export class MlflowClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string | null,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  /**
   * One endpoint call with its typed request and response, by MLflow's method (GET endpoints send the request as the
   * query string; PATCH, DELETE and POST a JSON body). "registered-models/alias#get" / "#delete" are GET / DELETE of
   * registered-models/alias.
   */
  async call<P extends MlflowPath>(path: P, req: MlflowEndpoints[P]["req"]): Promise<MlflowEndpoints[P]["res"]> {
    const route = mlflowRoute(path);
    const isGet = route.method === "GET";
    let url = `${this.baseUrl.replace(/\/+$/, "")}/api/2.0/mlflow/${route.path}`;
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let body: string | undefined;
    if (isGet) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(req as Record<string, unknown>)) {
        if (v === undefined) continue;
        for (const item of Array.isArray(v) ? v : [v]) q.append(k, String(item));
      }
      const qs = q.toString();
      if (qs) url += `?${qs}`;
    } else {
      headers["content-type"] = "application/json";
      body = JSON.stringify(req);
    }
    const res = await this.fetchImpl(url, { method: route.method, headers, body });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new MlflowApiError(res.status, "INTERNAL_ERROR", `not a JSON answer: ${text.slice(0, 200)}`);
    }
    if (!res.ok) {
      const e = json as Partial<MlflowErrorBody>;
      throw new MlflowApiError(res.status, e.error_code ?? "INTERNAL_ERROR", e.message ?? text.slice(0, 200));
    }
    return json as MlflowEndpoints[P]["res"];
  }

  /** Uploads one file as an artifact of a run (its artifact_uri, from runs/create or runs/get) at `path`. */
  async logArtifact(artifactUri: string, path: string, bytes: Uint8Array): Promise<void> {
    const res = await this.fetchImpl(`${this.root()}/api/2.0/mlflow-artifacts/artifacts/${proxyPath(artifactUri, path)}`, {
      method: "PUT",
      headers: { ...this.auth(), "content-type": "application/octet-stream" },
      body: bytes as Uint8Array<ArrayBuffer>,
    });
    await this.ok(res);
  }

  /** Downloads an artifact's bytes (the server checks them against their sha256 before answering). */
  async downloadArtifact(artifactUri: string, path: string): Promise<Uint8Array> {
    const res = await this.fetchImpl(`${this.root()}/api/2.0/mlflow-artifacts/artifacts/${proxyPath(artifactUri, path)}`, {
      headers: this.auth(),
    });
    if (!res.ok) await this.ok(res);
    return new Uint8Array(await res.arrayBuffer());
  }

  /** Lists a directory of a run's artifacts through the proxy (paths relative to that directory). */
  async listArtifactsProxy(artifactUri: string, path = ""): Promise<FileInfo[]> {
    const q = new URLSearchParams({ path: decodeURIComponent(proxyPath(artifactUri, path)) });
    const res = await this.fetchImpl(`${this.root()}/api/2.0/mlflow-artifacts/artifacts?${q}`, { headers: this.auth() });
    return ((await this.ok(res)) as { files?: FileInfo[] }).files ?? [];
  }

  private root(): string {
    return this.baseUrl.replace(/\/+$/, "");
  }
  private auth(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }
  private async ok(res: Response): Promise<unknown> {
    const text = await res.text();
    let json: unknown = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new MlflowApiError(res.status, "INTERNAL_ERROR", `not a JSON answer: ${text.slice(0, 200)}`);
    }
    if (!res.ok) {
      const e = json as Partial<MlflowErrorBody>;
      throw new MlflowApiError(res.status, e.error_code ?? "INTERNAL_ERROR", e.message ?? text.slice(0, 200));
    }
    return json;
  }

  /** Sends a raw request (any method, path, body and headers) and returns the status and parsed JSON: for tests of malformed input. */
  async raw(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
    const h: Record<string, string> = { ...headers };
    if (this.token && !("authorization" in h)) h.authorization = `Bearer ${this.token}`;
    const res = await this.fetchImpl(`${this.baseUrl.replace(/\/+$/, "")}/api/2.0/mlflow/${path}`, { method, headers: h, body });
    const text = await res.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch {
      // left as text
    }
    return { status: res.status, json };
  }
}
