/**
 * tRPC set-up, in three parts: (1) the context (services + the signed-in user from the session cookie),
 * (2) initialisation with a zod-aware error formatter, (3) the procedure ladder:
 * public → signed-in → role. Every procedure that reads or writes project data is at least signed-in;
 * the role check happens here on the server, never only in the UI.
 */
import { initTRPC, TRPCError } from "@trpc/server";
import { ZodError } from "zod";
import type { AppServices } from "@/server/app-services";
import { userForSession } from "@/server/services/users";
import type { ServiceContext, SignedInActor } from "@/server/services/service-context";
import type { Role } from "@/db/schema";
import { applyCheckpointPolicy } from "@/server/audit/checkpoint-policy";

export const SESSION_COOKIE = "runledger_session";

// (1) Context
export type TrpcContext = {
  services: AppServices;
  user: SignedInActor | null;
  sessionToken: string | undefined;
  /** Response headers (Set-Cookie); absent for createCaller in tests and the CLI. */
  resHeaders?: Headers;
};

export function readCookie(header: string | null | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return undefined;
}

export function createContextFromRequest(services: AppServices, req: Request, resHeaders: Headers): TrpcContext {
  const token = readCookie(req.headers.get("cookie"), SESSION_COOKIE);
  return { services, user: userForSession(services.db, token), sessionToken: token, resHeaders };
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
  if (type === "mutation") applyCheckpointPolicy(ctx.services);
  return result;
});

export const publicProcedure = t.procedure.use(checkpointAfterMutations);

export const signedInProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.user) throw new TRPCError({ code: "UNAUTHORIZED", message: "sign in first" });
  const service: ServiceContext = { db: ctx.services.db, artifacts: ctx.services.artifacts, dataDir: ctx.services.dataDir, auditKeys: ctx.services.auditKeys, actor: ctx.user };
  return next({ ctx: { ...ctx, user: ctx.user, service } });
});

export function roleProcedure(...roles: Role[]) {
  return signedInProcedure.use(({ ctx, next }) => {
    if (!roles.includes(ctx.user.role)) throw new TRPCError({ code: "FORBIDDEN", message: `a ${ctx.user.role} cannot do this (needs: ${roles.join(" or ")})` });
    return next();
  });
}

export const engineerProcedure = roleProcedure("engineer");
