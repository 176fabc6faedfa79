/**
 * Who is calling an API route outside tRPC (uploads, report export), from the session cookie, with the same
 * answers as tRPC's signed-in procedures (server/auth/session-messages.ts):
 * - no cookie → 401 "sign in first"; malformed cookie or ended session → 401 saying so;
 * - a disabled account → 401; a user who must change their password → 403 "change your password first".
 * Route handlers take a RouteCaller (or, for tests and the CLI, a plain user or null) and answer `refusal` in
 * their own format before doing anything else except the CSRF check.
 */
import type { Db } from "@/db/client";
import type { Store } from "@/db/store";
import { readSessionToken } from "@/server/auth/cookies";
import { CHANGE_PASSWORD_FIRST, SIGN_IN_FIRST, UNAUTHORIZED_MESSAGES } from "@/server/auth/session-messages";
import { accountStatus, sessionForToken } from "@/server/users/service";
import type { SignedInActor } from "@/server/app-context/service-context";

export type RouteRefusal = { status: 401 | 403; message: string };
export type RouteCaller = { user: SignedInActor; refusal: null } | { user: null; refusal: RouteRefusal };

const refused = (status: 401 | 403, message: string): RouteCaller => ({ user: null, refusal: { status, message } });

/** Reads the session cookie of `req` and the account behind it (one indexed read each). */
export async function routeCaller(db: Store | Db, req: Request): Promise<RouteCaller> {
  const cookie = readSessionToken(req.headers.get("cookie"));
  if (cookie.kind === "none") return refused(401, SIGN_IN_FIRST);
  if (cookie.kind === "malformed") return refused(401, UNAUTHORIZED_MESSAGES.malformed);
  const session = await sessionForToken(db, cookie.token);
  if (!session) return refused(401, UNAUTHORIZED_MESSAGES.ended);
  const account = await accountStatus(db, session.user.id);
  if (!account || account.disabled) return refused(401, UNAUTHORIZED_MESSAGES.disabled);
  if (account.mustChangePassword) return refused(403, CHANGE_PASSWORD_FIRST);
  return { user: { ...session.user, role: account.role, name: account.name }, refusal: null };
}

/** A RouteCaller from what a handler was given: a RouteCaller, a signed-in user, or null (not signed in). */
export function asRouteCaller(who: RouteCaller | SignedInActor | null): RouteCaller {
  if (who === null) return refused(401, SIGN_IN_FIRST);
  if ("refusal" in who) return who;
  return { user: who, refusal: null };
}
