/**
 * The effect of a live intervention on the metric the pilot was watching: its value at the epoch boundary where the
 * intervention took effect, then over the following epochs, read from the run's recorded metric points. The run
 * page's decisions timeline and the auditor's report show it beside the metrics snapshot (the "before").
 *
 * Invariants: reads only; imports no service. Only whole-epoch points count (batch points carry a fractional
 * epoch), one value per epoch (its latest by step). The watched metric is the one the snapshot names, so the
 * before/after compare the same series the pilot saw when deciding. One read part (`…In`, db/store.ts) serves the
 * synchronous SQLite forms and listInterventionsWithEffectsOn on either store (issue 16).
 */
import { and, asc, eq, gte, lte } from "drizzle-orm";
import type { Db, DbOrTx, Tx } from "@/db/client";
import * as sqliteTables from "@/db/schema";
import { asStore, readPart, rows, runOnSqliteTx, type Store, type StoreTables, type TxBody } from "@/db/store";
import { listInterventionsIn, watchedMetricOfRunIn } from "./pilot-queries";

/** How many epochs after an intervention its effect covers. */
export const EFFECT_EPOCHS = 3;
/** How far back the "before" value may come from, for a metric not recorded at every epoch (validation every k epochs). */
export const EFFECT_LOOKBACK_EPOCHS = 5;

export type InterventionEffect = {
  metric: string;
  /** The metric at the boundary where the intervention took effect (its last value at or before that epoch). */
  before: { epoch: number; value: number } | null;
  /** The metric at each of the following EFFECT_EPOCHS epochs recorded so far (fewer while the run trains). */
  after: { epoch: number; value: number }[];
  /** Last `after` value minus `before`; null until both exist. */
  delta: number | null;
};

/** `metric` of run `runId` at epoch `atEpoch` (or the last epoch before it) and over the next `epochs` epochs. */
export function interventionEffect(db: DbOrTx, runId: number, metric: string, atEpoch: number, epochs = EFFECT_EPOCHS): InterventionEffect {
  return runOnSqliteTx(db as Tx, interventionEffectIn(db as Tx, sqliteTables, runId, metric, atEpoch, epochs));
}

/** interventionEffect as a part of a transaction body, or a read (db/store.ts), on either store. */
export function* interventionEffectIn(
  q: Tx,
  t: StoreTables,
  runId: number,
  metric: string,
  atEpoch: number,
  epochs = EFFECT_EPOCHS,
): TxBody<InterventionEffect> {
  const m = t.metrics;
  const points = yield* rows(
    q
      .select({ epoch: m.epoch, value: m.value })
      .from(m)
      .where(and(eq(m.runId, runId), eq(m.key, metric), gte(m.epoch, atEpoch - EFFECT_LOOKBACK_EPOCHS), lte(m.epoch, atEpoch + epochs)))
      .orderBy(asc(m.step)),
  );
  return effectFromPoints(metric, atEpoch, points, epochs);
}

/**
 * The effect computed from `metric`'s points of one run in step order (any wider range is fine: points outside
 * [atEpoch - EFFECT_LOOKBACK_EPOCHS, atEpoch + epochs] are ignored), so a caller may read many runs' points at once.
 */
export function effectFromPoints(
  metric: string,
  atEpoch: number,
  pointsInStepOrder: readonly { epoch: number; value: number }[],
  epochs = EFFECT_EPOCHS,
): InterventionEffect {
  const byEpoch = new Map<number, number>();
  for (const p of pointsInStepOrder)
    if (Number.isInteger(p.epoch) && p.epoch >= atEpoch - EFFECT_LOOKBACK_EPOCHS && p.epoch <= atEpoch + epochs)
      byEpoch.set(p.epoch, p.value);
  const sorted = [...byEpoch.entries()].sort(([a], [b]) => a - b).map(([epoch, value]) => ({ epoch, value }));
  const before = sorted.filter((p) => p.epoch <= atEpoch).at(-1) ?? null;
  const after = sorted.filter((p) => p.epoch > atEpoch);
  const last = after.at(-1);
  return { metric, before, after, delta: before && last ? last.value - before.value : null };
}

/** listInterventions with, for each applied intervention, its effect on the metric its snapshot watched (SQLite). */
export function listInterventionsWithEffects(db: DbOrTx, runId: number) {
  return runOnSqliteTx(db as Tx, listInterventionsWithEffectsIn(db as Tx, sqliteTables, runId));
}

/** listInterventionsWithEffects on either store (db/store.ts): the same answer, read outside a transaction. */
export async function listInterventionsWithEffectsOn(db: Store | Db, runId: number) {
  const store = asStore(db);
  return readPart(store, (q) => listInterventionsWithEffectsIn(q, store.tables, runId));
}

/** listInterventionsWithEffects as a part of a transaction body, or a read (db/store.ts), on either store. */
export function* listInterventionsWithEffectsIn(q: Tx, t: StoreTables, runId: number) {
  const list = yield* listInterventionsIn(q, t, runId);
  const applied = list.filter((i) => i.status === "applied" && i.appliedAtEpoch !== null);
  // A snapshot without a watched trend (no point yet) falls back to the metric the run watches now.
  // (A run logged by a script has no config: watchedMetricOfRun reads its metrics instead.)
  const fallback = applied.some((i) => !i.metricsSnapshot?.watched) ? yield* watchedMetricOfRunIn(q, t, runId) : null;
  const out = [];
  for (const i of list) {
    const metric = i.metricsSnapshot?.watched?.metric ?? fallback;
    const effect =
      i.status === "applied" && i.appliedAtEpoch !== null && metric !== null
        ? yield* interventionEffectIn(q, t, runId, metric, i.appliedAtEpoch)
        : null;
    out.push({ ...i, effect });
  }
  return out;
}
export type InterventionWithEffect = ReturnType<typeof listInterventionsWithEffects>[number];
