/**
 * Piloting a run between epochs: the settings a pilot may change while a run trains (the "effective settings"),
 * and the control the trainer receives at each epoch boundary. Shared by the trainer (which applies a control)
 * and the server (which validates a pilot's request before queueing it), so both accept exactly the same values.
 *
 * Invariants:
 * - Each settable field reuses the schema of the same field of `training` in contracts/training-config.ts, so a
 *   value a pilot may set is a value a config may hold, with the same messages.
 * - `lrScheduleFromEpoch` is not settable: the trainer sets it to the next epoch whenever `learningRate` or
 *   `lrSchedule` changes, so a new schedule counts its epochs from the epoch where it takes effect.
 * - Unknown keys are rejected (strict), so a typo never silently changes nothing.
 * This module holds only zod schemas and types, so browser code may import it.
 */
import { z } from "zod";
import { describeConfigIssues, lrScheduleSchema, trainingSchema } from "./training-config";

const t = trainingSchema.shape;

/** A change to the effective settings; every field optional, none defaulted (absent = unchanged). */
export const settingsPatchSchema = z
  .object({
    learningRate: t.learningRate.optional(),
    lrSchedule: lrScheduleSchema.optional(),
    epochs: z
      .number({ error: "epochs must be a number" })
      .int("epochs must be a whole number")
      .positive("epochs must be at least 1")
      .max(10_000, "epochs must be ≤ 10000")
      .optional(),
    earlyStopping: t.earlyStopping.unwrap().unwrap().nullable().optional(),
    classWeights: t.classWeights.unwrap().unwrap().nullable().optional(),
    checkpointEvery: z
      .number({ error: "checkpointEvery must be a number" })
      .int("checkpointEvery must be a whole number")
      .positive("checkpointEvery must be at least 1")
      .optional(),
    /** Fine-tunes only: freeze the first N layers of the parent (fewer unfreezes, more freezes). */
    frozenLayers: z
      .number({ error: "frozenLayers must be a number" })
      .int("frozenLayers must be a whole number")
      .min(0, "frozenLayers must be ≥ 0")
      .optional(),
  })
  .strict();
export type SettingsPatch = z.infer<typeof settingsPatchSchema>;

type Training = z.output<typeof trainingSchema>;

/** What a pilot can change while a run trains, as in force at an epoch boundary. */
export type EffectiveSettings = {
  learningRate: number;
  lrSchedule: Training["lrSchedule"];
  /** The 1-based epoch from which lrSchedule counts (1 unless a pilot changed the rate or schedule). */
  lrScheduleFromEpoch: number;
  epochs: number;
  earlyStopping: Training["earlyStopping"];
  classWeights: Training["classWeights"];
  checkpointEvery: number;
  /** Fine-tunes only: how many of the parent's first layers are frozen (fineTune.freezeLayers to begin with). */
  frozenLayers?: number;
};

export const EPOCH_CONTROL_THEN = ["continue", "pause", "stop"] as const;
export const epochControlSchema = z
  .object({
    apply: settingsPatchSchema.optional(),
    then: z.enum(EPOCH_CONTROL_THEN, { error: `then must be one of ${EPOCH_CONTROL_THEN.join(", ")}` }).optional(),
    /**
     * Write this boundary's checkpoint even when the cadence does not ask for it: a pilot's decision is bound to the
     * checkpoint of the boundary where it took effect (server/runs/pilot.ts applyIntervention). Changes no weights.
     */
    checkpoint: z.literal(true, { error: "checkpoint must be true when given" }).optional(),
  })
  .strict();
export type EpochControl = z.infer<typeof epochControlSchema>;

/** A control planned in advance (a replay, or a config's schedule of changes): applied after epoch `epoch`. */
export const plannedControlSchema = epochControlSchema.extend({ epoch: z.number().int().min(0) }).strict();
export type PlannedControl = z.infer<typeof plannedControlSchema>;

/** Parses a control; the message names the path at fault, e.g. "apply.learningRate: learningRate must be > 0". */
export function parseEpochControl(input: unknown): { ok: true; control: EpochControl } | { ok: false; message: string } {
  const r = epochControlSchema.safeParse(input);
  return r.success ? { ok: true, control: r.data } : { ok: false, message: describeConfigIssues(r.error) };
}

/** The settings of a config before any pilot changed them (`frozenLayers` given for fine-tunes only). */
export function initialSettings(training: Training, frozenLayers?: number): EffectiveSettings {
  return {
    learningRate: training.learningRate,
    lrSchedule: training.lrSchedule,
    lrScheduleFromEpoch: 1,
    epochs: training.epochs,
    earlyStopping: training.earlyStopping,
    classWeights: training.classWeights,
    checkpointEvery: training.checkpointEvery,
    ...(frozenLayers !== undefined ? { frozenLayers } : {}),
  };
}
