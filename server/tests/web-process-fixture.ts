/**
 * One web server process for server/tests/two-web-servers.test.ts: the app's services on RUNLEDGER_DATA_DIR (keys in
 * RUNLEDGER_KEY_DIR) behind a plain Node HTTP server that answers /api/trpc exactly as the Next.js route does
 * (app/api/trpc/[trpc]/route.ts: the same router, the same context from the request, the socket address through
 * the same peer hook), and the checkpoint timer (server/audit/checkpoint-policy.ts) every FIXTURE_CHECKPOINT_MS with
 * a checkpoint due after every event, and the witness pusher (RUNLEDGER_WITNESSES). Prints "listening PORT", then "checkpoint ID TREE_SIZE" for each one it signs.
 * With DATABASE_URL=postgres://… it serves from PostgreSQL (createPgAppServices), as the web server does, and
 * RUNLEDGER_TRAINING=workers queues runs for the training workers. Not `next start`: a build of the shared tree takes
 * minutes; this serves the same server code.
 */
import http from "node:http";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { asOwnedAppServices, createAppServices, createPgAppServices, trainingModeFromEnv } from "@/server/app-context/app-services";
import { postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import { startCheckpointTimer } from "@/server/audit/checkpoint-policy";
import { startWitnessPusher } from "@/server/audit/witness/start";
import { installPeerAddressHook } from "@/server/http/client-address";
import { appRouter } from "@/server/trpc/root";
import { createContextFromRequest } from "@/server/trpc/init";

installPeerAddressHook();

async function main(): Promise<void> {
  // On PostgreSQL when DATABASE_URL names it (issue 16), as the web server chooses; RUNLEDGER_TRAINING as there too.
  const pgUrl = postgresUrlFromEnv();
  const opts = { backend: "cpu", keyDir: process.env.RUNLEDGER_KEY_DIR, training: trainingModeFromEnv() } as const;
  const services = pgUrl
    ? await createPgAppServices(pgUrl, { ...opts, localDir: process.env.RUNLEDGER_DATA_DIR, poolSize: 4 })
    : asOwnedAppServices(createAppServices(process.env.RUNLEDGER_DATA_DIR, opts));
  startCheckpointTimer(services, Number(process.env.FIXTURE_CHECKPOINT_MS ?? 50), {
    everyEvents: 1,
    onOutcome: (o) => {
      if (o.checkpointed) process.stdout.write(`checkpoint ${o.checkpointId} ${o.treeSize}\n`);
      else if (o.error) process.stdout.write(`checkpoint error ${o.error}\n`);
    },
  });

  // Each new checkpoint this process signs goes to the witnesses in RUNLEDGER_WITNESSES, as in the web server.
  startWitnessPusher(services);

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(req.headers))
          for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
        const request = new Request(`http://127.0.0.1${req.url ?? "/"}`, {
          method: req.method,
          headers,
          body: req.method === "GET" || req.method === "HEAD" ? undefined : Buffer.concat(chunks),
        });
        const response = await fetchRequestHandler({
          endpoint: "/api/trpc",
          req: request,
          router: appRouter,
          createContext: ({ resHeaders }) => createContextFromRequest(services, request, resHeaders),
        });
        const out: Record<string, string | string[]> = {};
        response.headers.forEach((v, k) => {
          if (k !== "set-cookie") out[k] = v;
        });
        const cookies = response.headers.getSetCookie();
        if (cookies.length) out["set-cookie"] = cookies;
        res.writeHead(response.status, out);
        res.end(Buffer.from(await response.arrayBuffer()));
      })().catch((err: Error) => {
        res.writeHead(500).end(err.message);
      });
    });
  });
  server.listen(0, "127.0.0.1", () => {
    const addr = server.address();
    process.stdout.write(`listening ${typeof addr === "object" && addr ? addr.port : 0}\n`);
  });
  process.on("SIGTERM", () => {
    server.close();
    void services.close().finally(() => process.exit(0));
  });
}

main().catch((err: Error) => {
  process.stderr.write(`web server fixture: ${err.message}\n`);
  process.exit(1);
});
