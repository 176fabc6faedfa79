/**
 * The auditor's report end to end on a real database: two trained versions (v1 then v2 in production, with a
 * decision on the forked run), a signed model card and datasheet, then an auditor exports the bundle. Checks the
 * report's content (weights hash, decisions, approvals, datasheet, changes since the previous production version,
 * SVG curves), that the bundle verifies on its own (ledger + report binding + proofs), and that tampering is caught.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { auditEvents, datasets } from "@/db/schema";
import { verifyBundle } from "@/server/audit/bundle";
import { exportReportBundle, exportReportTo, resolveModelVersion } from "@/server/audit/report/export-bundle";
import type { ReportJson } from "@/server/audit/report/bundle-layout";
import { untarInto } from "@/server/audit/report/tar";
import { verifyReportBundle } from "@/server/audit/report/verify-report";
import { provLineageProblems } from "@/server/audit/report/verify-bundle.mjs";
import { exportCommand } from "@/server/cli/export";
import { actorOf } from "@/server/users/service";
import { DEMO_USERS } from "@/server/demo/seed";
import { users } from "@/db/schema";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

const MODEL = "iris-report";
let app: TestApp;
let tmp: string;
let v2Id: number;
let v2Weights: string;
let bundle: string;

async function train(config = irisConfig(), rationale = "baseline") {
  const { id } = await app.as("engineer").runs.create({ experimentId: app.experimentId, config, rationale });
  await app.orchestrator.waitFor(id);
  return id;
}

async function promote(version: number) {
  const req = await app.as("engineer").models.requestPromotion({
    modelName: MODEL,
    version,
    acknowledgeMissingDocumentation: true,
    rationale: `v${version}: good test accuracy`,
  });
  const signed = await app
    .as("reviewer")
    .models.sign({ requestId: req.id, meaning: "approval", password: DEMO_USERS[2]!.password, comment: "confusion matrix checked" });
  expect(signed.status).toBe("approved");
}

const auditor = () => actorOf(app.db.select().from(users).where(eq(users.email, DEMO_USERS[3]!.email)).get()!);

beforeAll(async () => {
  app = createTestApp();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-report-test-"));
  const run1 = await train(irisConfig({ epochs: 4 }));
  await app.as("engineer").models.register({ runId: run1, modelName: MODEL });
  await promote(1);
  // v2: a fork with a changed learning rate; the change is a decision with its rationale.
  const parent = await app.as("engineer").runs.get({ id: run1 });
  const { id: run2 } = await app.as("engineer").runs.create({
    experimentId: app.experimentId,
    origin: "fork",
    parentRunId: run1,
    config: { ...parent.config, training: { ...parent.config.training, learningRate: 0.01 } },
    rationale: "lower the learning rate: validation loss oscillates",
  });
  await app.orchestrator.waitFor(run2);
  // Renamed after launch (run.annotate): the bundle's verifiers judge the name by the latest rename.
  await app.as("engineer").runs.annotate({ runId: run2, name: "iris lower lr", description: "fork with lr 0.01" });
  const v2 = await app.as("engineer").models.register({ runId: run2, modelName: MODEL });
  v2Id = v2.modelVersionId;
  v2Weights = v2.weightsSha256;
  await promote(2);

  // Model card and datasheet, written and signed.
  const model = await app.as("engineer").models.get({ name: MODEL });
  const doc = await app.as("engineer").documents.update({
    subjectType: "model",
    subjectId: model.id,
    section: "intended_use",
    body: "Classifies iris flowers from four measurements. Teaching use only.",
    baseVersion: 0,
  });
  await app.as("engineer").documents.sign({ documentId: doc.id, meaning: "authorship", password: DEMO_USERS[1]!.password });
  await app
    .as("reviewer")
    .documents.sign({ documentId: doc.id, meaning: "review", password: DEMO_USERS[2]!.password, comment: "scope is clear" });
  const ds = app.db.select().from(datasets).get()!;
  await app.as("engineer").documents.update({
    subjectType: "dataset",
    subjectId: ds.id,
    section: "data_collection",
    body: "Fisher's 1936 measurements, 50 flowers per species.",
    baseVersion: 0,
  });

  bundle = path.join(tmp, "bundle");
  exportReportBundle({ db: app.db, auditKeys: app.auditKeys }, auditor(), v2Id, bundle);
}, 120_000);
afterAll(() => {
  app?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("auditor's report content", () => {
  it("follows Annex IV's order and shows identity, model card, decisions, datasheet, training, evaluation, approvals, changes and integrity", () => {
    const html = fs.readFileSync(path.join(bundle, "report.html"), "utf8");
    const order = [
      "1. General description",
      "2. Intended purpose",
      "3. Design choices",
      "4. Data",
      "5. Training procedure",
      "6. Evaluation",
      "7. Approvals and signatures",
      "8. Changes since",
      "Appendix: integrity",
    ].map((h) => html.indexOf(h));
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(html).toContain(v2Weights);
    expect(html).toContain("lower the learning rate: validation loss oscillates");
    expect(html).toMatch(/Approved by Rui Reviewer on \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ — meaning: approval/);
    expect(html).toContain("Classifies iris flowers from four measurements.");
    expect(html).toMatch(/Authored by Erin Engineer/);
    expect(html).toMatch(/Reviewed by Rui Reviewer/);
    expect(html).toContain("Fisher&#x27;s 1936 measurements"); // React escapes ' as &#x27;
    const ds = app.db.select().from(datasets).get()!;
    expect(html).toContain(ds.sha256);
    expect(html).toContain("Split manifest");
    expect(html).toContain("Label encoding (output index → class): 0 → setosa, 1 → versicolor, 2 → virginica");
    const stats = html.slice(html.indexOf("Normalisation statistics (standard, fitted on the train partition)"));
    expect(stats.length).toBeLessThan(html.length);
    expect(stats.indexOf("sepal_length")).toBeLessThan(stats.indexOf("petal_length")); // file order, not sorted by name
    expect(html).toContain("Confusion matrix");
    expect(html).toContain("Previous production version: <strong>version 1</strong>");
    expect(html).toMatch(/training\.learningRate.*0\.03.*0\.01/s);
    expect(html).toContain(app.auditKeys.fingerprint);
    expect(html).toContain("<svg");
    expect(html).not.toContain("<script");
  });

  it("renders training curves as standalone SVG files from the metric points", () => {
    const charts = fs.readdirSync(path.join(bundle, "charts"));
    expect(charts.some((f) => f.endsWith("-loss.svg"))).toBe(true);
    const svg = fs.readFileSync(
      path.join(
        bundle,
        "charts",
        charts.find((f) => f.endsWith("-loss.svg"))!,
      ),
      "utf8",
    );
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toMatch(/<path d="M[\d.]+ [\d.]+ L/);
    expect(svg).toContain("val_loss");
  });

  it("cites the ledger events behind its facts with inclusion proofs against a fresh signed checkpoint", () => {
    const r = JSON.parse(fs.readFileSync(path.join(bundle, "report.json"), "utf8")) as ReportJson;
    const actions = new Set(r.facts.citedEvents.map((e) => e.action));
    for (const a of [
      "modelVersion.create",
      "run.create",
      "run.complete",
      "evaluation.create",
      "promotion.request",
      "signature.create",
      "alias.move",
      "document.update",
    ])
      expect(actions).toContain(a);
    expect(r.integrity.proofs.length).toBe(r.facts.citedEvents.length + 1);
    expect(r.integrity.checkpoint.treeSize).toBeGreaterThanOrEqual(r.integrity.exportEventSeq);
    const exportEvent = app.db.select().from(auditEvents).where(eq(auditEvents.seq, r.integrity.exportEventSeq)).get()!;
    expect(exportEvent).toMatchObject({ action: "audit.export", actorName: "Alex Auditor", role: "auditor" });
  });
});

describe("bundle verification", () => {
  it("the bundle verifies on its own with the core verifier and the report verifier", async () => {
    const ledger = await verifyBundle(bundle);
    expect(ledger.problem).toBeNull();
    expect(ledger.ok).toBe(true);
    const full = await verifyReportBundle(bundle, { publicKeyPem: app.auditKeys.publicKeyPem });
    expect(full.problems).toEqual([]);
    expect(full.ok).toBe(true);
  });

  it("detects an edited report page, edited report data and an edited event", async () => {
    const copy = (name: string) => {
      const d = path.join(tmp, name);
      fs.cpSync(bundle, d, { recursive: true });
      return d;
    };
    const page = copy("page");
    const html = path.join(page, "report.html");
    fs.writeFileSync(html, fs.readFileSync(html, "utf8").replace("Rui Reviewer", "Someone Else"));
    expect((await verifyReportBundle(page)).problems.join("\n")).toMatch(/report\.html is not what report\.json renders to/);

    const data = copy("data");
    const jsonFile = path.join(data, "report.json");
    fs.writeFileSync(jsonFile, fs.readFileSync(jsonFile, "utf8").replace(v2Weights, "0".repeat(64)));
    expect((await verifyReportBundle(data)).problems.join("\n")).toMatch(/facts do not match the sha256 recorded at export/);

    const events = copy("events");
    const ev = path.join(events, "events.jsonl");
    const lines = fs.readFileSync(ev, "utf8").split("\n");
    lines[2] = lines[2]!.replace(/"actorName":"[^"]*"/, '"actorName":"Mallory"');
    fs.writeFileSync(ev, lines.join("\n"));
    const r = await verifyReportBundle(events);
    expect(r.ok).toBe(false);
    expect(r.ledger.firstBadSeq).toBe(3);
  });

  it("checks the PROV document against the recorded lineage: a contradicting or incomplete lineage fails both verifiers", async () => {
    type Prov = Record<
      "entity" | "activity" | "agent" | "used" | "wasGeneratedBy" | "wasDerivedFrom" | "wasAttributedTo",
      Record<string, Record<string, unknown>>
    >;
    const provFile = (dir: string) => path.join(dir, "lineage.prov.json");
    const genuine = JSON.parse(fs.readFileSync(provFile(bundle), "utf8")) as Prov;
    const facts = JSON.parse(fs.readFileSync(path.join(bundle, "facts.json"), "utf8")) as unknown;
    // The rich bundle (a fork with a decision, two reviewers' signatures, promotion, alias move) has every shape.
    const clean = provLineageProblems(genuine, facts);
    expect(clean.problems).toEqual([]);
    expect(clean.checked).toBeGreaterThan(60);
    for (const kind of ["rl:promotionRequest-", "rl:signature-", "rl:decision-", "rl:config-"])
      expect(
        Object.keys(genuine.entity).some((id) => id.startsWith(kind)),
        kind,
      ).toBe(true);

    const change = Object.entries(genuine.entity).find(([, e]) => e["runledger:kind"] === "change")![0];
    const reviewer = app.db.select().from(users).where(eq(users.email, DEMO_USERS[2]!.email)).get()!;
    const forgeries: [string, (p: Prov) => void, RegExp][] = [
      [
        "the fork's decision left out",
        (p) => {
          delete p.entity[change];
          for (const rel of ["wasDerivedFrom", "wasAttributedTo"] as const)
            for (const [k, r] of Object.entries(p[rel])) if (Object.values(r).includes(change)) delete p[rel][k];
        },
        new RegExp(`lineage\\.prov\\.json leaves out ${change} \\(a decision on run \\d+\\)`),
      ],
      [
        "the decision attributed to the approving reviewer",
        (p) => {
          for (const r of Object.values(p.wasAttributedTo)) if (r["prov:entity"] === change) r["prov:agent"] = `rl:user-${reviewer.id}`;
        },
        new RegExp(`states wasAttributedTo ${change} → rl:user-${reviewer.id}, which the recorded records contradict`),
      ],
      [
        "another checkpoint hash",
        (p) => {
          const ck = Object.keys(p.entity).find((id) => id.startsWith("rl:checkpoint-"))!;
          p.entity[ck]!["runledger:sha256"] = "0".repeat(64);
        },
        /gives rl:checkpoint-\d+ runledger:sha256 "0{64}", but the recorded checkpoint \d+ has sha256 "[0-9a-f]{64}"/,
      ],
      [
        "the fork no longer derived from its parent",
        (p) => {
          for (const [k, r] of Object.entries(p.wasDerivedFrom))
            if (String(r["prov:generatedEntity"]).startsWith("rl:config-") && String(r["prov:usedEntity"]).startsWith("rl:config-"))
              delete p.wasDerivedFrom[k];
        },
        /does not state wasDerivedFrom rl:config-\d+ → rl:config-\d+ \(the run it was forked or fine-tuned from\)/,
      ],
    ];
    for (const [name, forge, message] of forgeries) {
      const forged = structuredClone(genuine);
      forge(forged);
      expect(
        provLineageProblems(forged, facts)
          .problems.map((p) => p.message)
          .join("\n"),
        name,
      ).toMatch(message);
      // audit verify --bundle (the TypeScript verifier) runs the same check on the bundle's files.
      const dir = path.join(tmp, `prov-${forgeries.findIndex((f) => f[0] === name)}`);
      fs.cpSync(bundle, dir, { recursive: true });
      fs.writeFileSync(provFile(dir), JSON.stringify(forged));
      const r = await verifyBundle(dir);
      expect(r.ok, name).toBe(false);
      expect(r.levels.content.problems.map((p) => p.message).join("\n"), name).toMatch(message);
    }
  });

  it("exports by alias to a .tar that unpacks to a verifiable folder; the CLI verifies it", async () => {
    const target = resolveModelVersion(app.db, MODEL, { alias: "production" });
    expect(target.modelVersionId).toBe(v2Id);
    const tarPath = path.join(tmp, "out", "prod-report.tar");
    const r = exportReportTo({ db: app.db, auditKeys: app.auditKeys }, auditor(), target.modelVersionId, tarPath);
    expect(r.kind).toBe("tar");
    const listing = execFileSync("tar", ["tf", tarPath], { encoding: "utf8" });
    expect(listing).toContain("prod-report/report.html");
    const unpacked = path.join(tmp, "unpacked");
    untarInto(fs.readFileSync(tarPath), unpacked);
    expect((await verifyReportBundle(unpacked)).ok).toBe(true);
    // The system tar reads it too.
    const sys = path.join(tmp, "sys");
    fs.mkdirSync(sys);
    execFileSync("tar", ["xf", tarPath, "-C", sys]);
    expect((await verifyBundle(path.join(sys, "prod-report"))).ok).toBe(true);
  });

  it("the CLI exports by alias (npm run cli -- export) and verifies the result, and refuses bad usage", async () => {
    const out: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: (t: string) => void out.push(t) };
    const dir = path.join(tmp, "cli-bundle");
    expect(
      await exportCommand(
        ["--model", MODEL, "--alias", "production", "--out", dir, "--data-dir", app.dataDir, "--key-dir", app.keyDir],
        io,
      ),
    ).toBe(0);
    expect(out.join("")).toContain(`Wrote the auditor's report of ${MODEL} v2 (weights ${v2Weights})`);
    expect(await exportCommand(["--verify", dir], io)).toBe(0);
    expect(out.join("")).toContain("VERIFIED");
    expect(await exportCommand(["--model", MODEL, "--version", "1", "--alias", "production", "--out", dir], io)).toBe(2);
    expect(await exportCommand(["--model", MODEL, "--out", dir, "--data-dir", app.dataDir, "--key-dir", app.keyDir], io)).toBe(1); // not empty
    expect(out.join("")).toContain("is not empty");
  });
});
