/**
 * The column chooser's data (listColumns): the param paths, with their value types, and the metric keys present in
 * an experiment's runs, or in all runs.
 *
 * Invariants:
 * - Runs on SQLite or PostgreSQL (store.ts), written once over the store's tables; the counts arrive as numbers on
 *   both (node-postgres returns bigint as text) and paths and keys are listed in byte order (`f.textKey`).
 * - A param's type comes from how its values are stored: number (value_num only), text (value_text only), boolean
 *   (both: "true"/"false" + 1/0, on every run that has the param), mixed otherwise.
 */
import { count, eq, inArray, sql } from "drizzle-orm";
import { asStore, type StoreOrDb } from "./store";

export type ColumnInfo = {
  params: { path: string; type: "number" | "text" | "boolean" | "mixed"; runs: number }[];
  metrics: { key: string; runs: number }[];
};

/** Distinct param paths (with their value type) and metric keys present in the experiment's runs, or all runs. */
export async function listColumns(storeOrDb: StoreOrDb, experimentId?: number): Promise<ColumnInfo> {
  const { db, f, t } = asStore(storeOrDb);
  const { runs, runParams, metricSummaries } = t;
  const inExperiment = (runId: typeof runParams.runId | typeof metricSummaries.runId) =>
    experimentId === undefined
      ? undefined
      : inArray(runId, db.select({ id: runs.id }).from(runs).where(eq(runs.experimentId, experimentId)));
  const params = await db
    .select({
      path: runParams.key,
      runs: count(),
      nums: count(runParams.valueNum),
      texts: count(runParams.valueText),
      bools: sql<number>`count(CASE WHEN ${runParams.valueNum} IS NOT NULL AND ${runParams.valueText} IS NOT NULL THEN 1 END)`.mapWith(
        Number,
      ),
    })
    .from(runParams)
    .where(inExperiment(runParams.runId))
    .groupBy(runParams.key)
    .orderBy(f.textKey(runParams.key));
  const metrics = await db
    .select({ key: metricSummaries.key, runs: count() })
    .from(metricSummaries)
    .where(inExperiment(metricSummaries.runId))
    .groupBy(metricSummaries.key)
    .orderBy(f.textKey(metricSummaries.key));
  return {
    params: params.map((p) => ({
      path: p.path,
      runs: p.runs,
      type: p.bools > 0 && p.bools === Math.max(p.nums, p.texts) ? "boolean" : p.texts === 0 ? "number" : p.nums === 0 ? "text" : "mixed",
    })),
    metrics,
  };
}
