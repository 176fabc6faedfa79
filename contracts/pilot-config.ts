/**
 * What a pilot may change in a run's configuration while it trains, and the run's effective configuration: its
 * immutable config with the changes of its applied interventions laid over it, in the order they were applied.
 *
 * Invariants:
 * - Only the paths of PILOTABLE_PATHS can be changed; each new value is validated by the zod schema of that same
 *   path of trainingConfigSchema (contracts/training-config.ts), so a pilot can set only what a config may hold,
 *   and the config with the change applied must still parse as a whole.
 * - effectiveConfig is pure: the same config and the same applied changes give the same result (no clock, no I/O).
 * - A change list is sorted by path and holds each path once; old values are those of the effective config.
 * This module holds only zod schemas and pure helpers, so browser code may import it.
 */
import type { z } from "zod";
import type { PlannedControl } from "./training-control";
import {
  describeConfigIssues,
  fineTuneSchema,
  lrScheduleSchema,
  trainingConfigSchema,
  trainingSchema,
  type TrainingConfig,
} from "./training-config";

const t = trainingSchema.shape;
const earlyStoppingObject = t.earlyStopping.unwrap().unwrap();
const es = earlyStoppingObject.shape;

/** Config path → the schema its new value must pass. */
export const PILOTABLE_PATHS: Readonly<Record<string, z.ZodType>> = {
  "training.learningRate": t.learningRate,
  "training.lrSchedule": lrScheduleSchema,
  "training.epochs": t.epochs,
  "training.earlyStopping": earlyStoppingObject.nullable(),
  "training.earlyStopping.metric": es.metric.unwrap(),
  "training.earlyStopping.mode": es.mode.unwrap(),
  "training.earlyStopping.patience": es.patience,
  "training.earlyStopping.minDelta": es.minDelta.unwrap(),
  "training.classWeights": t.classWeights.unwrap().unwrap().nullable(),
  "training.checkpointEvery": t.checkpointEvery.unwrap(),
  "fineTune.freezeLayers": fineTuneSchema.shape.freezeLayers.unwrap(),
};

export type ConfigChange = { path: string; oldValue: unknown; newValue: unknown };

/** The value at a dotted path ("training.earlyStopping.patience"); undefined when a step is missing or null. */
export function getConfigPath(config: unknown, path: string): unknown {
  let v: unknown = config;
  for (const key of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** A copy of `config` with `value` at `path` (objects along the path copied, never mutated). */
export function setConfigPath<T>(config: T, path: string, value: unknown): T {
  const [head, ...rest] = path.split(".");
  const obj = (config ?? {}) as Record<string, unknown>;
  return { ...obj, [head!]: rest.length === 0 ? value : setConfigPath(obj[head!] ?? {}, rest.join("."), value) } as T;
}

/** The run's effective config: its config with each applied change list laid over it, in application order. */
export function effectiveConfig(config: TrainingConfig, applied: readonly { changes: readonly ConfigChange[] }[]): TrainingConfig {
  let out = config;
  for (const i of applied) for (const c of i.changes) out = setConfigPath(out, c.path, c.newValue);
  return out;
}

/**
 * Validates a pilot's requested changes against the effective config: known paths only, each value valid for its
 * path, the whole config still valid. Returns the change list (sorted by path, old values from `current`, new
 * values as parsed) or a message naming each path and what is wrong.
 */
export function validatePilotChanges(
  current: TrainingConfig,
  set: Readonly<Record<string, unknown>>,
): { ok: true; changes: ConfigChange[] } | { ok: false; message: string } {
  const problems: string[] = [];
  const changes: ConfigChange[] = [];
  let next: TrainingConfig = current;
  for (const path of Object.keys(set).sort()) {
    const schema = PILOTABLE_PATHS[path];
    if (!schema) {
      problems.push(`${path}: not a path a pilot can change (allowed: ${Object.keys(PILOTABLE_PATHS).join(", ")})`);
      continue;
    }
    if (path.startsWith("training.earlyStopping.") && current.training.earlyStopping === null && !("training.earlyStopping" in set)) {
      problems.push(`${path}: this run has no early stopping; set training.earlyStopping as a whole (e.g. {"patience":3})`);
      continue;
    }
    if (path.startsWith("fineTune.") && current.fineTune === null) {
      problems.push(`${path}: this run is not a fine-tune, it has no frozen layers`);
      continue;
    }
    const r = schema.safeParse(set[path]);
    if (!r.success) {
      problems.push(
        r.error.issues.map((i) => `${[path, ...i.path.map(String)].join(".")}: ${i.message} (got ${JSON.stringify(set[path])})`).join("; "),
      );
      continue;
    }
    const oldValue = getConfigPath(current, path) ?? null;
    changes.push({ path, oldValue, newValue: r.data });
    next = setConfigPath(next, path, r.data);
  }
  if (problems.length) return { ok: false, message: problems.join("; ") };
  if (changes.length === 0) return { ok: false, message: "set: name at least one path to change" };
  const whole = trainingConfigSchema.safeParse(next);
  if (!whole.success) return { ok: false, message: `the config with these changes is not valid: ${describeConfigIssues(whole.error)}` };
  return { ok: true, changes };
}

/**
 * A change list as the trainer's settings patch (contracts/training-control.ts, `EpochControl.apply`): one key per
 * changed field (training.X → X, fineTune.freezeLayers → frozenLayers); an early-stopping sub-path sends the whole
 * early-stopping object of the effective config after the change.
 */
export function settingsPatchOf(changes: readonly ConfigChange[], after: TrainingConfig): Record<string, unknown> {
  const apply: Record<string, unknown> = {};
  for (const c of changes) {
    if (c.path === "fineTune.freezeLayers") apply.frozenLayers = c.newValue;
    else if (c.path.startsWith("training.earlyStopping")) apply.earlyStopping = after.training.earlyStopping;
    else apply[c.path.slice("training.".length)] = c.newValue;
  }
  return apply;
}

/** One schedule entry as validated: its index in `config.schedule`, its epoch, its change list, whether it stops. */
export type PlannedStep = { index: number; atEpoch: number; changes: ConfigChange[]; stop: boolean; rationale: string };

/**
 * Validates a config's `schedule` (planned interventions) with the rules of a live pilot: entries in epoch order,
 * each `set` checked by validatePilotChanges against the effective config at that point (the config with the
 * earlier entries applied), each epoch within the epochs in force then, nothing after a planned stop. Messages name
 * the entry: "schedule.1 (atEpoch 3): training.learningRate: learningRate must be > 0".
 */
export function validateSchedule(config: TrainingConfig): { ok: true; steps: PlannedStep[] } | { ok: false; message: string } {
  const steps: PlannedStep[] = [];
  let current: TrainingConfig = config;
  let previous = 0;
  let stoppedAt: number | null = null;
  for (const [index, entry] of (config.schedule ?? []).entries()) {
    const where = `schedule.${index} (atEpoch ${entry.atEpoch})`;
    if (entry.atEpoch < previous)
      return { ok: false, message: `${where}: comes before the previous entry's epoch ${previous}; list the entries in epoch order` };
    if (stoppedAt !== null) return { ok: false, message: `${where}: the run already stops at epoch ${stoppedAt}` };
    if (entry.atEpoch > current.training.epochs)
      return {
        ok: false,
        message: `${where}: the run trains only ${current.training.epochs} epochs by then, so this epoch is never reached`,
      };
    let changes: ConfigChange[] = [];
    if (entry.set && Object.keys(entry.set).length > 0) {
      const v = validatePilotChanges(current, entry.set);
      if (!v.ok) return { ok: false, message: `${where}: ${v.message}` };
      changes = v.changes;
      current = effectiveConfig(current, [{ changes }]);
    }
    if (entry.stop) stoppedAt = entry.atEpoch;
    previous = entry.atEpoch;
    steps.push({ index, atEpoch: entry.atEpoch, changes, stop: entry.stop === true, rationale: entry.rationale });
  }
  return { ok: true, steps };
}

/** The validated steps of a stored config's schedule (a stored config passed validateSchedule when its run was created). */
export function scheduleSteps(config: TrainingConfig): PlannedStep[] {
  const v = validateSchedule(config);
  if (!v.ok) throw new Error(`invalid schedule in a stored config: ${v.message}`);
  return v.steps;
}

/**
 * The trainer's planned controls for a config's schedule (TrainJob.plannedControls): one per epoch, the settings
 * patches of that epoch's entries merged in order, then stop if any entry stops; each asks for that boundary's
 * checkpoint, as a live intervention does, so a replay writes the same checkpoints as the piloted run.
 */
export function plannedControlsOf(config: TrainingConfig): PlannedControl[] {
  const byEpoch = new Map<number, PlannedControl>();
  let current: TrainingConfig = config;
  for (const step of scheduleSteps(config)) {
    current = effectiveConfig(current, [step]);
    const control = byEpoch.get(step.atEpoch) ?? { epoch: step.atEpoch, checkpoint: true as const };
    if (step.changes.length > 0) control.apply = { ...control.apply, ...settingsPatchOf(step.changes, current) };
    if (step.stop) control.then = "stop";
    byEpoch.set(step.atEpoch, control);
  }
  return [...byEpoch.values()];
}
