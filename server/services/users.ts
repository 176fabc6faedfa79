/** Users and sessions: sign-in (audited, failures too), sign-out, creating users (admin only). */
import { and, eq, gt } from "drizzle-orm";
import { randomBytes } from "node:crypto";
import { users, sessions, type Role } from "@/db/schema";
import type { Db } from "@/db/client";
import { appendAuditEvent, SYSTEM_ACTOR } from "@/server/audit/ledger";
import { sha256Hex } from "@/server/audit/canonical";
import { hashPassword, verifyPassword } from "@/server/auth/password";
import { badRequest, conflict, now, requireRole, type ServiceContext, type SignedInActor } from "./service-context";

export const SESSION_DAYS = 7;

export function actorOf(u: typeof users.$inferSelect): SignedInActor {
  return { id: u.id, name: u.name, role: u.role, email: u.email };
}

/** Creates a user with no actor check; for first-start seeding and the admin service below. */
export function insertUser(db: Db, actor: { id: number | null; name: string; role: string }, input: { email: string; name: string; role: Role; password: string }) {
  const email = input.email.trim().toLowerCase();
  if (db.select({ id: users.id }).from(users).where(eq(users.email, email)).get()) conflict(`a user with email ${email} already exists`);
  return db.transaction((tx) => {
    const row = tx.insert(users).values({ email, name: input.name, role: input.role, passwordHash: hashPassword(input.password), createdAt: now() }).returning().get();
    appendAuditEvent(tx, { actor, action: "user.create", entityType: "user", entityId: row.id, payload: { email, name: row.name, role: row.role } });
    return row;
  });
}

export function createUser(ctx: ServiceContext, input: { email: string; name: string; role: Role; password: string }) {
  requireRole(ctx.actor, ["admin"], "create users");
  if (input.password.length < 8) badRequest("password must be at least 8 characters");
  return insertUser(ctx.db, ctx.actor, input);
}

export type SignInResult = { ok: true; token: string; user: SignedInActor; expiresAt: string } | { ok: false };

/** Verifies the password; records success or failure in the ledger (never the password). */
export function signIn(db: Db, emailRaw: string, password: string): SignInResult {
  const email = emailRaw.trim().toLowerCase();
  const user = db.select().from(users).where(eq(users.email, email)).get();
  const ok = !!user && !user.disabled && verifyPassword(password, user.passwordHash);
  if (!ok || !user) {
    db.transaction((tx) => {
      appendAuditEvent(tx, { actor: { ...SYSTEM_ACTOR, name: "anonymous" }, action: "user.signInFailed", entityType: "user", entityId: user?.id ?? email, payload: { email, reason: user ? (user.disabled ? "disabled" : "wrong password") : "unknown email" } });
    });
    return { ok: false };
  }
  const token = randomBytes(32).toString("base64url");
  const expiresAt = new Date(Date.now() + SESSION_DAYS * 86_400_000).toISOString();
  db.transaction((tx) => {
    tx.insert(sessions).values({ idHash: sha256Hex(token), userId: user.id, createdAt: now(), expiresAt }).run();
    appendAuditEvent(tx, { actor: actorOf(user), action: "user.signIn", entityType: "user", entityId: user.id, payload: { email } });
  });
  return { ok: true, token, user: actorOf(user), expiresAt };
}

export function userForSession(db: Db, token: string | undefined): SignedInActor | null {
  if (!token) return null;
  const row = db
    .select({ user: users })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(sessions.idHash, sha256Hex(token)), gt(sessions.expiresAt, now())))
    .get();
  return row && !row.user.disabled ? actorOf(row.user) : null;
}

export function signOut(db: Db, token: string, actor: SignedInActor): void {
  db.transaction((tx) => {
    tx.delete(sessions).where(eq(sessions.idHash, sha256Hex(token))).run();
    appendAuditEvent(tx, { actor, action: "user.signOut", entityType: "user", entityId: actor.id, payload: {} });
  });
}

export function listUsers(db: Db) {
  return db.select({ id: users.id, email: users.email, name: users.name, role: users.role, disabled: users.disabled, createdAt: users.createdAt }).from(users).all();
}
