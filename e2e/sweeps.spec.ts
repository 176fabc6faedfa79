/**
 * Sweeps (issue 17): an engineer starts a sweep from the sweeps page (a bad search space is refused with the path at
 * fault and creates nothing; a spec that is not JSON then shows only that message, not the server's earlier one; the
 * rationale is its own field, required),
 * watches its trials arrive and finish on its page, and chooses the winner with a rationale. The test seeds its own
 * experiment; the real trainer trains every trial; it waits on states, not time.
 */
import { test, expect } from "@playwright/test";
import { createExperiment, signIn, unique } from "./helpers";

test("[SWEEPS]: an engineer starts a sweep, watches its trials, and picks the winner with a rationale", async ({ page }) => {
  test.setTimeout(240_000);
  await signIn(page, "engineer");
  const experiment = unique("e2e sweep");
  await createExperiment(page, experiment);
  const spec = (min: number) => ({
    name: unique("lr sweep"),
    base: {
      data: { dataset: { builtin: "iris" }, normalization: "standard" },
      model: { layers: [{ type: "dense", units: 12, activation: "relu" }] },
      training: { optimizer: { name: "adam" }, learningRate: 0.02, batchSize: 16, epochs: 3, seed: 4 },
    },
    space: { "training.learningRate": { type: "logUniform", min, max: 0.1 }, "model.layers.0.units": { type: "choice", values: [8, 16] } },
    method: "random",
    budget: { maxTrials: 2, maxParallel: 1 },
    metric: { name: "val_loss", direction: "minimize" },
    seed: 3,
    rationale: "e2e: learning rate and width",
  });

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sweeps" }).click();
  const form = page.getByRole("region", { name: "Start a sweep" });
  await form.getByRole("combobox", { name: "Experiment" }).selectOption({ label: `Demo: flower classifier / ${experiment}` });
  await form.getByRole("textbox", { name: /Spec/ }).fill(JSON.stringify(spec(0)));
  await form.getByRole("button", { name: "Start sweep" }).click();
  await expect(form.getByRole("alert")).toHaveText("invalid sweep: space.training.learningRate: min must be > 0 for log scale");
  await expect(page).toHaveURL(/\/sweeps$/);
  // A spec that is not JSON next: only its own message shows, not the server's answer to the spec before it.
  await form.getByRole("textbox", { name: /Spec/ }).fill("{ not json");
  await form.getByRole("button", { name: "Start sweep" }).click();
  await expect(form.getByRole("alert")).toHaveCount(1);
  await expect(form.getByRole("alert")).toHaveText(/^The spec is not valid JSON: /);

  // The rationale goes in its own field, as on every launch: a spec without one and an empty field are refused here.
  const { rationale: _inSpec, ...withoutRationale } = spec(0.005);
  await form.getByRole("textbox", { name: /Spec/ }).fill(JSON.stringify(withoutRationale));
  await form.getByRole("button", { name: "Start sweep" }).click();
  await expect(form.getByRole("alert")).toHaveText("A rationale is required: say why this search.");
  await expect(page).toHaveURL(/\/sweeps$/);
  await form.getByRole("textbox", { name: "Rationale" }).fill("e2e: does a smaller learning rate or a wider layer help?");
  await form.getByRole("button", { name: "Start sweep" }).click();
  await expect(page).toHaveURL(/\/sweeps\/\d+$/);
  await expect(page.getByText("“e2e: does a smaller learning rate or a wider layer help?”")).toBeVisible();
  const progress = page.getByRole("region", { name: "Progress" });
  await expect(progress.locator("[data-status]")).toHaveAttribute("data-status", "completed", { timeout: 180_000 });
  const trials = page.getByRole("region", { name: "Trials" });
  await expect(trials.getByRole("row")).toHaveCount(3); // header + 2 trials
  await expect(page.getByRole("img", { name: "Parallel coordinates chart" })).toBeVisible();
  await expect(page.getByRole("region", { name: "Importance" })).toContainText("Needs at least 3 trials with a value");

  const choose = page.getByRole("form", { name: "Choose the winner" });
  await choose.getByRole("textbox", { name: "Why this one" }).fill("lowest validation loss of the two");
  await choose.getByRole("button", { name: "Choose winner" }).click();
  await expect(page.getByRole("region", { name: "Best trials" })).toContainText(
    /Winner: run #\d+, chosen by Erin Engineer: “lowest validation loss of the two”/,
  );
  await expect(trials.getByText("(winner)")).toBeVisible();
});
