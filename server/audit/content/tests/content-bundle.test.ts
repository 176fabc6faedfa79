/**
 * Content verification in the auditor's bundle, end to end on a real trained app: the bundle carries facts.json and
 * the version's weights file; `export --verify` (verifyReportBundle) and verifyBundleContent check them against
 * events.jsonl; the report labels every record. A database tampered before export (test accuracy 1.0 → 0.42) gives
 * a report that says its content check FAILED for that evaluation, and a bundle whose verification fails; a bundle
 * whose facts.json or weights file is altered afterwards fails too.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { users } from "@/db/schema";
import { sha256Hex } from "@/contracts/canonical";
import { exportReportBundle } from "@/server/audit/report/export-bundle";
import type { ReportJson } from "@/server/audit/report/bundle-layout";
import { verifyReportBundle } from "@/server/audit/report/verify-report";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { FACTS_FILE, type FactsFile } from "../facts-file";
import { verifyBundleContent, type BundleEventRow } from "../verify-bundle-content";
import { buildContentFixture, type ContentFixture } from "./content-fixture";

let fx: ContentFixture;
let tmp: string;
beforeAll(async () => {
  fx = await buildContentFixture();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-content-bundle-"));
}, 180_000);
afterAll(() => {
  fx?.app.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const auditor = () => actorOf(fx.app.db.select().from(users).where(eq(users.email, DEMO_USERS[3]!.email)).get()!);
const exportTo = (name: string) =>
  exportReportBundle({ db: fx.app.db, auditKeys: fx.app.auditKeys }, auditor(), fx.bestVersionId, path.join(tmp, name)).dir;
const events = (dir: string): BundleEventRow[] =>
  fs
    .readFileSync(path.join(dir, "events.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as BundleEventRow);
const testEvaluationId = () =>
  (fx.app.db.$client.prepare("SELECT id FROM evaluations WHERE run_id = ? AND partition = 'test'").get(fx.runId) as { id: number }).id;

/** Rewrites a bundle file and its manifest entry (as a forger would), so only the ledger can tell. */
function forge(dir: string, rel: string, content: Buffer | string): void {
  fs.writeFileSync(path.join(dir, rel), content);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")) as {
    files: Record<string, { sha256: string; bytes: number }>;
  };
  const bytes = fs.readFileSync(path.join(dir, rel));
  manifest.files[rel] = { sha256: sha256Hex(bytes), bytes: bytes.length };
  fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
}

describe("content verification in the auditor's bundle", () => {
  let clean: string;
  beforeAll(() => {
    clean = exportTo("clean");
  });

  it("carries facts.json with the printed records and their events, and the weights file", () => {
    const facts = JSON.parse(fs.readFileSync(path.join(clean, FACTS_FILE), "utf8")) as FactsFile;
    expect(facts.records.modelVersion?.map((r) => r.row.id)).toContain(fx.bestVersionId);
    expect(facts.records.evaluation?.length).toBeGreaterThan(0);
    expect(facts.records.run?.[0]?.row.configJson).toContain('"learningRate":0.02');
    for (const list of Object.values(facts.records)) for (const r of list ?? []) expect(r.seq).toBeGreaterThan(0);
    expect(facts.weights.file).toBe(`artifacts/${facts.weights.sha256}`);
    expect(sha256Hex(fs.readFileSync(path.join(clean, facts.weights.file!)))).toBe(facts.weights.sha256);
    expect(Object.keys(facts.metrics)).toContain(String(fx.runId));
  });

  it("verifies: facts.json matches the ledger, the report prints it, each record is labelled", async () => {
    const level = verifyBundleContent(clean, events(clean));
    expect(level.problems).toEqual([]);
    expect(level.ok).toBe(true);
    expect(level.checked).toBeGreaterThan(50);
    const r = await verifyReportBundle(clean, { publicKeyPem: fx.app.auditKeys.publicKeyPem });
    expect(r.problems).toEqual([]);
    expect(r.checked.some((c) => c.startsWith("content intact:"))).toBe(true);
    expect(r.checked.some((c) => c.startsWith("the report prints exactly the records of facts.json"))).toBe(true);
    const html = fs.readFileSync(path.join(clean, "report.html"), "utf8");
    expect(html).toContain("content check: intact");
    expect(html).toContain(`<span class="content ok">checked against the ledger`);
    expect(html).not.toContain("content check FAILED:");
  });

  it("a database tampered before export (test accuracy 1.0 → 0.42): the report says the content check FAILED for that evaluation", async () => {
    const id = testEvaluationId();
    const sqlite = fx.app.db.$client;
    const before = (sqlite.prepare("SELECT metrics_json FROM evaluations WHERE id = ?").get(id) as { metrics_json: string }).metrics_json;
    sqlite.prepare("UPDATE evaluations SET metrics_json = json_set(metrics_json, '$.accuracy', 0.42) WHERE id = ?").run(id);
    let dir: string;
    try {
      dir = exportTo("tampered-db");
    } finally {
      sqlite.prepare("UPDATE evaluations SET metrics_json = ? WHERE id = ?").run(before, id);
    }
    const report = JSON.parse(fs.readFileSync(path.join(dir, "report.json"), "utf8")) as ReportJson;
    expect(report.facts.content?.ok).toBe(false);
    expect(report.facts.content?.entities[`evaluation:${id}`]?.status).toBe("failed");
    const html = fs.readFileSync(path.join(dir, "report.html"), "utf8");
    const section = html.slice(html.indexOf(`Evaluation #${id} on the test partition`));
    expect(section).toMatch(/^[^<]*<span class="ref">[^]*?<span class="content bad">content check FAILED: evaluation \d+: metrics/);
    expect(html).toContain("42.0 %");
    const r = await verifyReportBundle(dir, { publicKeyPem: fx.app.auditKeys.publicKeyPem });
    expect(r.ok).toBe(false);
    expect(
      r.problems.some((p) =>
        p.startsWith(
          `content check failed for evaluation ${id}: evaluation ${id}: metrics (incl. confusion matrix) does not match the ledger`,
        ),
      ),
    ).toBe(true);
  });

  it("a bundle altered after export: facts.json edited, weights file replaced", async () => {
    const dir = exportTo("forged");
    const facts = JSON.parse(fs.readFileSync(path.join(dir, FACTS_FILE), "utf8")) as FactsFile;
    const ev = facts.records.evaluation![0]!;
    ev.row.metricsJson = ev.row.metricsJson.replace(/"accuracy":[\d.e-]+/, '"accuracy":1');
    forge(dir, FACTS_FILE, JSON.stringify(facts) + "\n");
    forge(dir, facts.weights.file!, Buffer.from("other weights"));
    const level = verifyBundleContent(dir, events(dir));
    expect(level.ok).toBe(false);
    expect(
      level.problems.some((p) => p.entityType === "modelVersion" && p.field === "weights file" && p.recorded === facts.weights.sha256),
    ).toBe(true);
    const r = await verifyReportBundle(dir, { publicKeyPem: fx.app.auditKeys.publicKeyPem });
    expect(r.ok).toBe(false);
    expect(r.problems).toContain("facts.json is not the one the export recorded (edited?)");
    expect(r.problems.some((p) => p.startsWith(`content check failed for evaluation ${ev.row.id}`))).toBe(true);
    expect(r.problems.some((p) => p.startsWith(`the report prints evaluation ${ev.row.id} as`))).toBe(true);
  });
});
