"use client";
/**
 * The training-config form, validated in the browser with the same zod schema the server and trainer use.
 * Used by "New run" (which passes the chosen baseline run's config: the diff against it is shown, and may be empty — a
 * like-for-like repeat) and by "Fork run" (which passes the parent's config and requires a diff). The form owns the
 * config, the rationale and validation; its sections (run-config-sections.tsx) render and patch one part each.
 */
import { useMemo, useState, type ReactNode } from "react";
import { diffConfigs, parseTrainingConfig, type LayerSpec, type TrainingConfigInput } from "@/contracts/training-config";
import { metricChoiceProblem, metricForTask, type Task } from "@/contracts/task-metrics";
import type { MetricNotes } from "./config-advanced-fields";
import { MemoryEstimate } from "./memory-estimate";
import { ConfigJsonEditor, DataSection, ModelSection, ParentDiff, TrainingSection } from "./run-config-sections";

export const DEFAULT_CONFIG: TrainingConfigInput = {
  data: {
    dataset: { builtin: "iris" },
    task: "classification",
    cleaning: [],
    normalization: "standard",
    // Split seed 7: the demo baseline's (server/demo/seed.ts), so a first run is compared with it on the same split (like for like).
    split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 7 },
  },
  model: { layers: [{ type: "dense", units: 16, activation: "relu" }] },
  training: { optimizer: { name: "adam" }, learningRate: 0.01, batchSize: 16, epochs: 30, seed: 42 },
};

type Cfg = TrainingConfigInput;

export function RunConfigForm({
  initial,
  parentConfig,
  submitLabel,
  busy,
  serverError,
  onSubmit,
  extra,
  estimateConfig,
  baseline,
  lockedModel,
}: {
  initial: Cfg;
  /** When forking: the parent's config, to show and require rationale for the diff. */
  parentConfig?: unknown;
  submitLabel: string;
  busy: boolean;
  serverError: unknown;
  onSubmit: (config: Cfg, rationale: string) => void;
  extra?: ReactNode;
  /** When starting a new run from a baseline run: its label and config, to show what this run changes (not required). */
  baseline?: { label: string; config: unknown };
  /** What "Estimate size" sizes: the form's config as it will be submitted (a fine-tune adds its parent and transfer settings). */
  estimateConfig?: (config: Cfg) => Cfg;
  /** Why the layers cannot change here (a fine-tune trains its parent's architecture): shown, and the layer controls disabled. */
  lockedModel?: string;
}) {
  const [cfg, setCfg] = useState<Cfg>(initial);
  const [rationale, setRationale] = useState("");
  const [metricNotes, setMetricNotes] = useState<MetricNotes>({});
  const parsed = useMemo(() => parseTrainingConfig(cfg), [cfg]);
  // A metric the task does not report is refused at launch (trainer/fit.ts checkWatchedMetrics): the form refuses it like an invalid field.
  const problem = !parsed.ok ? parsed.message : metricChoiceProblem(parsed.config);
  const diff = useMemo(() => (parentConfig && parsed.ok ? diffConfigs(parentConfig, parsed.config) : []), [parentConfig, parsed]);
  const baselineDiff = useMemo(() => (baseline && parsed.ok ? diffConfigs(baseline.config, parsed.config) : null), [baseline, parsed]);
  const t = cfg.training;
  const d = cfg.data;
  const task: Task = d.task ?? "classification";
  const setTraining = (patch: Partial<Cfg["training"]>) => {
    setCfg({ ...cfg, training: { ...t, ...patch } });
    // The user picked: the note on why the form had changed that choice no longer applies.
    if ("bestMetric" in patch) setMetricNotes((n) => ({ ...n, bestMetric: undefined }));
    if ("earlyStopping" in patch && patch.earlyStopping?.metric !== t.earlyStopping?.metric)
      setMetricNotes((n) => ({ ...n, earlyStopping: undefined }));
  };
  const setData = (patch: Partial<Cfg["data"]>) => {
    if (patch.task === undefined || patch.task === task) return setCfg({ ...cfg, data: { ...d, ...patch } });
    // A new task: a watched metric it does not report becomes its counterpart, and the form says so.
    const next = patch.task;
    const notes: MetricNotes = {};
    let training = t;
    const best = t.bestMetric ?? { metric: "val_loss", mode: "min" as const };
    const bestFor = metricForTask(best.metric ?? "val_loss", next);
    if (bestFor) {
      training = { ...training, bestMetric: bestFor };
      notes.bestMetric = `Best checkpoint by: ${next} runs do not report ${best.metric}, so the best checkpoint is now the one with the ${bestFor.mode === "min" ? "lowest" : "highest"} ${bestFor.metric}.`;
    }
    const es = t.earlyStopping;
    const esFor = es ? metricForTask(es.metric ?? "val_loss", next) : null;
    if (es && esFor) {
      training = { ...training, earlyStopping: { ...es, ...esFor } };
      notes.earlyStopping = `Early stopping: ${next} runs do not report ${es.metric}, so it now watches ${esFor.metric}.`;
    }
    setMetricNotes(notes);
    setCfg({ ...cfg, data: { ...d, ...patch }, training });
  };
  const layers = cfg.model.layers as Record<string, unknown>[];
  const setLayers = (ls: Record<string, unknown>[]) => setCfg({ ...cfg, model: { layers: ls as LayerSpec[] } });

  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (parsed.ok && problem === null) onSubmit(cfg, rationale);
      }}
    >
      <DataSection data={d} onChange={setData} />
      {lockedModel ? (
        // A fieldset without a frame: `disabled` turns off every layer control inside it.
        <fieldset disabled aria-label="Model (fixed)" style={{ border: 0, padding: 0, margin: 0 }}>
          <ModelSection layers={layers} onChange={setLayers} />
          <p className="muted" role="note" style={{ marginTop: -6 }}>
            {lockedModel}
          </p>
        </fieldset>
      ) : (
        <ModelSection layers={layers} onChange={setLayers} />
      )}
      <TrainingSection training={t} task={task} metricNotes={metricNotes} onChange={setTraining} />
      <ConfigJsonEditor config={cfg} onChange={setCfg} />
      {parentConfig ? <ParentDiff diff={diff} /> : null}
      {baseline && baselineDiff ? <BaselineDiff label={baseline.label} diff={baselineDiff} /> : null}
      {extra}
      <MemoryEstimate config={parsed.ok ? (estimateConfig ? estimateConfig(cfg) : cfg) : null} />
      <label className="field" style={{ marginBottom: 12 }}>
        <span>Why this configuration? (recorded as your decision)</span>
        <textarea
          aria-label="Rationale"
          value={rationale}
          onChange={(e) => setRationale(e.target.value)}
          placeholder={
            baseline
              ? `what this run changes vs ${baseline.label} (see the changes above), and why`
              : "e.g. baseline with a small MLP; lower learning rate because the loss oscillated"
          }
        />
      </label>
      {problem !== null ? (
        <p className="error-text" role="alert">
          {problem}
        </p>
      ) : null}
      <FormErrorText error={serverError} />
      <button
        className="primary"
        type="submit"
        disabled={busy || problem !== null || rationale.trim() === "" || (!!parentConfig && diff.length === 0)}
      >
        {busy ? "Launching…" : submitLabel}
      </button>
      {rationale.trim() === "" ? (
        <span className="muted" style={{ marginLeft: 8 }}>
          A rationale is required.
        </span>
      ) : null}
    </form>
  );
}

/** What the form changes against the baseline run it started from; none = a like-for-like repeat of it. */
function BaselineDiff({ label, diff }: { label: string; diff: ReturnType<typeof diffConfigs> }) {
  return (
    <fieldset>
      <legend>Changes from the baseline, {label}</legend>
      {diff.length === 0 ? (
        <p className="muted">Same configuration as the baseline (split seed included): a like-for-like comparison.</p>
      ) : (
        <div className="table-scroll">
          <table aria-label="Changes from the baseline">
            <thead>
              <tr>
                <th>Setting</th>
                <th>Baseline</th>
                <th>This run</th>
              </tr>
            </thead>
            <tbody>
              {diff.map((c) => (
                <tr key={c.path}>
                  <td className="mono">{c.path}</td>
                  <td className="mono">{JSON.stringify(c.oldValue)}</td>
                  <td className="mono">{JSON.stringify(c.newValue)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </fieldset>
  );
}

function FormErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p className="error-text" role="alert">
      {error instanceof Error ? error.message : String(error)}
    </p>
  );
}
