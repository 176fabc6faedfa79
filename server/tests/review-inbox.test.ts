/**
 * The reviewer's inbox (models.inbox): pending promotion requests the signed-in reviewer may decide, through tRPC
 * callers on a real database. It follows the signing rule (four eyes, already signed, pending only), is empty for
 * every other role, and is a read: asking writes nothing to the ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditEvents } from "@/db/schema";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;
const MODEL = "inbox-model";
let runA: number;
let runB: number;

async function train(seed: number) {
  const { id } = await app
    .as("engineer")
    .runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 2, seed }), rationale: "inbox test" });
  await app.orchestrator.waitFor(id);
  return id;
}
const ledgerSize = () => app.db.select().from(auditEvents).all().length;

beforeAll(async () => {
  app = createTestApp();
  runA = await train(1);
  runB = await train(2);
  await app.as("engineer").models.register({ runId: runA, modelName: MODEL });
  await app.as("engineer").models.register({ runId: runB, modelName: MODEL });
}, 60_000);
afterAll(() => app.close());

describe("reviewer's inbox", () => {
  it("is empty before any request, for every role", async () => {
    for (const role of ["admin", "engineer", "reviewer", "reviewer2", "auditor"] as const)
      expect(await app.as(role).models.inbox()).toEqual({ count: 0, requests: [] });
  });

  it("lists a pending request to the reviewers who may sign it, and to nobody else; asking writes nothing", async () => {
    const req = await app
      .as("engineer")
      .models.requestPromotion({ modelName: MODEL, version: 1, acknowledgeMissingDocumentation: true, rationale: "good test accuracy" });
    const before = ledgerSize();
    const inbox = await app.as("reviewer").models.inbox();
    expect(inbox.count).toBe(1);
    expect(inbox.requests[0]).toMatchObject({
      id: req.id,
      modelName: MODEL,
      version: 1,
      alias: "production",
      requestedBy: "Erin Engineer",
      approvals: 0,
      approvalsRequired: 1,
      rationale: "good test accuracy",
    });
    expect((await app.as("reviewer2").models.inbox()).count).toBe(1);
    for (const role of ["admin", "engineer", "auditor"] as const) expect((await app.as(role).models.inbox()).count).toBe(0);
    expect(ledgerSize()).toBe(before);
  });

  it("leaves out a request whose lineage includes the reviewer (four eyes): they may not sign it", async () => {
    await app.as("reviewer").decisions.addNote({ runId: runB, rationale: "I reviewed this run's curves" });
    const req = await app
      .as("engineer")
      .models.requestPromotion({ modelName: MODEL, version: 2, acknowledgeMissingDocumentation: true, rationale: "independent line" });
    expect((await app.as("reviewer").models.inbox()).requests.map((r) => r.id)).not.toContain(req.id);
    expect((await app.as("reviewer2").models.inbox()).requests.map((r) => r.id)).toContain(req.id);
    await expect(
      app.as("reviewer").models.sign({ requestId: req.id, meaning: "approval", password: "reviewer-demo-pass" }),
    ).rejects.toThrow(/cannot sign/);
    await app.as("engineer").models.withdrawPromotion({ requestId: req.id, reason: "kept for the four-eyes check only" });
    expect((await app.as("reviewer2").models.inbox()).requests.map((r) => r.id)).not.toContain(req.id);
  });

  it("with two approvals required, a reviewer who signed no longer sees it; the other still does; once approved nobody does", async () => {
    await app.as("admin").models.setApprovalsRequired({ modelName: MODEL, approvalsRequired: 2 });
    const pending = (await app.as("reviewer").models.inbox()).requests;
    expect(pending).toHaveLength(1);
    const requestId = pending[0]!.id;
    const first = await app.as("reviewer2").models.sign({ requestId, meaning: "approval", password: "reviewer2-demo-pass" });
    expect(first.status).toBe("pending");
    expect((await app.as("reviewer2").models.inbox()).count).toBe(0);
    const rui = await app.as("reviewer").models.inbox();
    expect(rui.count).toBe(1);
    expect(rui.requests[0]).toMatchObject({ id: requestId, approvals: 1, approvalsRequired: 2 });
    const second = await app.as("reviewer").models.sign({ requestId, meaning: "approval", password: "reviewer-demo-pass" });
    expect(second.status).toBe("approved");
    for (const role of ["reviewer", "reviewer2"] as const) expect((await app.as(role).models.inbox()).count).toBe(0);
  });
});
