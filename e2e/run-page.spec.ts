/**
 * The run page of a long run (issue 14, point 1): a 60-epoch Iris run with a checkpoint every epoch lists only its best
 * and last checkpoints until "Show all 60 checkpoints" is clicked (each row then keeps its Evaluate or Re-evaluate button); the page
 * stays short at 1280×800; the sticky header's "Register as model version" stays in view at the bottom of the page and
 * takes the person to the form; the curves' log scale and smoothing controls change the charts' state (read from the
 * canvas's data attributes: canvas pixels are not inspectable).
 *
 * The test seeds its own experiment and run through the API (the real trainer trains it) and waits on states, never on
 * fixed sleeps.
 */
import { test, expect } from "@playwright/test";
import { createExperiment, signIn, trpcCall, unique } from "./helpers";

test.use({ viewport: { width: 1280, height: 800 } });

test("[RUN PAGE]: a 60-epoch run shows best and last checkpoints, stays short, keeps its header in view and its curves have log scale and smoothing", async ({
  page,
}) => {
  test.setTimeout(180_000);
  await signIn(page, "engineer");
  await createExperiment(page, unique("e2e run page"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const config = {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 5 },
    },
    model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 60, seed: 2 },
  };
  const res = await trpcCall(page, "mutation", "runs.create", { experimentId, config, rationale: "e2e: a long run for the run page" });
  expect(res.status(), await res.text()).toBe(200);
  const id = ((await res.json()) as { result: { data: { id: number } } }).result.data.id;
  await page.goto(`/runs/${id}`);
  await expect(page.locator("[data-status]").first()).toHaveAttribute("data-status", "completed", { timeout: 120_000 });

  // Checkpoints: best and last only (header row + 1 or 2), the rest a click away.
  const checkpoints = page.getByRole("region", { name: "Checkpoints" });
  const table = checkpoints.getByRole("table", { name: "Checkpoints table" });
  const rows = await table.getByRole("row").count();
  expect(rows).toBeGreaterThanOrEqual(2);
  expect(rows).toBeLessThanOrEqual(3);
  await expect(table.getByRole("row").last()).toContainText("last");
  await expect(table.getByText("best", { exact: true })).toBeVisible();
  const showAll = checkpoints.getByRole("button", { name: "Show all 60 checkpoints" });
  await expect(showAll).toHaveAttribute("aria-expanded", "false");

  // The whole page stays short (a 150-epoch run used to make ~9,600 px).
  await expect(page.getByRole("img", { name: "Loss curve" })).not.toHaveAttribute("data-points", "0");
  const height = await page.evaluate(() => document.body.scrollHeight);
  expect(height).toBeLessThan(4000);

  // The header's actions stay in view at the bottom of the page; Register takes the person to the form.
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await expect.poll(() => page.evaluate(() => window.scrollY)).toBeGreaterThan(0);
  const header = page.getByRole("region", { name: "Run header" });
  const registerAction = header.getByRole("button", { name: "Register as model version" });
  await expect(registerAction).toBeInViewport();
  await expect(header.getByRole("link", { name: "Fork run" })).toBeInViewport();
  await expect(header.getByRole("link", { name: "Re-run", exact: true })).toBeInViewport();
  await expect(header.getByRole("button", { name: "Pilot" })).toBeInViewport();
  await expect(header.getByRole("button", { name: "Cancel run" })).toHaveCount(0); // completed: nothing to cancel
  await registerAction.click();
  await expect(page.getByRole("region", { name: "Register as model version" }).getByLabel("Model name")).toBeFocused();
  await expect(page.getByRole("region", { name: "Register as model version" })).toBeInViewport();

  // Pilot (a completed run: the Roll back panel).
  await header.getByRole("button", { name: "Pilot" }).click();
  await expect(page.getByRole("region", { name: "Roll back" })).toBeInViewport();

  // Expanded: every checkpoint, each with its Evaluate button (Re-evaluate for the one evaluated when training ended); collapsing again.
  await showAll.click();
  await expect(table.getByRole("row")).toHaveCount(61);
  await expect(checkpoints.getByRole("button", { name: /^(Evaluate|Re-evaluate) epoch \d+ on the test set$/ })).toHaveCount(60);
  await expect(checkpoints.getByRole("button", { name: /^Re-evaluate epoch \d+ on the test set$/ })).toHaveCount(1);
  await expect(checkpoints.getByRole("button", { name: /^(Evaluate|Re-evaluate) epoch 17 on the test set$/ })).toBeVisible();
  await checkpoints.getByRole("button", { name: "Show best and last only" }).click();
  await expect(table.getByRole("row")).toHaveCount(rows);

  // Curve controls: log scale and smoothing change the charts' state; the learning rate chart stays log and raw.
  const curves = page.getByRole("region", { name: "Curves" });
  const loss = curves.getByRole("img", { name: "Loss curve" });
  const acc = curves.getByRole("img", { name: "accuracy curve" });
  await expect(loss).toHaveAttribute("data-log-y", "false");
  await curves.getByRole("checkbox", { name: "Log scale" }).check();
  await expect(curves.getByRole("checkbox", { name: "Log scale" })).toBeChecked();
  await expect(loss).toHaveAttribute("data-log-y", "true");
  await expect(acc).toHaveAttribute("data-log-y", "true");
  await expect(loss).not.toHaveAttribute("data-points", "0"); // re-created with its points, not empty
  await expect(loss).toHaveAttribute("data-smoothing", "0.00");
  await curves.getByRole("slider", { name: "Smoothing" }).fill("0.8");
  await expect(loss).toHaveAttribute("data-smoothing", "0.80");
  await expect(acc).toHaveAttribute("data-smoothing", "0.80");
  await expect(curves.getByRole("img", { name: "Learning rate curve" })).toHaveAttribute("data-log-y", "true");
  await expect(curves.getByRole("button", { name: "Reset zoom: Loss curve" })).toBeDisabled();
});
