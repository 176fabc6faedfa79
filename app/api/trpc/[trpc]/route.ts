/** The tRPC endpoint (fetch adapter). Everything the browser does goes through here; bodies are capped (413). */
import "server-only";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { appRouter } from "@/server/trpc/root";
import { createContextFromRequest } from "@/server/trpc/init";
import { getAppServices } from "@/server/app-context/app-services";
import { limitRequestBody } from "@/server/http/body-limit";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

const handler = async (original: Request) => {
  const req = await limitRequestBody(original);
  if (req instanceof Response) return req;
  return fetchRequestHandler({
    endpoint: "/api/trpc",
    req,
    router: appRouter,
    createContext: async ({ resHeaders }) => createContextFromRequest(await getAppServices(), req, resHeaders),
    onError: ({ error, path }) => {
      if (error.code === "INTERNAL_SERVER_ERROR") console.error(`tRPC ${path}:`, error);
    },
  });
};

export { handler as GET, handler as POST };
