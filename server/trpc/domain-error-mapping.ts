/**
 * The one place where a DomainError (server/errors.ts) becomes a TRPCError: kind → tRPC code, message unchanged,
 * the DomainError kept as `cause`. Used by the outermost middleware of every procedure (server/trpc/init.ts), so
 * services stay free of transport code and every procedure reports domain errors the same way.
 */
import { TRPCError } from "@trpc/server";
import { DomainError, type DomainErrorKind } from "@/server/errors";

export const TRPC_CODE_OF_KIND: Record<DomainErrorKind, TRPCError["code"]> = {
  not_found: "NOT_FOUND",
  invalid_input: "BAD_REQUEST",
  forbidden: "FORBIDDEN",
  conflict: "CONFLICT",
  // A well-formed request the record's current state refuses: a conflict with that state (409), not bad input.
  wrong_state: "CONFLICT",
  too_many_requests: "TOO_MANY_REQUESTS",
  unauthenticated: "UNAUTHORIZED",
};

/** The DomainError behind a procedure's failure (thrown as is, or wrapped by tRPC as the cause), if any. */
export function domainErrorOf(error: unknown): DomainError | null {
  if (error instanceof DomainError) return error;
  if (error instanceof TRPCError && error.cause instanceof DomainError) return error.cause;
  return null;
}

export function toTRPCError(error: DomainError): TRPCError {
  return new TRPCError({ code: TRPC_CODE_OF_KIND[error.kind], message: error.message, cause: error });
}
