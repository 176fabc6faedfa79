/** Runs train() and collects its events, with helpers to pick events by type (trainer tests only). */
import { train } from "../fit";
import type { CancelSignal, PreparedData, TrainerEvent, TrainJob } from "../types";

export type Events = TrainerEvent[];
export const ofType = <T extends TrainerEvent["type"]>(events: Events, type: T) =>
  events.filter((e): e is Extract<TrainerEvent, { type: T }> => e.type === type);
export const only = <T extends TrainerEvent["type"]>(events: Events, type: T) => {
  const found = ofType(events, type);
  if (found.length !== 1) throw new Error(`expected one ${type} event, got ${found.length}: ${JSON.stringify(ofType(events, "failed"))}`);
  return found[0]!;
};

export async function trainCollect(
  job: TrainJob,
  prepared: PreparedData,
  signal: CancelSignal = { cancelled: false },
  onEvent?: (e: TrainerEvent) => void,
): Promise<Events> {
  const events: Events = [];
  await train(
    job,
    prepared,
    (e) => {
      events.push(e);
      onEvent?.(e);
    },
    signal,
  );
  return events;
}
