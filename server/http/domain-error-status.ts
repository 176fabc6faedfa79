/**
 * The one place where a DomainError (server/errors.ts) becomes an HTTP status, for the API route handlers that
 * answer without tRPC (dataset upload, report export). Same kinds, same meaning as the tRPC mapping
 * (server/trpc/domain-error-mapping.ts): tRPC's own HTTP statuses for those codes.
 */
import { DomainError, type DomainErrorKind } from "@/server/errors";

export const HTTP_STATUS_OF_KIND: Record<DomainErrorKind, number> = {
  not_found: 404,
  invalid_input: 400,
  forbidden: 403,
  conflict: 409,
  wrong_state: 409,
  too_many_requests: 429,
  unauthenticated: 401,
};

/** Status, message and (for too_many_requests) Retry-After of an error a route handler caught; 500 when not a DomainError. */
export function httpErrorOf(err: unknown): { status: number; message: string; headers: Record<string, string> } {
  if (err instanceof DomainError) {
    return {
      status: HTTP_STATUS_OF_KIND[err.kind],
      message: err.message,
      headers: err.retryAfterSeconds !== undefined ? { "retry-after": String(Math.max(1, err.retryAfterSeconds)) } : {},
    };
  }
  return { status: 500, message: (err as Error)?.message ?? String(err), headers: {} };
}
