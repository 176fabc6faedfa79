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
 *
 * Store (issue 16): the functions take a store (or the SQLite handle) and are async; creating and deleting sessions
 * are transaction parts (`function* (tx, tables, …)`, db/store.ts), used with `yield*` inside a ported body (sign-in,
 * sign-out, user admin) or with `runOnSqliteTx` inside an unported synchronous SQLite transaction. Counts of deleted
 * rows come from RETURNING (both stores), not SQLite's `changes`.
 */
import { and, desc, eq, ne } from "drizzle-orm";
import { randomBytes } from "node:crypto";
import type { sessions, users } from "@/db/schema";
import type { Db, Tx } from "@/db/client";
import { asStore, exec, reader, rows, transact, type Store, type StoreTables, type TxBody } from "@/db/store";
import { sha256Hex } from "@/contracts/canonical";

export const SESSION_ABSOLUTE_DAYS = 7;
export const SESSION_IDLE_HOURS = 12;
const LAST_SEEN_RESOLUTION_MS = 60_000;
const USER_AGENT_MAX = 200;

export type UserRow = typeof users.$inferSelect;
export type SessionRow = typeof sessions.$inferSelect;
export type NewSession = { token: string; idHash: string; expiresAt: string };

export function sessionEnds(s: Pick<SessionRow, "createdAt" | "expiresAt" | "lastSeenAt">): { at: Date; reason: "absolute" | "idle" } {
  const absolute = new Date(s.expiresAt);
  const idle = new Date(new Date(s.lastSeenAt ?? s.createdAt).getTime() + SESSION_IDLE_HOURS * 3_600_000);
  return idle < absolute ? { at: idle, reason: "idle" } : { at: absolute, reason: "absolute" };
}

/** Inserts a session and returns its token (to go into the cookie only). A part of the sign-in transaction. */
export function* createSession(tx: Tx, tables: StoreTables, userId: number, userAgent: string | null, at = new Date()): TxBody<NewSession> {
  // The token is drawn before the first statement; randomBytes is synchronous, so this stays pure computation.
  const token = randomBytes(32).toString("base64url");
  const idHash = sha256Hex(token);
  const expiresAt = new Date(at.getTime() + SESSION_ABSOLUTE_DAYS * 86_400_000).toISOString();
  yield* exec(
    tx.insert(tables.sessions).values({
      idHash,
      userId,
      createdAt: at.toISOString(),
      expiresAt,
      lastSeenAt: at.toISOString(),
      userAgent: userAgent ? userAgent.slice(0, USER_AGENT_MAX) : null,
    }),
  );
  return { token, idHash, expiresAt };
}

/** A session in a transaction of its own, outside sign-in (test fixtures sign people in this way). */
export function openSession(store: Store | Db, userId: number, userAgent: string | null, at = new Date()): Promise<NewSession> {
  const s = asStore(store);
  return transact(s, (tx) => createSession(tx, s.tables, userId, userAgent, at));
}

export type ResolvedSession = { user: UserRow; session: SessionRow; endsAt: Date };

/**
 * The live session for a token, or null (unknown, ended, or its user disabled). Ended sessions are deleted here;
 * last_seen_at moves forward when it is more than a minute old. Each statement stands alone (no transaction): the
 * delete and the touch are idempotent, and a concurrent sign-out's delete wins over a touch.
 */
export async function resolveSession(store: Store | Db, token: string, now = new Date()): Promise<ResolvedSession | null> {
  const s = asStore(store);
  const db = reader(s);
  const { sessions, users } = s.tables;
  const idHash = sha256Hex(token);
  const [row] = await db
    .select({ session: sessions, user: users })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.idHash, idHash))
    .limit(1);
  if (!row) return null;
  const ends = sessionEnds(row.session);
  if (ends.at <= now || row.user.disabled) {
    await db.delete(sessions).where(eq(sessions.idHash, idHash));
    return null;
  }
  const lastSeen = new Date(row.session.lastSeenAt ?? row.session.createdAt).getTime();
  let session = row.session;
  if (now.getTime() - lastSeen >= LAST_SEEN_RESOLUTION_MS) {
    session = { ...session, lastSeenAt: now.toISOString() };
    await db.update(sessions).set({ lastSeenAt: session.lastSeenAt }).where(eq(sessions.idHash, idHash));
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
export async function listSessions(
  store: Store | Db,
  userId: number,
  currentIdHash: string | null,
  now = new Date(),
): Promise<SessionSummary[]> {
  const s = asStore(store);
  const { sessions } = s.tables;
  const found = await reader(s).select().from(sessions).where(eq(sessions.userId, userId)).orderBy(desc(sessions.createdAt));
  return found
    .map((row) => ({ row, ends: sessionEnds(row) }))
    .filter(({ ends }) => ends.at > now)
    .map(({ row, ends }) => ({
      id: row.idHash,
      createdAt: row.createdAt,
      lastSeenAt: row.lastSeenAt ?? row.createdAt,
      endsAt: ends.at.toISOString(),
      endsBecause: ends.reason,
      userAgent: row.userAgent,
      current: row.idHash === currentIdHash,
    }));
}

/** Deletes one of a user's sessions; returns whether it existed. A transaction part. */
export function* deleteSession(tx: Tx, tables: StoreTables, userId: number, idHash: string): TxBody<boolean> {
  const { sessions } = tables;
  const deleted = yield* rows(
    tx
      .delete(sessions)
      .where(and(eq(sessions.userId, userId), eq(sessions.idHash, idHash)))
      .returning({ idHash: sessions.idHash }),
  );
  return deleted.length > 0;
}

/** Deletes all of a user's sessions (optionally keeping one); returns how many were deleted. A transaction part. */
export function* deleteUserSessions(tx: Tx, tables: StoreTables, userId: number, keepIdHash?: string): TxBody<number> {
  const { sessions } = tables;
  const where = keepIdHash ? and(eq(sessions.userId, userId), ne(sessions.idHash, keepIdHash)) : eq(sessions.userId, userId);
  const deleted = yield* rows(tx.delete(sessions).where(where).returning({ idHash: sessions.idHash }));
  return deleted.length;
}

export function sessionIdHash(token: string): string {
  return sha256Hex(token);
}
