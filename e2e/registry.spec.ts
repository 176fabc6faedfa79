import fs from "node:fs";
import { test, expect, type Page } from "@playwright/test";
import { createExperiment, DEMO, signIn, trpcCall, trpcMutate, unique } from "./helpers";

async function seedCompletedRun(page: Page) {
  await createExperiment(page, unique("e2e registry"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const config = {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 5 },
    },
    model: { layers: [{ type: "dense", units: 10, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 5, seed: 2 },
  };
  const res = await trpcCall(page, "mutation", "runs.create", { experimentId, config, rationale: "e2e: candidate for production" });
  expect(res.status()).toBe(200);
  const id = ((await res.json()) as { result: { data: { id: number } } }).result.data.id;
  await page.goto(`/runs/${id}`);
  await expect(page.locator("[data-status]").first()).toHaveAttribute("data-status", "completed", { timeout: 90_000 });
  return id;
}

async function switchUser(page: Page, who: keyof typeof DEMO) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/signin/);
  await signIn(page, who);
}

test("[REGISTRY]: register, request production, refused self-approval, approval by another reviewer, alias moved, lineage and production timeline", async ({
  page,
}) => {
  const model = unique("e2e-model").replace(/\s+/g, "-");
  await signIn(page, "engineer");
  const runId = await seedCompletedRun(page);

  // Register the best checkpoint from the run page.
  const register = page.getByRole("region", { name: "Register as model version" });
  await register.getByLabel("Model name").fill(model);
  await register.getByRole("button", { name: "Register version" }).click();
  await expect(page.getByRole("heading", { name: model })).toBeVisible();
  const versions = page.getByRole("table", { name: "Model versions" });
  await expect(versions.getByRole("row")).toHaveCount(2);
  await expect(versions).toContainText(`run #${runId}`);

  // Request production, citing the test evaluation.
  await versions.getByRole("button", { name: "Request production" }).click();
  await page.getByLabel("Promotion rationale").fill("e2e: good test accuracy on the pilot data");
  // The new model's card is not written yet: requesting anyway needs the acknowledgement (promotion-documentation.spec.ts).
  await page.getByRole("checkbox", { name: /^Request production with \d+ sections? missing/ }).check();
  await page.getByRole("button", { name: "Submit promotion request" }).click();
  const request = page.getByRole("article", { name: /Promotion request #\d+/ });
  await expect(request).toHaveAttribute("data-status", "pending");
  const requestId = Number(/#(\d+)/.exec((await request.getAttribute("aria-label"))!)![1]);
  // While it is pending, the version links to it and offers no second request (the server would refuse it).
  const v1 = versions.getByRole("row").filter({ hasText: `run #${runId}` });
  await expect(v1.getByRole("button", { name: "Request production" })).toHaveCount(0);
  await expect(v1.getByRole("link", { name: `production request #${requestId} pending` })).toHaveAttribute("href", `#request-${requestId}`);

  // The requester's own approval is refused by the server, and the refusal is recorded and shown.
  const self = await trpcCall(page, "mutation", "models.sign", { requestId, meaning: "approval", password: DEMO.engineer.password });
  expect(self.status()).toBe(403);
  expect(await self.text()).toContain("requested this promotion");
  await page.reload();
  await expect(page.getByRole("note", { name: "Refused self-approvals" })).toContainText("Erin Engineer");
  await expect(page.getByRole("table", { name: "production timeline" })).toHaveCount(0);

  // Lineage graph of v1: plain labels, node details, PROV-JSON export.
  await versions.getByRole("link", { name: "Lineage" }).click();
  const graph = page.getByRole("region", { name: "Lineage graph" });
  await expect(graph.getByRole("button", { name: /^Model version: / })).toBeVisible();
  await graph.getByRole("button", { name: /fit view/i }).click();
  await expect(graph.getByRole("button", { name: /^Raw dataset: / })).toBeVisible();
  await graph.getByRole("button", { name: new RegExp(`^Training run: Run #${runId}`) }).click();
  const details = page.getByRole("complementary", { name: "Node details" });
  await expect(details).toContainText("Erin Engineer");
  await expect(details.getByRole("button", { name: "Copy Config sha256" })).toBeVisible();
  // In the narrow details column a hash and its copy button stay whole (one line each), and times read as elsewhere.
  for (const hash of [details.getByRole("button", { name: "Copy Config sha256" }), details.locator("code.hash").first()])
    expect((await hash.boundingBox())!.height).toBeLessThan(26);
  await expect(details).toContainText(/Trained\s*\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ → \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/);
  await expect(graph.getByRole("button", { name: /^Promotion request: Request #\d+: move production/ })).toBeVisible();
  const downloadPromise = page.waitForEvent("download");
  await page.getByRole("button", { name: "Export PROV-JSON" }).click();
  const download = await downloadPromise;
  const doc = JSON.parse(fs.readFileSync((await download.path())!, "utf8")) as Record<string, Record<string, unknown>>;
  for (const k of [
    "prefix",
    "entity",
    "activity",
    "agent",
    "used",
    "wasGeneratedBy",
    "wasDerivedFrom",
    "wasAssociatedWith",
    "wasAttributedTo",
  ])
    expect(Object.keys(doc[k]!).length).toBeGreaterThan(0);

  // Another reviewer approves with their password; production moves.
  await switchUser(page, "reviewer");
  await page.goto(`/models/${encodeURIComponent(model)}`);
  const pending = page.getByRole("article", { name: `Promotion request #${requestId}` });
  await pending.getByLabel("Password to sign").fill("not-my-password");
  await pending.getByRole("button", { name: "Approve" }).click();
  await expect(pending.getByRole("alert")).toContainText("password does not match");
  await pending.getByLabel("Signature comment").fill("e2e: confusion matrix checked");
  await pending.getByLabel("Password to sign").fill(DEMO.reviewer.password);
  await pending.getByRole("button", { name: "Approve" }).click();
  await expect(pending).toHaveAttribute("data-status", "approved");
  await expect(pending.getByRole("list", { name: "Signatures" })).toContainText(
    /Approved by Rui Reviewer on \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ — meaning: approval — record sha256 [0-9a-f]{12}…/,
  );
  await expect(page.getByText("production → v1").first()).toBeVisible();

  // The production timeline and "what was in production at time T".
  const timeline = page.getByRole("table", { name: "production timeline" });
  await expect(timeline.getByRole("row")).toHaveCount(2);
  await expect(timeline).toContainText("v1");
  await expect(timeline).toContainText(`promotion request #${requestId}`);
  await expect(timeline).toContainText("now");
  await page.getByLabel("Time to look up").fill(new Date(Date.now() + 60_000).toISOString());
  await page.getByRole("button", { name: "Look up" }).click();
  await expect(page.getByRole("status", { name: "Alias at time answer" })).toContainText("was v1");
  await page.getByLabel("Time to look up").fill("2000-01-01T00:00:00Z");
  await page.getByRole("button", { name: "Look up" }).click();
  await expect(page.getByRole("status", { name: "Alias at time answer" })).toContainText("pointed at no version");
});

test("[REGISTRY]: a rejection needs a reason: the form says so and keeps Reject disabled, the server refuses a blank one, a reasoned one closes the request", async ({
  page,
}) => {
  const model = unique("e2e-reject").replace(/\s+/g, "-");
  await signIn(page, "engineer");
  const runId = await seedCompletedRun(page);
  const { version } = await trpcMutate<{ version: number }>(page, "models.register", { runId, modelName: model });
  const { id: requestId } = await trpcMutate<{ id: number }>(page, "models.requestPromotion", {
    modelName: model,
    version,
    acknowledgeMissingDocumentation: true,
    rationale: "e2e: a candidate the reviewer will turn down",
  });

  await switchUser(page, "reviewer");
  await page.goto(`/models/${encodeURIComponent(model)}`);
  const pending = page.getByRole("article", { name: `Promotion request #${requestId}` });
  await expect(pending).toHaveAttribute("data-status", "pending");
  await pending.getByLabel("Password to sign").fill(DEMO.reviewer.password);
  // Before anything is sent: approving needs no comment, rejecting does, and the form says so.
  const reject = pending.getByRole("button", { name: "Reject" });
  await expect(pending.getByRole("button", { name: "Approve" })).toBeEnabled();
  await expect(reject).toBeDisabled();
  await expect(reject).toHaveAccessibleDescription(/a rejection needs a reason/);
  await pending.getByLabel("Signature comment").fill("   ");
  await expect(reject).toBeDisabled();

  // The server refuses a blank rejection on its own, and records nothing: the request stays pending, unsigned.
  const blank = await trpcCall(page, "mutation", "models.sign", {
    requestId,
    meaning: "rejection",
    password: DEMO.reviewer.password,
    comment: "  ",
  });
  expect(blank.status()).toBe(400);
  expect(await blank.text()).toContain("a rejection needs a reason");
  await page.reload();
  await expect(pending).toHaveAttribute("data-status", "pending");
  await expect(pending.getByText("No signature yet.")).toBeVisible();

  // With a reason, Reject is enabled; a refusal by the server is shown in the form, and a good signature closes the request.
  const reason = "e2e: test recall is below the pilot's bar; retrain with class weights";
  await pending.getByLabel("Signature comment").fill(reason);
  await pending.getByLabel("Password to sign").fill("not-my-password");
  await expect(reject).toBeEnabled();
  await reject.click();
  await expect(pending.getByRole("alert")).toContainText("password does not match");
  await pending.getByLabel("Password to sign").fill(DEMO.reviewer.password);
  await reject.click();
  await expect(pending).toHaveAttribute("data-status", "rejected");
  const signaturesList = pending.getByRole("list", { name: "Signatures" });
  await expect(signaturesList).toContainText(/Rejected by Rui Reviewer on \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ — meaning: rejection/);
  await expect(signaturesList).toContainText(reason);
});

test("[REGISTRY]: an auditor reads the registry and lineage but sees no way to change them, and the server refuses", async ({ page }) => {
  await signIn(page, "auditor");
  await page.getByRole("link", { name: "Models" }).click();
  await expect(page.getByRole("heading", { name: "Models" })).toBeVisible();
  const res = await trpcCall(page, "mutation", "models.register", { runId: 1, modelName: "auditor-model" });
  expect(res.status()).toBe(403);
  expect(await res.text()).toContain("auditor cannot");
});
