/**
 * Compression from the run page (issue 17): an engineer opens "compress" on a checkpoint row, a sparsity outside (0, 1)
 * is refused with the server's message and creates nothing, then int8 quantization creates a compression run whose
 * page says what it was compressed from and whose checkpoint is smaller than the source's, with its accuracy recorded.
 * The test seeds its own experiment and run through the API (the real trainer trains both) and waits on states.
 */
import { test, expect } from "@playwright/test";
import { createExperiment, signIn, trpcCall, unique } from "./helpers";

test("[COMPRESS]: an engineer quantizes a checkpoint from the run page; a bad sparsity creates nothing", async ({ page }) => {
  test.setTimeout(180_000);
  await signIn(page, "engineer");
  await createExperiment(page, unique("e2e compress"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const config = {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 5 },
    },
    model: { layers: [{ type: "dense", units: 16, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 4, seed: 2 },
  };
  const res = await trpcCall(page, "mutation", "runs.create", { experimentId, config, rationale: "e2e: a source to compress" });
  expect(res.status(), await res.text()).toBe(200);
  const id = ((await res.json()) as { result: { data: { id: number } } }).result.data.id;
  await page.goto(`/runs/${id}`);
  await expect(page.locator("[data-status]").first()).toHaveAttribute("data-status", "completed", { timeout: 120_000 });

  const checkpoints = page.getByRole("region", { name: "Checkpoints" });
  await checkpoints.getByRole("button", { name: "Compress epoch 4" }).click();
  const panel = page.getByRole("region", { name: "Compress epoch 4" });
  await expect(panel).toBeVisible();

  // A sparsity of 1.5 is the server's clear error; no run is created.
  await panel.getByRole("combobox", { name: "Compression method" }).selectOption("prune");
  await panel.getByRole("textbox", { name: "Sparsity" }).fill("1.5");
  await panel.getByRole("textbox", { name: "Compression rationale" }).fill("too much");
  await panel.getByRole("button", { name: "Compress", exact: true }).click();
  await expect(panel.getByRole("alert")).toContainText("sparsity must be < 1");
  await expect(panel.getByRole("status")).toHaveCount(0);

  // int8 quantization: a compression run, linked.
  await panel.getByRole("combobox", { name: "Compression method" }).selectOption("int8");
  await panel.getByRole("textbox", { name: "Compression rationale" }).fill("e2e: the device holds a quarter of the float32 size");
  await panel.getByRole("button", { name: "Compress", exact: true }).click();
  const created = panel.getByRole("link", { name: /Compression run \d+ \(int8\) created/ });
  await expect(created).toBeVisible();
  await created.click();
  await page.waitForURL((url) => /^\/runs\/\d+$/.test(url.pathname) && url.pathname !== `/runs/${id}`);
  await expect(page.getByText("Compressed from", { exact: true })).toBeVisible();
  await expect(page.getByText(new RegExp(`created .* · compressed from run #${id}, its checkpoint at epoch \\d+$`))).toBeVisible();
  await expect(page.getByRole("link", { name: `run #${id}` }).first()).toBeVisible();
  await expect(page.locator("[data-status]").first()).toHaveAttribute("data-status", "completed", { timeout: 120_000 });

  // The compression's size and accuracy against its source, read through the API the compare view will use.
  const compressedId = Number(/\/runs\/(\d+)/.exec(page.url())![1]);
  type Result = { status: string; sizeBytes: number; parentSizeBytes: number; metrics: Record<string, number> };
  const read = async () =>
    ((await (await trpcCall(page, "query", "runs.compression", { id: compressedId })).json()) as { result: { data: Result } }).result.data;
  await expect.poll(async () => (await read()).status, { timeout: 60_000 }).toBe("completed");
  const r = await read();
  expect(r.sizeBytes).toBeLessThan(r.parentSizeBytes);
  expect(typeof r.metrics.accuracy).toBe("number");
  expect(typeof r.metrics.accuracy_delta).toBe("number");

  // The compare view puts both models side by side: size, parameters, accuracy, inference time.
  await page.goto(`/compare?ids=${id},${compressedId}`);
  const models = page.getByRole("table", { name: "Model size and accuracy" });
  await expect(models).toBeVisible();
  await expect(models.getByRole("row", { name: /Compression/ })).toContainText("int8");
  await expect(models.getByRole("row", { name: /Size vs source/ })).toContainText("%");
  await expect(
    models
      .getByRole("row", { name: /Inference/ })
      .getByRole("cell")
      .last(),
  ).toHaveText(/^\d/);
  await expect(
    models
      .getByRole("row", { name: /Size vs source/ })
      .getByRole("cell")
      .last(),
  ).toHaveText(/^\d+%$/);
});
