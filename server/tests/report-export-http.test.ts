/**
 * No side effects on GET: the report route's GET exports nothing (405, the audit log unchanged, no checkpoint
 * signed); a same-origin POST records the export and returns the bundle or the preview HTML; a cross-site POST
 * (a form on another site riding the session cookie) is refused before anything is written.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count, eq } from "drizzle-orm";
import { auditCheckpoints, auditEvents } from "@/db/schema";
import { reportExportGet, reportExportPost } from "@/server/http/report-export";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { actorFor } from "./upload-helpers";

let app: TestApp;
let modelVersionId: number;

beforeAll(async () => {
  app = createTestApp();
  const { id } = await app
    .as("engineer")
    .runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 2 }), rationale: "report export test" });
  await app.orchestrator.waitFor(id);
  modelVersionId = (await app.as("engineer").models.register({ runId: id, modelName: "report-http" })).modelVersionId;
});
afterAll(() => app.close());

const ledger = () => ({
  events: app.db.select({ n: count() }).from(auditEvents).get()!.n,
  exports: app.db.select({ n: count() }).from(auditEvents).where(eq(auditEvents.action, "audit.export")).get()!.n,
  checkpoints: app.db.select({ n: count() }).from(auditCheckpoints).get()!.n,
});

const SITE = "http://127.0.0.1:3000";
function post(format: string, headers: Record<string, string>) {
  return new Request(`${SITE}/api/report/${modelVersionId}?format=${format}`, {
    method: "POST",
    headers: { host: "127.0.0.1:3000", ...headers },
  });
}

describe("[report export] GET has no side effect; POST is same-origin only", () => {
  it("GET answers 405 with Allow: POST and leaves the audit log and checkpoints as they were", async () => {
    const before = ledger();
    const res = reportExportGet();
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(await res.text()).toMatch(/takes a POST from this site/);
    expect(ledger()).toEqual(before);
  });

  it("a same-origin POST records the export and returns the tar bundle, or the preview HTML", async () => {
    const auditor = actorFor(app, "auditor");
    const before = ledger();
    const tar = await reportExportPost(
      app,
      post("tar", { origin: SITE, "sec-fetch-site": "same-origin" }),
      auditor,
      String(modelVersionId),
    );
    expect(tar.status).toBe(200);
    expect(tar.headers.get("content-disposition")).toMatch(/attachment; filename="report-http-v1-auditors-report\.tar"/);
    expect((await tar.arrayBuffer()).byteLength).toBeGreaterThan(1024);
    const html = await reportExportPost(app, post("html", { origin: SITE }), auditor, String(modelVersionId));
    expect(html.status).toBe(200);
    expect(html.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await html.text()).toContain("report-http");
    const after = ledger();
    expect(after.exports).toBe(before.exports + 2);
    expect(after.checkpoints).toBeGreaterThan(before.checkpoints);
    const last = app.db.select().from(auditEvents).where(eq(auditEvents.action, "audit.export")).all().at(-1)!;
    expect([last.actorId, last.actorName]).toEqual([auditor.id, auditor.name]);
  });

  it("a cross-site POST is refused and writes nothing; so is an anonymous one", async () => {
    const auditor = actorFor(app, "auditor");
    const before = ledger();
    const cases: [Record<string, string>, RegExp][] = [
      [{ origin: "https://evil.example", "sec-fetch-site": "cross-site" }, /cross-origin request refused \(Sec-Fetch-Site: cross-site\)/],
      [{ origin: "https://evil.example" }, /cross-origin request refused \(Origin https:\/\/evil\.example is not this server\)/],
      [{ origin: "null" }, /cross-origin request refused/],
      [{ "sec-fetch-site": "same-site" }, /cross-origin request refused \(Sec-Fetch-Site: same-site\)/],
    ];
    for (const [headers, message] of cases) {
      const res = await reportExportPost(app, post("tar", headers), auditor, String(modelVersionId));
      expect(res.status).toBe(403);
      expect(await res.text()).toMatch(message);
    }
    const anonymous = await reportExportPost(app, post("tar", { origin: SITE }), null, String(modelVersionId));
    expect(anonymous.status).toBe(401);
    const badFormat = await reportExportPost(app, post("pdf", { origin: SITE }), auditor, String(modelVersionId));
    expect([badFormat.status, await badFormat.text()]).toEqual([400, 'unknown format "pdf" (use tar or html)']);
    expect(ledger()).toEqual(before);
  });
});
