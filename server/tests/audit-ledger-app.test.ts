/**
 * The audit ledger as the app uses it, through tRPC callers on a real database: model-card versions and their
 * signatures, the checkpoint policy (after mutations: every 100 events or 10 minutes; at every signature), the
 * audit page's queries (filters, status, verify now, inclusion proofs), and an auditor who can browse, verify and
 * export but change nothing.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { desc, eq } from "drizzle-orm";
import { auditCheckpoints, auditEvents, documents, models, modelVersions, signatures, users } from "@/db/schema";
import { sha256Canonical } from "@/contracts/canonical";
import { keyFilePath } from "@/server/audit/keys";
import { documentRecord } from "@/server/documents/records";
import { applyCheckpointPolicy } from "@/server/audit/checkpoint-policy";
import { exportReportBundle } from "@/server/audit/report/export-bundle";
import { verifyReportBundle } from "@/server/audit/report/verify-report";
import { actorOf } from "@/server/users/service";
import { DEMO_USERS } from "@/server/demo/seed";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { waitForVerifyJob } from "@/server/audit/verify-jobs";

let app: TestApp;
let modelId: number;
let versionId: number;
const MODEL = "iris-audit";
const pw = (i: number) => DEMO_USERS[i]!.password;
const lastEvent = () => app.db.select().from(auditEvents).orderBy(desc(auditEvents.seq)).limit(1).get()!;
const checkpointCount = () => app.db.select().from(auditCheckpoints).all().length;

beforeAll(async () => {
  app = createTestApp();
  const { id } = await app
    .as("engineer")
    .runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 3 }), rationale: "baseline" });
  await app.orchestrator.waitFor(id);
  const v = await app.as("engineer").models.register({ runId: id, modelName: MODEL });
  modelId = v.modelId;
  versionId = v.modelVersionId;
}, 90_000);
afterAll(() => app?.close());

describe("model card documents", () => {
  let v1: number;
  let v2: number;

  it("each edit is a new version row with its sha256 and a document.update event that holds hashes, not the text", async () => {
    const first = await app.as("engineer").documents.update({
      subjectType: "model",
      subjectId: modelId,
      section: "intended_use",
      body: "Teaching use: iris species from petal and sepal sizes.",
      baseVersion: 0,
    });
    expect(first).toMatchObject({ version: 1, supersedesId: null });
    expect(first.sha256).toBe(sha256Canonical(documentRecord(first)));
    const ev = lastEvent();
    expect(ev).toMatchObject({ action: "document.update", entityType: "document", entityId: String(first.id), actorName: "Erin Engineer" });
    expect(JSON.parse(ev.payload)).toMatchObject({
      section: "intended_use",
      version: 1,
      sha256: first.sha256,
      characters: first.body.length,
    });
    expect(ev.payload).not.toContain("petal");
    const second = await app.as("reviewer").documents.update({
      subjectType: "model",
      subjectId: modelId,
      section: "intended_use",
      body: "Teaching use only: iris species from petal and sepal sizes; not for field identification.",
      baseVersion: 1,
    });
    expect(second).toMatchObject({ version: 2, supersedesId: first.id });
    expect(JSON.parse(lastEvent().payload)).toMatchObject({ supersedesSha256: first.sha256 });
    [v1, v2] = [first.id, second.id];
    const doc = await app.as("auditor").documents.get({ subjectType: "model", subjectId: modelId });
    const section = doc.sections.find((s) => s.key === "intended_use")!;
    expect(section.latest!.version).toBe(2);
    expect(section.history.map((h) => h.version)).toEqual([2, 1]);
    expect(app.db.select().from(documents).where(eq(documents.id, v1)).get()!.body).toContain("Teaching use:");
  });

  it("refuses a stale edit, an unknown section and an empty body", async () => {
    await expect(
      app
        .as("engineer")
        .documents.update({ subjectType: "model", subjectId: modelId, section: "intended_use", body: "late edit", baseVersion: 1 }),
    ).rejects.toThrow(/latest is version 2/);
    await expect(
      app
        .as("engineer")
        .documents.update({ subjectType: "model", subjectId: modelId, section: "data_collection", body: "x", baseVersion: 0 }),
    ).rejects.toThrow(/has no section "data_collection"/);
    await expect(
      app
        .as("engineer")
        .documents.update({ subjectType: "model", subjectId: modelId, section: "limitations", body: "   ", baseVersion: 0 }),
    ).rejects.toThrow(/empty section/);
  });

  it("signing needs the password (a wrong one is refused and recorded), binds to the version's sha256, and is followed by a signed checkpoint", async () => {
    await expect(app.as("engineer").documents.sign({ documentId: v2, meaning: "authorship", password: "wrong" })).rejects.toThrow(
      /password does not match/,
    );
    expect(lastEvent()).toMatchObject({ action: "signature.refused", entityType: "document", entityId: String(v2) });
    await expect(app.as("engineer").documents.sign({ documentId: v1, meaning: "authorship", password: pw(1) })).rejects.toThrow(
      /superseded by version 2/,
    );
    await expect(app.as("engineer").documents.sign({ documentId: v2, meaning: "review", password: pw(1) })).rejects.toThrow(
      /engineer cannot sign documents with meaning "review"/,
    );
    const before = checkpointCount();
    const signed = await app.as("engineer").documents.sign({ documentId: v2, meaning: "authorship", password: pw(1) });
    expect(signed.text).toMatch(/^Authored by Erin Engineer on .* — meaning: authorship — record sha256 [0-9a-f]{12}…$/);
    expect(signed.auditCheckpoint.ok).toBe(true);
    expect(checkpointCount()).toBe(before + 1);
    const row = app.db.select().from(signatures).where(eq(signatures.id, signed.signatureId)).get()!;
    expect(row).toMatchObject({
      recordType: "document",
      recordId: v2,
      meaning: "authorship",
      recordSha256: app.db.select().from(documents).where(eq(documents.id, v2)).get()!.sha256,
    });
    await expect(app.as("engineer").documents.sign({ documentId: v2, meaning: "authorship", password: pw(1) })).rejects.toThrow(
      /already signed/,
    );
    // Rui wrote v2, so another reviewer reviews it (separation of duties: server/tests/document-separation.test.ts).
    const review = await app.as("reviewer2").documents.sign({ documentId: v2, meaning: "review", password: pw(4), comment: "clear scope" });
    expect(review.text).toMatch(/^Reviewed by Rita Second-Reviewer/);
  });
});

describe("checkpoint policy", () => {
  it("signs after a mutation once 100 events have accumulated, and after 10 minutes for fewer", async () => {
    // Start from a fresh checkpoint so the count is exact.
    applyCheckpointPolicy(app, { everyEvents: 1 });
    const start = checkpointCount();
    for (let i = 0; i < 99; i++) await app.as("engineer").projects.create({ name: `policy project ${i}` });
    expect(checkpointCount()).toBe(start);
    await app.as("engineer").projects.create({ name: "policy project 99" });
    expect(checkpointCount()).toBe(start + 1);
    const cp = app.db.select().from(auditCheckpoints).orderBy(desc(auditCheckpoints.id)).limit(1).get()!;
    expect(cp.reason).toBe("every 100 events");

    await app.as("engineer").projects.create({ name: "one more" });
    expect(applyCheckpointPolicy(app, { now: new Date(Date.now() + 5 * 60_000) })).toEqual({ checkpointed: false });
    const late = applyCheckpointPolicy(app, { now: new Date(Date.now() + 11 * 60_000) });
    expect(late).toMatchObject({ checkpointed: true, reason: "every 10 minutes" });
    expect(applyCheckpointPolicy(app, { now: new Date(Date.now() + 30 * 60_000) })).toEqual({ checkpointed: false }); // nothing new since
  });
});

describe("audit page queries", () => {
  it("filters events by actor, action (exact or prefix), entity and time, newest first, with paging", async () => {
    const auditor = app.as("auditor");
    const byActor = await auditor.audit.events({ actor: "Rui", limit: 500 });
    expect(byActor.events.length).toBeGreaterThan(0);
    expect(byActor.events.every((e) => e.actorName === "Rui Reviewer")).toBe(true);
    const docs = await auditor.audit.events({ action: "document" });
    expect(docs.events.every((e) => e.action.startsWith("document."))).toBe(true);
    expect(docs.events.length).toBe(2);
    const exact = await auditor.audit.events({ action: "modelVersion.create" });
    expect(exact.events.map((e) => e.entityId)).toEqual([String(versionId)]);
    const entity = await auditor.audit.events({ entityType: "modelVersion", entityId: String(versionId) });
    expect(entity.events[0]!.payload).toMatchObject({ model: MODEL, version: 1 });
    expect((await auditor.audit.events({ to: "2000-01-01T00:00:00Z" })).events).toEqual([]);
    const page1 = await auditor.audit.events({ limit: 5 });
    expect(page1.events.map((e) => e.seq)).toEqual([...page1.events.map((e) => e.seq)].sort((a, b) => b - a));
    const page2 = await auditor.audit.events({ limit: 5, beforeSeq: page1.nextBeforeSeq! });
    expect(page2.events[0]!.seq).toBe(page1.events.at(-1)!.seq - 1);
    await expect(auditor.audit.events({ from: "yesterday" })).rejects.toThrow(/not a time/);
  });

  it("shows the key, the latest checkpoint, inclusion proofs, and records each verification", async () => {
    const auditor = app.as("auditor");
    const status = await auditor.audit.status();
    expect(status.fingerprint).toMatch(/^SHA256:[0-9a-f]{64}$/);
    expect(status.publicKeyPem).toContain("BEGIN PUBLIC KEY");
    expect(status.latestCheckpoint!.signatureValid).toBe(true);
    expect(fs.statSync(keyFilePath(app.keyDir, status.fingerprint)).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(app.dataDir, "audit-ed25519.key"))).toBe(false);
    expect((await auditor.audit.verify()).job.status).toBe("running"); // a background job: see verify-jobs.test.ts
    const verified = (await waitForVerifyJob(app.dataDir))!;
    expect(verified.summary).toMatchObject({ ok: true, problem: null });
    const after = await auditor.audit.status();
    expect(after.lastVerification).toMatchObject({
      seq: verified.seq,
      by: "Alex Auditor",
      result: { ok: true, eventsChecked: verified.summary!.eventsChecked },
    });
    const proof = await auditor.audit.inclusionProof({ seq: 3 });
    expect(proof).toMatchObject({ seq: 3, verified: true, signedRoot: true });
    const trusted = await auditor.audit.trustedCheckpoint();
    expect(trusted!.treeHead.keyFingerprint).toBe(status.fingerprint);
  });
});

describe("an auditor reads, verifies and exports but changes nothing", () => {
  it("is refused every change by the server, and exporting leaves project data untouched", async () => {
    const auditor = app.as("auditor");
    await expect(
      auditor.documents.update({ subjectType: "model", subjectId: modelId, section: "limitations", body: "x", baseVersion: 0 }),
    ).rejects.toThrow(/auditor cannot/);
    const latestDoc = app.db.select().from(documents).orderBy(desc(documents.id)).limit(1).get()!;
    await expect(auditor.documents.sign({ documentId: latestDoc.id, meaning: "authorship", password: pw(3) })).rejects.toThrow(
      /auditor cannot/,
    );
    await expect(auditor.models.register({ runId: 1, modelName: "x" })).rejects.toThrow(/auditor cannot/);
    await expect(auditor.projects.create({ name: "auditor project" })).rejects.toThrow(/auditor cannot/);

    const tables = [documents, signatures, models, modelVersions, users] as const;
    const counts = () => tables.map((t) => app.db.select().from(t).all().length);
    const before = counts();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-auditor-export-"));
    try {
      const me = actorOf(app.db.select().from(users).where(eq(users.email, DEMO_USERS[3]!.email)).get()!);
      const r = exportReportBundle(app, me, versionId, path.join(dir, "b"));
      expect((await verifyReportBundle(r.dir)).ok).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(counts()).toEqual(before);
  });
});
