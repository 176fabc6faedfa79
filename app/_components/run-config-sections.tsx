"use client";
/**
 * The sections of the training-config form (run-config-form.tsx): data, model layers, training, the whole config as
 * JSON, and the diff against a fork's parent. Each section renders one part of the config and reports a patch of
 * that part; the form owns the config and validates it.
 *
 * Invariant: the labels and aria-labels here are what users and the browser tests find fields by; keep them stable.
 */
import { useState, type ReactNode } from "react";
import { useQuery } from "@tanstack/react-query";
import { ACTIVATIONS, type diffConfigs, type LayerSpec, type TrainingConfigInput } from "@/contracts/training-config";
import { useTRPC } from "@/app/_trpc/client";
import type { Task } from "@/contracts/task-metrics";
import { CleaningEditor, TrainingAdvanced, type MetricNotes } from "./config-advanced-fields";

type Cfg = TrainingConfigInput;
type Data = Cfg["data"];
type Training = Cfg["training"];

const LAYER_TYPES = [
  "dense",
  "dropout",
  "conv2d",
  "maxPooling2d",
  "flatten",
  "embedding",
  "lstm",
  "gru",
  "globalAveragePooling1d",
  "globalMaxPooling1d",
  "globalAveragePooling2d",
] as const;
const NEW_LAYER: Record<(typeof LAYER_TYPES)[number], LayerSpec | Record<string, unknown>> = {
  dense: { type: "dense", units: 16, activation: "relu" },
  dropout: { type: "dropout", rate: 0.2 },
  conv2d: { type: "conv2d", filters: 8, kernelSize: 3, activation: "relu" },
  maxPooling2d: { type: "maxPooling2d", poolSize: 2 },
  flatten: { type: "flatten" },
  embedding: { type: "embedding", outputDim: 16 },
  lstm: { type: "lstm", units: 16 },
  gru: { type: "gru", units: 16 },
  globalAveragePooling1d: { type: "globalAveragePooling1d" },
  globalMaxPooling1d: { type: "globalMaxPooling1d" },
  globalAveragePooling2d: { type: "globalAveragePooling2d" },
};

const num = (v: string) => (v.trim() === "" ? Number.NaN : Number(v));

function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <label className="field">
      <span>{label}</span>
      {children}
    </label>
  );
}

function LayerEditor({
  layer,
  index,
  onChange,
  onRemove,
}: {
  layer: Record<string, unknown>;
  index: number;
  onChange: (l: Record<string, unknown>) => void;
  onRemove: () => void;
}) {
  const set = (k: string, v: unknown) => onChange({ ...layer, [k]: v });
  const numberField = (k: string, label: string, step = "1") => (
    <Field label={label}>
      <input
        type="number"
        step={step}
        aria-label={`Layer ${index + 1} ${label}`}
        value={Number.isFinite(layer[k] as number) ? String(layer[k]) : ""}
        onChange={(e) => set(k, num(e.target.value))}
      />
    </Field>
  );
  return (
    <div className="row" style={{ alignItems: "flex-end", marginBottom: 8 }} data-testid={`layer-${index}`}>
      <strong style={{ width: 64 }}>Layer {index + 1}</strong>
      <Field label="Type">
        <select
          aria-label={`Layer ${index + 1} type`}
          value={String(layer.type)}
          onChange={(e) => onChange({ ...(NEW_LAYER[e.target.value as (typeof LAYER_TYPES)[number]] as Record<string, unknown>) })}
        >
          {LAYER_TYPES.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
      </Field>
      {"units" in layer ? numberField("units", "Units") : null}
      {"filters" in layer ? numberField("filters", "Filters") : null}
      {"kernelSize" in layer ? numberField("kernelSize", "Kernel size") : null}
      {"poolSize" in layer ? numberField("poolSize", "Pool size") : null}
      {"rate" in layer ? numberField("rate", "Rate", "0.05") : null}
      {"outputDim" in layer ? numberField("outputDim", "Embedding size") : null}
      {layer.type === "dense" || layer.type === "conv2d" ? (
        <Field label="Activation">
          <select
            aria-label={`Layer ${index + 1} activation`}
            value={String(layer.activation ?? "relu")}
            onChange={(e) => set("activation", e.target.value)}
          >
            {ACTIVATIONS.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </Field>
      ) : null}
      <button type="button" onClick={onRemove} aria-label={`Remove layer ${index + 1}`}>
        Remove
      </button>
    </div>
  );
}

export function DataSection({ data: d, onChange: setData }: { data: Data; onChange: (patch: Partial<Data>) => void }) {
  const trpc = useTRPC();
  const datasets = useQuery(trpc.datasets.list.queryOptions());
  const split = d.split ?? { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 42 };
  const setSplit = (patch: Partial<typeof split>) => setData({ split: { ...split, ...patch } });
  const datasetValue = "builtin" in d.dataset ? `builtin:${d.dataset.builtin}` : `id:${d.dataset.datasetId}`;
  return (
    <fieldset>
      <legend>Data</legend>
      <div className="form-grid">
        <Field label="Dataset">
          <select
            aria-label="Dataset"
            value={datasetValue}
            onChange={(e) => {
              const [kind, v] = e.target.value.split(":") as [string, string];
              setData({ dataset: kind === "builtin" ? { builtin: v as "iris" } : { datasetId: v } });
            }}
          >
            <option value="builtin:iris">Iris (built-in)</option>
            <option value="builtin:digits">Handwritten digits 8×8 (built-in)</option>
            <option value="builtin:sentences">Topic sentences (built-in)</option>
            {(datasets.data ?? [])
              .filter((x) => x.source === "upload")
              .map((x) => (
                <option key={x.id} value={`id:${x.id}`}>
                  {x.name} (upload #{x.id})
                </option>
              ))}
          </select>
        </Field>
        <Field label="Task">
          <select
            aria-label="Task"
            value={d.task ?? "classification"}
            onChange={(e) => setData({ task: e.target.value as "classification" })}
          >
            <option value="classification">classification</option>
            <option value="regression">regression</option>
          </select>
        </Field>
        <Field label="Normalisation (fit on train)">
          <select
            aria-label="Normalisation"
            value={d.normalization ?? "none"}
            onChange={(e) => setData({ normalization: e.target.value as "none" })}
          >
            <option value="none">none</option>
            <option value="standard">standardise (z-score)</option>
            <option value="minmax">min-max</option>
          </select>
        </Field>
        <Field label="Split strategy">
          <select aria-label="Split strategy" value={split.strategy} onChange={(e) => setSplit({ strategy: e.target.value as "random" })}>
            <option value="stratified">stratified</option>
            <option value="random">random</option>
          </select>
        </Field>
        <Field label="Train ratio">
          <input
            aria-label="Train ratio"
            type="number"
            step="0.05"
            value={split.train}
            onChange={(e) => setSplit({ train: num(e.target.value) })}
          />
        </Field>
        <Field label="Validation ratio">
          <input
            aria-label="Validation ratio"
            type="number"
            step="0.05"
            value={split.validation}
            onChange={(e) => setSplit({ validation: num(e.target.value) })}
          />
        </Field>
        <Field label="Test ratio">
          <input
            aria-label="Test ratio"
            type="number"
            step="0.05"
            value={split.test}
            onChange={(e) => setSplit({ test: num(e.target.value) })}
          />
        </Field>
        <Field label="Split seed">
          <input aria-label="Split seed" type="number" value={split.seed} onChange={(e) => setSplit({ seed: num(e.target.value) })} />
        </Field>
      </div>
      <CleaningEditor data={d} onChange={(cleaning) => setData({ cleaning })} />
    </fieldset>
  );
}

export function ModelSection({
  layers,
  onChange: setLayers,
}: {
  layers: Record<string, unknown>[];
  onChange: (layers: Record<string, unknown>[]) => void;
}) {
  return (
    <fieldset>
      <legend>Model</legend>
      <p className="muted" style={{ marginTop: 0 }}>
        Hidden layers in order; the output layer (softmax over the classes, or linear for regression) is added for you.
      </p>
      {layers.map((l, i) => (
        <LayerEditor
          key={i}
          layer={l}
          index={i}
          onChange={(nl) => setLayers(layers.map((x, j) => (j === i ? nl : x)))}
          onRemove={() => setLayers(layers.filter((_, j) => j !== i))}
        />
      ))}
      <button type="button" onClick={() => setLayers([...layers, { ...(NEW_LAYER.dense as Record<string, unknown>) }])}>
        Add layer
      </button>
    </fieldset>
  );
}

export function TrainingSection({
  training: t,
  task,
  metricNotes,
  onChange: setTraining,
}: {
  training: Training;
  /** The config's task: the metric choices offer what its runs report. */
  task: Task;
  /** Metric choices the form changed itself (the task changed), and why. */
  metricNotes?: MetricNotes;
  onChange: (patch: Partial<Training>) => void;
}) {
  return (
    <fieldset>
      <legend>Training</legend>
      <div className="form-grid">
        <Field label="Optimizer">
          <select
            aria-label="Optimizer"
            value={t.optimizer?.name ?? "adam"}
            onChange={(e) => setTraining({ optimizer: { name: e.target.value as "adam" } })}
          >
            <option value="sgd">SGD</option>
            <option value="momentum">SGD with momentum</option>
            <option value="adam">Adam</option>
            <option value="rmsprop">RMSprop</option>
          </select>
        </Field>
        {t.optimizer?.name === "momentum" ? (
          <Field label="Momentum">
            <input
              aria-label="Momentum"
              type="number"
              step="0.05"
              value={t.optimizer.momentum ?? 0.9}
              onChange={(e) => setTraining({ optimizer: { ...t.optimizer!, momentum: num(e.target.value) } })}
            />
          </Field>
        ) : null}
        <Field label="Learning rate">
          <input
            aria-label="Learning rate"
            type="number"
            step="any"
            value={Number.isFinite(t.learningRate) ? t.learningRate : ""}
            onChange={(e) => setTraining({ learningRate: num(e.target.value) })}
          />
        </Field>
        <Field label="Batch size">
          <input
            aria-label="Batch size"
            type="number"
            value={Number.isFinite(t.batchSize) ? t.batchSize : ""}
            onChange={(e) => setTraining({ batchSize: num(e.target.value) })}
          />
        </Field>
        <Field label="Epochs">
          <input
            aria-label="Epochs"
            type="number"
            value={Number.isFinite(t.epochs) ? t.epochs : ""}
            onChange={(e) => setTraining({ epochs: num(e.target.value) })}
          />
        </Field>
        <Field label="Seed">
          <input
            aria-label="Seed"
            type="number"
            value={Number.isFinite(t.seed) ? t.seed : ""}
            onChange={(e) => setTraining({ seed: num(e.target.value) })}
          />
        </Field>
      </div>
      <TrainingAdvanced training={t} task={task} metricNotes={metricNotes} onChange={setTraining} />
    </fieldset>
  );
}

/** The whole config as editable JSON; while the text does not parse, the last valid config stays in force. */
export function ConfigJsonEditor({ config: cfg, onChange: setCfg }: { config: Cfg; onChange: (config: Cfg) => void }) {
  const [jsonText, setJsonText] = useState<string | null>(null);
  return (
    <details>
      <summary>Advanced: edit the whole configuration as JSON (cleaning, schedules, early stopping, class weights…)</summary>
      <textarea
        aria-label="Configuration JSON"
        style={{ minHeight: 240, fontFamily: "var(--mono)", fontSize: 12 }}
        value={jsonText ?? JSON.stringify(cfg, null, 2)}
        onChange={(e) => {
          setJsonText(e.target.value);
          try {
            setCfg(JSON.parse(e.target.value) as Cfg);
          } catch {
            /* keep the last valid config until the JSON parses */
          }
        }}
      />
      {jsonText !== null ? (
        <button type="button" onClick={() => setJsonText(null)}>
          Done editing JSON
        </button>
      ) : null}
    </details>
  );
}

/** A fork's changes from its parent run (each becomes a decision). */
export function ParentDiff({ diff }: { diff: ReturnType<typeof diffConfigs> }) {
  return (
    <fieldset>
      <legend>Changes from the parent run</legend>
      {diff.length === 0 ? (
        <p className="muted">No changes yet: change at least one setting above.</p>
      ) : (
        <div className="table-scroll">
          <table aria-label="Changes from the parent run">
            <thead>
              <tr>
                <th>Setting</th>
                <th>Parent</th>
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
