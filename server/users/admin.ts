/**
 * User management: administrators create users, change roles, disable and re-enable them, reset passwords and
 * revoke sessions; everyone changes their own password (with the old one) and revokes their own sessions. The CLI
 * calls the same functions as the operator (an `Actor` with no user id).
 *
 * Invariants:
 * - Every change is audited in the same transaction: user.create, user.update (before/after role and disabled),
 *   user.passwordReset, user.passwordChange, session.revoke. No password material ever goes into a payload.
 * - New users and reset passwords get a random temporary password, returned once to the caller and never stored in
 *   clear; the user must change it at next sign-in (must_change_password), and every procedure but changing it
 *   refuses until then (server/trpc/init.ts).
 * - Disabling a user, resetting their password and changing a password end the user's other sessions.
 * - An administrator cannot disable themselves; the last enabled administrator cannot be disabled or demoted.
 * - Nobody can set one of the public demo passwords.
 *
 * Store (issue 16): every function takes a store (or the SQLite handle) and is async; each change is one transaction
 * body (db/store.ts) under the ledger lock on PostgreSQL, so its checks (the last administrator, a session's owner)
 * and its writes see one state across servers, as SQLite's single writer gives.
 */
import { and, asc, eq, ne, sql } from "drizzle-orm";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Role } from "@/db/schema";
import type { Db, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, exec, reader, row, transact, type Store, type StoreTables, type TxBody } from "@/db/store";
import type { Actor } from "@/server/audit/ledger";
import { appendEvent } from "@/server/audit/ledger-pg";
import { checkPassword, hashPassword } from "@/server/auth/password";
import { nameField, newEmailField, newPasswordField, passwordCheckField, roleField, userIdField } from "@/contracts/user-fields";
import { deleteSession, deleteUserSessions, listSessions, type SessionSummary, type UserRow } from "@/server/auth/sessions";
import { identifierDigest } from "@/server/auth/signin-failures";
import { TooManyAttempts } from "@/server/auth/throttle";
import { demoAccountsWithPublicPasswordOn, isDemoPassword } from "@/server/auth/demo-users";
import { insertUser, signInThrottle, type SignInClient } from "./service";
import { now, requireRole, type SignedInActor } from "../app-context/service-context";
import { conflict, forbidden, invalidInput, notFound } from "@/server/errors";

/** The operator at the command line: acts on users without a signed-in account (bootstrap, recovery). */
export const OPERATOR_ACTOR: Actor = { id: null, name: "operator (command line)", role: "system" };

export const createUserInput = z.object({ email: newEmailField, name: nameField, role: roleField });
export const updateUserInput = z.object({ userId: userIdField, role: roleField.optional(), disabled: z.boolean().optional() });
export const changePasswordInput = z.object({ currentPassword: passwordCheckField, newPassword: newPasswordField });

function parse<T extends z.ZodType>(schema: T, raw: unknown): z.output<T> {
  const r = schema.safeParse(raw);
  if (!r.success) invalidInput(r.error.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`).join("; "));
  return r.data;
}

function requireAdmin(actor: Actor, doing: string): void {
  if (actor.id === null && actor === OPERATOR_ACTOR) return;
  requireRole(actor as SignedInActor, ["admin"], doing);
}

/** 16 characters of base64url (96 bits): shown once, then only its hash exists. */
export function temporaryPassword(): string {
  return randomBytes(12).toString("base64url");
}

export type UserListRow = {
  id: number;
  email: string;
  name: string;
  role: Role;
  disabled: boolean;
  mustChangePassword: boolean;
  passwordChangedAt: string | null;
  createdAt: string;
  activeSessions: number;
};

export async function listUsers(store: Store | Db): Promise<UserListRow[]> {
  const s = asStore(store);
  const { users, sessions } = s.tables;
  const db = reader(s);
  const rows = await db.select().from(users).orderBy(asc(users.id));
  // count(*) is bigint on PostgreSQL, which node-postgres returns as text.
  const counted = await db
    .select({ userId: sessions.userId, n: sql<number>`count(*)`.mapWith(Number) })
    .from(sessions)
    .groupBy(sessions.userId);
  const counts = new Map(counted.map((r) => [r.userId, r.n]));
  return rows.map((u) => ({
    id: u.id,
    email: u.email,
    name: u.name,
    role: u.role,
    disabled: u.disabled,
    mustChangePassword: u.mustChangePassword,
    passwordChangedAt: u.passwordChangedAt,
    createdAt: u.createdAt,
    activeSessions: counts.get(u.id) ?? 0,
  }));
}

/** A user by id, or not_found: a transaction part. */
function* userIn(tx: Tx, tables: StoreTables, userId: number): TxBody<UserRow> {
  const { users } = tables;
  return (yield* row(tx.select().from(users).where(eq(users.id, userId)))) ?? notFound(`user ${userId}`);
}

/** A user by id, or not_found. */
export async function findUser(store: Store | Db, userId: number): Promise<UserRow> {
  const s = asStore(store);
  const { users } = s.tables;
  const [found] = await reader(s).select().from(users).where(eq(users.id, userId)).limit(1);
  return found ?? notFound(`user ${userId}`);
}

/** Creates a user with a temporary password (returned once); they must change it at first sign-in. */
export async function createUser(store: Store | Db, actor: Actor, raw: z.input<typeof createUserInput>) {
  requireAdmin(actor, "create users");
  const input = parse(createUserInput, raw);
  const password = temporaryPassword();
  const user = await insertUser(store, actor, { ...input, passwordHash: await hashPassword(password), mustChangePassword: true });
  return { user: { id: user.id, email: user.email, name: user.name, role: user.role }, temporaryPassword: password };
}

function* enabledAdminsOtherThan(tx: Tx, tables: StoreTables, userId: number): TxBody<number> {
  const { users } = tables;
  const counted = yield* row(
    tx
      .select({ n: sql<number>`count(*)`.mapWith(Number) })
      .from(users)
      .where(and(eq(users.role, "admin"), eq(users.disabled, false), ne(users.id, userId))),
  );
  return counted!.n;
}

/** Changes a user's role and/or disabled flag. Disabling ends their sessions. */
export async function updateUser(store: Store | Db, actor: Actor, raw: z.input<typeof updateUserInput>) {
  requireAdmin(actor, "change users");
  const input = parse(updateUserInput, raw);
  if (input.role === undefined && input.disabled === undefined) invalidInput("say what to change: role and/or disabled");
  const s = asStore(store);
  const { users } = s.tables;
  return transact(
    s,
    function* (tx) {
      const before = yield* userIn(tx, s.tables, input.userId);
      const after = { role: input.role ?? before.role, disabled: input.disabled ?? before.disabled };
      if (after.role === before.role && after.disabled === before.disabled)
        conflict(`${before.email} already has role ${before.role} and is ${before.disabled ? "disabled" : "enabled"}: nothing to change`);
      if (after.disabled && !before.disabled && actor.id === before.id)
        forbidden("you cannot disable your own account: ask another administrator");
      const losesAdmin = before.role === "admin" && !before.disabled && (after.role !== "admin" || after.disabled);
      if (losesAdmin && (yield* enabledAdminsOtherThan(tx, s.tables, before.id)) === 0)
        conflict(`${before.email} is the last enabled administrator: make someone else an administrator first`);
      yield* exec(tx.update(users).set(after).where(eq(users.id, before.id)));
      const sessionsRevoked = after.disabled && !before.disabled ? yield* deleteUserSessions(tx, s.tables, before.id) : 0;
      yield* appendEvent({
        actor,
        action: "user.update",
        entityType: "user",
        entityId: before.id,
        payload: { email: before.email, before: { role: before.role, disabled: before.disabled }, after, sessionsRevoked },
      });
      return { id: before.id, email: before.email, ...after, sessionsRevoked };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

/** Gives a user a new temporary password (returned once), ends their sessions, and makes them change it at sign-in. */
export async function resetPassword(store: Store | Db, actor: Actor, raw: { userId: number }) {
  requireAdmin(actor, "reset passwords");
  const userId = parse(z.object({ userId: userIdField }), raw).userId;
  const s = asStore(store);
  const { users } = s.tables;
  const target = await findUser(s, userId);
  if (actor.id === target.id) invalidInput("change your own password on your account page (it asks for the current one)");
  const password = temporaryPassword();
  const hash = await hashPassword(password);
  const sessionsRevoked = await transact(
    s,
    function* (tx) {
      yield* exec(
        tx.update(users).set({ passwordHash: hash, mustChangePassword: true, passwordChangedAt: now() }).where(eq(users.id, userId)),
      );
      const n = yield* deleteUserSessions(tx, s.tables, userId);
      yield* appendEvent({
        actor,
        action: "user.passwordReset",
        entityType: "user",
        entityId: userId,
        payload: { email: target.email, mustChangePassword: true, sessionsRevoked: n },
      });
      return n;
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return { user: { id: target.id, email: target.email, name: target.name }, temporaryPassword: password, sessionsRevoked };
}

/**
 * Changes the signed-in user's own password after checking the current one (throttled like sign-in, so a stolen
 * session cannot guess it). Clears must_change_password and ends the user's other sessions.
 */
export async function changeOwnPassword(
  store: Store | Db,
  actor: SignedInActor,
  raw: z.input<typeof changePasswordInput>,
  currentSessionIdHash: string | null,
  client: SignInClient = { address: "local", userAgent: null },
) {
  const input = parse(changePasswordInput, raw);
  if (input.newPassword === input.currentPassword) invalidInput("newPassword: choose a password different from the current one");
  if (isDemoPassword(input.newPassword)) invalidInput("newPassword: that is one of the public demo passwords: choose another");
  const s = asStore(store);
  const { users } = s.tables;
  const user = await findUser(s, actor.id);
  const decision = await signInThrottle(s).attempt(identifierDigest(user.email), client.address);
  if (!decision.allowed) {
    const message = `too many wrong passwords: try again in ${decision.retryAfterSeconds} s`;
    throw new TooManyAttempts(decision.retryAfterSeconds, message);
  }
  const ok = await checkPassword(input.currentPassword, user.passwordHash);
  await decision.release(ok ? "success" : "failure");
  if (!ok) forbidden("currentPassword: that is not your current password");
  const hash = await hashPassword(input.newPassword);
  return transact(
    s,
    function* (tx) {
      yield* exec(
        tx.update(users).set({ passwordHash: hash, mustChangePassword: false, passwordChangedAt: now() }).where(eq(users.id, actor.id)),
      );
      const sessionsRevoked = yield* deleteUserSessions(tx, s.tables, actor.id, currentSessionIdHash ?? undefined);
      yield* appendEvent({
        actor,
        action: "user.passwordChange",
        entityType: "user",
        entityId: actor.id,
        payload: { email: user.email, wasTemporary: user.mustChangePassword, otherSessionsRevoked: sessionsRevoked },
      });
      return { ok: true as const, otherSessionsRevoked: sessionsRevoked };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

export async function sessionsOf(store: Store | Db, actor: Actor, userId: number, currentIdHash: string | null): Promise<SessionSummary[]> {
  if (actor.id !== userId) requireAdmin(actor, "see other people's sessions");
  await findUser(store, userId);
  return listSessions(store, userId, currentIdHash);
}

/** Ends one session (`sessionId`) or all of a user's sessions. People end their own; administrators anyone's. */
export async function revokeSessions(store: Store | Db, actor: Actor, input: { userId: number; sessionId?: string }) {
  if (actor.id !== input.userId) requireAdmin(actor, "end other people's sessions");
  const s = asStore(store);
  const target = await findUser(s, input.userId);
  return transact(
    s,
    function* (tx) {
      const revoked = input.sessionId
        ? (yield* deleteSession(tx, s.tables, target.id, input.sessionId))
          ? 1
          : 0
        : yield* deleteUserSessions(tx, s.tables, target.id);
      if (input.sessionId && revoked === 0) notFound(`session ${input.sessionId.slice(0, 12)}… of ${target.email}`);
      yield* appendEvent({
        actor,
        action: "session.revoke",
        entityType: "user",
        entityId: target.id,
        payload: { email: target.email, sessions: revoked, scope: input.sessionId ? "one" : "all" },
      });
      return { revoked };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

/** For administrators' warning banner: enabled demo accounts still on their public password (either store). */
export async function demoPasswordWarningOn(db: Store | Db): Promise<string[]> {
  return (await demoAccountsWithPublicPasswordOn(db)).map((u) => u.email);
}
