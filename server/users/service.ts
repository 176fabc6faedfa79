/**
 * Signing in and out, and the session behind each request.
 *
 * Invariants:
 * - Inputs are length-capped (contracts/user-fields.ts) before anything else happens: an oversized email or password
 *   is refused without a hash, a query or a ledger write.
 * - Every attempt goes through the throttle (per account and per client address, server/auth/throttle.ts) before the
 *   password is checked; the check is asynchronous scrypt, against a dummy hash when the account does not exist.
 * - A failure is recorded as an aggregated `user.signInFailed` event (identifier digest + count per window,
 *   server/auth/signin-failures.ts), never with the typed input. A success is `user.signIn`.
 * - A hash with weaker parameters than today's is replaced after a successful sign-in (the same transaction as the
 *   new session).
 * - The session token goes to the caller only to be put in a cookie; it is never part of a response body.
 */
import { eq } from "drizzle-orm";
import type { Role } from "@/db/schema";
import type { Db, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, exec, reader, row, transact, type Store, type StoreTables, type TxBody } from "@/db/store";
import type { Actor } from "@/server/audit/ledger";
import { appendEvent } from "@/server/audit/ledger-pg";
import { checkPasswordOrDummy, hashPassword, hashPasswordSync, needsRehash, PasswordHasherBusyError } from "@/server/auth/password";
import { passwordCheckField, signInEmailField } from "@/contracts/user-fields";
import { SignInThrottle } from "@/server/auth/throttle";
import { identifierDigest, recordSignInFailure } from "@/server/auth/signin-failures";
import { createSession, deleteSession, resolveSession, sessionIdHash, type UserRow } from "@/server/auth/sessions";
import { demoHashFor } from "@/server/auth/demo-users";
import { now, type SignedInActor } from "../app-context/service-context";
import { conflict, invalidInput } from "@/server/errors";

export function actorOf(u: UserRow): SignedInActor {
  return { id: u.id, name: u.name, role: u.role, email: u.email };
}

export type NewUserRow = { email: string; name: string; role: Role; mustChangePassword?: boolean } & (
  { password: string } | { passwordHash: string }
);

/** The user row and its `user.create` event, with no actor check: a transaction part (the demo seed runs it in its own SQLite transaction). */
export function* insertUserWithEvent(
  tx: Tx,
  tables: StoreTables,
  actor: Actor,
  input: Omit<NewUserRow, "password"> & { passwordHash: string },
): TxBody<UserRow> {
  const { users } = tables;
  const email = input.email.trim().toLowerCase();
  // Checked inside the transaction (under the ledger lock on PostgreSQL): two servers creating one email at once
  // give one user and a conflict, not a unique-index error.
  if (yield* row(tx.select({ id: users.id }).from(users).where(eq(users.email, email))))
    conflict(`a user with email ${email} already exists`);
  const created = yield* row(
    tx
      .insert(users)
      .values({
        email,
        name: input.name,
        role: input.role,
        passwordHash: input.passwordHash,
        mustChangePassword: input.mustChangePassword ?? false,
        createdAt: now(),
      })
      .returning(),
  );
  yield* appendEvent({
    actor,
    action: "user.create",
    entityType: "user",
    entityId: created!.id,
    payload: { email, name: created!.name, role: created!.role, mustChangePassword: created!.mustChangePassword },
  });
  return created!;
}

/**
 * Inserts a user and its `user.create` event, with no actor check: for seeding, tests and the user-admin service
 * (which checks). A plaintext `password` is hashed synchronously: seeding and tests only; request paths pass a hash.
 */
export async function insertUser(store: Store | Db, actor: Actor, input: NewUserRow): Promise<UserRow> {
  const passwordHash = "passwordHash" in input ? input.passwordHash : hashPasswordSync(input.password);
  const s = asStore(store);
  return transact(s, (tx) => insertUserWithEvent(tx, s.tables, actor, { ...input, passwordHash }), { pgLock: PG_LOCK_KEYS.ledger });
}

export type SignInClient = { address: string; userAgent: string | null };
export type SignInResult =
  | { ok: true; token: string; user: SignedInActor; mustChangePassword: boolean; expiresAt: string }
  | { ok: false; reason: "wrong email or password" | "disabled" }
  | { ok: false; reason: "throttled"; retryAfterSeconds: number; message: string };

/** The sign-in throttle of a store: its counts live in the store's throttle_buckets table, shared by every process. */
export function signInThrottle(store: Store | Db): SignInThrottle {
  return new SignInThrottle(store);
}

function parseOrBadRequest<T>(
  schema: { safeParse: (v: unknown) => { success: true; data: T } | { success: false; error: { issues: { message: string }[] } } },
  value: unknown,
  field: string,
): T {
  const r = schema.safeParse(value);
  if (!r.success) invalidInput(`${field}: ${r.error.issues.map((i) => i.message).join("; ")}`);
  return r.data;
}

/** Checks a password for sign-in; records the outcome; creates a session on success. */
export async function signIn(
  store: Store | Db,
  emailRaw: unknown,
  passwordRaw: unknown,
  client: SignInClient = { address: "local", userAgent: null },
): Promise<SignInResult> {
  const email = parseOrBadRequest(signInEmailField, emailRaw, "email");
  const password = parseOrBadRequest(passwordCheckField, passwordRaw, "password");
  const identifier = identifierDigest(email);
  const s = asStore(store);
  const { users } = s.tables;
  const decision = await signInThrottle(s).attempt(identifier, client.address.slice(0, 64));
  if (!decision.allowed) {
    return {
      ok: false,
      reason: "throttled",
      retryAfterSeconds: decision.retryAfterSeconds,
      message: `too many failed sign-ins for this ${decision.by === "account" ? "account" : "address"}: try again in ${decision.retryAfterSeconds} s`,
    };
  }
  const [user] = await reader(s).select().from(users).where(eq(users.email, email)).limit(1);
  let passwordOk: boolean;
  try {
    passwordOk = await checkPasswordOrDummy(password, user?.passwordHash ?? null);
  } catch (err) {
    if (!(err instanceof PasswordHasherBusyError)) throw err;
    await decision.release("notChecked"); // not the user's fault: do not count it against them
    return { ok: false, reason: "throttled", retryAfterSeconds: err.retryAfterSeconds, message: err.message };
  }
  if (!user || !passwordOk || user.disabled) {
    await decision.release("failure");
    await recordSignInFailure(s, identifier);
    return { ok: false, reason: user && passwordOk && user.disabled ? "disabled" : "wrong email or password" };
  }
  await decision.release("success");
  const upgradedHash = needsRehash(user.passwordHash) ? (demoHashFor(user.email, password) ?? (await hashPassword(password))) : null;
  const session = await transact(
    s,
    function* (tx) {
      const fresh = yield* row(tx.select().from(users).where(eq(users.id, user.id)));
      if (!fresh || fresh.disabled) return null; // disabled while the password was being checked
      if (upgradedHash && fresh.passwordHash === user.passwordHash)
        yield* exec(tx.update(users).set({ passwordHash: upgradedHash }).where(eq(users.id, user.id)));
      const created = yield* createSession(tx, s.tables, user.id, client.userAgent);
      yield* appendEvent({
        actor: actorOf(fresh),
        action: "user.signIn",
        entityType: "user",
        entityId: user.id,
        payload: { email, hashUpgraded: upgradedHash !== null },
      });
      return { ...created, user: fresh };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  if (!session) return { ok: false, reason: "disabled" };
  return {
    ok: true,
    token: session.token,
    user: actorOf(session.user),
    mustChangePassword: session.user.mustChangePassword,
    expiresAt: session.expiresAt,
  };
}

export type RequestSession = { user: SignedInActor; idHash: string; mustChangePassword: boolean; endsAt: Date };

/** The live session for a token (idle and absolute expiry enforced), or null. */
export async function sessionForToken(store: Store | Db, token: string | undefined): Promise<RequestSession | null> {
  if (!token) return null;
  const r = await resolveSession(store, token);
  return r ? { user: actorOf(r.user), idHash: r.session.idHash, mustChangePassword: r.user.mustChangePassword, endsAt: r.endsAt } : null;
}

export async function signOut(store: Store | Db, token: string, actor: SignedInActor): Promise<void> {
  const s = asStore(store);
  await transact(
    s,
    function* (tx) {
      yield* deleteSession(tx, s.tables, actor.id, sessionIdHash(token));
      yield* appendEvent({ actor, action: "user.signOut", entityType: "user", entityId: actor.id, payload: {} });
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

/** The account flags every signed-in call checks (one primary-key read). */
export async function accountStatus(
  store: Store | Db,
  userId: number,
): Promise<{ role: Role; name: string; disabled: boolean; mustChangePassword: boolean } | null> {
  const s = asStore(store);
  const { users } = s.tables;
  const [found] = await reader(s)
    .select({ role: users.role, name: users.name, disabled: users.disabled, mustChangePassword: users.mustChangePassword })
    .from(users)
    .where(eq(users.id, userId))
    .limit(1);
  return found ?? null;
}
