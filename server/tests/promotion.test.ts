/**
 * Four-eyes promotion end to end through tRPC callers on a real database: registration, the test-evaluation rule,
 * refused and recorded self-approval (requester, and a reviewer whose decision note sits in an ancestor run),
 * password re-entry, approval moving production, two-approval models, rejection, and "what was in production at T".
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { auditCheckpoints, auditEvents, evaluations, modelVersions, promotionRequests, signatures } from "@/db/schema";
import { promotionRecord } from "@/server/registry/records";
import { sha256Canonical } from "@/contracts/canonical";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;
let runA: number;
let runC: number;
const MODEL = "iris-classifier";

async function train(config = irisConfig(), rationale = "baseline for the registry tests") {
  const { id } = await app.as("engineer").runs.create({ experimentId: app.experimentId, config, rationale });
  await app.orchestrator.waitFor(id);
  const run = await app.as("engineer").runs.get({ id });
  expect(run.status).toBe("completed");
  return run;
}

const auditActions = (action: string) => app.db.select().from(auditEvents).where(eq(auditEvents.action, action)).all();

beforeAll(async () => {
  app = createTestApp();
  runA = (await train()).id;
  runC = (await train(irisConfig({ seed: 9 }), "an independent second line of work")).id;
}, 60_000);
afterAll(() => app.close());

describe("registration", () => {
  it("registers the best checkpoint as version 1, copying its weights hash, and audits it", async () => {
    const run = await app.as("engineer").runs.get({ id: runA });
    const best = run.checkpoints.find((c) => c.isBest)!;
    const v = await app.as("engineer").models.register({ runId: runA, modelName: MODEL });
    expect(v).toMatchObject({ model: MODEL, version: 1, weightsSha256: best.sha256, checkpointId: best.id });
    expect(auditActions("model.create")).toHaveLength(1);
    expect(auditActions("modelVersion.create").at(-1)!.payload).toContain(best.sha256);
  });

  it("refuses a promotion of a version whose checkpoint has no test evaluation, with a clear message", async () => {
    const run = await app.as("engineer").runs.get({ id: runA });
    const notBest = run.checkpoints.find((c) => !c.isBest)!;
    const v = await app.as("engineer").models.register({ runId: runA, modelName: MODEL, checkpoint: { epoch: notBest.epoch } });
    expect(v.version).toBe(2);
    const detail = await app.as("engineer").models.get({ name: MODEL });
    expect(detail.versions.find((x) => x.version === 2)!.testEvaluation).toBeNull();
    await expect(
      app.as("engineer").models.requestPromotion({ modelName: MODEL, version: 2, acknowledgeMissingDocumentation: true, rationale: "try" }),
    ).rejects.toThrow(/has no evaluation on the test partition/);
  });
});

describe("four-eyes promotion to production", () => {
  let requestId: number;
  let movedAt: string;

  it("an engineer requests production for version 1, citing the test evaluation; the record hash binds model version and evaluation", async () => {
    const req = await app.as("engineer").models.requestPromotion({
      modelName: MODEL,
      version: 1,
      acknowledgeMissingDocumentation: true,
      rationale: "test accuracy is good enough for the pilot",
    });
    requestId = req.id;
    expect(req.status).toBe("pending");
    expect(req.recordSha256).toMatch(/^[0-9a-f]{64}$/);
    const run = await app.as("engineer").runs.get({ id: runA });
    expect(req.evaluationId).toBe(run.evaluations[0]!.id);
    await expect(
      app
        .as("engineer")
        .models.requestPromotion({ modelName: MODEL, version: 1, acknowledgeMissingDocumentation: true, rationale: "again" }),
    ).rejects.toThrow(/already pending/);
  });

  it("refuses the requester's own approval AND records the attempt, although the call fails", async () => {
    const before = auditActions("promotion.selfApprovalRefused").length;
    await expect(app.as("engineer").models.sign({ requestId, meaning: "approval", password: "engineer-demo-pass" })).rejects.toThrow(
      /cannot sign promotion request .* requested this promotion/,
    );
    const refused = auditActions("promotion.selfApprovalRefused");
    expect(refused).toHaveLength(before + 1);
    expect(refused.at(-1)!.actorName).toBe("Erin Engineer");
    expect(app.db.select().from(signatures).all()).toHaveLength(0);
  });

  it("refuses a reviewer whose decision note is in the model's lineage, and records it", async () => {
    await app.as("reviewer").decisions.addNote({ runId: runA, rationale: "I asked for the learning rate 0.03 after the pilot" });
    await expect(app.as("reviewer").models.sign({ requestId, meaning: "approval", password: "reviewer-demo-pass" })).rejects.toThrow(
      /Rui Reviewer cannot sign .*authored decision #\d+ \(note\) on run #\d+/,
    );
    expect(auditActions("promotion.selfApprovalRefused").at(-1)!.actorName).toBe("Rui Reviewer");
    const detail = await app.as("reviewer").models.get({ name: MODEL });
    expect(detail.promotionRequests.find((r) => r.id === requestId)!.viewerConflicts.join(" ")).toMatch(/authored decision/);
  });

  it("requires the signer's password, and records a wrong one", async () => {
    await expect(app.as("reviewer2").models.sign({ requestId, meaning: "approval", password: "wrong" })).rejects.toThrow(
      /password does not match/,
    );
    expect(auditActions("signature.refused")).toHaveLength(1);
    expect((await app.as("engineer").models.get({ name: MODEL })).aliases.production).toBeUndefined();
  });

  it("an independent reviewer's approval moves production, with a readable signature bound to the record hash, and a signed audit checkpoint", async () => {
    const checkpointsBefore = app.db.select().from(auditCheckpoints).all().length;
    const out = await app
      .as("reviewer2")
      .models.sign({ requestId, meaning: "approval", password: "reviewer2-demo-pass", comment: "checked the confusion matrix" });
    expect(out).toMatchObject({ status: "approved", aliasMoved: true });
    expect(out.auditCheckpoint.ok).toBe(true);
    expect(app.db.select().from(auditCheckpoints).all().length).toBe(checkpointsBefore + 1);

    const detail = await app.as("auditor").models.get({ name: MODEL });
    expect(detail.aliases.production).toBe(1);
    const req = detail.promotionRequests.find((r) => r.id === requestId)!;
    expect(req.status).toBe("approved");
    const sig = req.signatures[0]!;
    expect(sig.recordSha256).toBe(req.recordSha256);
    expect(sig.text).toMatch(
      new RegExp(
        `^Approved by Rita Second-Reviewer on \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ — meaning: approval — record sha256 ${req.recordSha256.slice(0, 12)}…$`,
      ),
    );
    const move = detail.aliasHistory.find((e) => e.alias === "production")!;
    expect(move).toMatchObject({ version: 1, promotionRequestId: requestId, movedBy: "Rita Second-Reviewer" });
    movedAt = move.at;
    for (const a of ["signature.create", "promotion.approve", "alias.move"]) expect(auditActions(a).length).toBeGreaterThan(0);
    // The signed record is exactly the request's: recomputing it from the stored rows gives the same hash.
    const lineage = await app.as("auditor").models.lineage({ modelName: MODEL, version: 1 });
    expect(lineage.graph.nodes.find((n) => n.kind === "signature")!.hash!.value).toBe(req.recordSha256);
    await expect(
      app.as("reviewer").models.sign({ requestId, meaning: "rejection", password: "reviewer-demo-pass", comment: "too late to object" }),
    ).rejects.toThrow(/Rui Reviewer cannot sign promotion request #\d+: they authored decision/);
  });

  it("a fork of the approved run inherits its lineage: the reviewer with a note on the parent still cannot approve", async () => {
    const parent = await app.as("engineer").runs.get({ id: runA });
    const cfg = { ...parent.config, training: { ...parent.config.training, learningRate: 0.02 } };
    const { id } = await app.as("engineer").runs.create({
      experimentId: app.experimentId,
      config: cfg,
      rationale: "lower the learning rate",
      origin: "fork",
      parentRunId: runA,
    });
    await app.orchestrator.waitFor(id);
    const v = await app.as("engineer").models.register({ runId: id, modelName: MODEL });
    const req = await app.as("engineer").models.requestPromotion({
      modelName: MODEL,
      version: v.version,
      acknowledgeMissingDocumentation: true,
      rationale: "the fork is better",
    });
    await expect(
      app.as("reviewer").models.sign({ requestId: req.id, meaning: "approval", password: "reviewer-demo-pass" }),
    ).rejects.toThrow(/authored decision .* on run #/);
    await app.as("engineer").models.withdrawPromotion({ requestId: req.id, reason: "superseded" });
    expect((await app.as("engineer").models.get({ name: MODEL })).promotionRequests.find((r) => r.id === req.id)!.status).toBe("withdrawn");
  });

  it("with two approvals required, one approval keeps the request pending and the second moves production; the history answers 'what was in production at T'", async () => {
    await expect(app.as("engineer").models.setApprovalsRequired({ modelName: MODEL, approvalsRequired: 2 })).rejects.toThrow(
      /engineer cannot/,
    );
    await app.as("admin").models.setApprovalsRequired({ modelName: MODEL, approvalsRequired: 2 });
    const v = await app.as("engineer").models.register({ runId: runC, modelName: MODEL });
    const req = await app.as("engineer").models.requestPromotion({
      modelName: MODEL,
      version: v.version,
      acknowledgeMissingDocumentation: true,
      rationale: "independent line, better test F1",
    });
    const first = await app.as("reviewer2").models.sign({ requestId: req.id, meaning: "approval", password: "reviewer2-demo-pass" });
    expect(first).toMatchObject({ status: "pending", aliasMoved: false });
    await expect(
      app.as("reviewer2").models.sign({ requestId: req.id, meaning: "approval", password: "reviewer2-demo-pass" }),
    ).rejects.toThrow(/already signed/);
    const second = await app.as("reviewer").models.sign({ requestId: req.id, meaning: "approval", password: "reviewer-demo-pass" });
    expect(second).toMatchObject({ status: "approved", aliasMoved: true });

    const detail = await app.as("auditor").models.get({ name: MODEL });
    expect(detail.aliases.production).toBe(v.version);
    const moves = detail.aliasHistory.filter((e) => e.alias === "production");
    expect(moves.map((m) => m.version)).toEqual([1, v.version]);
    const secondAt = moves[1]!.at;
    const justBefore = new Date(Date.parse(movedAt) - 1).toISOString();
    const between = new Date((Date.parse(movedAt) + Date.parse(secondAt)) / 2).toISOString();
    expect((await app.as("auditor").models.aliasAt({ modelName: MODEL, at: justBefore })).version).toBeNull();
    expect((await app.as("auditor").models.aliasAt({ modelName: MODEL, at: movedAt })).version).toBe(1);
    if (Date.parse(secondAt) > Date.parse(movedAt) + 1)
      expect((await app.as("auditor").models.aliasAt({ modelName: MODEL, at: between })).version).toBe(1);
    const now = await app
      .as("auditor")
      .models.aliasAt({ modelName: MODEL, alias: "production", at: new Date(Date.now() + 1000).toISOString() });
    expect(now).toMatchObject({ version: v.version, promotionRequestId: req.id });
    const timeline = await app.as("auditor").models.aliasTimeline({ modelName: MODEL });
    expect(timeline.map((t) => [t.version, t.to === null])).toEqual([
      [1, false],
      [v.version, true],
    ]);
    await expect(app.as("auditor").models.aliasAt({ modelName: MODEL, at: "yesterday-ish" })).rejects.toThrow(/not a time/);
  });

  it("a rejection closes a request only with a reason (a blank one records nothing); production does not move", async () => {
    const v = await app.as("engineer").models.register({ runId: runA, modelName: MODEL, checkpoint: "best" });
    const req = await app.as("engineer").models.requestPromotion({
      modelName: MODEL,
      version: v.version,
      alias: "production",
      acknowledgeMissingDocumentation: true,
      rationale: "roll back to run A",
    });
    const signaturesOf = () =>
      app.db
        .select()
        .from(signatures)
        .where(eq(signatures.recordId, req.id))
        .all()
        .filter((s) => s.recordType === "promotion_request");
    const eventCount = () => app.db.select().from(auditEvents).all().length;
    const eventsBefore = eventCount();
    for (const comment of [undefined, "", "   \n\t "]) {
      const refused = app
        .as("reviewer2")
        .models.sign({ requestId: req.id, meaning: "rejection", password: "reviewer2-demo-pass", comment });
      await expect(refused).rejects.toMatchObject({ code: "BAD_REQUEST" });
      await expect(refused).rejects.toThrow(/a rejection needs a reason: say in the comment what must change/);
    }
    // Refused before anything was read or written: no signature, no audit event (not even a refusal), still pending.
    expect(signaturesOf()).toHaveLength(0);
    expect(eventCount()).toBe(eventsBefore);
    expect((await app.as("auditor").models.get({ name: MODEL })).promotionRequests.find((r) => r.id === req.id)!.status).toBe("pending");

    const out = await app.as("reviewer2").models.sign({
      requestId: req.id,
      meaning: "rejection",
      password: "reviewer2-demo-pass",
      comment: "no rollback without an incident",
    });
    expect(out.status).toBe("rejected");
    expect(out.text).toMatch(/^Rejected by Rita Second-Reviewer on .* — meaning: rejection — record sha256 /);
    expect((await app.as("auditor").models.get({ name: MODEL })).aliases.production).toBe(v.version - 1);
    expect(auditActions("promotion.reject")).toHaveLength(1);
    expect(JSON.parse(auditActions("promotion.reject")[0]!.payload)).toMatchObject({ comment: "no rollback without an incident" });
    expect(signaturesOf()).toMatchObject([{ meaning: "rejection", comment: "no rollback without an incident" }]);
  });

  it("every signature's record hash equals the sha256 of the stored record it names", () => {
    const rows = app.db.select().from(signatures).where(eq(signatures.recordType, "promotion_request")).all();
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const s of rows) {
      const req = app.db.select().from(promotionRequests).where(eq(promotionRequests.id, s.recordId)).get()!;
      const version = app.db.select().from(modelVersions).where(eq(modelVersions.id, req.modelVersionId)).get()!;
      const evaluation = app.db.select().from(evaluations).where(eq(evaluations.id, req.evaluationId)).get()!;
      expect(s.recordSha256).toBe(sha256Canonical(promotionRecord(MODEL, req.alias, version, evaluation)));
    }
  });
});

describe("staging and other aliases", () => {
  it("an engineer moves staging directly (audited and checkpointed), but never production", async () => {
    const out = await app
      .as("engineer")
      .models.moveAlias({ modelName: MODEL, alias: "staging", version: 2, rationale: "smoke tests on the epoch-1 weights" });
    expect(out.auditCheckpoint.ok).toBe(true);
    expect((await app.as("engineer").models.get({ name: MODEL })).aliases.staging).toBe(2);
    await expect(
      app.as("engineer").models.moveAlias({ modelName: MODEL, alias: "production", version: 2, rationale: "shortcut" }),
    ).rejects.toThrow(/only through a promotion request/);
    await expect(
      app.as("engineer").models.moveAlias({ modelName: MODEL, alias: "staging", version: 2, rationale: "again" }),
    ).rejects.toThrow(/already points at version 2/);
    const last = auditActions("alias.move").at(-1)!;
    expect(JSON.parse(last.payload)).toMatchObject({ alias: "staging", rationale: "smoke tests on the epoch-1 weights" });
  });
});
