"use client";
/** Form sections for the less common choices: the cleaning recipe, learning-rate schedule, early stopping, class weights, checkpoints. */
import type { ReactNode } from "react";
import type { CleaningStep, TrainingConfigInput } from "@/contracts/training-config";
import { naturalMode, reportedMetrics, watchableMetrics, type Task } from "@/contracts/task-metrics";

type Data = TrainingConfigInput["data"];
type Training = TrainingConfigInput["training"];
const num = (v: string) => (v.trim() === "" ? Number.NaN : Number(v));
const columnsText = (c?: string[]) => (c ?? []).join(", ");
const parseColumns = (s: string) => {
  const cols = s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  return cols.length ? cols : undefined;
};

/**
 * The metrics a select offers for the task (watchableMetrics), plus the current one when it is not among them: marked when
 * the task does not report it, so the select never shows a choice other than the config's.
 */
function metricOptions(task: Task, current: { metric: string; mode: "min" | "max" }) {
  const options = watchableMetrics(task).map((metric) => ({ metric, mode: naturalMode(metric), reported: true }));
  if (!options.some((o) => o.metric === current.metric && o.mode === current.mode))
    options.push({ ...current, reported: reportedMetrics(task).includes(current.metric) });
  return options.map((o) => ({
    value: `${o.metric}:${o.mode}`,
    metric: o.metric,
    direction: o.mode === "min" ? "lowest" : "highest",
    unreported: o.reported ? "" : ` (not reported by ${task} runs)`,
  }));
}

/** Why a metric choice changed without the user picking it (the task changed): shown under the fields, for the whole row. */
export type MetricNotes = { bestMetric?: string; earlyStopping?: string };

function MetricNote({ text }: { text?: string }) {
  if (!text) return null;
  return (
    <p role="status" className="muted" style={{ gridColumn: "1 / -1", margin: 0 }}>
      {text}
    </p>
  );
}

function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <label className="field">
      <span>{label}</span>
      {children}
    </label>
  );
}

const NEW_STEP: Record<CleaningStep["op"], CleaningStep> = {
  dropMissing: { op: "dropMissing" },
  impute: { op: "impute", strategy: "mean" },
  removeOutliers: { op: "removeOutliers", zThreshold: 3 },
};

export function CleaningEditor({ data, onChange }: { data: Data; onChange: (cleaning: CleaningStep[]) => void }) {
  const steps = (data.cleaning ?? []) as CleaningStep[];
  const set = (i: number, s: CleaningStep) => onChange(steps.map((x, j) => (j === i ? s : x)));
  return (
    <div>
      <h3>
        Cleaning recipe <span className="muted">(applied in order; each step's effect is reported)</span>
      </h3>
      {steps.length === 0 ? <p className="muted">No cleaning: rows are used as they are.</p> : null}
      {steps.map((s, i) => (
        <div className="row" key={i} style={{ alignItems: "flex-end", marginBottom: 8 }}>
          <strong style={{ width: 64 }}>Step {i + 1}</strong>
          <Field label="Operation">
            <select
              aria-label={`Cleaning step ${i + 1} operation`}
              value={s.op}
              onChange={(e) => set(i, NEW_STEP[e.target.value as CleaningStep["op"]])}
            >
              <option value="dropMissing">drop rows with missing values</option>
              <option value="impute">impute missing values</option>
              <option value="removeOutliers">remove outliers (z-score)</option>
            </select>
          </Field>
          {s.op === "impute" ? (
            <Field label="Strategy">
              <select
                aria-label={`Cleaning step ${i + 1} strategy`}
                value={s.strategy}
                onChange={(e) => set(i, { ...s, strategy: e.target.value as "mean" })}
              >
                <option value="mean">mean</option>
                <option value="median">median</option>
                <option value="mode">mode</option>
              </select>
            </Field>
          ) : null}
          {s.op === "removeOutliers" ? (
            <Field label="|z| above">
              <input
                type="number"
                step="0.5"
                aria-label={`Cleaning step ${i + 1} z threshold`}
                value={Number.isFinite(s.zThreshold) ? s.zThreshold : ""}
                onChange={(e) => set(i, { ...s, zThreshold: num(e.target.value) })}
              />
            </Field>
          ) : null}
          <Field label="Columns (blank = all)">
            <input
              aria-label={`Cleaning step ${i + 1} columns`}
              value={columnsText(s.columns)}
              onChange={(e) => set(i, { ...s, columns: parseColumns(e.target.value) })}
              placeholder="e.g. sepal_length, petal_width"
            />
          </Field>
          <button type="button" onClick={() => onChange(steps.filter((_, j) => j !== i))} aria-label={`Remove cleaning step ${i + 1}`}>
            Remove
          </button>
        </div>
      ))}
      <button type="button" onClick={() => onChange([...steps, NEW_STEP.dropMissing])}>
        Add cleaning step
      </button>
    </div>
  );
}

export function TrainingAdvanced({
  training,
  task,
  metricNotes = {},
  onChange,
}: {
  training: Training;
  /** The config's task: the metrics offered are the ones its runs report. */
  task: Task;
  metricNotes?: MetricNotes;
  onChange: (patch: Partial<Training>) => void;
}) {
  const opt = training.optimizer ?? { name: "adam" as const };
  const schedule = training.lrSchedule ?? { type: "constant" as const };
  const es = training.earlyStopping ?? null;
  const best = training.bestMetric ?? { metric: "val_loss", mode: "min" as const };
  return (
    <div className="form-grid" style={{ marginTop: 12 }}>
      {opt.name === "adam" ? (
        <>
          <Field label="Adam β1">
            <input
              type="number"
              step="0.01"
              aria-label="Adam beta1"
              value={opt.beta1 ?? 0.9}
              onChange={(e) => onChange({ optimizer: { ...opt, beta1: num(e.target.value) } })}
            />
          </Field>
          <Field label="Adam β2">
            <input
              type="number"
              step="0.001"
              aria-label="Adam beta2"
              value={opt.beta2 ?? 0.999}
              onChange={(e) => onChange({ optimizer: { ...opt, beta2: num(e.target.value) } })}
            />
          </Field>
        </>
      ) : null}
      {opt.name === "rmsprop" ? (
        <Field label="RMSprop ρ">
          <input
            type="number"
            step="0.01"
            aria-label="RMSprop rho"
            value={opt.rho ?? 0.9}
            onChange={(e) => onChange({ optimizer: { ...opt, rho: num(e.target.value) } })}
          />
        </Field>
      ) : null}
      <Field label="Learning-rate schedule">
        <select
          aria-label="Learning-rate schedule"
          value={schedule.type}
          onChange={(e) =>
            onChange({
              lrSchedule:
                e.target.value === "step"
                  ? { type: "step", everyEpochs: 10, factor: 0.5 }
                  : e.target.value === "exponential"
                    ? { type: "exponential", decayRate: 0.95, decayEpochs: 1 }
                    : { type: "constant" },
            })
          }
        >
          <option value="constant">constant</option>
          <option value="step">step decay</option>
          <option value="exponential">exponential decay</option>
        </select>
      </Field>
      {schedule.type === "step" ? (
        <>
          <Field label="Every N epochs">
            <input
              type="number"
              aria-label="Step every epochs"
              value={Number.isFinite(schedule.everyEpochs) ? schedule.everyEpochs : ""}
              onChange={(e) => onChange({ lrSchedule: { ...schedule, everyEpochs: num(e.target.value) } })}
            />
          </Field>
          <Field label="Multiply by">
            <input
              type="number"
              step="0.05"
              aria-label="Step factor"
              value={Number.isFinite(schedule.factor) ? schedule.factor : ""}
              onChange={(e) => onChange({ lrSchedule: { ...schedule, factor: num(e.target.value) } })}
            />
          </Field>
        </>
      ) : null}
      {schedule.type === "exponential" ? (
        <Field label="Decay rate per epoch">
          <input
            type="number"
            step="0.01"
            aria-label="Decay rate"
            value={Number.isFinite(schedule.decayRate) ? schedule.decayRate : ""}
            onChange={(e) => onChange({ lrSchedule: { ...schedule, decayRate: num(e.target.value) } })}
          />
        </Field>
      ) : null}
      <Field label="Early stopping">
        <select
          aria-label="Early stopping"
          value={es ? "on" : "off"}
          onChange={(e) =>
            onChange({ earlyStopping: e.target.value === "on" ? { metric: "val_loss", mode: "min", patience: 10, minDelta: 0 } : null })
          }
        >
          <option value="off">off</option>
          <option value="on">on</option>
        </select>
      </Field>
      {es ? (
        <>
          <Field label="Watch metric">
            <select
              aria-label="Early stopping metric"
              value={es.metric ?? "val_loss"}
              onChange={(e) => onChange({ earlyStopping: { ...es, metric: e.target.value, mode: naturalMode(e.target.value) } })}
            >
              {metricOptions(task, { metric: es.metric ?? "val_loss", mode: naturalMode(es.metric ?? "val_loss") }).map((o) => (
                <option key={o.value} value={o.metric}>
                  {`${o.metric}${o.unreported}`}
                </option>
              ))}
            </select>
          </Field>
          <Field label="Patience (epochs)">
            <input
              type="number"
              aria-label="Patience"
              value={Number.isFinite(es.patience) ? es.patience : ""}
              onChange={(e) => onChange({ earlyStopping: { ...es, patience: num(e.target.value) } })}
            />
          </Field>
          <MetricNote text={metricNotes.earlyStopping} />
        </>
      ) : null}
      <Field label="Class weights">
        <select
          aria-label="Class weights"
          value={training.classWeights === "balanced" ? "balanced" : "none"}
          onChange={(e) => onChange({ classWeights: e.target.value === "balanced" ? "balanced" : null })}
        >
          <option value="none">none</option>
          <option value="balanced">balanced (inverse class frequency)</option>
        </select>
      </Field>
      <Field label="Checkpoint every N epochs">
        <input
          type="number"
          aria-label="Checkpoint every"
          value={training.checkpointEvery ?? 1}
          onChange={(e) => onChange({ checkpointEvery: num(e.target.value) })}
        />
      </Field>
      <Field label="Best checkpoint by">
        <select
          aria-label="Best checkpoint by"
          value={`${best.metric}:${best.mode}`}
          onChange={(e) => {
            const [metric, mode] = e.target.value.split(":") as [string, "min" | "max"];
            onChange({ bestMetric: { metric, mode } });
          }}
        >
          {metricOptions(task, { metric: best.metric ?? "val_loss", mode: best.mode ?? "min" }).map((o) => (
            <option key={o.value} value={o.value}>
              {`${o.direction} ${o.metric}${o.unreported}`}
            </option>
          ))}
        </select>
      </Field>
      <MetricNote text={metricNotes.bestMetric} />
    </div>
  );
}
