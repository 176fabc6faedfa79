/**
 * tRPC set-up, in three parts: (1) the context (services + the signed-in user from the session cookie),
 * (2) initialisation with a zod-aware error formatter, (3) the procedure ladder:
 * public → signed-in → role. Every procedure that reads or writes project data is at least signed-in;
 * the role check happens here on the server, never only in the UI.
 * Sessions: a malformed, expired or revoked cookie gives an anonymous context (401 on signed-in procedures, never a
 * 500); signed-in procedures re-read the account (disabled → 401; must change password → 403 except
 * ALLOWED_BEFORE_PASSWORD_CHANGE). Domain errors map to tRPC codes in domain-error-mapping.ts; throttling becomes
 * HTTP 429 with Retry-After.
 */
import { initTRPC, TRPCError } from "@trpc/server";
import { ZodError } from "zod";
import type { AnyAppServices } from "@/server/app-context/app-services";
import { accountStatus, sessionForToken, type SignInClient } from "@/server/users/service";
import type { AnyServiceContext, SignedInActor } from "@/server/app-context/service-context";
import type { Role } from "@/contracts/user-fields";
import { applyCheckpointPolicy } from "@/server/audit/checkpoint-policy";
import { clearSessionCookie, readSessionToken } from "@/server/auth/cookies";
import { domainErrorOf, toTRPCError } from "./domain-error-mapping";
import { CHANGE_PASSWORD_FIRST, SIGN_IN_FIRST, UNAUTHORIZED_MESSAGES } from "@/server/auth/session-messages";
import { clientAddress } from "@/server/http/client-address";

export { SESSION_COOKIE, readCookie } from "@/server/auth/cookies";

// (1) Context
export type TrpcContext = {
  /**
   * The process's long-lived services on either store; in signed-in procedures also `actor`, so `ctx.services` is an
   * AnyServiceContext.
   */
  services: AnyAppServices;
  user: SignedInActor | null;
  sessionToken: string | undefined;
  /** sha256 of the session token (the handle in session lists), when the request has a live session. */
  sessionIdHash?: string | null;
  /** Why a session cookie that was sent names no live session: the 401 says so. */
  sessionProblem?: "malformed" | "ended" | null;
  /** Who is asking (client address and User-Agent), for sign-in throttling and session lists. */
  client?: SignInClient;
  /** Response headers (Set-Cookie, Retry-After); absent for createCaller in tests and the CLI. */
  resHeaders?: Headers;
};

/**
 * Who is asking: the client address by server/http/client-address.ts (the socket's address; X-Forwarded-For only
 * as far as RUNLEDGER_TRUST_PROXY says to trust it) and the User-Agent.
 */
export function clientOf(req: Request): SignInClient {
  return { address: clientAddress(req.headers), userAgent: req.headers.get("user-agent")?.slice(0, 200) ?? null };
}

/** Never rejects for a bad cookie: a malformed or ended session cookie gives an anonymous context (and clears the cookie). */
export async function createContextFromRequest(services: AnyAppServices, req: Request, resHeaders: Headers): Promise<TrpcContext> {
  const client = clientOf(req);
  const cookie = readSessionToken(req.headers.get("cookie"));
  if (cookie.kind === "none") return { services, user: null, sessionToken: undefined, client, resHeaders };
  const session = cookie.kind === "token" ? await sessionForToken(services.db, cookie.token) : null;
  if (!session) {
    resHeaders.append("Set-Cookie", clearSessionCookie());
    return {
      services,
      user: null,
      sessionToken: undefined,
      sessionProblem: cookie.kind === "malformed" ? "malformed" : "ended",
      client,
      resHeaders,
    };
  }
  return {
    services,
    user: session.user,
    sessionToken: cookie.kind === "token" ? cookie.token : undefined,
    sessionIdHash: session.idHash,
    client,
    resHeaders,
  };
}

// (2) Initialisation
const t = initTRPC.context<TrpcContext>().create({
  errorFormatter({ shape, error }) {
    const zodError = error.cause instanceof ZodError ? error.cause : null;
    return {
      ...shape,
      message: zodError ? zodError.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`).join("; ") : shape.message,
      data: { ...shape.data, zodError: zodError ? zodError.flatten() : null },
    };
  },
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

// (3) Procedures
/**
 * After every mutation (failed ones too: refusals are audited), sign an audit checkpoint if the policy says one is
 * due (every 100 events or 10 minutes). The change has committed already; a checkpoint problem is logged, not thrown.
 */
const checkpointAfterMutations = t.middleware(async ({ ctx, type, next }) => {
  const result = await next();
  // Awaited: on PostgreSQL the policy answers with a promise (it never rejects); on SQLite it has already run.
  if (type === "mutation") await applyCheckpointPolicy(ctx.services);
  return result;
});

/**
 * Domain errors thrown by services (server/errors.ts) become tRPC errors here, for every procedure, through the one
 * mapping in server/trpc/domain-error-mapping.ts. Throttling (too_many_requests with retryAfterSeconds: sign-in,
 * signature passwords, a busy password hasher) also sets Retry-After, which the fetch adapter sends with the 429.
 */
const mapDomainErrors = t.middleware(async ({ ctx, next }) => {
  const result = await next();
  if (!result.ok) {
    const domain = domainErrorOf(result.error);
    if (domain) {
      if (domain.retryAfterSeconds !== undefined) ctx.resHeaders?.set("Retry-After", String(Math.max(1, domain.retryAfterSeconds)));
      throw toTRPCError(domain);
    }
  }
  return result;
});

export const publicProcedure = t.procedure.use(mapDomainErrors).use(checkpointAfterMutations);

/** What a user whose password was reset may still do until they change it. */
export const ALLOWED_BEFORE_PASSWORD_CHANGE = new Set(["auth.me", "auth.signOut", "auth.changePassword"]);

export const signedInProcedure = publicProcedure.use(async ({ ctx, path, next }) => {
  if (!ctx.user)
    throw new TRPCError({ code: "UNAUTHORIZED", message: ctx.sessionProblem ? UNAUTHORIZED_MESSAGES[ctx.sessionProblem] : SIGN_IN_FIRST });
  // Read the account on every call: a disabled user, a changed role or a reset password takes effect at once.
  const account = await accountStatus(ctx.services.db, ctx.user.id);
  if (!account || account.disabled) throw new TRPCError({ code: "UNAUTHORIZED", message: UNAUTHORIZED_MESSAGES.disabled });
  if (account.mustChangePassword && !ALLOWED_BEFORE_PASSWORD_CHANGE.has(path))
    throw new TRPCError({ code: "FORBIDDEN", message: CHANGE_PASSWORD_FIRST });
  const user: SignedInActor = { ...ctx.user, role: account.role, name: account.name };
  // One context object: the process's services plus who is acting, which is what a service takes (ServiceContext).
  const services: AnyAppServices & AnyServiceContext = { ...ctx.services, actor: user };
  return next({ ctx: { ...ctx, user, services } });
});

export function roleProcedure(...roles: Role[]) {
  return signedInProcedure.use(({ ctx, next }) => {
    if (!roles.includes(ctx.user.role))
      throw new TRPCError({ code: "FORBIDDEN", message: `a ${ctx.user.role} cannot do this (needs: ${roles.join(" or ")})` });
    return next();
  });
}

export const engineerProcedure = roleProcedure("engineer");
