/** Sign-in, sign-out and who am I. The session cookie is httpOnly, SameSite=Lax, scoped to the whole app. */
import { z } from "zod";
import { TRPCError } from "@trpc/server";
import { publicProcedure, router, signedInProcedure, SESSION_COOKIE } from "@/server/trpc/init";
import { signIn, signOut, SESSION_DAYS } from "@/server/services/users";

const secure = () => process.env.RUNLEDGER_SECURE_COOKIES === "1";

export const authRouter = router({
  me: publicProcedure.query(({ ctx }) => ctx.user),
  signIn: publicProcedure
    .input(z.object({ email: z.string().trim().min(1, "enter your email"), password: z.string().min(1, "enter your password") }))
    .mutation(({ ctx, input }) => {
      const r = signIn(ctx.services.db, input.email, input.password);
      if (!r.ok) throw new TRPCError({ code: "UNAUTHORIZED", message: "wrong email or password" });
      ctx.resHeaders?.append("Set-Cookie", `${SESSION_COOKIE}=${encodeURIComponent(r.token)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${SESSION_DAYS * 86400}${secure() ? "; Secure" : ""}`);
      return { user: r.user, token: r.token };
    }),
  signOut: signedInProcedure.mutation(({ ctx }) => {
    if (ctx.sessionToken) signOut(ctx.services.db, ctx.sessionToken, ctx.user);
    ctx.resHeaders?.append("Set-Cookie", `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`);
    return { ok: true };
  }),
});
