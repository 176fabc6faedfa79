"use client";
/**
 * The Pilot panel of a run that trains or is paused (engineers only): pause, resume, stop (kept as completed,
 * "stopped by decision") and adjust settings (learning rate, total epochs, early stopping, checkpoint cadence, class
 * weights, frozen layers of a fine-tune). Each action is a request the server queues as an intervention; it takes
 * effect at the next epoch boundary and is then recorded as a decision.
 *
 * A run logged by a script through the tracking API (`script`) takes pause, resume, stop and changes of its logged
 * params (its settings: `settings`, with the values in force now): its script applies them when it checks in between
 * its epochs and acknowledges them at a step, or rejects one it cannot apply (server/mlflow/pilot.ts).
 *
 * Invariants: a rationale is required before anything is sent (an inline error says so); only the fields the
 * engineer filled are sent (an empty field keeps the current value), so the server computes old values from the
 * run's effective config; the server's message is shown unchanged when it refuses a request.
 */
import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { FormError } from "@/app/_components/states";
import type { TrainingConfig } from "@/contracts/training-config";
import type { Intervention } from "./interventions";

/** A setting of a run logged by a script: a logged param and the value in force now (runs.get scriptSettings). */
export type ScriptSettingView = { key: string; logged: string; current: string };

type Kind = "pause" | "resume" | "stop" | "set";
const ALLOWED: Record<Kind, string[]> = {
  pause: ["queued", "running"],
  resume: ["paused"],
  stop: ["queued", "running", "paused"],
  set: ["queued", "running", "paused"],
};
const VERB: Record<Kind, string> = { pause: "pause", resume: "resume", stop: "stop", set: "change" };

/** The run states in which the panel is shown. */
export const PILOTABLE_STATES = ["queued", "running", "paused"];

export function PilotPanel({
  runId,
  status,
  effective,
  interventions,
  script = false,
  settings = [],
}: {
  runId: number;
  status: string;
  /** The run's config with its applied interventions (shown as "current" values). */
  effective: TrainingConfig;
  interventions: Intervention[];
  /** A run logged by a script (tracking API): applied when the script checks in between its epochs. */
  script?: boolean;
  /** A script's run: its logged params, which a pilot may change. */
  settings?: ScriptSettingView[];
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [rationale, setRationale] = useState("");
  const [missing, setMissing] = useState<string | null>(null);
  const [fields, setFields] = useState<Fields>(EMPTY);
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [paramKey, setParamKey] = useState("");
  const [paramValue, setParamValue] = useState("");
  const request = useMutation(
    trpc.runs.pilot.request.mutationOptions({
      onSuccess: (out) => {
        setRationale("");
        setMissing(null);
        if (out.kind === "set") {
          setFields(EMPTY);
          setParamValue("");
        }
        setDone(
          script
            ? "Requested: it takes effect when the script checks in between its epochs."
            : out.kind === "resume"
              ? "Resume requested: the run continues from its last checkpoint."
              : out.kind === "set" && status === "paused"
                ? "Requested: it takes effect when the run resumes, from its pause checkpoint."
                : "Requested: it takes effect at the next epoch boundary.",
        );
        void queryClient.invalidateQueries({ queryKey: trpc.runs.pilot.list.queryKey({ runId }) });
        void queryClient.invalidateQueries({ queryKey: trpc.runs.get.queryKey({ id: runId }) });
      },
    }),
  );
  const pendingKinds = new Set(interventions.filter((i) => i.status === "pending").map((i) => i.kind));

  const send = (kind: Kind, set?: Record<string, unknown>) => {
    setDone(null);
    request.reset();
    if (rationale.trim() === "") {
      setMissing(`A rationale is required: say why you ${VERB[kind]} this run.`);
      return;
    }
    setMissing(null);
    request.mutate({ runId, kind, rationale, ...(set ? { set } : {}) });
  };

  const apply = () => {
    setFieldError(null);
    const built = buildSet(fields, effective);
    if ("error" in built) {
      setFieldError(built.error);
      return;
    }
    send("set", built.set);
  };

  const t = effective.training;
  const can = (k: Kind) => ALLOWED[k].includes(status);
  return (
    <section className="panel" aria-label="Pilot" style={{ margin: 0 }}>
      <h2 style={{ marginTop: 0 }}>Pilot</h2>
      <p className="muted" style={{ marginTop: 0 }}>
        {script
          ? "This run is logged by a script through the tracking API. Each action is queued; the script applies it when it checks in between its epochs and acknowledges it at a step; it is then recorded as a decision with the metrics of that moment."
          : "Each action is queued and takes effect at the next epoch boundary, where the run writes a checkpoint; it is then recorded as a decision with the metrics of that moment."}
      </p>
      <label className="field">
        <span>Rationale (required for every action)</span>
        <textarea
          aria-label="Pilot rationale"
          aria-invalid={missing ? true : undefined}
          value={rationale}
          onChange={(e) => {
            setRationale(e.target.value);
            if (e.target.value.trim()) setMissing(null);
          }}
          placeholder="e.g. the validation loss has been flat for 5 epochs: lower the learning rate"
        />
      </label>
      {missing ? (
        <p className="error-text" role="alert">
          {missing}
        </p>
      ) : null}
      <div className="row" style={{ marginTop: 8 }}>
        {can("pause") ? (
          <button type="button" onClick={() => send("pause")} disabled={request.isPending || pendingKinds.has("pause")}>
            {pendingKinds.has("pause") ? "Pause pending" : "Pause"}
          </button>
        ) : null}
        {can("resume") ? (
          <button
            type="button"
            className="primary"
            onClick={() => send("resume")}
            disabled={request.isPending || pendingKinds.has("resume")}
          >
            {pendingKinds.has("resume") ? "Resume pending" : "Resume"}
          </button>
        ) : null}
        <button
          type="button"
          className="danger"
          onClick={() => send("stop")}
          disabled={!can("stop") || request.isPending || pendingKinds.has("stop")}
          title={`Ends training ${script ? "when the script next checks in" : "at the next epoch boundary"}; the run is kept as completed (stopped by decision)`}
        >
          {pendingKinds.has("stop") ? "Stop pending" : "Stop (keep as completed)"}
        </button>
      </div>

      {script ? (
        <ScriptSettingsForm
          settings={settings}
          paramKey={paramKey || settings[0]?.key || ""}
          paramValue={paramValue}
          onKey={setParamKey}
          onValue={setParamValue}
          error={fieldError}
          disabled={!can("set") || request.isPending}
          onSubmit={() => {
            setFieldError(null);
            const key = paramKey || settings[0]?.key || "";
            if (!key) return setFieldError("This run has logged no param yet: there is no setting to change.");
            if (paramValue.trim() === "") return setFieldError(`New value: enter the value ${key} should take.`);
            send("set", { [key]: paramValue.trim() });
          }}
        />
      ) : (
        <form
          aria-label="Adjust settings"
          style={{ marginTop: 12 }}
          onSubmit={(e) => {
            e.preventDefault();
            apply();
          }}
        >
          <fieldset style={{ marginBottom: 8 }}>
            <legend>Adjust (empty fields keep their current value)</legend>
            <div className="form-grid">
              <NumberField
                label="Learning rate"
                hint={`current ${t.learningRate}`}
                value={fields.learningRate}
                step="any"
                onChange={(v) => setFields({ ...fields, learningRate: v })}
              />
              <NumberField
                label="Total epochs"
                hint={`current ${t.epochs}`}
                value={fields.epochs}
                step="1"
                onChange={(v) => setFields({ ...fields, epochs: v })}
              />
              <NumberField
                label="Checkpoint every (epochs)"
                hint={`current every ${t.checkpointEvery} epoch${t.checkpointEvery === 1 ? "" : "s"}`}
                value={fields.checkpointEvery}
                step="1"
                onChange={(v) => setFields({ ...fields, checkpointEvery: v })}
              />
              <label className="field">
                <span>Early stopping</span>
                <select
                  aria-label="Early stopping"
                  value={fields.earlyStopping}
                  onChange={(e) => setFields({ ...fields, earlyStopping: e.target.value as Fields["earlyStopping"] })}
                >
                  <option value="">
                    unchanged ({t.earlyStopping ? `patience ${t.earlyStopping.patience} epochs on ${t.earlyStopping.metric}` : "off"})
                  </option>
                  <option value="off">off</option>
                  <option value="on">on: set patience and min delta</option>
                </select>
              </label>
              {fields.earlyStopping === "on" ? (
                <>
                  <NumberField
                    label="Patience (epochs)"
                    hint={t.earlyStopping ? `current ${t.earlyStopping.patience}` : "e.g. 5"}
                    value={fields.patience}
                    step="1"
                    onChange={(v) => setFields({ ...fields, patience: v })}
                  />
                  <NumberField
                    label="Min delta"
                    hint={t.earlyStopping ? `current ${t.earlyStopping.minDelta}` : "e.g. 0.001"}
                    value={fields.minDelta}
                    step="any"
                    onChange={(v) => setFields({ ...fields, minDelta: v })}
                  />
                </>
              ) : null}
              {effective.data.task === "classification" ? (
                <label className="field">
                  <span>Class weights</span>
                  <select
                    aria-label="Class weights"
                    value={fields.classWeights}
                    onChange={(e) => setFields({ ...fields, classWeights: e.target.value as Fields["classWeights"] })}
                  >
                    <option value="">
                      unchanged ({t.classWeights === null ? "none" : typeof t.classWeights === "string" ? t.classWeights : "custom"})
                    </option>
                    <option value="none">none</option>
                    <option value="balanced">balanced</option>
                    <option value="custom">custom (JSON)</option>
                  </select>
                </label>
              ) : null}
              {fields.classWeights === "custom" ? (
                <label className="field">
                  <span>Weights by class (JSON)</span>
                  <input
                    aria-label="Weights by class"
                    className="mono"
                    value={fields.classWeightsJson}
                    placeholder='{"setosa": 2, "virginica": 1}'
                    onChange={(e) => setFields({ ...fields, classWeightsJson: e.target.value })}
                  />
                </label>
              ) : null}
              {effective.fineTune ? (
                <NumberField
                  label="Frozen layers (first N)"
                  hint={`current ${effective.fineTune.freezeLayers}`}
                  value={fields.freezeLayers}
                  step="1"
                  onChange={(v) => setFields({ ...fields, freezeLayers: v })}
                />
              ) : null}
            </div>
          </fieldset>
          {fieldError ? (
            <p className="error-text" role="alert">
              {fieldError}
            </p>
          ) : null}
          <button type="submit" disabled={!can("set") || request.isPending}>
            Apply changes
          </button>
        </form>
      )}
      <FormError error={request.error} />
      {done ? (
        <p className="muted" role="status">
          {done}
        </p>
      ) : null}
    </section>
  );
}

/** A script's run: change one logged param (the script applies the new value from the step it acknowledges it at). */
function ScriptSettingsForm(p: {
  settings: ScriptSettingView[];
  paramKey: string;
  paramValue: string;
  onKey: (k: string) => void;
  onValue: (v: string) => void;
  error: string | null;
  disabled: boolean;
  onSubmit: () => void;
}) {
  const current = p.settings.find((s) => s.key === p.paramKey);
  return (
    <form
      aria-label="Change a param"
      style={{ marginTop: 12 }}
      onSubmit={(e) => {
        e.preventDefault();
        p.onSubmit();
      }}
    >
      <fieldset style={{ marginBottom: 8 }}>
        <legend>Change a param (the script applies it and acknowledges it at a step)</legend>
        {p.settings.length === 0 ? (
          <p className="muted">The script has logged no param yet.</p>
        ) : (
          <div className="form-grid">
            <label className="field">
              <span>Param</span>
              <select aria-label="Param" value={p.paramKey} onChange={(e) => p.onKey(e.target.value)}>
                {p.settings.map((s) => (
                  <option key={s.key} value={s.key}>
                    {s.key} (current {s.current})
                  </option>
                ))}
              </select>
            </label>
            <label className="field">
              <span>New value</span>
              <input aria-label="New value" className="mono" value={p.paramValue} onChange={(e) => p.onValue(e.target.value)} />
              <small className="muted">{current ? `current ${current.current}` : ""}</small>
            </label>
          </div>
        )}
      </fieldset>
      {p.error ? (
        <p className="error-text" role="alert">
          {p.error}
        </p>
      ) : null}
      <button type="submit" disabled={p.disabled || p.settings.length === 0}>
        Request change
      </button>
    </form>
  );
}

type Fields = {
  learningRate: string;
  epochs: string;
  checkpointEvery: string;
  earlyStopping: "" | "off" | "on";
  patience: string;
  minDelta: string;
  classWeights: "" | "none" | "balanced" | "custom";
  classWeightsJson: string;
  freezeLayers: string;
};
const EMPTY: Fields = {
  learningRate: "",
  epochs: "",
  checkpointEvery: "",
  earlyStopping: "",
  patience: "",
  minDelta: "",
  classWeights: "",
  classWeightsJson: "",
  freezeLayers: "",
};

/**
 * The set map of the filled fields. Only text that is not a number is refused here (the browser would send null);
 * ranges and types are the server's to judge (contracts/pilot-config.ts), and its message is shown as it is.
 */
function buildSet(f: Fields, effective: TrainingConfig): { set: Record<string, unknown> } | { error: string } {
  const set: Record<string, unknown> = {};
  const problems: string[] = [];
  const number = (label: string, path: string, text: string) => {
    if (text.trim() === "") return;
    const v = Number(text);
    if (!Number.isFinite(v)) problems.push(`${label}: enter a number (got “${text}”)`);
    else set[path] = v;
  };
  number("Learning rate", "training.learningRate", f.learningRate);
  number("Total epochs", "training.epochs", f.epochs);
  number("Checkpoint every", "training.checkpointEvery", f.checkpointEvery);
  number("Frozen layers", "fineTune.freezeLayers", f.freezeLayers);
  if (f.earlyStopping === "off") set["training.earlyStopping"] = null;
  if (f.earlyStopping === "on") {
    const es: Record<string, unknown> = { ...(effective.training.earlyStopping ?? {}) };
    const patience = f.patience.trim() === "" ? effective.training.earlyStopping?.patience : Number(f.patience);
    if (patience === undefined) problems.push("Patience: enter a number of epochs to turn early stopping on");
    else if (!Number.isFinite(patience)) problems.push(`Patience: enter a number (got “${f.patience}”)`);
    else es.patience = patience;
    if (f.minDelta.trim() !== "") {
      const d = Number(f.minDelta);
      if (!Number.isFinite(d)) problems.push(`Min delta: enter a number (got “${f.minDelta}”)`);
      else es.minDelta = d;
    }
    set["training.earlyStopping"] = es;
  }
  if (f.classWeights === "none") set["training.classWeights"] = null;
  if (f.classWeights === "balanced") set["training.classWeights"] = "balanced";
  if (f.classWeights === "custom") {
    try {
      set["training.classWeights"] = JSON.parse(f.classWeightsJson) as unknown;
    } catch {
      problems.push('Weights by class: enter a JSON object such as {"setosa": 2}');
    }
  }
  if (problems.length) return { error: problems.join("; ") };
  if (Object.keys(set).length === 0) return { error: "Nothing to change: fill at least one field." };
  return { set };
}

function NumberField({
  label,
  hint,
  value,
  step,
  onChange,
}: {
  label: string;
  hint: string;
  value: string;
  step: string;
  onChange: (v: string) => void;
}) {
  return (
    <label className="field">
      <span>{label}</span>
      <input
        aria-label={label}
        inputMode="decimal"
        step={step}
        value={value}
        placeholder="unchanged"
        onChange={(e) => onChange(e.target.value)}
      />
      <small className="muted">{hint}</small>
    </label>
  );
}
