/**
 * The dataset page's Rows panel, in the browser: a CSV uploaded through the Datasets page's form shows its first
 * rows as the upload parsed them (label column marked, numbers right-aligned, long text clipped with the full text
 * in its title, "showing the first N of M rows"); an image upload also shows its first images. Each test uploads
 * its own file (fresh bytes, so a new dataset).
 */
import { test, expect, type Page } from "@playwright/test";
import { createExperiment, signIn, trpcMutate, unique, uploadCsvDataset } from "./helpers";

async function uploadAndOpen(page: Page, name: string, csv: string, image?: { height: number; width: number }) {
  await page.goto("/datasets");
  const form = page.getByRole("form", { name: "Upload a CSV dataset" });
  if (image) {
    await form.getByLabel("Kind").selectOption("image");
    await form.getByLabel("Image height").fill(String(image.height));
    await form.getByLabel("Image width").fill(String(image.width));
  }
  await form.getByLabel("CSV file").setInputFiles({ name: `${name}.csv`, mimeType: "text/csv", buffer: Buffer.from(csv) });
  await form.getByLabel("Dataset name").fill(name);
  await form.getByRole("button", { name: "Upload" }).click();
  await expect(form.getByRole("status")).toContainText(`Uploaded “${name}”`);
  await page.getByRole("table", { name: "Datasets" }).getByRole("link", { name, exact: true }).click();
  await expect(page.getByRole("heading", { level: 1, name })).toBeVisible();
  return page.getByRole("region", { name: "Rows" });
}

test("[DATASETS]: the dataset page previews the first rows of an uploaded CSV", async ({ page }) => {
  await signIn(page, "engineer");
  const name = unique("preview csv");
  const review = `A long review that goes on and on about the film, its score and its actors, ${Date.now()}`;
  const rows = Array.from({ length: 24 }, (_, i) => `${i + 1},short ${i},${(i * 0.5).toFixed(1)},${i % 2 ? "neg" : "pos"}`);
  const csv = `id,review,score,label\n0,"${review}",NA,pos\n${rows.join("\n")}\n`;
  const panel = await uploadAndOpen(page, name, csv);

  await expect(panel.getByText("Showing the first 20 of 25 rows")).toBeVisible();
  const table = panel.getByRole("table", { name: "Rows preview" });
  await expect(table.getByRole("columnheader")).toHaveText(["#", "id", "review", "score", "label to predict"]);
  await expect(table.getByRole("row")).toHaveCount(21);
  const first = table.getByRole("row").nth(1);
  await expect(first.getByRole("cell")).toHaveText(["1", "0", review, "–", "pos"]);
  // The long review is clipped to the column, its whole text in the title; the missing score is marked as such.
  const reviewCell = first.getByRole("cell").nth(2);
  await expect(reviewCell).toHaveAttribute("title", review);
  await expect(reviewCell).toHaveCSS("text-overflow", "ellipsis");
  await expect(first.getByRole("cell").nth(3)).toHaveAttribute("title", "missing value");
  // Numbers right-aligned, text left-aligned.
  const last = table.getByRole("row").nth(20);
  await expect(last.getByRole("cell")).toHaveText(["20", "19", "short 18", "9", "pos"]);
  await expect(last.getByRole("cell").nth(3)).toHaveCSS("text-align", "right");
  await expect(last.getByRole("cell").nth(2)).toHaveCSS("text-align", "left");
});

test("[DATASETS]: an image dataset's page draws its first images from their pixel columns", async ({ page }) => {
  await signIn(page, "engineer");
  const name = unique("preview images");
  const images = Array.from({ length: 10 }, (_, i) => `${i % 2},0,1,1,0,${Date.now() % 7},${i % 2 ? "odd" : "even"}`);
  const panel = await uploadAndOpen(page, name, `p0,p1,p2,p3,p4,p5,label\n${images.join("\n")}\n`, { height: 2, width: 3 });

  await expect(panel.getByText("Showing the first 10 of 10 rows")).toBeVisible();
  const strip = panel.getByLabel("First images");
  await expect(strip.getByRole("img")).toHaveCount(8);
  await expect(strip.getByRole("img").first()).toHaveAccessibleName("Image 1, label even");
  await expect(strip.getByRole("img").nth(1)).toHaveAccessibleName("Image 2, label odd");
  await expect(panel.getByRole("table", { name: "Rows preview" }).getByRole("row")).toHaveCount(11);
});

test("[DATASETS]: a random split that leaves a class out of train says so on the dataset and run pages", async ({ page }) => {
  await signIn(page, "engineer");
  await createExperiment(page, unique("e2e split warning"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  // 27 rows of two classes, then 3 of a rare one; the random split with seed 21 puts no 'rare' row in train
  // (split-warnings.test.ts finds such seeds with the trainer's own makeSplit). Fresh bytes: a new dataset each time.
  const rows = Array.from(
    { length: 30 },
    (_, i) => `${i === 0 ? Date.now() % 997 : i},${(i * 3) % 7},${i < 27 ? (i % 2 ? "setosa" : "versicolor") : "rare"}`,
  );
  const datasetId = await uploadCsvDataset(page, unique("rare class"), `x0,x1,species\n${rows.join("\n")}\n`);
  const run = await trpcMutate<{ id: number }>(page, "runs.create", {
    experimentId,
    rationale: "e2e: a random split of an unbalanced dataset",
    config: {
      data: {
        dataset: { datasetId: String(datasetId) },
        labelColumn: "species",
        normalization: "standard",
        split: { strategy: "random", train: 0.6, validation: 0.2, test: 0.2, seed: 21 },
      },
      model: { layers: [{ type: "dense", units: 4, activation: "relu" }] },
      training: { optimizer: { name: "adam" }, learningRate: 0.01, batchSize: 8, epochs: 1, seed: 1 },
    },
  });
  const warning = "Class 'rare' has no rows in train: a model trained on this split never learns it.";
  await page.goto(`/runs/${run.id}`);
  await expect(page.getByRole("note", { name: "Split warnings" })).toContainText(warning, { timeout: 60_000 });
  await page.goto(`/datasets/${datasetId}`);
  await expect(page.getByRole("note", { name: /^Split \d+ warnings$/ })).toContainText(warning);
});
