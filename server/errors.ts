/**
 * Domain errors: what services (and the read queries and modules below them) throw when a request cannot be done
 * as asked. They say what went wrong in domain terms (a `kind` and a message meant for the person who asked), not
 * how a transport reports it: services never import @trpc/server or server/http.
 *
 * Invariants:
 * - The kind → tRPC code mapping lives only in server/trpc/domain-error-mapping.ts, and the kind → HTTP status
 *   mapping only in server/http/domain-error-status.ts; nothing else translates a DomainError.
 * - The message reaches the client unchanged (tests and the UI read it), so write it for a person.
 * - `retryAfterSeconds` (too_many_requests only) becomes a Retry-After header.
 */

export type DomainErrorKind =
  /** The record asked for does not exist (or the caller may not know it exists). */
  | "not_found"
  /** The request is malformed or names things that do not fit together (whatever the state of the record). */
  | "invalid_input"
  /** The caller is known but may not do this (role, separation of duties, wrong signature password). */
  | "forbidden"
  /** The request clashes with what exists (a duplicate name, nothing to change, a change made meanwhile). */
  | "conflict"
  /**
   * The request is well-formed, but the record it names is in a state that does not allow it now (stop a finished
   * run, resume a completed one, promote a version without a test evaluation, sign a closed request). The message
   * names the state and what the action needs.
   */
  | "wrong_state"
  /** Throttled or busy: try again later (after retryAfterSeconds when given). */
  | "too_many_requests"
  /** The caller could not be identified (wrong email or password, disabled account). */
  | "unauthenticated";

export class DomainError extends Error {
  readonly retryAfterSeconds?: number;
  constructor(
    readonly kind: DomainErrorKind,
    message: string,
    opts: { cause?: unknown; retryAfterSeconds?: number } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "DomainError";
    if (opts.retryAfterSeconds !== undefined) this.retryAfterSeconds = opts.retryAfterSeconds;
  }
}

export function notFound(what: string): never {
  throw new DomainError("not_found", `${what} was not found`);
}
export function invalidInput(message: string): never {
  throw new DomainError("invalid_input", message);
}
export function forbidden(message: string): never {
  throw new DomainError("forbidden", message);
}
export function conflict(message: string): never {
  throw new DomainError("conflict", message);
}
export function wrongState(message: string): never {
  throw new DomainError("wrong_state", message);
}
