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
 *
 * Also the refusal steps every signing service (promotions, documents) shares, so a refusal is recorded and worded
 * the same everywhere: refuseSigning (record why, in a transaction of its own that commits although the request
 * fails, then refuse), requireSignerPassword (wrong password → `signature.refused` recorded, then refused) and
 * rereadSigner (inside the signing transaction: the account may have changed while the password was checked).
 */
import { eq } from "drizzle-orm";
import { users, type Role } from "@/db/schema";
import type { Db, DbOrTx } from "@/db/client";
import { appendAuditEvent, type NewAuditEvent } from "@/server/audit/ledger";
import type { ServiceContext, SignedInActor } from "@/server/app-context/service-context";
import { forbidden } from "@/server/errors";
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

type UserRow = typeof users.$inferSelect;
type RefusalEvent = Omit<NewAuditEvent, "actor" | "at">;

/** Records why a signing attempt is refused (its own transaction: it commits although the request fails), then refuses with `message`. */
export function refuseSigning(ctx: ServiceContext, event: RefusalEvent, message: string): never {
  ctx.db.transaction((tx) => {
    appendAuditEvent(tx, { ...event, actor: ctx.actor });
  });
  return forbidden(message);
}

/**
 * The signer's re-entered password, checked before the (synchronous) signing transaction. A wrong one is refused and
 * recorded as `signature.refused` on the record being signed (`payload` says what was attempted); throttled
 * attempts throw TooManyAttempts and write nothing. Returns the signer's account row.
 */
export async function requireSignerPassword(
  ctx: ServiceContext,
  password: string,
  refused: { entityType: string; entityId: number; payload: Record<string, unknown> },
): Promise<UserRow> {
  const signer = ctx.db.select().from(users).where(eq(users.id, ctx.actor.id)).get();
  if (!signer || !(await checkSignaturePassword(ctx.db, signer, password))) {
    refuseSigning(
      ctx,
      {
        action: "signature.refused",
        entityType: refused.entityType,
        entityId: refused.entityId,
        payload: { ...refused.payload, reason: "wrong password" },
      },
      "the password does not match: the signature was not recorded",
    );
  }
  return signer;
}

/** Inside the signing transaction: the signer's account as it is now; refused when disabled or no longer in `roles`. */
export function rereadSigner(tx: DbOrTx, actor: SignedInActor, roles: readonly Role[]): UserRow {
  const user = tx.select().from(users).where(eq(users.id, actor.id)).get();
  if (!user || user.disabled || !roles.includes(user.role)) forbidden(`${actor.name}'s account changed while signing: sign again`);
  return user;
}
