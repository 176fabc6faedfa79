/**
 * The epoch metrics a run reports, by task: what training.bestMetric and training.earlyStopping may watch. Every launch
 * refuses any other name (trainer/fit.ts checkWatchedMetrics, in the estimate), and so does the trainer
 * (checkTrainInputs); the run form (app/_components/run-config-form.tsx) offers only these, so all read this one list.
 *
 * Invariant: classification reports accuracy, regression mae (mean absolute error), never the other; the val_ metrics
 * exist only when the validation partition has rows.
 */
export type Task = "classification" | "regression";

/** The task's own score: accuracy for classification, mae for regression. */
export const taskScore = (task: Task): "accuracy" | "mae" => (task === "classification" ? "accuracy" : "mae");

/** Every metric name a run of `task` reports each epoch, in the trainer's order. */
export function reportedMetrics(task: Task, hasValidation = true): string[] {
  const score = taskScore(task);
  return ["loss", score, "lr", ...(hasValidation ? ["val_loss", `val_${score}`] : [])];
}

/** The metrics worth watching for the best checkpoint or early stopping (lr is reported but not a score), validation first. */
export function watchableMetrics(task: Task): string[] {
  const score = taskScore(task);
  return ["val_loss", `val_${score}`, "loss", score];
}

/** Which way is better: accuracy higher, loss and mae lower. */
export const naturalMode = (metric: string): "min" | "max" => (/(^|_)accuracy$/.test(metric) ? "max" : "min");

/**
 * What a metric becomes when the task changes: the same partition's task score (val_accuracy ↔ val_mae, accuracy ↔
 * mae), otherwise val_loss (the schema's default), with its natural direction; null when the new task reports it too.
 */
export function metricForTask(metric: string, task: Task): { metric: string; mode: "min" | "max" } | null {
  if (reportedMetrics(task).includes(metric)) return null;
  const score = taskScore(task);
  const next =
    metric === "accuracy" || metric === "mae" ? score : metric === "val_accuracy" || metric === "val_mae" ? `val_${score}` : "val_loss";
  return { metric: next, mode: naturalMode(next) };
}

/** The parts of a (parsed) config the metric choices depend on. */
type MetricChoices = {
  data: { task: Task };
  training: { bestMetric: { metric: string }; earlyStopping: { metric: string } | null };
};

/**
 * Why the config's best-checkpoint or early-stopping metric cannot be watched (a launch would be refused), naming the path, the metric and the ones the task offers; null when both can. (The split schema keeps
 * the validation ratio above 0, so the val_ metrics are reported unless a tiny dataset leaves that partition empty.)
 */
export function metricChoiceProblem(config: MetricChoices): string | null {
  const { task } = config.data;
  const choices: [string, string][] = [["training.bestMetric.metric", config.training.bestMetric.metric]];
  if (config.training.earlyStopping) choices.push(["training.earlyStopping.metric", config.training.earlyStopping.metric]);
  for (const [path, metric] of choices)
    if (!reportedMetrics(task).includes(metric))
      return `${path}: ${task} runs do not report "${metric}"; choose one of ${watchableMetrics(task).join(", ")}`;
  return null;
}
