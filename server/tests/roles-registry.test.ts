/**
 * Role permissions for decisions, the registry and promotion, enforced by the server: an auditor reads and exports
 * but changes nothing; an engineer (even one outside the lineage) cannot sign; a reviewer or admin cannot register,
 * request or move aliases; only an admin changes the approvals setting; a signed-out caller gets nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { auditEvents, modelAliasEvents, modelVersions, promotionRequests, signatures, users, decisions } from "@/db/schema";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import { insertUser, actorOf } from "@/server/users/service";
import { createCaller } from "@/server/trpc/root";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;
let runId: number;
let requestId: number;
const MODEL = "roles-model";

beforeAll(async () => {
  app = createTestApp();
  runId = (await app.as("engineer").runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 3 }), rationale: "roles" }))
    .id;
  await app.orchestrator.waitFor(runId);
  await app.as("engineer").models.register({ runId, modelName: MODEL });
  requestId = (
    await app
      .as("engineer")
      .models.requestPromotion({ modelName: MODEL, version: 1, acknowledgeMissingDocumentation: true, rationale: "for the role tests" })
  ).id;
}, 60_000);
afterAll(() => app.close());

const counts = () => ({
  versions: app.db.select().from(modelVersions).all().length,
  aliasEvents: app.db.select().from(modelAliasEvents).all().length,
  requests: app.db.select().from(promotionRequests).all().length,
  signatures: app.db.select().from(signatures).all().length,
  decisions: app.db.select().from(decisions).all().length,
});

describe("auditor", () => {
  it("reads models, lineage, history and timelines, and exports PROV-JSON", async () => {
    const auditor = app.as("auditor");
    expect((await auditor.models.list()).map((m) => m.name)).toContain(MODEL);
    expect((await auditor.models.get({ name: MODEL })).versions).toHaveLength(1);
    expect((await auditor.models.lineage({ modelName: MODEL, version: 1 })).graph.nodes.length).toBeGreaterThan(5);
    expect((await auditor.models.aliasAt({ modelName: MODEL, at: new Date().toISOString() })).version).toBeNull();
    expect(await auditor.models.aliasTimeline({ modelName: MODEL })).toEqual([]);
    expect((await auditor.decisions.timeline({ runId })).entries).toHaveLength(1);
    expect(Object.keys((await auditor.models.exportProv({ modelName: MODEL, version: 1 })).document.entity).length).toBeGreaterThan(5);
  });

  it("changes nothing: every write is refused and no registry row is added", async () => {
    const auditor = app.as("auditor");
    const before = counts();
    await expect(auditor.models.register({ runId, modelName: MODEL })).rejects.toThrow(/auditor cannot/);
    await expect(auditor.models.moveAlias({ modelName: MODEL, alias: "staging", version: 1, rationale: "x" })).rejects.toThrow(
      /auditor cannot/,
    );
    await expect(
      auditor.models.requestPromotion({ modelName: MODEL, version: 1, acknowledgeMissingDocumentation: true, rationale: "x" }),
    ).rejects.toThrow(/auditor cannot/);
    await expect(auditor.models.sign({ requestId, meaning: "approval", password: "auditor-demo-pass" })).rejects.toThrow(
      /auditor cannot sign/,
    );
    await expect(auditor.models.withdrawPromotion({ requestId, reason: "x" })).rejects.toThrow(/auditor cannot/);
    await expect(auditor.models.setApprovalsRequired({ modelName: MODEL, approvalsRequired: 2 })).rejects.toThrow(/auditor cannot/);
    await expect(auditor.decisions.addNote({ runId, rationale: "x" })).rejects.toThrow(/auditor cannot/);
    expect(counts()).toEqual(before);
  });
});

describe("engineer", () => {
  it("cannot approve: the requester is refused as a self-approval, another engineer by role", async () => {
    await expect(app.as("engineer").models.sign({ requestId, meaning: "approval", password: "engineer-demo-pass" })).rejects.toThrow(
      /requested this promotion/,
    );
    const other = await insertUser(app.db, SYSTEM_ACTOR, {
      email: "engineer2@runledger.local",
      name: "Eli Second-Engineer",
      role: "engineer",
      password: "engineer2-demo-pass",
    });
    const caller = createCaller({
      services: app,
      user: actorOf(app.db.select().from(users).where(eq(users.id, other.id)).get()!),
      sessionToken: undefined,
    });
    await expect(caller.models.sign({ requestId, meaning: "approval", password: "engineer2-demo-pass" })).rejects.toThrow(
      /engineer cannot sign promotion requests/,
    );
    expect(app.db.select().from(signatures).all()).toHaveLength(0);
  });

  it("cannot change the approvals setting", async () => {
    await expect(app.as("engineer").models.setApprovalsRequired({ modelName: MODEL, approvalsRequired: 1 })).rejects.toThrow(
      /engineer cannot/,
    );
  });
});

describe("reviewer and admin", () => {
  it("a reviewer cannot register, request or move aliases", async () => {
    const reviewer = app.as("reviewer");
    await expect(reviewer.models.register({ runId, modelName: MODEL })).rejects.toThrow(/reviewer cannot/);
    await expect(
      reviewer.models.requestPromotion({ modelName: MODEL, version: 1, acknowledgeMissingDocumentation: true, rationale: "x" }),
    ).rejects.toThrow(/reviewer cannot/);
    await expect(reviewer.models.moveAlias({ modelName: MODEL, alias: "staging", version: 1, rationale: "x" })).rejects.toThrow(
      /reviewer cannot/,
    );
  });

  it("an admin cannot register or sign, but sets the approvals required (1 or 2), audited", async () => {
    const admin = app.as("admin");
    await expect(admin.models.register({ runId, modelName: MODEL })).rejects.toThrow(/admin cannot/);
    await expect(admin.models.sign({ requestId, meaning: "approval", password: "admin-demo-pass" })).rejects.toThrow(/admin cannot sign/);
    await expect(admin.models.setApprovalsRequired({ modelName: MODEL, approvalsRequired: 3 })).rejects.toThrow(/at most two/);
    await admin.models.setApprovalsRequired({ modelName: MODEL, approvalsRequired: 2 });
    expect((await admin.models.get({ name: MODEL })).approvalsRequired).toBe(2);
    const ev = app.db.select().from(auditEvents).where(eq(auditEvents.action, "model.update")).all();
    expect(JSON.parse(ev.at(-1)!.payload)).toEqual({ field: "approvalsRequired", before: 1, after: 2 });
  });

  it("a reviewer outside the lineage signs; the request stays pending until the second approval", async () => {
    const out = await app.as("reviewer").models.sign({ requestId, meaning: "approval", password: "reviewer-demo-pass" });
    expect(out.status).toBe("pending");
  });
});

describe("signed out", () => {
  it("gets nothing", async () => {
    await expect(app.anonymous.models.list()).rejects.toThrow(/sign in first/);
    await expect(app.anonymous.models.exportProv({ modelName: MODEL, version: 1 })).rejects.toThrow(/sign in first/);
    await expect(app.anonymous.decisions.timeline({ runId })).rejects.toThrow(/sign in first/);
  });
});
