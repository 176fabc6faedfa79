/**
 * The tracking API's contract suites (mlflow-api, mlflow-artifacts, mlflow-registry, mlflow-pilot) drive the real route
 * handlers over plain HTTP: this mounts app/api/2.0/mlflow/[...path], app/api/2.0/mlflow-artifacts/[...path] and
 * Runledger's extension app/api/2.0/runledger/[...path] on node:http on
 * a loopback port, over a test app's data directory, and gives each role's token. The calling test file must mock
 * "server-only" (vi.mock is hoisted per file) and create the test app first.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { eq } from "drizzle-orm";
import { expect } from "vitest";
import { users } from "@/db/schema";
import { createToken } from "@/server/auth/tokens";
import { DEMO_USERS } from "@/server/demo/seed";
import { MlflowApiError } from "@/contracts/mlflow/client";
import type { TestApp } from "./test-app";

type Handler = (req: Request, ctx: unknown) => Promise<Response>;

/** Serves the tracking-API routes for `app` until close(); the route handlers find the app through getAppServices(). */
export async function startMlflowServer(app: TestApp): Promise<{ base: string; server: http.Server; close: () => Promise<void> }> {
  (globalThis as { __runledger?: unknown }).__runledger = app;
  const tracking = (await import("@/app/api/2.0/mlflow/[...path]/route")) as unknown as Record<string, Handler>;
  const proxy = (await import("@/app/api/2.0/mlflow-artifacts/[...path]/route")) as unknown as Record<string, Handler>;
  const extension = (await import("@/app/api/2.0/runledger/[...path]/route")) as unknown as Record<string, Handler>;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const url = new URL(req.url ?? "/", "http://127.0.0.1");
        const isProxy = url.pathname.startsWith("/api/2.0/mlflow-artifacts/");
        const isExtension = url.pathname.startsWith("/api/2.0/runledger/");
        // As Next does for a catch-all route: the path after the route's folder, split on "/", each segment decoded.
        const segments = url.pathname
          .replace(
            isProxy ? /^\/api\/2\.0\/mlflow-artifacts\/?/ : isExtension ? /^\/api\/2\.0\/runledger\/?/ : /^\/api\/2\.0\/mlflow\/?/,
            "",
          )
          .split("/")
          .filter(Boolean)
          .map(decodeURIComponent);
        const headers = new Headers();
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
        const request = new Request(url, {
          method: req.method,
          headers,
          body: req.method === "GET" || req.method === "HEAD" ? undefined : Buffer.concat(chunks),
        });
        const handler = (isProxy ? proxy : isExtension ? extension : tracking)[req.method ?? "GET"];
        const answer = handler
          ? await handler(request, { params: Promise.resolve({ path: segments }) })
          : new Response(JSON.stringify({ error_code: "ENDPOINT_NOT_FOUND", message: "method" }), { status: 405 });
        res.writeHead(answer.status, Object.fromEntries(answer.headers.entries()));
        res.end(Buffer.from(await answer.arrayBuffer()));
      })();
    });
  });
  // Tests that block this event loop for seconds (spawnSync of the CLI) must not find an idle keep-alive socket closed
  // under a client about to reuse it.
  server.keepAliveTimeout = 600_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The demo user of `role`. */
export function userOf(app: TestApp, role: string) {
  return app.db
    .select()
    .from(users)
    .where(eq(users.email, DEMO_USERS.find((u) => u.role === role)!.email))
    .get()!;
}

/** A new personal access token of the demo user of `role`. */
export function tokenFor(app: TestApp, role: string, name = "contract tests") {
  const u = userOf(app, role);
  return createToken(app.db, { id: u.id, name: u.name, role: u.role }, { id: u.id, email: u.email }, { name });
}

/** `p` fails with MLflow's error `code` and HTTP `status` (and a message matching `message`). */
export async function expectMlflowError(p: Promise<unknown>, code: string, status: number, message?: RegExp) {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(MlflowApiError);
  expect((err as MlflowApiError).errorCode).toBe(code);
  expect((err as MlflowApiError).status).toBe(status);
  if (message) expect((err as MlflowApiError).message).toMatch(message);
}
