/**
 * The witnesses on the Audit page: each witness configured in RUNLEDGER_WITNESSES (URL, name, key ID, reachable,
 * last success, last error, failing since), this log's origin and verifier key (what a witness operator needs),
 * and the latest stored cosignatures, each re-verified here under the configured witness keys.
 * Read-only, on either store; every signed-in role may read it.
 */
import { router, signedInProcedure } from "@/server/trpc/init";
import { witnessOverview } from "./overview";

export const witnessesRouter = router({
  overview: signedInProcedure.query(({ ctx }) => witnessOverview(ctx.services)),
});
