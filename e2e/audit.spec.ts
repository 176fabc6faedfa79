import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { test, expect, type Page } from "@playwright/test";
import { createExperiment, DEMO, signIn, trpcCall, unique } from "./helpers";

async function call<T>(page: Page, kind: "query" | "mutation", proc: string, input: unknown): Promise<T> {
  const res = await trpcCall(page, kind, proc, input);
  expect(res.status(), `${proc}: ${await res.text()}`).toBe(200);
  return ((await res.json()) as { result: { data: T } }).result.data;
}

async function switchUser(page: Page, who: keyof typeof DEMO) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/signin/);
  await signIn(page, who);
}

test("[AUDIT]: an auditor browses the ledger, verifies it, and exports the production model's report, which verifies on its own", async ({
  page,
}) => {
  const model = unique("e2e-audit").replace(/\s+/g, "-");
  const rationale = unique("e2e audit: narrower hidden layer to reduce overfitting");

  // Seed the production model through tRPC with each role's cookie: the engineer trains, registers, writes the model card and requests.
  await signIn(page, "engineer");
  await createExperiment(page, unique("e2e audit"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const config = {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 4 },
    },
    model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 5, seed: 3 },
  };
  const run = await call<{ id: number }>(page, "mutation", "runs.create", { experimentId, config, rationale });
  await expect
    .poll(async () => (await call<{ status: string }>(page, "query", "runs.get", { id: run.id })).status, { timeout: 90_000 })
    .toBe("completed");
  const version = await call<{ modelId: number; modelVersionId: number; weightsSha256: string }>(page, "mutation", "models.register", {
    runId: run.id,
    modelName: model,
  });
  const card = await call<{ id: number }>(page, "mutation", "documents.update", {
    subjectType: "model",
    subjectId: version.modelId,
    section: "intended_use",
    body: "e2e: classifies iris species for teaching",
    baseVersion: 0,
  });
  await call(page, "mutation", "documents.sign", { documentId: card.id, meaning: "authorship", password: DEMO.engineer.password });
  const request = await call<{ id: number }>(page, "mutation", "models.requestPromotion", {
    modelName: model,
    version: 1,
    acknowledgeMissingDocumentation: true,
    rationale: "e2e: ready for production",
  });

  // The reviewer approves; production moves.
  await switchUser(page, "reviewer");
  const signed = await call<{ status: string }>(page, "mutation", "models.sign", {
    requestId: request.id,
    meaning: "approval",
    password: DEMO.reviewer.password,
    comment: "e2e: checked",
  });
  expect(signed.status).toBe("approved");

  // The auditor: read-only, but can browse, verify and export.
  await switchUser(page, "auditor");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit" }).click();
  await expect(page.getByRole("heading", { name: "Audit ledger" })).toBeVisible();
  await expect(page.getByTestId("key-fingerprint")).toHaveText(/^SHA256:[0-9a-f]{64}$/);

  // The test witness (playwright.config.ts) cosigns the checkpoint signed at the approval; wait until it has.
  await expect
    .poll(
      async () =>
        (await call<{ cosignatures: { verified: boolean | null }[] }>(page, "query", "witnesses.overview", {})).cosignatures.some(
          (c) => c.verified,
        ),
      { timeout: 60_000 },
    )
    .toBe(true);

  // "Verify now" starts a background job and returns at once: the page shows its progress, then the recorded result per level.
  const verification = page.getByRole("region", { name: "Verification", exact: true });
  await expect(verification).toContainText("the server's current public key");
  await verification.getByRole("button", { name: "Verify now" }).click();
  const progress = verification.getByRole("progressbar", { name: "Verification progress" });
  await expect(progress).toBeVisible();
  await expect(progress).toHaveCount(0, { timeout: 60_000 });
  const result = verification.getByRole("status", { name: "Last verification result" });
  await expect(result).toHaveAttribute("data-ok", "true");
  await expect(result).toContainText("Intact");
  await expect(result).toContainText("by Alex Auditor");
  const levels = result.getByRole("table", { name: "Verification levels" });
  await expect(levels.getByRole("row", { name: "Chain", exact: true })).toContainText("Chain intact");
  await expect(levels.getByRole("row", { name: "Content", exact: true })).toContainText("Content intact");
  await expect(levels.getByRole("row", { name: "Content", exact: true })).toContainText(
    /\d+ recorded facts .* re-derived from the tables and files/,
  );
  // Anchored by the witness's cosignature, stated with the tree size it covers.
  await expect(levels.getByRole("row", { name: "Anchor", exact: true })).toContainText(
    /Anchored up to tree size \d+ by witness e2e\.witness\/w1 \(tree size \d+\): history up to there cannot have been rewritten or truncated unseen\./,
  );
  await expect(levels.getByRole("row", { name: "Triggers", exact: true })).toContainText("Triggers intact");
  await expect(verification.getByRole("button", { name: "Verify now" })).toBeEnabled();

  // Filter the events: the alias move to production is there.
  const filters = page.getByRole("form", { name: "Event filters" });
  await filters.getByLabel("Filter by action").selectOption("alias.move");
  await filters.getByRole("button", { name: "Apply filters" }).click();
  const events = page.getByRole("table", { name: "Audit events" });
  await expect(events.getByRole("row").filter({ hasText: model }).first()).toContainText("alias.move");
  await events.getByRole("row").filter({ hasText: model }).first().getByRole("button", { name: "Proof" }).click();
  await expect(page.getByRole("complementary", { name: /Inclusion proof of event/ })).toContainText("Verified");

  // The server refuses an auditor's change.
  const refused = await trpcCall(page, "mutation", "documents.update", {
    subjectType: "model",
    subjectId: version.modelId,
    section: "limitations",
    body: "auditor edit",
    baseVersion: 0,
  });
  expect(refused.status()).toBe(403);

  // Open the production model's report: no edit controls for an auditor; the preview shows hash, decisions and approvals.
  await page
    .getByRole("table", { name: "Report targets" })
    .getByRole("link", { name: `Open report of ${model} v1` })
    .click();
  await expect(page.getByRole("heading", { name: `Auditor's report: ${model} v1` })).toBeVisible();
  const modelCard = page.getByRole("region", { name: "Model card" });
  await expect(modelCard).toContainText("e2e: classifies iris species for teaching");
  await expect(modelCard).toContainText("Authored by Erin Engineer");
  await expect(modelCard.getByRole("button", { name: /Edit|Write/ })).toHaveCount(0);
  await page.getByRole("button", { name: "Preview report" }).click();
  const report = page.frameLocator('iframe[title="Auditor\'s report preview"]');
  await expect(report.locator("code.weights")).toHaveText(version.weightsSha256);
  await expect(report.locator("#design")).toContainText(rationale);
  await expect(report.locator("#approvals")).toContainText(
    /Approved by Rui Reviewer on \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ — meaning: approval/,
  );
  await expect(report.locator("#approvals")).toContainText("e2e: ready for production");
  await expect(report.locator("#identity")).toContainText("production");
  await expect(report.locator("#training svg").first()).toBeVisible();

  // Download the bundle; it unpacks and verifies with the CLI on the bundle alone.
  const downloadPromise = page.waitForEvent("download");
  await page.getByRole("button", { name: "Download bundle (.tar)" }).click();
  const download = await downloadPromise;
  expect(download.suggestedFilename()).toMatch(/-v1-auditors-report\.tar$/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-bundle-"));
  try {
    const tarFile = path.join(dir, download.suggestedFilename());
    await download.saveAs(tarFile);
    execFileSync("tar", ["xf", tarFile, "-C", dir]);
    const bundle = path.join(dir, download.suggestedFilename().replace(/\.tar$/, ""));
    expect(fs.readFileSync(path.join(bundle, "report.html"), "utf8")).toContain(version.weightsSha256);
    const out = execFileSync("npx", ["tsx", "server/cli/main.ts", "audit", "verify", "--bundle", bundle], { encoding: "utf8" });
    expect(out).toContain("INTACT");
    const full = execFileSync("npx", ["tsx", "server/cli/main.ts", "export", "--verify", bundle], { encoding: "utf8" });
    expect(full).toContain("VERIFIED");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
