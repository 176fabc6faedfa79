/**
 * The password a signer re-enters to sign (promotion approvals and rejections, model-card and datasheet
 * signatures), checked the way sign-in checks one.
 *
 * Invariants:
 * - Asynchronous scrypt in libuv's pool (server/auth/password.ts checkPassword), never on the main thread; callers
 *   run it BEFORE opening their signing transaction (no awaits inside one, db/store.ts) and re-read state inside it.
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
 *
 * On the store (issue 16, db/store.ts): everything here takes a store (SQLite or PostgreSQL). refuseSigning's event is
 * its own transact body under the ledger lock; rereadSigner is a transaction part, which unported synchronous SQLite
 * transactions (the registry's promotions) run through runOnSqliteTx.
 */
import { eq } from "drizzle-orm";
import type { Role, users } from "@/db/schema";
import type { Db, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, reader, row, transact, type Store, type StoreTables, type TxBody } from "@/db/store";
import type { NewAuditEvent } from "@/server/audit/ledger";
import { appendEvent } from "@/server/audit/ledger-pg";
import type { SignedInActor } from "@/server/app-context/service-context";
import type { StoreServiceContext } from "@/server/app-context/store-context";
import { forbidden } from "@/server/errors";
import { checkPassword, PasswordHasherBusyError } from "@/server/auth/password";
import { TooManyAttempts } from "@/server/auth/throttle";
import { identifierDigest } from "@/server/auth/signin-failures";
import { signInThrottle } from "../users/service";

/** True when `password` is the signer's; throws TooManyAttempts (too_many_requests) while the account waits out a backoff. */
export async function checkSignaturePassword(
  store: Store | Db,
  signer: { email: string; passwordHash: string },
  password: string,
): Promise<boolean> {
  const decision = await signInThrottle(store).attemptAccount(identifierDigest(signer.email.trim().toLowerCase()));
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
export async function refuseSigning(ctx: StoreServiceContext, event: RefusalEvent, message: string): Promise<never> {
  const actor = ctx.actor;
  await transact(
    asStore(ctx.db),
    function* () {
      yield* appendEvent({ ...event, actor });
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return forbidden(message);
}

/**
 * The signer's re-entered password, checked before the signing transaction. A wrong one is refused and recorded as
 * `signature.refused` on the record being signed (`payload` says what was attempted); throttled attempts throw
 * TooManyAttempts and write nothing. Returns the signer's account row.
 */
export async function requireSignerPassword(
  ctx: StoreServiceContext,
  password: string,
  refused: { entityType: string; entityId: number; payload: Record<string, unknown> },
): Promise<UserRow> {
  const store = asStore(ctx.db);
  const { users } = store.tables;
  const signer = (await reader(store).select().from(users).where(eq(users.id, ctx.actor.id)).limit(1))[0];
  if (!signer || !(await checkSignaturePassword(store, signer, password))) {
    return refuseSigning(
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

/**
 * A part of the signing transaction body (db/store.ts): the signer's account as it is now; refused when disabled or
 * no longer in `roles`. Unported synchronous SQLite transactions run it through runOnSqliteTx.
 */
export function* rereadSigner(tx: Tx, t: StoreTables, actor: SignedInActor, roles: readonly Role[]): TxBody<UserRow> {
  const user = yield* row(tx.select().from(t.users).where(eq(t.users.id, actor.id)).limit(1));
  if (!user || user.disabled || !roles.includes(user.role)) forbidden(`${actor.name}'s account changed while signing: sign again`);
  return user;
}
