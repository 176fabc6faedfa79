/**
 * The command line's exit codes, one rule for every command (main.ts's usage text says it):
 *   0  done
 *   1  failed, or refused by a rule of the record (a run that did not complete, a ledger that does not verify, the last
 *      administrator, a signing key this machine lacks, a run in a state that does not allow the action: wrongRunState)
 *   2  usage or bad input: a missing or malformed option, and an unknown run, user, model, version or token
 *   3  `train --enqueue --wait-timeout`: no worker took the run in time (it stays queued)
 * A service says "unknown" or "bad input" with a DomainError of kind not_found or invalid_input; a command that lets
 * one escape still exits 2 (main.ts).
 */
import { eq } from "drizzle-orm";
import { asStore, reader, type Store } from "@/db/store";
import type { Db } from "@/db/client";
import { DomainError } from "@/server/errors";

/** An unknown id (not_found) or a value the service refuses as malformed (invalid_input): the caller's input, exit 2. */
export function isBadInput(err: unknown): err is DomainError {
  return err instanceof DomainError && (err.kind === "not_found" || err.kind === "invalid_input");
}

/** The user an operator's command names by email does not exist (exit 2, as every unknown id). */
export function noUserWithEmail(email: string): DomainError {
  return new DomainError("not_found", `no user with email ${email}`);
}

/** A run's status, or undefined when there is no such run; on either store. */
export async function runStatusOn(db: Store | Db, runId: number): Promise<string | undefined> {
  const store = asStore(db);
  const { runs } = store.tables;
  return (await reader(store).select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).limit(1))[0]?.status;
}

/**
 * A run the action does not apply to in its current state (resume a completed run, pause a finished one, re-run a
 * running one): a rule of the record, not the caller's typo, so exit 1 with "<command>: run N is <status>; <action>
 * needs a run that is …" on stderr, before anything is recorded. Null when `status` is one of `allowed`.
 * The services refuse the same states themselves (as wrong_state: 409 CONFLICT in the web app, exit 1 through main.ts);
 * the command checks first so that its message names the command and the state in these words.
 */
export function wrongRunState(command: string, runId: number, status: string, action: string, allowed: readonly string[]): 1 | null {
  if (allowed.includes(status)) return null;
  process.stderr.write(`${command}: run ${runId} is ${status}; ${action} needs a run that is ${orList(allowed)}\n`);
  return 1;
}

const orList = (words: readonly string[]) =>
  words.length > 1 ? `${words.slice(0, -1).join(", ")} or ${words[words.length - 1]}` : (words[0] ?? "");
