/**
 * The in-flight decisions of the compared runs: each run's applied live interventions (who, at which epoch and step,
 * what changed old → new, why) with their effect on the metric the pilot watched, for the compare view's curve
 * markers and its "In-flight decisions" table.
 *
 * Invariants:
 * - Batched: a fixed number of queries whatever the number of runs (the interventions with their requesters; the
 *   watched metrics' points of every (run, metric) pair at once; only when a snapshot named no watched metric, the
 *   configs and epochs completed of those runs). Never one query per run or per intervention.
 * - Same answer as the run page (server/runs/pilot-effects.ts listInterventionsWithEffects) for each applied
 *   intervention: the effect is effectFromPoints over the same points, the fallback metric is watchedMetric of the
 *   run's effective config now (planned entries it reached, then its applied non-rollback interventions).
 * - Reads only; imports no service. Output follows the order of `runIds`; each run's list is in the order its
 *   interventions took effect (step, then id).
 * - Runs on SQLite or PostgreSQL (store.ts): each query written once over the store's tables. Reads that do not need
 *   each other's rows go out together (concurrently on PostgreSQL, in turn on SQLite).
 */
import { and, asc, eq, gte, inArray, lte, max, or, type SQL } from "drizzle-orm";
import type { InterventionKind } from "@/db/schema";
import { trainingConfigSchema } from "@/contracts/training-config";
import { effectiveConfig, scheduleSteps, type ConfigChange } from "@/contracts/pilot-config";
import { apiRunWatchedMetric, parseChanges, watchedMetric, WATCHED_METRIC_TAG, type MetricsSnapshot } from "@/server/runs/pilot-queries";
import { EFFECT_EPOCHS, EFFECT_LOOKBACK_EPOCHS, effectFromPoints, type InterventionEffect } from "@/server/runs/pilot-effects";
import { asStore, type ExploreStore, type StoreOrDb } from "./store";
import { eachTogether, together } from "./together";

export type ComparedIntervention = {
  id: number;
  runId: number;
  kind: InterventionKind;
  changes: ConfigChange[];
  rationale: string;
  requestedBy: { name: string };
  appliedAtEpoch: number;
  appliedAtStep: number;
  /** When it took effect (UTC ISO): where its marker sits on a wall-time axis. */
  appliedAt: string;
  decisionId: number | null;
  /** Its effect on the watched metric; null when no metric is known to watch. */
  effect: InterventionEffect | null;
};

/** (run, metric) pairs per points query: keeps the OR expression far below SQLite's depth and parameter limits. */
const PAIRS_PER_QUERY = 200;

export async function compareInterventions(storeOrDb: StoreOrDb, runIds: readonly number[]): Promise<ComparedIntervention[][]> {
  const perRun: ComparedIntervention[][] = runIds.map(() => []);
  if (runIds.length === 0) return perRun;
  const store = asStore(storeOrDb);
  const { db } = store;
  const { metrics, runInterventions, users } = store.t;
  const index = new Map(runIds.map((id, i) => [id, i]));
  const rows = (
    await db
      .select({
        id: runInterventions.id,
        runId: runInterventions.runId,
        kind: runInterventions.kind,
        changesJson: runInterventions.changesJson,
        rationale: runInterventions.rationale,
        requester: users.name,
        appliedAtEpoch: runInterventions.appliedAtEpoch,
        appliedAtStep: runInterventions.appliedAtStep,
        appliedAt: runInterventions.appliedAt,
        decisionId: runInterventions.decisionId,
        metricsSnapshotJson: runInterventions.metricsSnapshotJson,
      })
      .from(runInterventions)
      .innerJoin(users, eq(users.id, runInterventions.requestedBy))
      .where(and(inArray(runInterventions.runId, [...runIds]), eq(runInterventions.status, "applied")))
      .orderBy(asc(runInterventions.runId), asc(runInterventions.appliedAtStep), asc(runInterventions.id))
  )
    // An applied row always carries where it took effect (migration trigger); the guard keeps the types honest.
    .filter((r) => r.appliedAtEpoch !== null && r.appliedAtStep !== null && r.appliedAt !== null);
  if (rows.length === 0) return perRun;

  const parsed = rows.map((r) => {
    const snapshot = r.metricsSnapshotJson === null ? null : (JSON.parse(r.metricsSnapshotJson) as MetricsSnapshot);
    return { ...r, changes: parseChanges(r.changesJson), watched: snapshot?.watched?.metric ?? null };
  });
  const fallback = await fallbackWatchedMetrics(
    store,
    parsed.filter((r) => r.watched === null),
    parsed,
  );
  const metricOf = (r: (typeof parsed)[number]) => r.watched ?? fallback.get(r.runId) ?? null;

  // One epoch range per (run, metric) pair covering all of its interventions' windows.
  const ranges = new Map<string, { runId: number; metric: string; lo: number; hi: number }>();
  for (const r of parsed) {
    const metric = metricOf(r);
    if (metric === null) continue;
    const key = `${r.runId}\u0000${metric}`;
    const lo = r.appliedAtEpoch! - EFFECT_LOOKBACK_EPOCHS;
    const hi = r.appliedAtEpoch! + EFFECT_EPOCHS;
    const range = ranges.get(key);
    if (range) {
      range.lo = Math.min(range.lo, lo);
      range.hi = Math.max(range.hi, hi);
    } else ranges.set(key, { runId: r.runId, metric, lo, hi });
  }
  const points = new Map<string, { epoch: number; value: number }[]>();
  const pairs = [...ranges.values()];
  const chunks: (typeof pairs)[] = [];
  for (let at = 0; at < pairs.length; at += PAIRS_PER_QUERY) chunks.push(pairs.slice(at, at + PAIRS_PER_QUERY));
  const chunkRows = await eachTogether(store, chunks, (chunk) => {
    const terms = chunk.map((p) =>
      and(eq(metrics.runId, p.runId), eq(metrics.key, p.metric), gte(metrics.epoch, p.lo), lte(metrics.epoch, p.hi)),
    );
    return db
      .select({ runId: metrics.runId, key: metrics.key, epoch: metrics.epoch, value: metrics.value })
      .from(metrics)
      .where(or(...(terms as SQL[])))
      .orderBy(asc(metrics.runId), asc(store.f.textKey(metrics.key)), asc(metrics.step));
  });
  for (const p of chunkRows.flat()) {
    const key = `${p.runId}\u0000${p.key}`;
    let list = points.get(key);
    if (!list) points.set(key, (list = []));
    list.push({ epoch: p.epoch, value: p.value });
  }

  for (const r of parsed) {
    const metric = metricOf(r);
    perRun[index.get(r.runId)!]!.push({
      id: r.id,
      runId: r.runId,
      kind: r.kind,
      changes: r.changes,
      rationale: r.rationale,
      requestedBy: { name: r.requester },
      appliedAtEpoch: r.appliedAtEpoch!,
      appliedAtStep: r.appliedAtStep!,
      appliedAt: r.appliedAt!,
      decisionId: r.decisionId,
      effect: metric === null ? null : effectFromPoints(metric, r.appliedAtEpoch!, points.get(`${r.runId}\u0000${metric}`) ?? []),
    });
  }
  return perRun;
}

/**
 * The metric each run watches now (watchedMetric of its effective config), for the runs having an intervention whose
 * snapshot named none (it took effect before the first point of that metric). Two queries for all such runs.
 */
async function fallbackWatchedMetrics(
  store: ExploreStore,
  needing: readonly { runId: number }[],
  applied: readonly { runId: number; kind: InterventionKind; appliedAtEpoch: number | null; changes: ConfigChange[] }[],
): Promise<Map<number, string>> {
  const { db } = store;
  const { metrics, runs } = store.t;
  const out = new Map<number, string>();
  const ids = [...new Set(needing.map((r) => r.runId))];
  if (ids.length === 0) return out;
  // Epochs completed = the last epoch-level "lr" point, as pilot-queries' epochsCompleted reads it.
  const [all, lastLr] = await together(
    store,
    () => db.select({ id: runs.id, configJson: runs.configJson, origin: runs.origin }).from(runs).where(inArray(runs.id, ids)),
    () =>
      db
        .select({ runId: metrics.runId, epoch: max(metrics.epoch) })
        .from(metrics)
        .where(and(inArray(metrics.runId, ids), eq(metrics.key, "lr")))
        .groupBy(metrics.runId),
  );
  // A run logged by a script has no training config: the metric it watches is read from its metrics (rare: its
  // intervention took effect before its first point).
  const apiRuns = all.filter((r) => r.origin === "api");
  const apiMetrics = await eachTogether(store, apiRuns, (r) => watchedMetricOfApiRun(store, r.id));
  apiRuns.forEach((r, i) => {
    const metric = apiMetrics[i]!;
    if (metric !== null) out.set(r.id, metric);
  });
  const configs = all.filter((r) => r.origin !== "api");
  const reached = new Map(lastLr.map((r) => [r.runId, Math.floor(r.epoch ?? 0)]));
  for (const { id, configJson } of configs) {
    const config = trainingConfigSchema.parse(JSON.parse(configJson));
    const upTo = config.schedule?.length ? (reached.get(id) ?? 0) : 0;
    const planned = scheduleSteps(config)
      .filter((s) => s.atEpoch <= upTo)
      .map((s) => ({ epoch: s.atEpoch, order: 0, changes: s.changes }));
    // `applied` is in the order the interventions took effect; a rollback's changes belong to its branch.
    const live = applied
      .filter((a) => a.runId === id && a.kind !== "rollback")
      .map((a) => ({ epoch: a.appliedAtEpoch ?? 0, order: 1, changes: a.changes }));
    const ordered = [...planned, ...live].sort((a, b) => a.epoch - b.epoch || a.order - b.order);
    out.set(id, watchedMetric(effectiveConfig(config, ordered)));
  }
  return out;
}

/** pilot-queries' watchedMetricOfRun for a run logged through the API (origin "api"), on either store. */
async function watchedMetricOfApiRun(store: ExploreStore, runId: number): Promise<string | null> {
  const { db, f } = store;
  const { metricSummaries, runTagValues } = store.t;
  const [keyRows, tagRows] = await together(
    store,
    () =>
      db
        .select({ key: metricSummaries.key })
        .from(metricSummaries)
        .where(eq(metricSummaries.runId, runId))
        .orderBy(asc(f.textKey(metricSummaries.key))),
    () =>
      db
        .select({ value: runTagValues.value })
        .from(runTagValues)
        .where(and(eq(runTagValues.runId, runId), eq(runTagValues.key, WATCHED_METRIC_TAG)))
        .limit(1),
  );
  return apiRunWatchedMetric(
    keyRows.map((r) => r.key),
    tagRows[0]?.value,
  );
}
