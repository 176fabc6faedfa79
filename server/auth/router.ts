/**
 * Sign-in, sign-out, who am I, and the signed-in person's own account: password change and sessions.
 *
 * Invariants: the session token travels only in the Set-Cookie header (server/auth/cookies.ts), never in a body;
 * throttled sign-ins answer HTTP 429 with Retry-After; inputs are length-capped by contracts/user-fields.ts.
 */
import { z } from "zod";
import { DomainError } from "@/server/errors";
import { publicProcedure, router, signedInProcedure } from "@/server/trpc/init";
import { accountStatus, signIn, signOut } from "@/server/users/service";
import { changeOwnPassword, changePasswordInput, demoPasswordWarningOn, revokeSessions, sessionsOf } from "@/server/users/admin";
import { clearSessionCookie, sessionCookie } from "@/server/auth/cookies";
import { passwordCheckField, signInEmailField } from "@/contracts/user-fields";
import { TooManyAttempts } from "@/server/auth/throttle";
import { createToken, createTokenInput, revokeToken, revokeTokenInput, tokensOf } from "@/server/auth/tokens";

export const sessionIdField = z.string().regex(/^[0-9a-f]{64}$/, "a session id is 64 hexadecimal characters");

export const authRouter = router({
  /** The signed-in person (null when signed out), whether they must change their password, and for administrators the demo accounts still on public passwords. */
  me: publicProcedure.query(async ({ ctx }) => {
    if (!ctx.user) return null;
    const account = await accountStatus(ctx.services.db, ctx.user.id);
    if (!account || account.disabled) return null;
    return {
      ...ctx.user,
      role: account.role,
      name: account.name,
      mustChangePassword: account.mustChangePassword,
      demoPasswordsInUse: account.role === "admin" ? await demoPasswordWarningOn(ctx.services.db) : [],
    };
  }),

  signIn: publicProcedure.input(z.object({ email: signInEmailField, password: passwordCheckField })).mutation(async ({ ctx, input }) => {
    const r = await signIn(ctx.services.db, input.email, input.password, ctx.client);
    if (!r.ok && r.reason === "throttled") throw new TooManyAttempts(r.retryAfterSeconds, r.message);
    if (!r.ok)
      throw new DomainError(
        "unauthenticated",
        r.reason === "disabled" ? "this account is disabled: ask an administrator" : "wrong email or password",
      );
    ctx.resHeaders?.append("Set-Cookie", sessionCookie(r.token, (new Date(r.expiresAt).getTime() - Date.now()) / 1000));
    return { user: r.user, mustChangePassword: r.mustChangePassword, expiresAt: r.expiresAt };
  }),

  signOut: signedInProcedure.mutation(async ({ ctx }) => {
    if (ctx.sessionToken) await signOut(ctx.services.db, ctx.sessionToken, ctx.user);
    ctx.resHeaders?.append("Set-Cookie", clearSessionCookie());
    return { ok: true };
  }),

  /** Changes the caller's password (the current one is required); ends their other sessions. */
  changePassword: signedInProcedure
    .input(changePasswordInput)
    .mutation(({ ctx, input }) => changeOwnPassword(ctx.services.db, ctx.user, input, ctx.sessionIdHash ?? null, ctx.client)),

  /** The caller's live sessions; `current` is this browser's. */
  sessions: signedInProcedure.query(({ ctx }) => sessionsOf(ctx.services.db, ctx.user, ctx.user.id, ctx.sessionIdHash ?? null)),

  /** Ends one of the caller's sessions (signing this browser out when it is the current one). */
  revokeSession: signedInProcedure.input(z.object({ sessionId: sessionIdField })).mutation(async ({ ctx, input }) => {
    const r = await revokeSessions(ctx.services.db, ctx.user, { userId: ctx.user.id, sessionId: input.sessionId });
    if (input.sessionId === ctx.sessionIdHash) ctx.resHeaders?.append("Set-Cookie", clearSessionCookie());
    return r;
  }),

  /** The caller's personal access tokens for the tracking API (name, prefix, created, last used, revoked; never the token). */
  tokens: signedInProcedure.query(({ ctx }) => tokensOf(ctx.services.db, ctx.user.id)),

  /** Creates a personal access token for the caller; the answer carries the token text, shown once and never again. */
  createToken: signedInProcedure
    .input(createTokenInput)
    .mutation(({ ctx, input }) => createToken(ctx.services.db, ctx.user, ctx.user, input)),

  /** Revokes one of the caller's tokens (final). */
  revokeToken: signedInProcedure
    .input(revokeTokenInput)
    .mutation(({ ctx, input }) => revokeToken(ctx.services.db, ctx.user, ctx.user.id, input)),
});
