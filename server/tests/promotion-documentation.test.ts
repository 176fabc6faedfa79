/**
 * Requesting production checks the model card and the datasheets of the version's datasets (issue 14 point 4), on a
 * real database through tRPC callers: the checklist names each section written or missing; a request with missing
 * sections is refused (nothing recorded) unless the requester acknowledges them; the acknowledgement and each section's
 * version and sha256 are recorded in the promotion.request event and reviewers see what was missing; a section written
 * from the checklist goes through documents.update (one document.update event each); content verification stays clean.
 */
import { createElement } from "react";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { and, eq } from "drizzle-orm";
import { auditEvents, documents, modelVersions, promotionRequests } from "@/db/schema";
import { collectReportFacts } from "@/server/audit/report/collect-report";
import { ApprovalsSection } from "@/server/audit/report/render/section-7-approvals";
import { renderToStaticMarkup } from "@/server/audit/report/render/static-markup";
import { checkContent } from "@/server/audit/content/verify-content";
import { snapshot } from "@/server/audit/content/tests/content-fixture";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;
let version: number;
const MODEL = "documented-classifier";

const events = (action: string) => app.db.select().from(auditEvents).where(eq(auditEvents.action, action)).all();
const payloadOf = (action: string) => JSON.parse(events(action).at(-1)!.payload) as Record<string, unknown>;
const checklist = () => app.as("engineer").models.documentationChecklist({ modelName: MODEL, version });

beforeAll(async () => {
  app = createTestApp();
  const { id } = await app
    .as("engineer")
    .runs.create({ experimentId: app.experimentId, config: irisConfig(), rationale: "documentation checklist test" });
  await app.orchestrator.waitFor(id);
  version = (await app.as("engineer").models.register({ runId: id, modelName: MODEL })).version;
}, 60_000);
afterAll(() => app.close());

describe("the documentation checklist of a model version", () => {
  it("lists the model card's sections and the datasheet sections of the dataset it was trained on, all missing at first", async () => {
    const c = await checklist();
    expect(c.subjects.map((s) => [s.document, s.subjectName])).toEqual([
      ["Model card", MODEL],
      ["Datasheet", "Iris flowers"],
    ]);
    expect(c.subjects[0]!.sections.map((s) => s.key)).toEqual(["intended_use", "limitations", "ethical_considerations"]);
    expect(c.subjects[1]!.sections.map((s) => s.key)).toEqual(["data_collection", "licence"]);
    expect(c).toMatchObject({ written: 0, total: 5 });
    expect(c.missing).toHaveLength(5);
    // Every signed-in role may read it (a GET with no side effect).
    const before = app.db.select().from(auditEvents).all().length;
    await app.as("auditor").models.documentationChecklist({ modelName: MODEL, version });
    expect(app.db.select().from(auditEvents).all().length).toBe(before);
  });

  it("refuses a request with missing sections that does not acknowledge them, naming them; nothing is recorded", async () => {
    const before = events("promotion.request").length;
    await expect(
      app.as("engineer").models.requestPromotion({ modelName: MODEL, version, rationale: "good test accuracy" }),
    ).rejects.toThrow(
      /5 of 5 documentation sections of version 1 are not written \(Model card of documented-classifier: Intended purpose and use, Limitations and conditions of use, Ethical considerations and risks; Datasheet of Iris flowers: Data collection, Licence and terms of use\): write them, or acknowledge/,
    );
    expect(events("promotion.request")).toHaveLength(before);
    expect(app.db.select().from(promotionRequests).all()).toHaveLength(0);
  });

  it("a section written from the checklist is a documents.update (one document.update event) and shows as written", async () => {
    const before = events("document.update").length;
    const c = await checklist();
    const modelCard = c.subjects[0]!;
    const row = await app.as("engineer").documents.update({
      subjectType: "model",
      subjectId: modelCard.subjectId,
      section: "intended_use",
      body: "Classifies iris flowers for the botany teaching lab; not for field identification.",
      baseVersion: 0,
    });
    expect(events("document.update")).toHaveLength(before + 1);
    const after = await checklist();
    expect(after.subjects[0]!.sections[0]!.written).toMatchObject({ documentId: row.id, version: 1, sha256: row.sha256 });
    expect(after).toMatchObject({ written: 1, total: 5 });
    expect(after.missing.map((m) => m.section)).toEqual(["limitations", "ethical_considerations", "data_collection", "licence"]);
  });

  it("an acknowledged request with sections missing is recorded with the checklist, and reviewers see what was missing", async () => {
    const req = await app.as("engineer").models.requestPromotion({
      modelName: MODEL,
      version,
      rationale: "good test accuracy; card to be finished",
      acknowledgeMissingDocumentation: true,
    });
    const p = payloadOf("promotion.request") as { documentation: Record<string, unknown> & { sections: Record<string, unknown>[] } };
    expect(events("promotion.request").at(-1)!.entityId).toBe(String(req.id));
    expect(p.documentation).toMatchObject({ written: 1, total: 5, acknowledgedMissing: true });
    const intended = (await checklist()).subjects[0]!.sections[0]!.written!;
    expect(p.documentation.sections).toContainEqual(
      expect.objectContaining({ subjectType: "model", section: "intended_use", version: 1, sha256: intended.sha256 }),
    );
    expect(p.documentation.sections).toContainEqual(
      expect.objectContaining({ subjectType: "dataset", subjectName: "Iris flowers", section: "licence", version: null, sha256: null }),
    );
    // Hashes and identifiers only: the section's text is not in the event.
    expect(events("promotion.request").at(-1)!.payload).not.toContain("botany");

    const seen = (await app.as("reviewer").models.get({ name: MODEL })).promotionRequests.find((r) => r.id === req.id)!;
    expect(seen.documentation).toMatchObject({ written: 1, total: 5, acknowledgedMissing: true });
    expect(seen.documentation!.missing.map((m) => `${m.document} of ${m.subjectName}: ${m.title}`)).toEqual([
      `Model card of ${MODEL}: Limitations and conditions of use`,
      `Model card of ${MODEL}: Ethical considerations and risks`,
      "Datasheet of Iris flowers: Data collection",
      "Datasheet of Iris flowers: Licence and terms of use",
    ]);
    // The auditor's report (section 7) prints the same, from the same event.
    const mv = app.db.select().from(modelVersions).where(eq(modelVersions.version, version)).all();
    const facts = collectReportFacts(app.db, mv.at(-1)!.id);
    const printed = facts.approvals.requests.find((r) => r.id === req.id)!;
    expect(printed.documentation).toEqual(seen.documentation);
    const html = renderToStaticMarkup(createElement(ApprovalsSection, { f: facts, refs: () => null }));
    expect(html).toContain("Requested with 4 of 5 documentation sections missing (acknowledged by the requester)");
    expect(html).toContain("Datasheet of Iris flowers: Licence and terms of use");
    await app.as("engineer").models.withdrawPromotion({ requestId: req.id, reason: "finish the documentation first" });
  });

  it("with every section written, a request needs no acknowledgement and records the documentation as complete", async () => {
    const c = await checklist();
    for (const m of c.missing)
      await app.as("engineer").documents.update({
        subjectType: m.subjectType,
        subjectId: m.subjectId,
        section: m.section as never,
        body: `${m.title}: written before requesting production.`,
        baseVersion: 0,
      });
    expect(await checklist()).toMatchObject({ written: 5, total: 5, missing: [] });
    const req = await app.as("engineer").models.requestPromotion({ modelName: MODEL, version, rationale: "documented and tested" });
    const p = payloadOf("promotion.request") as { documentation: { sections: { sha256: string | null }[] } };
    expect(p.documentation).toMatchObject({ written: 5, total: 5, acknowledgedMissing: false });
    expect(p.documentation.sections.every((s) => /^[0-9a-f]{64}$/.test(s.sha256 ?? ""))).toBe(true);
    const seen = (await app.as("reviewer").models.get({ name: MODEL })).promotionRequests.find((r) => r.id === req.id)!;
    expect(seen.documentation).toMatchObject({ written: 5, total: 5, acknowledgedMissing: false, missing: [] });
    // The sections written are the documents service's rows, nothing else.
    expect(
      app.db
        .select()
        .from(documents)
        .where(and(eq(documents.subjectType, "dataset"), eq(documents.section, "licence")))
        .all(),
    ).toHaveLength(1);
  });

  it("content verification of the database stays clean", () => {
    const s = snapshot(app);
    try {
      const r = checkContent(s.db, { artifactsDir: s.artifactsDir, uptoSeq: s.maxSeq });
      expect(r.level.problems).toEqual([]);
    } finally {
      s.close();
    }
  });
});
