/**
 * The dataset page's Rows panel, in the browser: a CSV uploaded through the Datasets page's form shows its first
 * rows as the upload parsed them (label column marked, numbers right-aligned, long text clipped with the full text
 * in its title, "showing the first N of M rows"); an image upload also shows its first images. Each test uploads
 * its own file (fresh bytes, so a new dataset).
 */
import { test, expect, type Page } from "@playwright/test";
import { signIn, unique } from "./helpers";

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
  await expect(table.getByRole("columnheader")).toHaveText(["#", "id", "review", "score", "label label"]);
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
