/**
 * Sign-in sessions: created at sign-in, looked up on every request, listed and revoked per user.
 *
 * Invariants:
 * - The browser holds a random 32-byte token; the database holds only its sha256 (`id_hash`), which is also the
 *   handle shown in session lists (it cannot be turned back into a token). No response body ever carries a token.
 * - A session ends at its absolute expiry (SESSION_ABSOLUTE_DAYS after sign-in) or after SESSION_IDLE_HOURS without a
 *   request, whichever comes first; both are checked on every lookup, and an ended session's row is deleted.
 * - last_seen_at is written at most once a minute per session, so reads do not turn into a write per request.
 * - A disabled user has no sessions (disabling deletes them) and is refused even if a row survived.
 */
import { and, desc, eq, ne } from "drizzle-orm";
import { randomBytes } from "node:crypto";
import { sessions, users } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import { sha256Hex } from "@/contracts/canonical";

export const SESSION_ABSOLUTE_DAYS = 7;
export const SESSION_IDLE_HOURS = 12;
const LAST_SEEN_RESOLUTION_MS = 60_000;
const USER_AGENT_MAX = 200;

export type UserRow = typeof users.$inferSelect;
export type SessionRow = typeof sessions.$inferSelect;

export function sessionEnds(s: Pick<SessionRow, "createdAt" | "expiresAt" | "lastSeenAt">): { at: Date; reason: "absolute" | "idle" } {
  const absolute = new Date(s.expiresAt);
  const idle = new Date(new Date(s.lastSeenAt ?? s.createdAt).getTime() + SESSION_IDLE_HOURS * 3_600_000);
  return idle < absolute ? { at: idle, reason: "idle" } : { at: absolute, reason: "absolute" };
}

/** Inserts a session and returns its token (to go into the cookie only). Call inside the sign-in transaction. */
export function createSession(
  tx: DbOrTx,
  userId: number,
  userAgent: string | null,
  at = new Date(),
): { token: string; idHash: string; expiresAt: string } {
  const token = randomBytes(32).toString("base64url");
  const idHash = sha256Hex(token);
  const expiresAt = new Date(at.getTime() + SESSION_ABSOLUTE_DAYS * 86_400_000).toISOString();
  tx.insert(sessions)
    .values({
      idHash,
      userId,
      createdAt: at.toISOString(),
      expiresAt,
      lastSeenAt: at.toISOString(),
      userAgent: userAgent ? userAgent.slice(0, USER_AGENT_MAX) : null,
    })
    .run();
  return { token, idHash, expiresAt };
}

export type ResolvedSession = { user: UserRow; session: SessionRow; endsAt: Date };

/**
 * The live session for a token, or null (unknown, ended, or its user disabled). Ended sessions are deleted here;
 * last_seen_at moves forward when it is more than a minute old.
 */
export function resolveSession(db: DbOrTx, token: string, now = new Date()): ResolvedSession | null {
  const idHash = sha256Hex(token);
  const row = db
    .select({ session: sessions, user: users })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.idHash, idHash))
    .get();
  if (!row) return null;
  const ends = sessionEnds(row.session);
  if (ends.at <= now || row.user.disabled) {
    db.delete(sessions).where(eq(sessions.idHash, idHash)).run();
    return null;
  }
  const lastSeen = new Date(row.session.lastSeenAt ?? row.session.createdAt).getTime();
  let session = row.session;
  if (now.getTime() - lastSeen >= LAST_SEEN_RESOLUTION_MS) {
    session = { ...session, lastSeenAt: now.toISOString() };
    db.update(sessions).set({ lastSeenAt: session.lastSeenAt }).where(eq(sessions.idHash, idHash)).run();
  }
  return { user: row.user, session, endsAt: sessionEnds(session).at };
}

export type SessionSummary = {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  endsAt: string;
  endsBecause: "absolute" | "idle";
  userAgent: string | null;
  current: boolean;
};

/** A user's live sessions, newest first; `current` marks the one making the request. Ended rows are not shown. */
export function listSessions(db: DbOrTx, userId: number, currentIdHash: string | null, now = new Date()): SessionSummary[] {
  return db
    .select()
    .from(sessions)
    .where(eq(sessions.userId, userId))
    .orderBy(desc(sessions.createdAt))
    .all()
    .map((s) => ({ s, ends: sessionEnds(s) }))
    .filter(({ ends }) => ends.at > now)
    .map(({ s, ends }) => ({
      id: s.idHash,
      createdAt: s.createdAt,
      lastSeenAt: s.lastSeenAt ?? s.createdAt,
      endsAt: ends.at.toISOString(),
      endsBecause: ends.reason,
      userAgent: s.userAgent,
      current: s.idHash === currentIdHash,
    }));
}

/** Deletes one of a user's sessions; returns whether it existed. */
export function deleteSession(tx: DbOrTx, userId: number, idHash: string): boolean {
  return (
    tx
      .delete(sessions)
      .where(and(eq(sessions.userId, userId), eq(sessions.idHash, idHash)))
      .run().changes > 0
  );
}

/** Deletes all of a user's sessions (optionally keeping one); returns how many were deleted. */
export function deleteUserSessions(tx: DbOrTx, userId: number, keepIdHash?: string): number {
  const where = keepIdHash ? and(eq(sessions.userId, userId), ne(sessions.idHash, keepIdHash)) : eq(sessions.userId, userId);
  return tx.delete(sessions).where(where).run().changes;
}

export function sessionIdHash(token: string): string {
  return sha256Hex(token);
}
