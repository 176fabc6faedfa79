/**
 * Errors of the tracking API in MLflow's terms: an error code of databricks_pb2 and its HTTP status
 * (contracts/mlflow/types.ts MLFLOW_ERROR_STATUS), answered as `{"error_code": …, "message": …}`. A DomainError
 * thrown by a service below is translated here (not_found → RESOURCE_DOES_NOT_EXIST, invalid_input →
 * INVALID_PARAMETER_VALUE, forbidden → PERMISSION_DENIED, conflict → RESOURCE_ALREADY_EXISTS, wrong_state →
 * INVALID_STATE as this API's own state refusals, unauthenticated → UNAUTHENTICATED), so the message reaches the
 * script unchanged.
 */
import { DomainError } from "@/server/errors";
import { MLFLOW_ERROR_STATUS, type MlflowErrorCode } from "@/contracts/mlflow/types";

export class MlflowError extends Error {
  constructor(
    readonly code: MlflowErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "MlflowError";
  }
  get status(): number {
    return MLFLOW_ERROR_STATUS[this.code];
  }
}

export const invalidParam = (message: string): never => {
  throw new MlflowError("INVALID_PARAMETER_VALUE", message);
};
export const doesNotExist = (message: string): never => {
  throw new MlflowError("RESOURCE_DOES_NOT_EXIST", message);
};

const CODE_OF_KIND: Record<DomainError["kind"], MlflowErrorCode> = {
  not_found: "RESOURCE_DOES_NOT_EXIST",
  invalid_input: "INVALID_PARAMETER_VALUE",
  forbidden: "PERMISSION_DENIED",
  conflict: "RESOURCE_ALREADY_EXISTS",
  wrong_state: "INVALID_STATE",
  too_many_requests: "TEMPORARILY_UNAVAILABLE",
  unauthenticated: "UNAUTHENTICATED",
};

/** The status and body of any error thrown while answering (500 INTERNAL_ERROR for anything unexpected). */
export function mlflowErrorOf(err: unknown): { status: number; body: { error_code: MlflowErrorCode; message: string } } {
  if (err instanceof MlflowError) return { status: err.status, body: { error_code: err.code, message: err.message } };
  if (err instanceof DomainError) {
    const code = CODE_OF_KIND[err.kind];
    return { status: MLFLOW_ERROR_STATUS[code], body: { error_code: code, message: err.message } };
  }
  return { status: 500, body: { error_code: "INTERNAL_ERROR", message: (err as Error)?.message ?? String(err) } };
}
