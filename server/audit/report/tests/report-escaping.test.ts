/**
 * The auditor's report escapes every free-text value, whoever typed it: a real database is seeded through the
 * services (tRPC callers and the upload route) with an XSS payload in every free-text field that reaches the
 * report: user display names, the uploaded dataset's name, origin and licence, a CSV column name and the class
 * labels, run names, launch, fork and note rationales, model card and datasheet bodies, signature comments, the
 * promotion rationale; and, as the operator adversary would, a run name rewritten in SQL. The exported report.html
 * must hold each value in its escaped form (proving the field reached the page) and never the raw payload; no tag
 * may carry an event-handler attribute, no link may leave the page, and the page must carry no script.
 *
 * A second check renders the facts of that real report with EVERY string in them (keys included) replaced by the
 * payload, so fields the services constrain today (model names, aliases, hashes) are covered too.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { and, eq } from "drizzle-orm";
import { checkpoints, runs, users } from "@/db/schema";
import { exportReportBundle } from "@/server/audit/report/export-bundle";
import type { ReportJson } from "@/server/audit/report/bundle-layout";
import { renderReportCharts } from "@/server/audit/report/render/report-charts";
import { renderReportHtml } from "@/server/audit/report/render/report-html";
import { handleDatasetUpload } from "@/server/http/dataset-upload";
import { DEMO_USERS } from "@/server/demo/seed";
import { createCaller } from "@/server/trpc/root";
import { actorOf } from "@/server/users/service";
import { createTestApp, type TestApp } from "@/server/tests/test-app";
import { uploadRequest } from "@/server/tests/upload-helpers";

/** An image tag with a handler, a break out of a double-quoted attribute into a script, a single-quoted attribute break (≤ 100 characters with a field name: user names are capped there). */
const PAYLOAD = `<img src=x onerror=alert(1)>"><script>alert(1)</script>'onmouseover='alert(1)`;
const payload = (field: string) => `${field}${PAYLOAD}`;
/** React's text and attribute escaping. */
const escapeHtml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#x27;");
const PASSWORD = "escaping-test-password";

const MODEL = "escaping-model";
let app: TestApp;
let tmp: string;
let modelVersionId: number;
let run1: number;

/** Free-text field → the value seeded into it. */
const fields = {
  engineerName: payload("Eve Engineer"),
  reviewerName: payload("Rob Reviewer"),
  datasetName: payload("dataset name"),
  datasetOrigin: payload("javascript:alert(1) "), // a URL-like field: must never become a link
  datasetLicence: payload("licence"),
  featureColumn: payload("feature column"),
  labelA: payload("class A"),
  labelB: payload("class B"),
  run1Name: payload("run one"),
  run1Rationale: payload("launch rationale"),
  run2Name: payload("run two"),
  forkRationale: payload("fork change rationale"),
  note: payload("decision note"),
  correction: payload("correction note"),
  modelCardBody: payload("model card body\nsecond line"),
  authorshipComment: payload("authorship comment"),
  reviewComment: payload("review comment"),
  datasheetBody: payload("datasheet body"),
  promotionRationale: payload("promotion rationale"),
  approvalComment: payload("approval comment"),
};

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A small two-class dataset whose feature column name and class labels are payloads. */
function payloadCsv(): string {
  const lines = [["x1", fields.featureColumn, "label"].map(csvField).join(",")];
  for (let i = 0; i < 60; i++) {
    const a = i % 2 === 0;
    lines.push(
      [
        ((a ? 1 : 3) + (i % 7) * 0.1).toFixed(2),
        ((a ? 2 : 0) + (i % 5) * 0.1).toFixed(2),
        csvField(a ? fields.labelA : fields.labelB),
      ].join(","),
    );
  }
  return lines.join("\n");
}

async function userWithPayloadName(name: string, role: "engineer" | "reviewer", email: string) {
  const created = await app.as("admin").users.create({ email, name, role });
  const row = () => app.db.select().from(users).where(eq(users.id, created.user.id)).get()!;
  await createCaller({ services: app, user: actorOf(row()), sessionToken: undefined }).auth.changePassword({
    currentPassword: created.temporaryPassword,
    newPassword: PASSWORD,
  });
  return { row: row(), caller: createCaller({ services: app, user: actorOf(row()), sessionToken: undefined }) };
}

function auditor() {
  return actorOf(app.db.select().from(users).where(eq(users.email, DEMO_USERS[3]!.email)).get()!);
}

function exportHtml(name: string): { html: string; dir: string } {
  const dir = path.join(tmp, name);
  exportReportBundle({ db: app.db, auditKeys: app.auditKeys }, auditor(), modelVersionId, dir);
  return { html: fs.readFileSync(path.join(dir, "report.html"), "utf8"), dir };
}

/** Nothing executable or navigable came through: no script, no img, no handler attribute, only in-page links. */
function expectInert(html: string) {
  expect(html).not.toContain(PAYLOAD);
  expect(html).not.toMatch(/<script/i);
  expect(html).not.toMatch(/<img/i);
  for (const [tag] of html.matchAll(/<[^>]*>/g)) expect(tag).not.toMatch(/\son[a-z]+\s*=/i);
  for (const [, href] of html.matchAll(/\shref="([^"]*)"/g)) expect(href).toMatch(/^#/);
  expect(html).not.toMatch(/(href|src)="?\s*javascript:/i);
}

beforeAll(async () => {
  app = createTestApp();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-report-escaping-"));
  const eve = await userWithPayloadName(fields.engineerName, "engineer", "eve@escaping.test");
  const rob = await userWithPayloadName(fields.reviewerName, "reviewer", "rob@escaping.test");

  const uploaded = await handleDatasetUpload(
    app,
    uploadRequest(payloadCsv(), {
      name: fields.datasetName,
      origin: fields.datasetOrigin,
      licence: fields.datasetLicence,
      labelColumn: "label",
      kind: "tabular",
    }),
    actorOf(eve.row),
  );
  const ds = (await uploaded.json()) as { id: number; error?: { message: string } };
  expect(uploaded.status, ds.error?.message).toBe(200);

  const config = {
    data: {
      dataset: { datasetId: String(ds.id) },
      labelColumn: "label",
      cleaning: [{ op: "dropMissing" as const, columns: [fields.featureColumn] }],
      normalization: "standard" as const,
      split: { strategy: "stratified" as const, train: 0.6, validation: 0.2, test: 0.2, seed: 3 },
    },
    model: { layers: [{ type: "dense" as const, units: 4, activation: "relu" as const }] },
    training: { optimizer: { name: "adam" as const }, learningRate: 0.05, batchSize: 16, epochs: 3, seed: 1 },
  };
  run1 = (await eve.caller.runs.create({ experimentId: app.experimentId, name: fields.run1Name, config, rationale: fields.run1Rationale }))
    .id;
  await app.orchestrator.waitFor(run1);
  const { id: run2 } = await eve.caller.runs.create({
    experimentId: app.experimentId,
    origin: "fork",
    parentRunId: run1,
    name: fields.run2Name,
    config: { ...config, training: { ...config.training, learningRate: 0.02 } },
    rationale: "fork",
    changeRationales: { "training.learningRate": fields.forkRationale },
  });
  await app.orchestrator.waitFor(run2);
  const note = await eve.caller.decisions.addNote({ runId: run2, rationale: fields.note });
  await eve.caller.decisions.addNote({ runId: run2, rationale: fields.correction, correctsDecisionId: note.id });

  const version = await eve.caller.models.register({ runId: run2, modelName: MODEL });
  modelVersionId = version.modelVersionId;
  const ck = app.db
    .select()
    .from(checkpoints)
    .where(and(eq(checkpoints.runId, run2), eq(checkpoints.isBest, true)))
    .get()!;
  await eve.caller.runs.evaluate({ runId: run2, checkpointId: ck.id }); // "requested by" the engineer

  const model = await eve.caller.models.get({ name: MODEL });
  const card = await eve.caller.documents.update({
    subjectType: "model",
    subjectId: model.id,
    section: "intended_use",
    body: fields.modelCardBody,
    baseVersion: 0,
  });
  await eve.caller.documents.sign({ documentId: card.id, meaning: "authorship", password: PASSWORD, comment: fields.authorshipComment });
  await rob.caller.documents.sign({ documentId: card.id, meaning: "review", password: PASSWORD, comment: fields.reviewComment });
  await eve.caller.documents.update({
    subjectType: "dataset",
    subjectId: ds.id,
    section: "data_collection",
    body: fields.datasheetBody,
    baseVersion: 0,
  });

  const request = await eve.caller.models.requestPromotion({
    modelName: MODEL,
    version: version.version,
    acknowledgeMissingDocumentation: true,
    rationale: fields.promotionRationale,
  });
  // Four eyes: the engineer's own approval is refused and recorded under their (payload) name.
  await expect(eve.caller.models.sign({ requestId: request.id, meaning: "approval", password: PASSWORD })).rejects.toThrow();
  const signed = await rob.caller.models.sign({
    requestId: request.id,
    meaning: "approval",
    password: PASSWORD,
    comment: fields.approvalComment,
  });
  expect(signed.status).toBe("approved");
}, 180_000);

afterAll(() => {
  app?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("auditor's report: free text is escaped by construction", () => {
  it("every seeded free-text field reaches report.html escaped, never raw; nothing executable or navigable", () => {
    const { html, dir } = exportHtml("seeded");
    expectInert(html);
    for (const [field, value] of Object.entries(fields)) {
      // As text or attribute (escaped), or inside a JSON value (recipe, class balance) whose quotes JSON escapes first.
      const asText = escapeHtml(value);
      const inJson = escapeHtml(JSON.stringify(value).slice(1, -1));
      expect(html.includes(asText) || html.includes(inJson), `${field} is not in the report in escaped form`).toBe(true);
      expect(html, `${field} reached the report unescaped`).not.toContain(value);
    }
    // The same bytes are what `export --verify` re-renders, and the charts are inert as well.
    for (const chart of fs.readdirSync(path.join(dir, "charts"))) expectInert(fs.readFileSync(path.join(dir, "charts", chart), "utf8"));
  });

  it("a name rewritten in SQL by the operator is printed escaped, with its failed content check escaped too", () => {
    const tampered = payload("tampered run name");
    app.db.update(runs).set({ name: tampered }).where(eq(runs.id, run1)).run();
    const { html } = exportHtml("tampered");
    expectInert(html);
    expect(html).toContain(escapeHtml(tampered));
    expect(html).toContain(`<span class="content bad">content check FAILED`);
  });

  it("every string of a real report's facts (values and keys) replaced by the payload renders inert", () => {
    const report = JSON.parse(fs.readFileSync(path.join(tmp, "seeded", "report.json"), "utf8")) as ReportJson;
    let replaced = 0;
    const poisonString = (v: string) => (replaced++, `${v}${PAYLOAD}`);
    /** Keys of these objects are data (class names, column names, metric names, recipe fields): poisoned too. */
    const DATA_KEYED = new Set([
      "classBalance",
      "stats",
      "metrics",
      "valuesImputed",
      "environment",
      "params",
      "recipe",
      "optimizer",
      "lrSchedule",
    ]);
    const poisonAll = (v: unknown): unknown =>
      typeof v === "string"
        ? poisonString(v)
        : Array.isArray(v)
          ? v.map(poisonAll)
          : v && typeof v === "object"
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [poisonString(k), poisonAll(x)]))
            : v;
    // Keys the renderer reads by name stay; every string value, and the keys of data-keyed objects, carry the payload.
    const poisonValues = (v: unknown): unknown => {
      if (typeof v === "string") return poisonString(v);
      if (Array.isArray(v)) return v.map(poisonValues);
      if (v && typeof v === "object")
        return Object.fromEntries(
          Object.entries(v).map(([k, x]) => [
            k,
            DATA_KEYED.has(k) && x && typeof x === "object" && !Array.isArray(x) ? poisonAll(x) : poisonValues(x),
          ]),
        );
      return v;
    };
    const facts = poisonValues(report.facts) as ReportJson["facts"];
    const integrity = poisonValues(report.integrity) as ReportJson["integrity"];
    const html = renderReportHtml(facts, integrity, renderReportCharts(facts), `${report.generatedAt}${PAYLOAD}`);
    expect(replaced).toBeGreaterThan(200);
    expectInert(html);
    expect(html).toContain(escapeHtml(`${MODEL}${PAYLOAD}`)); // the model name, which the registry does not let carry markup today
  });
});
