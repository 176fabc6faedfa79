/**
 * Authorization matrix, generated from the router: every tRPC procedure (appRouter._def.procedures) and every API
 * route handler (app/api/**\/route.ts) × every role and anonymous, against the expected access kept here.
 *
 * - A procedure or route with no entry here fails the test (so a new one must say who may call it), and so does an
 *   entry for something that no longer exists.
 * - Each call uses a minimal valid-shaped input (ids that do not exist where possible, so nothing heavy runs).
 * - "Refused by the guard" = UNAUTHORIZED "sign in first" for anonymous, or FORBIDDEN "a <role> cannot …" (the
 *   procedure ladder's and the services' role checks). Anything else (success, BAD_REQUEST, NOT_FOUND, CONFLICT, …)
 *   means the guard let the caller through.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { eq } from "drizzle-orm";
import { users } from "@/db/schema";
import { appRouter } from "@/server/trpc/root";
import { openSession } from "@/server/auth/sessions";
import { ROLE_NAMES } from "@/contracts/user-fields";
import { DEMO_USERS } from "@/server/demo/seed";
import { createTestApp, type TestApp } from "./test-app";

vi.mock("server-only", () => ({}));

type Role = (typeof ROLE_NAMES)[number];
type Access = "public" | "signedIn" | readonly Role[];
const WHO = ["anonymous", ...ROLE_NAMES] as const;
const NONE = 999_999;
const ZERO_SESSION = "0".repeat(64);

/** Who may call each procedure (at the guard), and a minimal valid-shaped input. */
const PROCEDURES: Record<string, { access: Access; input?: unknown; note?: string }> = {
  "auth.me": { access: "public" },
  "auth.signIn": { access: "public", input: { email: "matrix-nobody@example.org", password: "not-a-password" } },
  "auth.signOut": { access: "signedIn" },
  "auth.changePassword": { access: "signedIn", input: { currentPassword: "not-the-current-one", newPassword: "matrix-new-password" } },
  "auth.sessions": { access: "signedIn" },
  "auth.revokeSession": { access: "signedIn", input: { sessionId: ZERO_SESSION } },
  "auth.tokens": { access: "signedIn" },
  "auth.createToken": { access: "signedIn", input: { name: "matrix" } },
  "auth.revokeToken": { access: "signedIn", input: { tokenId: NONE } },
  "users.list": { access: ["admin"] },
  "users.create": { access: ["admin"], input: { email: "admin@runledger.local", name: "Duplicate", role: "engineer" } },
  "users.update": { access: ["admin"], input: { userId: NONE, role: "engineer" } },
  "users.resetPassword": { access: ["admin"], input: { userId: NONE } },
  "users.sessions": { access: ["admin"], input: { userId: NONE } },
  "users.revokeSessions": { access: ["admin"], input: { userId: NONE } },
  "projects.list": { access: "signedIn" },
  "projects.create": { access: ["engineer", "admin"], input: { name: "" } },
  "projects.createExperiment": { access: ["engineer"], input: { projectId: NONE, name: "matrix" } },
  "projects.experiment": { access: "signedIn", input: { id: NONE } },
  "datasets.list": { access: "signedIn" },
  "datasets.builtins": { access: "signedIn" },
  "datasets.get": { access: "signedIn", input: { id: NONE } },
  "datasets.rows": { access: "signedIn", input: { id: NONE } },
  "datasets.uploadLimits": { access: ["engineer"] },
  "datasets.uploadProgress": { access: ["engineer"], input: { uploadId: "matrix-upload-id" } },
  "runs.list": { access: "signedIn", input: { experimentId: NONE } },
  "runs.get": { access: "signedIn", input: { id: NONE } },
  "runs.holder": { access: "signedIn", input: { id: NONE } },
  "runs.metrics": { access: "signedIn", input: { runId: NONE } },
  "runs.create": { access: ["engineer"], input: { experimentId: NONE, config: {}, rationale: "matrix" } },
  "runs.cancel": { access: ["engineer"], input: { id: NONE, reason: "matrix" } },
  "runs.resumeInterrupted": { access: ["engineer"], input: { id: NONE } },
  "runs.rerun": { access: ["engineer"], input: { runId: NONE } },
  "runs.compress": { access: ["engineer"], input: { runId: NONE, method: "int8", rationale: "matrix" } },
  "runs.compression": { access: "signedIn", input: { id: NONE } },
  "runs.annotate": { access: ["engineer"], input: { runId: NONE, name: "matrix" } },
  "runs.addTag": { access: ["engineer"], input: { runId: NONE, tag: "matrix" } },
  "runs.removeTag": { access: ["engineer"], input: { runId: NONE, tag: "matrix" } },
  "runs.estimate": { access: "signedIn", input: { config: {} } },
  "runs.evaluate": { access: ["engineer", "reviewer"], input: { runId: NONE, checkpointId: NONE } },
  "runs.pilot.request": { access: ["engineer"], input: { runId: NONE, kind: "pause", rationale: "matrix" } },
  "runs.pilot.cancel": { access: ["engineer"], input: { interventionId: NONE, rationale: "matrix" } },
  "runs.pilot.list": { access: "signedIn", input: { runId: NONE } },
  "decisions.timeline": { access: "signedIn", input: { runId: NONE } },
  "decisions.addNote": { access: ["engineer", "reviewer"], input: { runId: NONE, rationale: "matrix" } },
  "documents.get": { access: "signedIn", input: { subjectType: "model", subjectId: NONE } },
  "documents.update": {
    access: ["engineer", "reviewer"],
    input: { subjectType: "model", subjectId: NONE, section: "intended_use", body: "matrix", baseVersion: 0 },
  },
  "documents.sign": {
    access: ["reviewer"],
    input: { documentId: NONE, meaning: "review", password: "x" },
    note: "meaning review: reviewers only (authorship: engineers and reviewers)",
  },
  "models.list": { access: "signedIn" },
  "models.get": { access: "signedIn", input: { name: "matrix-none" } },
  "models.inbox": { access: "signedIn", note: "empty for every role but reviewer" },
  "models.aliasAt": { access: "signedIn", input: { modelName: "matrix-none", at: "2026-01-01T00:00:00Z" } },
  "models.aliasTimeline": { access: "signedIn", input: { modelName: "matrix-none" } },
  "models.lineage": { access: "signedIn", input: { modelName: "matrix-none", version: 1 } },
  "models.documentationChecklist": { access: "signedIn", input: { modelName: "matrix-none", version: 1 } },
  "models.exportProv": { access: "signedIn", input: { modelName: "matrix-none", version: 1 } },
  "models.register": { access: ["engineer"], input: { runId: NONE, modelName: "matrix-none" } },
  "models.moveAlias": { access: ["engineer"], input: { modelName: "matrix-none", alias: "staging", version: null, rationale: "matrix" } },
  "models.setApprovalsRequired": { access: ["admin"], input: { modelName: "matrix-none", approvalsRequired: 1 } },
  "models.requestPromotion": { access: ["engineer"], input: { modelName: "matrix-none", version: 1, rationale: "matrix" } },
  "models.sign": {
    access: "signedIn",
    input: { requestId: NONE, meaning: "approval", password: "x" },
    note: "the reviewer-only check runs after loading the request (roles-registry.test.ts)",
  },
  "models.withdrawPromotion": { access: ["engineer"], input: { requestId: NONE, reason: "matrix" } },
  "explore.search": { access: "signedIn", input: { experimentId: NONE } },
  "explore.columns": { access: "signedIn", input: { experimentId: NONE } },
  "explore.export": { access: "signedIn", input: { experimentId: NONE, format: "csv" } },
  "explore.group": { access: "signedIn", input: { by: "config.training.seed", metric: "metrics.loss", experimentId: NONE } },
  "explore.compare": { access: "signedIn", input: { ids: [NONE, NONE - 1] } },
  "explore.series": { access: "signedIn", input: { runIds: [NONE], key: "loss" } },
  "audit.actions": { access: "signedIn" },
  "audit.events": { access: "signedIn", input: { limit: 1 } },
  "audit.status": { access: "signedIn" },
  "audit.trustedCheckpoint": { access: "signedIn" },
  "audit.verify": { access: "signedIn" },
  "audit.verifyJob": { access: "signedIn" },
  "audit.inclusionProof": { access: "signedIn", input: { seq: NONE } },
  "audit.reportTargets": { access: "signedIn" },
  "audit.reportSubjects": { access: "signedIn", input: { modelVersionId: NONE } },
  "witnesses.overview": { access: "signedIn" },
  "search.global": { access: "signedIn", input: { q: "matrix" } },
  "sweeps.create": { access: ["engineer"], input: { experimentId: NONE, spec: {} } },
  "sweeps.get": { access: "signedIn", input: { id: NONE } },
  "sweeps.list": { access: "signedIn" },
  "sweeps.ofRun": { access: "signedIn", input: { runId: NONE } },
  "sweeps.pause": { access: ["engineer"], input: { sweepId: NONE, rationale: "matrix" } },
  "sweeps.resume": { access: ["engineer"], input: { sweepId: NONE, rationale: "matrix" } },
  "sweeps.stop": { access: ["engineer"], input: { sweepId: NONE, rationale: "matrix" } },
  "sweeps.extend": { access: ["engineer"], input: { sweepId: NONE, addTrials: 1, rationale: "matrix" } },
  "sweeps.chooseWinner": { access: ["engineer"], input: { sweepId: NONE, runId: NONE, rationale: "matrix" } },
};

/** API route handlers ("METHOD /api/path"): who may call them, and the request to send. */
const ROUTES: Record<string, { access: Access | "tRPC"; request?: () => Request }> = {
  "GET /api/trpc/[trpc]": { access: "tRPC" },
  "POST /api/trpc/[trpc]": { access: "tRPC" },
  "GET /api/report/[modelVersionId]": { access: "public", request: () => new Request(`http://127.0.0.1:3000/api/report/${NONE}`) },
  "POST /api/report/[modelVersionId]": {
    access: "signedIn",
    request: () => new Request(`http://127.0.0.1:3000/api/report/${NONE}?format=html`, { method: "POST", headers: sameOrigin }),
  },
  "GET /api/weights/checkpoints/[checkpointId]": {
    access: "signedIn",
    request: () => new Request(`http://127.0.0.1:3000/api/weights/checkpoints/${NONE}`),
  },
  "GET /api/weights/model-versions/[modelVersionId]": {
    access: "signedIn",
    request: () => new Request(`http://127.0.0.1:3000/api/weights/model-versions/${NONE}`),
  },
  // The MLflow-compatible tracking API authenticates by personal access token only (a session cookie is not
  // accepted, so no role gets through by cookie); its token × role access is asserted in server/tests/mlflow-api.test.ts.
  "GET /api/2.0/mlflow/[...path]": { access: "signedIn" },
  "POST /api/2.0/mlflow/[...path]": { access: "signedIn" },
  // registered-models/update, model-versions/update (PATCH) and the alias / delete endpoints (DELETE): token × role in
  // server/tests/mlflow-registry.test.ts.
  "PATCH /api/2.0/mlflow/[...path]": { access: "signedIn" },
  "DELETE /api/2.0/mlflow/[...path]": { access: "signedIn" },
  // The artifact proxy (token only as well): auditors read and get 403 on upload, no token 401, in
  // server/tests/mlflow-artifacts.test.ts.
  "GET /api/2.0/mlflow-artifacts/[...path]": { access: "signedIn" },
  "PUT /api/2.0/mlflow-artifacts/[...path]": { access: "signedIn" },
  // Runledger's extension (token only as well): every role reads pending interventions, auditors and reviewers get
  // 403 on ack-intervention and reject-intervention, no token 401, in server/tests/mlflow-pilot.test.ts.
  "GET /api/2.0/runledger/[...path]": { access: "signedIn" },
  "POST /api/2.0/runledger/[...path]": { access: "signedIn" },
  "POST /api/datasets/upload": {
    access: ["engineer"],
    request: () => new Request("http://127.0.0.1:3000/api/datasets/upload", { method: "POST", headers: sameOrigin, body: "" }),
  },
};
const sameOrigin = { host: "127.0.0.1:3000", origin: "http://127.0.0.1:3000", "sec-fetch-site": "same-origin" };

function expectedAllowed(access: Access, who: (typeof WHO)[number]): boolean {
  if (access === "public") return true;
  if (who === "anonymous") return false;
  return access === "signedIn" || access.includes(who);
}

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
  (globalThis as { __runledger?: unknown }).__runledger = app; // route handlers use getAppServices()
});
afterAll(async () => {
  for (let i = 0; i < 100 && (await app.as("auditor").audit.verifyJob())?.status === "running"; i++)
    await new Promise((r) => setTimeout(r, 100));
  app.close();
});

function callerFor(who: (typeof WHO)[number]) {
  if (who === "anonymous") return app.anonymous;
  return app.as(who);
}

function guardRefused(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    (e.code === "UNAUTHORIZED" && /sign in first|session/.test(e.message ?? "")) ||
    (e.code === "FORBIDDEN" && /(^|")a (admin|engineer|reviewer|auditor) cannot/.test(e.message ?? ""))
  );
}

describe("tRPC procedures × roles", () => {
  const procedures = Object.keys((appRouter as unknown as { _def: { procedures: Record<string, unknown> } })._def.procedures).sort();

  it("has an expected-access entry for every procedure, and none for procedures that do not exist", () => {
    expect(
      procedures.filter((p) => !(p in PROCEDURES)),
      "procedures without an entry in PROCEDURES",
    ).toEqual([]);
    expect(
      Object.keys(PROCEDURES).filter((p) => !procedures.includes(p)),
      "entries for procedures that no longer exist",
    ).toEqual([]);
  });

  it("lets through exactly the expected callers", async () => {
    const mismatches: string[] = [];
    for (const p of procedures) {
      const entry = PROCEDURES[p];
      if (!entry) continue;
      for (const who of WHO) {
        const fn = p.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], callerFor(who)) as (
          input?: unknown,
        ) => Promise<unknown>;
        let allowed = true;
        let outcome = "ok";
        try {
          await fn(entry.input);
        } catch (err) {
          allowed = !guardRefused(err);
          outcome = `${(err as { code?: string }).code}: ${String((err as Error).message).slice(0, 80)}`;
        }
        if (allowed !== expectedAllowed(entry.access, who))
          mismatches.push(`${p} as ${who}: expected ${expectedAllowed(entry.access, who) ? "allowed" : "refused"}, got ${outcome}`);
      }
    }
    expect(mismatches).toEqual([]);
  });
});

describe("API routes × roles", () => {
  const apiDir = path.join(process.cwd(), "app", "api");
  const routeFiles = (fs.readdirSync(apiDir, { recursive: true }) as string[])
    .filter((f) => f.endsWith("route.ts"))
    .map((f) => path.join(apiDir, f));

  const tokens = new Map<string, string>();
  const cookieFor = async (who: (typeof WHO)[number]) => {
    if (who === "anonymous") return undefined;
    if (!tokens.has(who)) {
      const user = app.db
        .select()
        .from(users)
        .where(eq(users.email, DEMO_USERS.find((u) => u.role === who)!.email))
        .get()!;
      tokens.set(who, (await openSession(app.db, user.id, "matrix")).token);
    }
    return `runledger_session=${tokens.get(who)}`;
  };

  it("has an expected-access entry for every exported handler, and lets through exactly the expected callers", async () => {
    const handlers: string[] = [];
    const mismatches: string[] = [];
    for (const file of routeFiles) {
      const mod = (await import(file)) as Record<string, unknown>;
      const urlPath = `/api/${path.relative(apiDir, path.dirname(file)).split(path.sep).join("/")}`;
      for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE"].filter((m) => typeof mod[m] === "function")) {
        const key = `${method} ${urlPath}`;
        handlers.push(key);
        const entry = ROUTES[key];
        if (!entry || entry.access === "tRPC" || !entry.request) continue;
        for (const who of WHO) {
          const base = entry.request();
          const headers = new Headers(base.headers);
          const cookie = await cookieFor(who);
          if (cookie) headers.set("cookie", cookie);
          const req = new Request(base, { headers });
          const params = Promise.resolve({ modelVersionId: String(NONE), checkpointId: String(NONE), trpc: "x" });
          const res = (await (mod[method] as (r: Request, c: unknown) => Promise<Response> | Response)(req, { params })) as Response;
          const refused = res.status === 401 || (res.status === 403 && /cannot/.test(await res.clone().text()));
          if (refused === expectedAllowed(entry.access, who))
            mismatches.push(
              `${key} as ${who}: expected ${expectedAllowed(entry.access, who) ? "allowed" : "refused"}, got HTTP ${res.status}`,
            );
        }
      }
    }
    expect(
      handlers.filter((h) => !(h in ROUTES)),
      "route handlers without an entry in ROUTES",
    ).toEqual([]);
    expect(
      Object.keys(ROUTES).filter((r) => !handlers.includes(r)),
      "entries for handlers that no longer exist",
    ).toEqual([]);
    expect(mismatches).toEqual([]);
  });
});
