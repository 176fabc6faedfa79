/**
 * What a request that may not proceed is told, shared by tRPC (server/trpc/init.ts) and the API routes
 * (server/http/route-session.ts), so both say the same thing with the same status:
 * - 401: no session, a malformed cookie, an ended session, or a disabled account;
 * - 403: a signed-in user whose password an administrator reset must change it before anything else.
 */
export const SIGN_IN_FIRST = "sign in first";

export const UNAUTHORIZED_MESSAGES = {
  malformed: "your session cookie is not valid: sign in again",
  ended: "your session has ended (signed out, expired or revoked): sign in again",
  disabled: "this account is disabled: ask an administrator",
} as const;

export const CHANGE_PASSWORD_FIRST = "change your password first (an administrator set a temporary one): open Account → Change password";
