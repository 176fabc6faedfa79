/**
 * The run form's metric choices follow the task (contracts/task-metrics.ts): "Best checkpoint by" and early stopping's
 * "Watch metric" offer only the metrics the task reports, a task change replaces a choice the new task does not report
 * (and says so), and a config that still names one (through the JSON editor) is refused with the reason. The fork and
 * fine-tune forms are the same component (app/_components/run-config-form.tsx).
 */
import { test, expect } from "@playwright/test";
import { createExperiment, signIn, unique } from "./helpers";

test("[NEW RUN]: the metric choices are the task's, and a task change replaces one the new task does not report, saying so", async ({
  page,
}) => {
  await signIn(page, "engineer");
  await createExperiment(page, unique("e2e metric choices"));
  await page.getByRole("link", { name: "New run" }).first().click();
  await expect(page).toHaveURL(/\/new-run$/);

  const best = page.getByRole("combobox", { name: "Best checkpoint by" });
  await expect(best.getByRole("option")).toHaveText(["lowest val_loss", "highest val_accuracy", "lowest loss", "highest accuracy"]);
  await best.selectOption({ label: "highest val_accuracy" });
  await page.getByRole("combobox", { name: "Early stopping", exact: true }).selectOption("on");
  const watch = page.getByRole("combobox", { name: "Early stopping metric" });
  await expect(watch.getByRole("option")).toHaveText(["val_loss", "val_accuracy", "loss", "accuracy"]);
  await watch.selectOption("accuracy");

  const task = page.getByRole("combobox", { name: "Task", exact: true });
  await task.selectOption("regression");
  await expect(best.getByRole("option")).toHaveText(["lowest val_loss", "lowest val_mae", "lowest loss", "lowest mae"]);
  await expect(best).toHaveValue("val_mae:min");
  await expect(page.getByRole("status").filter({ hasText: "Best checkpoint by" })).toHaveText(
    "Best checkpoint by: regression runs do not report val_accuracy, so the best checkpoint is now the one with the lowest val_mae.",
  );
  await expect(watch.getByRole("option")).toHaveText(["val_loss", "val_mae", "loss", "mae"]);
  await expect(watch).toHaveValue("mae");
  await expect(page.getByRole("status").filter({ hasText: "Early stopping" })).toHaveText(
    "Early stopping: regression runs do not report accuracy, so it now watches mae.",
  );

  // Picking a metric clears the note; a choice both tasks report is kept without one.
  await best.selectOption({ label: "lowest val_loss" });
  await expect(page.getByRole("status").filter({ hasText: "Best checkpoint by" })).toHaveCount(0);
  await task.selectOption("classification");
  await expect(best).toHaveValue("val_loss:min");
  await expect(page.getByRole("status").filter({ hasText: "Best checkpoint by" })).toHaveCount(0);
  await expect(watch).toHaveValue("accuracy");
  await expect(page.getByRole("status").filter({ hasText: "Early stopping" })).toContainText("so it now watches accuracy.");

  // A metric the task does not report, set through the JSON editor, is shown as such and refused before launch.
  await page.getByText("Advanced: edit the whole configuration as JSON").click();
  const json = page.getByRole("textbox", { name: "Configuration JSON" });
  const config = JSON.parse(await json.inputValue()) as { training: Record<string, unknown> };
  config.training.bestMetric = { metric: "val_mae", mode: "min" };
  await json.fill(JSON.stringify(config, null, 2));
  await expect(best).toHaveValue("val_mae:min");
  await expect(best.getByRole("option", { name: "lowest val_mae (not reported by classification runs)" })).toHaveCount(1);
  const refusal = page.getByRole("alert").filter({ hasText: "training.bestMetric.metric" });
  await expect(refusal).toHaveText(
    'training.bestMetric.metric: classification runs do not report "val_mae"; choose one of val_loss, val_accuracy, loss, accuracy',
  );
  await page.getByRole("textbox", { name: "Rationale" }).fill("e2e: a metric the task does not report");
  await expect(page.getByRole("button", { name: "Launch run" })).toBeDisabled();
  await best.selectOption({ label: "highest val_accuracy" });
  await expect(refusal).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Launch run" })).toBeEnabled();
});
