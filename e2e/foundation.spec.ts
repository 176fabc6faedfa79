import { test, expect } from "@playwright/test";
import { createExperiment, DEMO, signIn, trpcCall, unique } from "./helpers";

test("[AUTH]: a wrong password is refused", async ({ page }) => {
  await page.goto("/signin");
  await page.getByLabel("Email").fill(DEMO.engineer.email);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "wrong email or password" })).toBeVisible();
  await page.goto("/");
  await expect(page).toHaveURL(/\/signin/);
});

test("[RUNS]: an engineer launches a run on Iris, watches the curves grow and sees it complete", async ({ page }) => {
  await signIn(page, "engineer");
  const experiment = unique("e2e iris");
  await createExperiment(page, experiment);
  await page.getByRole("link", { name: "New run" }).click();
  await page.getByLabel("Dataset", { exact: true }).selectOption("builtin:iris");
  // 600 epochs, a checkpoint every 5: the run lasts several of the run page's 1 s refreshes on a fast machine too
  // (120 epochs took 1.3 s, and the page then saw one point count before "completed"), and keeps 120 checkpoints.
  await page.getByLabel("Epochs").fill("600");
  await page.getByLabel("Checkpoint every").fill("5");
  await page.getByLabel("Learning rate").fill("0.02");
  await page.getByLabel("Rationale").fill("e2e: baseline MLP on Iris");
  await page.getByRole("button", { name: "Launch run" }).click();

  await expect(page).toHaveURL(/\/runs\/\d+/);
  const loss = page.getByRole("img", { name: "Loss curve" });
  // The curve grows while the run is live: we see several different, non-zero point counts before it completes.
  const seen = new Set<number>();
  await expect
    .poll(
      async () => {
        seen.add(Number(await loss.getAttribute("data-points")));
        return page.locator("[data-status]").first().getAttribute("data-status");
      },
      { timeout: 120_000, intervals: [200] },
    )
    .toBe("completed");
  const counts = [...seen].filter((n) => n > 0).sort((a, b) => a - b);
  expect(counts.length).toBeGreaterThanOrEqual(2);
  await expect.poll(async () => Number(await loss.getAttribute("data-points"))).toBeGreaterThan(counts[0]!);

  const summary = page.getByRole("region", { name: "Summary" });
  await expect(summary).toContainText(/Backend(wasm|cpu|tensorflow)/);
  const checkpoints = page.getByRole("table", { name: "Checkpoints table" });
  await page.getByRole("button", { name: "Show all 120 checkpoints" }).click(); // collapsed to best and last by default
  await expect(checkpoints.getByRole("row")).toHaveCount(121); // header + one per 5 epochs
  await expect(page.getByRole("table", { name: "Confusion matrix" })).toBeVisible();

  await page.getByRole("link", { name: experiment }).click();
  const runs = page.getByRole("table", { name: "Runs" });
  await expect(runs.getByRole("row")).toHaveCount(2);
  await expect(runs.locator("[data-status]").first()).toHaveAttribute("data-status", "completed");
});

test("[ROLES]: an auditor cannot launch a run, and the server refuses it too", async ({ page }) => {
  await signIn(page, "auditor");
  await page.getByRole("link", { name: "iris-mlp" }).click();
  await expect(page.getByRole("heading", { name: "iris-mlp" })).toBeVisible();
  await expect(page.getByRole("link", { name: "New run" })).toHaveCount(0);
  const res = await trpcCall(page, "mutation", "runs.create", {
    experimentId: 1,
    config: {
      data: { dataset: { builtin: "iris" } },
      model: { layers: [] },
      training: { learningRate: 0.01, batchSize: 8, epochs: 1, seed: 1 },
    },
    rationale: "should be refused",
  });
  expect(res.status()).toBe(403);
  expect(await res.text()).toContain("auditor cannot");
});

test("[NOT FOUND]: an address no page answers says so in the app's style (404) and leads back to the projects", async ({ page }) => {
  await signIn(page, "auditor");
  const response = await page.goto("/no-such-page");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { level: 1, name: "Page not found" })).toBeVisible();
  await expect(page.getByText("There is no page at this address")).toBeVisible();
  await page.getByRole("link", { name: "Go to projects" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByText(DEMO.auditor.name)).toBeVisible();
  // The addresses the menu and breadcrumbs suggest lead to the projects page instead.
  for (const guessed of ["/projects", "/experiments"]) {
    await page.goto(guessed);
    await expect(page).toHaveURL(/127\.0\.0\.1:\d+\/$/);
    await expect(page.getByRole("heading", { level: 1, name: "Page not found" })).toHaveCount(0);
  }
});
