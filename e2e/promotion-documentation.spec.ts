/**
 * Issue 14 point 4, in Chromium: requesting production checks the model card and datasheet sections and offers to write
 * the missing ones right there. On the model version page an engineer opens "Request production", sees the checklist
 * (the model card of the version's model, the datasheet of the dataset it was trained on), writes two missing model-card
 * sections inline, and can submit with a section still missing only after acknowledging it; the server refuses the same
 * request without the acknowledgement. The reviewer then sees, on the request, which sections were missing.
 *
 * The test seeds its own experiment, run and model (unique name, so its model card starts empty); the Iris datasheet
 * is shared with other tests, so its state is read from the server, never assumed. No fixed sleeps.
 */
import { test, expect, type Page } from "@playwright/test";
import { DEMO, signIn, trpcCall, unique, trpcQuery as query, trpcMutate as mutate } from "./helpers";

/** A fresh experiment, a small completed Iris run in it, and its best checkpoint registered as v1 of `model`. */
async function seedVersion(page: Page, model: string): Promise<void> {
  const projects = await query<{ id: number; name: string }[]>(page, "projects.list");
  const project = projects.find((p) => p.name.startsWith("Demo"))!;
  const experimentId = (
    await mutate<{ id: number }>(page, "projects.createExperiment", { projectId: project.id, name: unique("e2e docs") })
  ).id;
  const config = {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 5 },
    },
    model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 3, seed: 4 },
  };
  const { id } = await mutate<{ id: number }>(page, "runs.create", { experimentId, config, rationale: "e2e: documentation checklist" });
  await expect.poll(async () => (await query<{ status: string }>(page, "runs.get", { id })).status, { timeout: 90_000 }).toBe("completed");
  await mutate(page, "models.register", { runId: id, modelName: model });
}

type Checklist = { written: number; total: number; missing: { document: string; subjectName: string; title: string }[] };

test("[PROMOTION docs]: the Request production form checks the model card and datasheet, writes missing sections inline, and records an acknowledged gap the reviewer sees", async ({
  page,
}) => {
  const model = unique("e2e-docs").replace(/\s+/g, "-");
  await signIn(page, "engineer");
  await seedVersion(page, model);
  const before = await query<Checklist>(page, "models.documentationChecklist", { modelName: model, version: 1 });
  expect(before.total).toBe(5);
  expect(before.missing.filter((m) => m.document === "Model card")).toHaveLength(3);

  // The server refuses a request with missing sections and no acknowledgement, naming them; nothing is requested.
  const refused = await trpcCall(page, "mutation", "models.requestPromotion", { modelName: model, version: 1, rationale: "e2e: no docs" });
  expect(refused.status()).toBe(409);
  expect(await refused.text()).toContain(`Model card of ${model}: Intended purpose and use`);

  await page.goto(`/models/${model}/versions/1`);
  // Among the page's actions, on the heading's line (it sat on a line of its own below them).
  const requestButton = page.getByRole("button", { name: "Request production" });
  const exportReport = page.getByRole("link", { name: "Export auditor's report" });
  await expect(requestButton).toBeVisible();
  const [requestBox, exportBox] = [(await requestButton.boundingBox())!, (await exportReport.boundingBox())!];
  expect(Math.abs(requestBox.y + requestBox.height / 2 - (exportBox.y + exportBox.height / 2))).toBeLessThan(4);
  await requestButton.click();
  const form = page.getByRole("region", { name: "Request production", exact: true });
  const checklist = form.getByRole("region", { name: "Documentation checklist" });
  await expect(
    checklist.getByRole("heading", { name: `Model card and datasheets: ${before.written} of 5 sections written` }),
  ).toBeVisible();
  const card = checklist.getByRole("list", { name: `Model card of ${model}` });
  await expect(card.getByRole("listitem")).toHaveCount(3);
  await expect(checklist.getByRole("list", { name: "Datasheet of Iris flowers" }).getByRole("listitem")).toHaveCount(2);

  // Write two missing model-card sections right here (documents.update, as on the report page).
  for (const [title, text] of [
    ["Intended purpose and use", "Sorting iris flowers in the teaching lab."],
    ["Ethical considerations and risks", "No personal data; misclassification only costs a re-check."],
  ] as const) {
    const item = card.getByRole("listitem", { name: `Model card of ${model}: ${title}` });
    await expect(item).toContainText("missing");
    await item.getByRole("button", { name: `Write ${title.toLowerCase()}` }).click();
    await item.getByLabel(`${title} text`).fill(text);
    await item.getByRole("button", { name: "Save new version" }).click();
    await expect(item).toHaveAttribute("data-written", "yes");
    await expect(item).toContainText("written (v1");
  }
  const missing = before.missing.length - 2;
  await expect(checklist.getByRole("heading", { name: `Model card and datasheets: ${5 - missing} of 5 sections written` })).toBeVisible();
  await expect(card.getByRole("listitem", { name: `Model card of ${model}: Limitations and conditions of use` })).toContainText("missing");

  // A section is still missing: submitting needs the explicit acknowledgement.
  await form.getByLabel("Promotion rationale").fill("e2e: good test accuracy; limitations to follow");
  const submit = form.getByRole("button", { name: "Submit promotion request" });
  await expect(submit).toBeDisabled();
  await form.getByRole("checkbox", { name: `Request production with ${missing} section${missing > 1 ? "s" : ""} missing` }).check();
  await expect(submit).toBeEnabled();
  await submit.click();
  const pending = page.getByRole("status").filter({ hasText: /Promotion request #\d+ to production is pending/ });
  await expect(pending).toBeVisible();
  await expect(form).toHaveCount(0);

  // The two sections are the model card's versions, written by the engineer.
  const { id: modelId } = await query<{ id: number }>(page, "models.get", { name: model });
  const docs = await query<{ sections: { key: string; latest: { author: string; version: number } | null }[] }>(page, "documents.get", {
    subjectType: "model",
    subjectId: modelId,
  });
  expect(docs.sections.map((s) => [s.key, s.latest?.version ?? null, s.latest?.author ?? null])).toEqual([
    ["intended_use", 1, DEMO.engineer.name],
    ["limitations", null, null],
    ["ethical_considerations", 1, DEMO.engineer.name],
  ]);

  // The reviewer sees on the request which sections were missing and that the requester acknowledged it.
  await pending.getByRole("link", { name: /^#\d+$/ }).click();
  await expect(page.getByRole("heading", { name: model, exact: true })).toBeVisible();
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, "reviewer");
  await page.goto(`/models/${model}`);
  const request = page.getByRole("article", { name: /Promotion request #\d+/ });
  const note = request.getByRole("note", { name: "Missing documentation" });
  await expect(note).toContainText(`Requested with ${missing} of 5 documentation sections missing (acknowledged by the requester)`);
  await expect(note.getByRole("listitem").filter({ hasText: `Model card of ${model}: Limitations and conditions of use` })).toHaveCount(1);
  await expect(note).not.toContainText("Intended purpose and use");
  await expect(note.getByRole("listitem")).toHaveCount(missing);
});
