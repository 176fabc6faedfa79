/**
 * The MLflow REST API 2.0 tracking shapes Runledger serves under /api/2.0/mlflow/ (server/mlflow/), as MLflow's
 * service.proto defines them in JSON (proto3 JSON: int64 fields may arrive as numbers or strings; Runledger answers
 * numbers), its error codes with their HTTP statuses, and the limits of mlflow/utils/validation.py.
 * Shared by the server's dispatcher and the typed client (contracts/mlflow/client.ts). Pure: no Node imports.
 */

/**
 * MLflow's databricks_pb2 error codes this API answers with, and their HTTP statuses: MLflow's own for each but
 * INVALID_STATE, 400 here (a state refusal the caller can act on), 500 on MLflow's server (server/mlflow/README.md).
 */
export const MLFLOW_ERROR_STATUS = {
  INVALID_PARAMETER_VALUE: 400,
  BAD_REQUEST: 400,
  RESOURCE_ALREADY_EXISTS: 400,
  RESOURCE_DOES_NOT_EXIST: 404,
  ENDPOINT_NOT_FOUND: 404,
  PERMISSION_DENIED: 403,
  UNAUTHENTICATED: 401,
  INVALID_STATE: 400,
  INTERNAL_ERROR: 500,
  TEMPORARILY_UNAVAILABLE: 503,
} as const;
export type MlflowErrorCode = keyof typeof MLFLOW_ERROR_STATUS;
export type MlflowErrorBody = { error_code: MlflowErrorCode; message: string };

/** mlflow/utils/validation.py */
export const MLFLOW_LIMITS = {
  maxMetricsPerBatch: 1000,
  maxParamsTagsPerBatch: 100,
  maxEntitiesPerBatch: 1000,
  /** MAX_BATCH_LOG_REQUEST_SIZE: int(1e6) bytes. */
  maxBatchRequestBytes: 1_000_000,
  maxEntityKeyLength: 250,
  maxParamValueLength: 6000,
  maxTagValueLength: 8000,
  maxExperimentTagValueLength: 5000,
  maxExperimentNameLength: 500,
  searchMaxResultsDefault: 1000,
  searchMaxResultsThreshold: 50000,
  /** GET_METRIC_HISTORY_MAX_RESULTS: a page of get-history when max_results or page_token is given. */
  metricHistoryMaxResults: 25000,
  maxDatasetNameSize: 500,
  maxDatasetDigestSize: 36,
  maxDatasetSchemaSize: 1048575,
  maxDatasetSourceSize: 65535,
  maxDatasetProfileSize: 16384,
  maxInputTagKeySize: 255,
  maxInputTagValueSize: 500,
} as const;

export type LifecycleStage = "active" | "deleted";
export type RunStatus = "RUNNING" | "SCHEDULED" | "FINISHED" | "FAILED" | "KILLED";
export const RUN_STATUSES: readonly RunStatus[] = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];
export type ViewType = "ACTIVE_ONLY" | "DELETED_ONLY" | "ALL";

export type KeyValue = { key: string; value: string };
export type Experiment = {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: LifecycleStage;
  last_update_time: number;
  creation_time: number;
  tags?: KeyValue[];
};
export type Metric = { key: string; value: number; timestamp: number; step: number };
export type RunInfo = {
  run_id: string;
  run_uuid: string;
  run_name: string;
  experiment_id: string;
  user_id: string;
  status: RunStatus;
  start_time: number;
  end_time?: number;
  artifact_uri: string;
  lifecycle_stage: LifecycleStage;
};
export type Dataset = { name: string; digest: string; source_type: string; source: string; schema?: string; profile?: string };
export type DatasetInput = { tags?: KeyValue[]; dataset: Dataset };
export type Run = {
  info: RunInfo;
  data: { metrics?: Metric[]; params?: KeyValue[]; tags?: KeyValue[] };
  inputs: { dataset_inputs?: DatasetInput[] };
};

/** Request and response bodies, by endpoint (path under /api/2.0/mlflow/). */
export type MlflowEndpoints = {
  "experiments/create": { req: { name: string; artifact_location?: string; tags?: KeyValue[] }; res: { experiment_id: string } };
  "experiments/get": { req: { experiment_id: string }; res: { experiment: Experiment } };
  "experiments/get-by-name": { req: { experiment_name: string }; res: { experiment: Experiment } };
  "experiments/search": {
    req: { max_results?: number; page_token?: string; filter?: string; order_by?: string[]; view_type?: ViewType };
    res: { experiments?: Experiment[]; next_page_token?: string };
  };
  "experiments/update": { req: { experiment_id: string; new_name: string }; res: Record<string, never> };
  "experiments/delete": { req: { experiment_id: string }; res: Record<string, never> };
  "experiments/restore": { req: { experiment_id: string }; res: Record<string, never> };
  "experiments/set-experiment-tag": { req: { experiment_id: string; key: string; value: string }; res: Record<string, never> };
  "runs/create": {
    req: { experiment_id?: string; user_id?: string; run_name?: string; start_time?: number; tags?: KeyValue[] };
    res: { run: Run };
  };
  "runs/get": { req: { run_id: string }; res: { run: Run } };
  "runs/update": { req: { run_id: string; status?: RunStatus; end_time?: number; run_name?: string }; res: { run_info: RunInfo } };
  "runs/delete": { req: { run_id: string }; res: Record<string, never> };
  "runs/restore": { req: { run_id: string }; res: Record<string, never> };
  "runs/search": {
    req: {
      experiment_ids?: string[];
      filter?: string;
      run_view_type?: ViewType;
      max_results?: number;
      order_by?: string[];
      page_token?: string;
    };
    res: { runs?: Run[]; next_page_token?: string };
  };
  "runs/log-metric": { req: { run_id: string; key: string; value: number; timestamp: number; step?: number }; res: Record<string, never> };
  "runs/log-parameter": { req: { run_id: string; key: string; value: string }; res: Record<string, never> };
  "runs/log-batch": { req: { run_id: string; metrics?: Metric[]; params?: KeyValue[]; tags?: KeyValue[] }; res: Record<string, never> };
  "runs/log-inputs": { req: { run_id: string; datasets?: DatasetInput[] }; res: Record<string, never> };
  "runs/set-tag": { req: { run_id: string; key: string; value: string }; res: Record<string, never> };
  "runs/delete-tag": { req: { run_id: string; key: string }; res: Record<string, never> };
  "metrics/get-history": {
    req: { run_id: string; metric_key: string; max_results?: number; page_token?: string };
    res: { metrics?: Metric[]; next_page_token?: string };
  };
  "artifacts/list": {
    req: { run_id: string; path?: string; page_token?: string };
    res: { root_uri: string; files: FileInfo[]; next_page_token?: string };
  };
  "registered-models/create": { req: { name: string; description?: string }; res: { registered_model: RegisteredModel } };
  "registered-models/get": { req: { name: string }; res: { registered_model: RegisteredModel } };
  "registered-models/search": { req: SearchReq; res: { registered_models?: RegisteredModel[]; next_page_token?: string } };
  "registered-models/update": { req: { name: string; description?: string }; res: { registered_model: RegisteredModel } };
  "registered-models/delete": { req: { name: string }; res: Record<string, never> };
  "registered-models/rename": { req: { name: string; new_name: string }; res: { registered_model: RegisteredModel } };
  "registered-models/alias": { req: { name: string; alias: string; version: string }; res: Record<string, never> };
  /** DELETE registered-models/alias (same URL as setting it; see MLFLOW_ROUTES). */
  "registered-models/alias#delete": { req: { name: string; alias: string }; res: Record<string, never> };
  /** GET registered-models/alias: the version an alias points at. */
  "registered-models/alias#get": { req: { name: string; alias: string }; res: { model_version: ModelVersion } };
  "model-versions/create": {
    req: { name: string; source: string; run_id?: string; run_link?: string; description?: string };
    res: { model_version: ModelVersion };
  };
  "model-versions/get": { req: { name: string; version: string }; res: { model_version: ModelVersion } };
  "model-versions/search": { req: SearchReq; res: { model_versions?: ModelVersion[]; next_page_token?: string } };
  "model-versions/update": { req: { name: string; version: string; description?: string }; res: { model_version: ModelVersion } };
  "model-versions/delete": { req: { name: string; version: string }; res: Record<string, never> };
  "model-versions/get-download-uri": { req: { name: string; version: string }; res: { artifact_uri: string } };
};
/** model_registry.proto RegisteredModel / ModelVersion (Runledger keeps no tags on them; stages are "None"). */
export type RegisteredModel = {
  name: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  description: string;
  latest_versions?: ModelVersion[];
  aliases?: { alias: string; version: string }[];
};
export type ModelVersion = {
  name: string;
  version: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  user_id: string;
  current_stage: string;
  description: string;
  source: string;
  run_id: string;
  status: "READY";
  run_link: string;
  aliases?: string[];
};
type SearchReq = { filter?: string; max_results?: number; order_by?: string[]; page_token?: string };

/** One entry of an artifact listing (a file with its size, or a directory). */
export type FileInfo = { path: string; is_dir: boolean; file_size?: number };
export type MlflowPath = keyof MlflowEndpoints;

/** Which endpoints MLflow serves with GET (the request is the query string); the others are POST with a JSON body. */
export const MLFLOW_GET_ENDPOINTS: readonly MlflowPath[] = [
  "experiments/get",
  "experiments/get-by-name",
  "runs/get",
  "metrics/get-history",
  "artifacts/list",
  "registered-models/get",
  "registered-models/search",
  "registered-models/alias#get",
  "model-versions/get",
  "model-versions/search",
  "model-versions/get-download-uri",
];

/** The HTTP method and URL path of each endpoint (service.proto): GET endpoints above, POST unless listed here. */
export const MLFLOW_ROUTES: Partial<Record<MlflowPath, { method: "PATCH" | "DELETE" | "GET"; path: string }>> = {
  "registered-models/update": { method: "PATCH", path: "registered-models/update" },
  "registered-models/delete": { method: "DELETE", path: "registered-models/delete" },
  "registered-models/alias#delete": { method: "DELETE", path: "registered-models/alias" },
  "registered-models/alias#get": { method: "GET", path: "registered-models/alias" },
  "model-versions/update": { method: "PATCH", path: "model-versions/update" },
  "model-versions/delete": { method: "DELETE", path: "model-versions/delete" },
};

/** An endpoint's method and URL path (path under /api/2.0/mlflow/). */
export function mlflowRoute(endpoint: MlflowPath): { method: string; path: string } {
  return MLFLOW_ROUTES[endpoint] ?? { method: MLFLOW_GET_ENDPOINTS.includes(endpoint) ? "GET" : "POST", path: endpoint };
}

/** One artifact upload (PUT /api/2.0/mlflow-artifacts/artifacts/…): at most 256 MiB (Runledger's bound; MLflow sets none). */
export const MLFLOW_ARTIFACT_MAX_BYTES = 256 * 1024 * 1024;

/** The run tag whose value becomes the rationale of the params logged with it (or after it) on that run. */
export const RATIONALE_TAG = "runledger.rationale";
/** The input tag that says what a dataset input was used for (MLflow's mlflow.data.context). */
export const DATASET_CONTEXT_TAG = "mlflow.data.context";

/**
 * The config a run logged through the tracking API is stored with (runs.config_json, immutable): such a run has no
 * training config; its params are decisions of kind "param" and its seed column is 0. The content check recognises
 * it (server/audit/content/check-run-params.ts) and derives no run_params or seed from it.
 */
export const API_RUN_CONFIG = { api: "mlflow" } as const;
export function isApiRunConfig(config: unknown): boolean {
  return (
    config !== null &&
    typeof config === "object" &&
    !Array.isArray(config) &&
    Object.keys(config).length === 1 &&
    (config as { api?: unknown }).api === "mlflow"
  );
}
