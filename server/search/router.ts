/** Global search: one read-only query for any signed-in role (server/search/queries.ts). */
import { router, signedInProcedure } from "@/server/trpc/init";
import { sqliteDb } from "@/server/app-context/sqlite-only";
import { searchGlobal, searchInput } from "@/server/search/queries";

export const searchRouter = router({
  global: signedInProcedure.input(searchInput).query(({ ctx, input }) => searchGlobal(sqliteDb(ctx.services, "Global search"), input)),
});
