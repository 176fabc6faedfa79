/**
 * The password a signer re-enters to sign (promotion approvals and rejections, model-card and datasheet
 * signatures), checked the way sign-in checks one.
 *
 * Invariants:
 * - Asynchronous scrypt in libuv's pool (server/auth/password.ts checkPassword), never on the main thread; callers
 *   run it BEFORE opening their better-sqlite3 transaction (which is synchronous) and re-read state inside it.
 * - Throttled per account with the sign-in throttle's account count (server/auth/throttle.ts): wrong signature
 *   passwords and wrong sign-ins add up, so a stolen session gets no extra guesses. Past the free failures the
 *   caller gets TooManyAttempts (too_many_requests: HTTP 429 + Retry-After) without a hash or a ledger write, which is
 *   what keeps the `signature.refused` events a caller records for wrong passwords bounded (a few per account per
 *   hour, see ACCOUNT_POLICY).
 * - A busy hasher (PasswordHasherBusyError) is not counted against the signer; it is a too_many_requests error (429) as well.
 */
import type { Db } from "@/db/client";
import { checkPassword, PasswordHasherBusyError } from "@/server/auth/password";
import { TooManyAttempts } from "@/server/auth/throttle";
import { identifierDigest } from "@/server/auth/signin-failures";
import { signInThrottle } from "../users/service";

/** True when `password` is the signer's; throws TooManyAttempts (too_many_requests) while the account waits out a backoff. */
export async function checkSignaturePassword(db: Db, signer: { email: string; passwordHash: string }, password: string): Promise<boolean> {
  const decision = await signInThrottle(db).attemptAccount(identifierDigest(signer.email.trim().toLowerCase()));
  if (!decision.allowed) {
    const message = `too many wrong passwords for this account: try signing again in ${decision.retryAfterSeconds} s`;
    throw new TooManyAttempts(decision.retryAfterSeconds, message);
  }
  let ok: boolean;
  try {
    ok = await checkPassword(password, signer.passwordHash);
  } catch (err) {
    if (err instanceof PasswordHasherBusyError) await decision.release("notChecked");
    throw err;
  }
  await decision.release(ok ? "success" : "failure");
  return ok;
}
