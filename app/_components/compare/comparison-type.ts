/** The compare data as the browser receives it (tRPC's inferred output of explore.compare: unknown fields become optional). */
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/trpc/root";

export type Comparison = inferRouterOutputs<AppRouter>["explore"]["compare"];
