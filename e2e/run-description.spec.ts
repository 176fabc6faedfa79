/**
 * Issue 14 point 12 (part), in Chromium: a run's description in Markdown on the run page. An engineer writes one with a
 * heading, a list, a link and a <script> tag, sees it in the preview, saves it (runs.annotate: one run.annotate event);
 * the page renders the Markdown, shows the <script> as text and never runs it; an auditor reads it without the edit
 * control. The test seeds its own experiment and run; no fixed sleeps.
 */
import { test, expect, type Page } from "@playwright/test";
import { signIn, unique, trpcQuery as query, trpcMutate as mutate } from "./helpers";

async function seedRun(page: Page): Promise<number> {
  const projects = await query<{ id: number; name: string }[]>(page, "projects.list");
  const project = projects.find((p) => p.name.startsWith("Demo"))!;
  const experimentId = (
    await mutate<{ id: number }>(page, "projects.createExperiment", { projectId: project.id, name: unique("e2e description") })
  ).id;
  const config = {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 5 },
    },
    model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 2, seed: 6 },
  };
  const { id } = await mutate<{ id: number }>(page, "runs.create", { experimentId, config, rationale: "e2e: run description" });
  await expect.poll(async () => (await query<{ status: string }>(page, "runs.get", { id })).status, { timeout: 90_000 }).toBe("completed");
  return id;
}

const SCRIPT = "<script>window.__descriptionScriptRan = true</script>";
const DESCRIPTION = [
  "## What this run tries",
  "",
  "- a smaller hidden layer (8 units)",
  "- the **same** split seed as the baseline",
  "",
  "Data as in [the Iris data set](https://archive.ics.uci.edu/dataset/53/iris).",
  "",
  SCRIPT,
].join("\n");

test("[RUN description]: an engineer writes a Markdown description on the run page with a preview; it renders safely and an auditor reads it without the edit control", async ({
  page,
}) => {
  await signIn(page, "engineer");
  const runId = await seedRun(page);
  const configBefore = (await query<{ configSha256: string }>(page, "runs.get", { id: runId })).configSha256;

  await page.goto(`/runs/${runId}`);
  const panel = page.getByRole("region", { name: "Description", exact: true });
  await expect(panel).toContainText("No description yet.");
  await panel.getByRole("button", { name: "Add a description" }).click();
  await panel.getByLabel("Description (Markdown)").fill(DESCRIPTION);

  // The preview renders the Markdown before anything is saved.
  const preview = panel.getByLabel("Description preview");
  await expect(preview.getByRole("heading", { name: "What this run tries", level: 2 })).toBeVisible();
  await expect(preview.getByRole("listitem")).toHaveCount(2);
  expect((await query<{ description: string }>(page, "runs.get", { id: runId })).description).toBe("");

  await panel.getByRole("button", { name: "Save description" }).click();
  const rendered = panel.getByLabel("Run description");
  await expect(rendered.getByRole("heading", { name: "What this run tries", level: 2 })).toBeVisible();
  await expect(rendered.getByRole("listitem")).toHaveText(["a smaller hidden layer (8 units)", "the same split seed as the baseline"]);
  await expect(rendered.locator("strong")).toHaveText("same");
  const link = rendered.getByRole("link", { name: "the Iris data set" });
  await expect(link).toHaveAttribute("href", "https://archive.ics.uci.edu/dataset/53/iris");
  await expect(link).toHaveAttribute("rel", "noopener noreferrer nofollow");
  // The <script> is text on the page: shown, not an element, never run.
  await expect(rendered).toContainText(SCRIPT);
  await expect(rendered.locator("script")).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { __descriptionScriptRan?: boolean }).__descriptionScriptRan)).toBeUndefined();

  // Saved through runs.annotate: the description, one run.annotate event by the engineer, the config untouched.
  const saved = await query<{ description: string; configSha256: string }>(page, "runs.get", { id: runId });
  expect(saved.description).toBe(DESCRIPTION);
  expect(saved.configSha256).toBe(configBefore);
  const events = await query<{ events: { actorName: string; payload: unknown }[] }>(page, "audit.events", {
    action: "run.annotate",
    entityType: "run",
    entityId: String(runId),
  });
  expect(events.events).toHaveLength(1);
  expect(events.events[0]!.actorName).toBe("Erin Engineer");
  expect(JSON.stringify(events.events[0]!.payload)).toContain('"field":"description"');

  // A decision note is Markdown too: bold text and a link render, a <script> stays text.
  await page.getByLabel("Decision note", { exact: true }).fill(`The **val_loss** plateau: see [the curves](/runs/${runId}).\n\n${SCRIPT}`);
  await page.getByRole("button", { name: "Add note" }).click();
  const note = page.getByLabel(/^Note #\d+$/).last();
  await expect(note.locator("strong")).toHaveText("val_loss");
  await expect(note.getByRole("link", { name: "the curves" })).toHaveAttribute("href", `/runs/${runId}`);
  await expect(note).toContainText(SCRIPT);
  await expect(note.locator("script")).toHaveCount(0);

  // An auditor reads the same rendering, with no edit control.
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, "auditor");
  await page.goto(`/runs/${runId}`);
  const auditorPanel = page.getByRole("region", { name: "Description", exact: true });
  await expect(auditorPanel.getByRole("heading", { name: "What this run tries", level: 2 })).toBeVisible();
  await expect(auditorPanel.getByRole("link", { name: "the Iris data set" })).toBeVisible();
  await expect(auditorPanel).toContainText(SCRIPT);
  await expect(auditorPanel.getByRole("button")).toHaveCount(0);
  await expect(auditorPanel.getByLabel("Description (Markdown)")).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { __descriptionScriptRan?: boolean }).__descriptionScriptRan)).toBeUndefined();
});
