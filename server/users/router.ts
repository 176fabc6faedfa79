/**
 * User management for administrators: list, create (temporary password shown once), change role, disable and
 * re-enable, reset a password, see and end a user's sessions. The rules live in server/users/admin.ts;
 * this router is admin-only (the role check is on the server, in roleProcedure).
 */
import { z } from "zod";
import { roleProcedure, router } from "@/server/trpc/init";
import {
  createUser,
  createUserInput,
  demoPasswordWarningOn,
  listUsers,
  resetPassword,
  revokeSessions,
  sessionsOf,
  updateUser,
  updateUserInput,
} from "@/server/users/admin";
import { userIdField } from "@/contracts/user-fields";
import { sessionIdField } from "../auth/router";

const adminProcedure = roleProcedure("admin");

export const usersRouter = router({
  list: adminProcedure.query(async ({ ctx }) => ({
    users: await listUsers(ctx.services.db),
    demoPasswordsInUse: await demoPasswordWarningOn(ctx.services.db),
  })),
  create: adminProcedure.input(createUserInput).mutation(({ ctx, input }) => createUser(ctx.services.db, ctx.user, input)),
  update: adminProcedure.input(updateUserInput).mutation(({ ctx, input }) => updateUser(ctx.services.db, ctx.user, input)),
  resetPassword: adminProcedure
    .input(z.object({ userId: userIdField }))
    .mutation(({ ctx, input }) => resetPassword(ctx.services.db, ctx.user, input)),
  sessions: adminProcedure
    .input(z.object({ userId: userIdField }))
    .query(({ ctx, input }) => sessionsOf(ctx.services.db, ctx.user, input.userId, ctx.sessionIdHash ?? null)),
  revokeSessions: adminProcedure
    .input(z.object({ userId: userIdField, sessionId: sessionIdField.optional() }))
    .mutation(({ ctx, input }) => revokeSessions(ctx.services.db, ctx.user, input)),
});
