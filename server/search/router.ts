/** Global search: one read-only query for any signed-in role, on either store (server/search/queries.ts). */
import { router, signedInProcedure } from "@/server/trpc/init";
import { searchGlobal, searchInput } from "@/server/search/queries";

export const searchRouter = router({
  global: signedInProcedure.input(searchInput).query(({ ctx, input }) => searchGlobal(ctx.services.db, input)),
});
