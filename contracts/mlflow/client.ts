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
 * Piloting (Runledger extension): between its epochs a loop calls followPilot (or betweenEpochs), which applies
 * what a pilot asked for (pause, resume, stop, new values of logged params, returned as `settings`) at that step.
 *
 * A call resolves after the server committed it (the point is then durable and in the ledger); an error answer
 * rejects with MlflowApiError (its errorCode and status are MLflow's).
 */
import { mlflowRoute, type FileInfo, type MlflowEndpoints, type MlflowErrorBody, type MlflowPath } from "./types";
import type {
  AckInterventionRequest,
  AckInterventionResponse,
  PendingInterventionsResponse,
  PilotAction,
  RejectInterventionRequest,
  RejectInterventionResponse,
  RunledgerRunStatus,
  SettingChange,
} from "./runledger";

type AppliedIntervention = AckInterventionResponse["intervention"];
type RejectedIntervention = RejectInterventionResponse["intervention"];

/** The first refusal of a set's changes by `canApply` (its reason), or null when it may apply them all. */
function refusalOf(changes: SettingChange[], canApply?: (key: string, to: string) => true | string): string | null {
  if (!canApply) return null;
  for (const c of changes) {
    const ok = canApply(c.key, c.to);
    if (ok !== true) return ok.trim() || `the script cannot change ${c.key}`;
  }
  return null;
}

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

  /**
   * The pending interventions of a run this script logs (Runledger extension, GET /api/2.0/runledger/runs/
   * pending-interventions): what a pilot asked for and the script has not applied yet, oldest first, with the run's
   * Runledger status ("paused" once a pause took effect). Reading changes nothing.
   */
  async pendingInterventions(runId: string): Promise<PendingInterventionsResponse> {
    const q = new URLSearchParams({ run_id: runId });
    const res = await this.fetchImpl(`${this.root()}/api/2.0/runledger/runs/pending-interventions?${q}`, { headers: this.auth() });
    return (await this.ok(res)) as PendingInterventionsResponse;
  }

  /**
   * Records that the script applied an intervention at `step` (POST /api/2.0/runledger/runs/ack-intervention): it takes
   * effect then, as a decision of its requester with the metrics of that moment. After a pause the run is "paused";
   * after a resume "running"; after a stop it has ended ("completed", stopped by decision): log nothing more.
   */
  async ackIntervention(req: AckInterventionRequest): Promise<AckInterventionResponse> {
    const res = await this.fetchImpl(`${this.root()}/api/2.0/runledger/runs/ack-intervention`, {
      method: "POST",
      headers: { ...this.auth(), "content-type": "application/json" },
      body: JSON.stringify(req),
    });
    return (await this.ok(res)) as AckInterventionResponse;
  }

  /**
   * Records that the script cannot apply a pending intervention (POST /api/2.0/runledger/runs/reject-intervention),
   * with its reason: the intervention is rejected (shown on the run page and in the ledger), nothing else changes.
   */
  async rejectIntervention(req: RejectInterventionRequest): Promise<RejectInterventionResponse> {
    const res = await this.fetchImpl(`${this.root()}/api/2.0/runledger/runs/reject-intervention`, {
      method: "POST",
      headers: { ...this.auth(), "content-type": "application/json" },
      body: JSON.stringify(req),
    });
    return (await this.ok(res)) as RejectInterventionResponse;
  }

  /**
   * What a training loop does after logging step `step` (call it between epochs): applies and acknowledges the
   * run's pending interventions at that step, oldest first, and answers "continue", "pause" (the run is paused: call
   * again after a while; a pilot's resume makes it "continue") or "stop" (a pilot stopped it, and the run has ended).
   *
   * A pilot's change of params ("set") is acknowledged at `step` and returned in `settings` (param key → new value,
   * as text): the loop must use those values from the next step on. `opts.canApply(key, to)` may refuse one (return
   * the reason as a string): the whole intervention is then rejected with that reason instead, and nothing of it
   * is in `settings`. An intervention withdrawn or closed between the read and the acknowledgement is skipped.
   */
  async betweenEpochs(
    runId: string,
    step: number,
    opts: { canApply?: (key: string, to: string) => true | string } = {},
  ): Promise<{ action: PilotAction; settings: Record<string, string>; applied: AppliedIntervention[]; rejected: RejectedIntervention[] }> {
    const applied: AppliedIntervention[] = [];
    const rejected: RejectedIntervention[] = [];
    const settings: Record<string, string> = {};
    const skipped = new Set<string>();
    for (;;) {
      const { run_status, interventions } = await this.pendingInterventions(runId);
      let status: RunledgerRunStatus = run_status;
      const next = interventions.find(
        (i) =>
          !skipped.has(i.intervention_id) &&
          ((i.kind === "pause" && status === "running") ||
            (i.kind === "resume" && status === "paused") ||
            i.kind === "stop" ||
            (i.kind === "set" && (status === "running" || status === "paused"))),
      );
      if (!next) return { action: actionOf(status), settings, applied, rejected };
      try {
        const refusal = next.kind === "set" ? refusalOf(next.changes, opts.canApply) : null;
        if (refusal !== null) {
          const out = await this.rejectIntervention({ run_id: runId, intervention_id: next.intervention_id, reason: refusal });
          rejected.push(out.intervention);
          continue;
        }
        const out = await this.ackIntervention({ run_id: runId, intervention_id: next.intervention_id, step });
        status = out.run_status;
        applied.push(out.intervention);
        for (const c of out.intervention.changes) settings[c.key] = c.to;
        if (status !== "running" && status !== "paused") return { action: "stop", settings, applied, rejected };
      } catch (err) {
        // Withdrawn by an engineer, or the run changed state meanwhile: read the pending list again.
        if (!(err instanceof MlflowApiError && err.errorCode === "INVALID_STATE")) throw err;
        skipped.add(next.intervention_id);
      }
    }
  }

  /**
   * betweenEpochs, waiting while the run is paused (polling every `pollMs`, 2 s by default) until a pilot resumes it
   * ("continue") or stops it ("stop"). `settings`: the params a pilot changed meanwhile (key → new value, the last
   * change of each), to use from the next step on. `signal` aborts the wait (rejects with its reason).
   */
  async followPilot(
    runId: string,
    step: number,
    opts: { pollMs?: number; signal?: AbortSignal; canApply?: (key: string, to: string) => true | string } = {},
  ): Promise<{
    action: "continue" | "stop";
    settings: Record<string, string>;
    applied: AppliedIntervention[];
    rejected: RejectedIntervention[];
  }> {
    const settings: Record<string, string> = {};
    const applied: AppliedIntervention[] = [];
    const rejected: RejectedIntervention[] = [];
    for (;;) {
      opts.signal?.throwIfAborted();
      const out = await this.betweenEpochs(runId, step, { canApply: opts.canApply });
      Object.assign(settings, out.settings);
      applied.push(...out.applied);
      rejected.push(...out.rejected);
      if (out.action !== "pause") return { action: out.action, settings, applied, rejected };
      await new Promise<void>((resolve, reject) => {
        const signal = opts.signal;
        const onAbort = () => {
          clearTimeout(t);
          reject(signal!.reason);
        };
        const t = setTimeout(() => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        }, opts.pollMs ?? 2000);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    }
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

function actionOf(status: RunledgerRunStatus): PilotAction {
  return status === "paused" ? "pause" : status === "running" || status === "queued" ? "continue" : "stop";
}
