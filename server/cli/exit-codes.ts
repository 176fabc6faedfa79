/**
 * The command line's exit codes, one rule for every command (main.ts's usage text says it):
 *   0  done
 *   1  failed, or refused by a rule of the record (a run that did not complete, a ledger that does not verify, the last
 *      administrator, a signing key this machine lacks)
 *   2  usage or bad input: a missing or malformed option, and an unknown run, user, model, version or token
 *   3  `train --enqueue --wait-timeout`: no worker took the run in time (it stays queued)
 * A service says "unknown" or "bad input" with a DomainError of kind not_found or invalid_input; a command that lets
 * one escape still exits 2 (main.ts).
 */
import { DomainError } from "@/server/errors";

/** An unknown id (not_found) or a value the service refuses as malformed (invalid_input): the caller's input, exit 2. */
export function isBadInput(err: unknown): err is DomainError {
  return err instanceof DomainError && (err.kind === "not_found" || err.kind === "invalid_input");
}

/** The user an operator's command names by email does not exist (exit 2, as every unknown id). */
export function noUserWithEmail(email: string): DomainError {
  return new DomainError("not_found", `no user with email ${email}`);
}
