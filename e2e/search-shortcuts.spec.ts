/**
 * Global search, keyboard shortcuts and weights downloads (issue 14 point 12). Seeds its own tiny Iris run in a
 * fresh experiment, with a tag no other test uses (with an underscore, which the search must match literally).
 */
import crypto from "node:crypto";
import fs from "node:fs";
import { test, expect, type Page } from "@playwright/test";
import { unzipStored } from "../server/fs/zip";
import { createExperiment, signIn, trpcCall, unique } from "./helpers";

const sha256 = (bytes: Uint8Array) => crypto.createHash("sha256").update(bytes).digest("hex");

async function seedRun(page: Page, name: string, tag: string): Promise<number> {
  await createExperiment(page, unique("e2e search"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const config = {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 7 },
    },
    model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 2, seed: 1 },
  };
  const res = await trpcCall(page, "mutation", "runs.create", { experimentId, name, config, rationale: "e2e search" });
  expect(res.status(), await res.text()).toBe(200);
  const id = ((await res.json()) as { result: { data: { id: number } } }).result.data.id;
  const tagged = await trpcCall(page, "mutation", "runs.addTag", { runId: id, tag });
  expect(tagged.status(), await tagged.text()).toBe(200);
  await expect
    .poll(
      async () =>
        ((await (await trpcCall(page, "query", "runs.get", { id })).json()) as { result?: { data?: { status?: string } } }).result?.data
          ?.status,
      { timeout: 110_000, intervals: [500] },
    )
    .toBe("completed");
  return id;
}

test("[SEARCH]: '/' focuses the search, a run's tag finds it, Enter opens it; '?' lists the shortcuts; g r goes to Runs; weights download matches the SHA-256 shown", async ({
  page,
  context,
}) => {
  test.setTimeout(200_000);
  await signIn(page, "engineer");
  const suffix = unique("x").split(" ")[1]!;
  const runName = `search run ${suffix}`;
  const tag = `needle_${suffix}`;
  const runId = await seedRun(page, runName, tag);

  // "/" focuses the search box (from anywhere but a field); typing the tag lists the run under Runs.
  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Projects" })).toBeVisible();
  await page.keyboard.press("/");
  const box = page.getByRole("combobox", { name: /Search projects, experiments, runs/ });
  await expect(box).toBeFocused();
  await box.pressSequentially(tag);
  const results = page.getByRole("listbox", { name: "Search results" });
  const runs = results.getByRole("group", { name: "Runs" });
  await expect(runs.getByRole("option", { name: new RegExp(runName) })).toBeVisible();
  await expect(runs.getByRole("option")).toHaveCount(1);
  // The underscore is literal: "needle" + any character + suffix does not match.
  await box.fill(`needleX${suffix}`);
  await expect(page.getByText(`Nothing matches “needleX${suffix}”`)).toBeVisible();
  await box.fill(tag);
  await expect(runs.getByRole("option", { name: new RegExp(runName) })).toBeVisible();

  // Arrow keys move through the options (aria-activedescendant), Enter opens the active one.
  await box.press("ArrowDown");
  await expect(runs.getByRole("option", { name: new RegExp(runName) })).toHaveAttribute("aria-selected", "true");
  await box.press("Enter");
  await expect(page).toHaveURL(new RegExp(`/runs/${runId}$`));
  await expect(page.getByRole("heading", { name: new RegExp(runName) }).first()).toBeVisible();

  // Escape closes the list without leaving the page.
  await page.keyboard.press("/");
  await expect(box).toBeFocused();
  await box.fill(tag);
  await expect(results).toBeVisible();
  await box.press("Escape");
  await expect(results).toBeHidden();

  // "?" opens the list of shortcuts (not while typing in a field), Escape closes it.
  await box.press("?");
  await expect(page.getByRole("dialog")).toHaveCount(0);
  await box.press("Escape");
  await page
    .getByRole("heading", { name: new RegExp(runName) })
    .first()
    .click();
  await page.keyboard.press("?");
  const dialog = page.getByRole("dialog", { name: "Keyboard shortcuts" });
  await expect(dialog).toBeVisible();
  for (const what of ["Focus the search box", "Go to Home (projects)", "Go to Runs", "Go to Models", "Go to Audit"])
    await expect(dialog.getByRole("cell", { name: what })).toBeVisible();
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();

  // Download a checkpoint's weights: the recorded weights file inside hashes to the SHA-256 shown beside the link.
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  const table = page.getByRole("table", { name: "Checkpoints table" });
  const linkName = "Download weights of checkpoint 2 (TF.js model, .zip)";
  const link = table.getByRole("link", { name: linkName });
  await expect(link).toBeVisible();
  const row = table.getByRole("row").filter({ has: page.getByRole("link", { name: linkName }) });
  await row.getByRole("button", { name: "Copy checkpoint 2 weights sha256" }).click();
  await expect(row.getByRole("button", { name: "Copy checkpoint 2 weights sha256" })).toHaveText("copied");
  const shown = await page.evaluate(() => navigator.clipboard.readText());
  expect(shown).toMatch(/^[0-9a-f]{64}$/);
  await expect(row.getByText(`${shown.slice(0, 12)}…`)).toBeVisible();
  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  expect(download.suggestedFilename()).toMatch(new RegExp(`^run${runId}-epoch2-${shown.slice(0, 12)}-tfjs\\.zip$`));
  const files = new Map(unzipStored(new Uint8Array(fs.readFileSync((await download.path())!))).map((e) => [e.name, e.data]));
  expect([...files.keys()]).toEqual(["model.json", "weights.bin", "checkpoint.rlw1", "SHA256SUMS"]);
  expect(sha256(files.get("checkpoint.rlw1")!)).toBe(shown);
  const sums = new TextDecoder().decode(files.get("SHA256SUMS"));
  for (const name of ["model.json", "weights.bin"]) expect(sums).toContain(`${sha256(files.get(name)!)}  ${name}`);
  const modelJson = JSON.parse(new TextDecoder().decode(files.get("model.json"))) as {
    format: string;
    weightsManifest: { paths: string[] }[];
  };
  expect(modelJson.format).toBe("layers-model");
  expect(modelJson.weightsManifest[0]!.paths).toEqual(["weights.bin"]);

  // g then r: the runs page.
  await page
    .getByRole("heading", { name: new RegExp(runName) })
    .first()
    .click();
  await page.keyboard.press("g");
  await page.keyboard.press("r");
  await expect(page).toHaveURL(/\/runs$/);

  // Enter with no result chosen opens the full results page, grouped by kind.
  await page.keyboard.press("/");
  await expect(box).toBeFocused();
  await box.fill(tag);
  await expect(runs.getByRole("option", { name: new RegExp(runName) })).toBeVisible();
  await box.press("Enter");
  await expect(page).toHaveURL(new RegExp(`/search\\?q=${tag}$`));
  await expect(page.getByRole("region", { name: "Runs" }).getByRole("link", { name: runName })).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: "result" })).toHaveText(`1 result for “${tag}”`);

  // A model version's page: the same download, its recorded weights file hashing to the SHA-256 shown there.
  const modelName = `search-model-${suffix}`;
  const registered = await trpcCall(page, "mutation", "models.register", { runId, modelName });
  expect(registered.status(), await registered.text()).toBe(200);
  await page.goto(`/models/${modelName}/versions/1`);
  const versionLink = page.getByRole("link", { name: `Download weights of ${modelName} v1 (TF.js model, .zip)` });
  await expect(versionLink).toBeVisible();
  await page.getByRole("button", { name: `Copy ${modelName} v1 weights sha256` }).click();
  await expect(page.getByRole("button", { name: `Copy ${modelName} v1 weights sha256` })).toHaveText("copied");
  const versionShown = await page.evaluate(() => navigator.clipboard.readText());
  expect(versionShown).toMatch(/^[0-9a-f]{64}$/);
  const [versionDownload] = await Promise.all([page.waitForEvent("download"), versionLink.click()]);
  expect(versionDownload.suggestedFilename()).toBe(`${modelName}-v1-${versionShown.slice(0, 12)}-tfjs.zip`);
  const versionFiles = new Map(unzipStored(new Uint8Array(fs.readFileSync((await versionDownload.path())!))).map((e) => [e.name, e.data]));
  expect(sha256(versionFiles.get("checkpoint.rlw1")!)).toBe(versionShown);
});

test("[SEARCH]: a project found by the search opens the home page scrolled to that project", async ({ page }) => {
  await signIn(page, "engineer");
  const name = unique("searched project").replace(" ", "-");
  const created = await trpcCall(page, "mutation", "projects.create", { name });
  expect(created.status(), await created.text()).toBe(200);
  // A short window, so that a project lower in the list is below the fold unless the page scrolls to it.
  await page.setViewportSize({ width: 1280, height: 420 });
  await page.goto(`/search?q=${encodeURIComponent(name)}`);
  await page.getByRole("region", { name: "Projects" }).getByRole("link", { name }).click();
  await expect(page).toHaveURL(/\/#project-\d+$/);
  const section = page.getByRole("region", { name: `Project ${name}` });
  await expect(section).toBeVisible();
  // Scrolled to it: its top is at the top of the window, or the page is scrolled as far as it goes.
  await expect
    .poll(() =>
      section.evaluate((el) => {
        const top = el.getBoundingClientRect().top;
        const atEnd = window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 1;
        return (top >= -1 && top < 120) || (atEnd && top >= 0 && top < window.innerHeight);
      }),
    )
    .toBe(true);
});
