/**
 * Report export in the browser (no side effects on GET): the preview and the download are same-origin form
 * POSTs that record an export each; a GET of the report URL exports nothing (405) and a cross-site POST is refused,
 * both leaving the ledger's export count unchanged.
 */
import { test, expect, type Page } from "@playwright/test";
import { createExperiment, signIn, trpcCall, unique } from "./helpers";

async function call<T>(page: Page, kind: "query" | "mutation", proc: string, input: unknown): Promise<T> {
  const res = await trpcCall(page, kind, proc, input);
  expect(res.status(), `${proc}: ${await res.text()}`).toBe(200);
  return ((await res.json()) as { result: { data: T } }).result.data;
}

async function exportCount(page: Page, modelVersionId: number): Promise<number> {
  const r = await call<{ events: unknown[] }>(page, "query", "audit.events", {
    action: "audit.export",
    entityType: "modelVersion",
    entityId: String(modelVersionId),
    limit: 500,
  });
  return r.events.length;
}

test("[AUDIT]: the report preview and download are recorded POSTs; a GET or a cross-site POST exports nothing", async ({
  page,
  baseURL,
}) => {
  await signIn(page, "engineer");
  await createExperiment(page, unique("e2e export"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const config = {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 4 },
    },
    model: { layers: [{ type: "dense", units: 6, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 2, seed: 3 },
  };
  const run = await call<{ id: number }>(page, "mutation", "runs.create", { experimentId, config, rationale: "e2e export" });
  await expect
    .poll(async () => (await call<{ status: string }>(page, "query", "runs.get", { id: run.id })).status, { timeout: 90_000 })
    .toBe("completed");
  const model = unique("e2e-export").replace(/\s+/g, "-");
  const version = await call<{ modelVersionId: number; weightsSha256: string }>(page, "mutation", "models.register", {
    runId: run.id,
    modelName: model,
  });

  const before = await exportCount(page, version.modelVersionId);
  // A link elsewhere (a plain GET with the session cookie) records nothing.
  const get = await page.request.get(`/api/report/${version.modelVersionId}?format=tar`);
  expect(get.status()).toBe(405);
  // A cross-site form post riding the cookie is refused.
  const crossSite = await page.request.post(`/api/report/${version.modelVersionId}?format=tar`, {
    headers: { origin: "https://evil.example" },
  });
  expect(crossSite.status()).toBe(403);
  expect(await crossSite.text()).toContain("cross-origin request refused");
  expect(await exportCount(page, version.modelVersionId)).toBe(before);

  await page.goto(`/report/${version.modelVersionId}`);
  // The page tells the auditor to run the bundle's own verifier (Node alone), not a command needing Runledger's source.
  await expect(page.getByText(/Unpack it and run node verify-bundle\.mjs in it: Node alone/)).toBeVisible();
  await page.getByRole("button", { name: "Preview report" }).click();
  const report = page.frameLocator('iframe[title="Auditor\'s report preview"]');
  await expect(report.locator("code.weights")).toHaveText(version.weightsSha256);
  await expect(page.getByRole("button", { name: "Refresh preview" })).toBeVisible();
  await expect.poll(() => exportCount(page, version.modelVersionId)).toBe(before + 1);

  const downloadPromise = page.waitForEvent("download");
  await page.getByRole("button", { name: "Download bundle (.tar)" }).click();
  const download = await downloadPromise;
  expect(download.suggestedFilename()).toBe(`${model}-v1-auditors-report.tar`);
  await expect.poll(() => exportCount(page, version.modelVersionId)).toBe(before + 2);
  expect(baseURL).toMatch(/^http:\/\/127\.0\.0\.1:/);
});
