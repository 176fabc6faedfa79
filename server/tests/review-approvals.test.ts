/**
 * Approvals judged by the rule in force when a request was made (issue 14), through tRPC callers on a real database:
 * the request records the model's rule (row and promotion.request event); lowering the rule later does not lower a
 * request's bar, raising it while pending does; a decided request keeps "rule at request time"; a reviewer who signed
 * sees their signature (viewerSignature) and nothing left to sign; migration 0010 backfills the rule from the ledger;
 * content verification stays clean.
 */
import fs from "node:fs";
import path from "node:path";
import { createElement } from "react";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { and, eq } from "drizzle-orm";
import { auditEvents, modelVersions, promotionRequests } from "@/db/schema";
import { collectReportFacts } from "@/server/audit/report/collect-report";
import { ApprovalsSection } from "@/server/audit/report/render/section-7-approvals";
import { renderToStaticMarkup } from "@/server/audit/report/render/static-markup";
import { checkContent } from "@/server/audit/content/verify-content";
import { snapshot } from "@/server/audit/content/tests/content-fixture";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;
const MODEL = "rule-model";
const versions: number[] = [];

const setRule = (n: number) => app.as("admin").models.setApprovalsRequired({ modelName: MODEL, approvalsRequired: n });
const request = async (version: number) =>
  (
    await app
      .as("engineer")
      .models.requestPromotion({ modelName: MODEL, version, acknowledgeMissingDocumentation: true, rationale: `promote v${version}` })
  ).id;
const approve = (who: "reviewer" | "reviewer2", requestId: number) =>
  app.as(who).models.sign({ requestId, meaning: "approval", password: `${who}-demo-pass` });
const requestOf = async (who: "reviewer" | "reviewer2" | "auditor", id: number) =>
  (await app.as(who).models.get({ name: MODEL })).promotionRequests.find((r) => r.id === id)!;

beforeAll(async () => {
  app = createTestApp();
  for (const seed of [1, 2, 3]) {
    const { id } = await app.as("engineer").runs.create({
      experimentId: app.experimentId,
      config: irisConfig({ epochs: 2, seed }),
      rationale: "approval rule test",
    });
    await app.orchestrator.waitFor(id);
    versions.push((await app.as("engineer").models.register({ runId: id, modelName: MODEL })).version);
  }
}, 90_000);
afterAll(() => app.close());

describe("the approval rule a request is judged by", () => {
  let first: number;

  it("records the rule at request time on the row and in the promotion.request event", async () => {
    first = await request(versions[0]!);
    expect(app.db.select().from(promotionRequests).where(eq(promotionRequests.id, first)).get()!.approvalsRequired).toBe(1);
    const ev = app.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "promotion.request"), eq(auditEvents.entityId, String(first))))
      .get()!;
    expect(JSON.parse(ev.payload).approvalsRequired).toBe(1);
  });

  it("an approved request keeps 'rule at request time: 1' after the admin raises the rule to 2", async () => {
    expect((await approve("reviewer2", first)).status).toBe("approved");
    await setRule(2);
    const r = await requestOf("auditor", first);
    expect(r).toMatchObject({ status: "approved", approvals: 1, approvalsRequiredAtRequest: 1, approvalsRequired: 1 });
  });

  it("lowering the rule does not lower the bar of a request made under the higher one", async () => {
    const id = await request(versions[1]!);
    await setRule(1);
    expect((await requestOf("auditor", id)).approvalsRequired).toBe(2);
    expect((await approve("reviewer2", id)).status).toBe("pending");
    expect((await approve("reviewer", id)).status).toBe("approved");
    expect(await requestOf("auditor", id)).toMatchObject({ status: "approved", approvals: 2, approvalsRequiredAtRequest: 2 });
  });

  it("raising the rule while a request is pending applies to it (the stricter rule wins), and the page data says so", async () => {
    const id = await request(versions[2]!);
    await setRule(2);
    expect(await requestOf("auditor", id)).toMatchObject({ approvalsRequiredAtRequest: 1, approvalsRequired: 2 });
    expect((await approve("reviewer2", id)).status).toBe("pending");

    // The reviewer who signed sees their signature and may not sign again; the other reviewer has none yet.
    const mine = await requestOf("reviewer2", id);
    expect(mine.viewerSignature).toMatchObject({ printedName: "Rita Second-Reviewer", meaning: "approval" });
    expect(mine.viewerSignature!.text).toMatch(/^Approved by Rita Second-Reviewer on \d{4}-\d\d-\d\dT/);
    expect((await requestOf("reviewer", id)).viewerSignature).toBeNull();
    expect((await app.as("reviewer2").models.inbox()).requests.map((r) => r.id)).not.toContain(id);
    await expect(approve("reviewer2", id)).rejects.toThrow(/already signed/);

    expect((await approve("reviewer", id)).status).toBe("approved");
    // Decided under the raised rule: the page reads "2 of 2" (rule at request time 1), not "2 of 1".
    expect(await requestOf("auditor", id)).toMatchObject({
      status: "approved",
      approvals: 2,
      approvalsRequired: 2,
      approvalsRequiredAtRequest: 1,
    });
  });

  it("the auditor's report states each request's own rule, not the model's current one", async () => {
    // The model's rule is 2 now (raised in the test above).
    const byVersion = (v: number) => {
      const facts = collectReportFacts(app.db, app.db.select().from(modelVersions).where(eq(modelVersions.version, v)).get()!.id);
      return { facts, html: renderToStaticMarkup(createElement(ApprovalsSection, { f: facts, refs: () => null })) };
    };
    // v1: approved with 1 under a rule of 1; v3: requested under 1, raised to 2 while pending, approved with 2.
    const v1 = byVersion(versions[0]!);
    expect(v1.facts.approvals.requests[0]).toMatchObject({ approvalsRequired: 1, approvalsRequiredAtRequest: 1 });
    expect(v1.html).toContain("Approvals required: 1 (rule at request time: 1)");
    expect(v1.html).toMatch(/current rule is 2\s+approval/);
    const v3 = byVersion(versions[2]!);
    expect(v3.facts.approvals.requests[0]).toMatchObject({ approvalsRequired: 2, approvalsRequiredAtRequest: 1 });
    expect(v3.html).toContain("rule was raised while the request was pending");
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

describe("[migration 0010_promotion_rule_at_request]", () => {
  it("backfills each request's rule from its promotion.request event", () => {
    const sqlite = app.db.$client;
    const before = sqlite.prepare("SELECT id, approvals_required AS n FROM promotion_requests ORDER BY id").all();
    expect(before.map((r) => (r as { n: number }).n)).toEqual([1, 2, 1]);
    // Back to the shape before 0010, then its committed SQL, statement by statement as drizzle's migrator runs it.
    sqlite.exec("ALTER TABLE promotion_requests DROP COLUMN approvals_required");
    const sql = fs.readFileSync(path.join(process.cwd(), "db", "migrations", "0010_promotion_rule_at_request.sql"), "utf8");
    sqlite.transaction(() => {
      for (const statement of sql.split("--> statement-breakpoint")) if (statement.trim()) sqlite.exec(statement);
    })();
    expect(sqlite.prepare("SELECT id, approvals_required AS n FROM promotion_requests ORDER BY id").all()).toEqual(before);
  });
});
