/**
 * Reads of sweeps: a sweep with its trials (each trial's run status, generated params, objective value, the rung
 * at which early termination stopped it), the list of an experiment's sweeps, and the metric values the sweep
 * driver judges (a trial's value at a rung epoch; its best epoch value). Queries take `db` (or a transaction) first.
 */
import { and, asc, desc, eq, inArray } from "drizzle-orm";
import type { DbOrTx, Tx } from "@/db/client";
import * as schema from "@/db/schema";
import { row, rows, runOnSqliteTx, type StoreTables } from "@/db/store";
import { metrics, metricSummaries, runs, sweeps, sweepTrials, users, type RunStatus } from "@/db/schema";
import { paramImportance, type SweepSpec } from "@/contracts/sweep-spec";
import { notFound } from "@/server/errors";

export const FINAL_RUN_STATUSES: readonly RunStatus[] = ["completed", "failed", "cancelled"];

export type SweepTrialRow = {
  trialIndex: number;
  runId: number;
  runName: string;
  status: RunStatus;
  params: Record<string, unknown>;
  /** The trial's objective: its best epoch value of the sweep's metric (min or max by direction); null before any. */
  value: number | null;
  stoppedAtRung: number | null;
  epochsRun: number | null;
};

/** The objective of each run: best epoch value of `metric` by direction (metric_summaries min / max). */
export function objectiveValues(db: DbOrTx, runIds: number[], metric: string, direction: "minimize" | "maximize"): Map<number, number> {
  if (runIds.length === 0) return new Map();
  const rows = db
    .select({ runId: metricSummaries.runId, min: metricSummaries.min, max: metricSummaries.max })
    .from(metricSummaries)
    .where(and(inArray(metricSummaries.runId, runIds), eq(metricSummaries.key, metric)))
    .all();
  return new Map(rows.map((r) => [r.runId, direction === "minimize" ? r.min : r.max]));
}

/** The value of `metric` a run reported at the end of epoch `epoch`, if it has. */
export function metricAtEpoch(db: DbOrTx, runId: number, metric: string, epoch: number): number | undefined {
  return db
    .select({ value: metrics.value })
    .from(metrics)
    .where(and(eq(metrics.runId, runId), eq(metrics.key, metric), eq(metrics.epoch, epoch)))
    .orderBy(desc(metrics.step))
    .limit(1)
    .get()?.value;
}

export function listSweepTrials(db: DbOrTx, sweepId: number, spec: SweepSpec): SweepTrialRow[] {
  const rows = db
    .select({
      trialIndex: sweepTrials.trialIndex,
      runId: sweepTrials.runId,
      paramsJson: sweepTrials.paramsJson,
      stoppedAtRung: sweepTrials.stoppedAtRung,
      runName: runs.name,
      status: runs.status,
      progressJson: runs.progressJson,
    })
    .from(sweepTrials)
    .innerJoin(runs, eq(runs.id, sweepTrials.runId))
    .where(eq(sweepTrials.sweepId, sweepId))
    .orderBy(asc(sweepTrials.trialIndex))
    .all();
  const values = objectiveValues(
    db,
    rows.map((r) => r.runId),
    spec.metric.name,
    spec.metric.direction,
  );
  return rows.map((r) => ({
    trialIndex: r.trialIndex,
    runId: r.runId,
    runName: r.runName,
    status: r.status,
    params: JSON.parse(r.paramsJson) as Record<string, unknown>,
    value: values.get(r.runId) ?? null,
    stoppedAtRung: r.stoppedAtRung,
    epochsRun: r.progressJson ? ((JSON.parse(r.progressJson) as { epoch?: number }).epoch ?? null) : null,
  }));
}

export function getSweep(db: DbOrTx, sweepId: number) {
  const row = db
    .select({ sweep: sweeps, createdByName: users.name })
    .from(sweeps)
    .innerJoin(users, eq(users.id, sweeps.createdBy))
    .where(eq(sweeps.id, sweepId))
    .get();
  if (!row) notFound(`sweep ${sweepId}`);
  const spec = JSON.parse(row.sweep.specJson) as SweepSpec;
  const trials = listSweepTrials(db, sweepId, spec);
  const dir = spec.metric.direction;
  const ranked = trials
    .filter((t) => t.value !== null && t.status === "completed")
    .sort((a, b) => (dir === "minimize" ? a.value! - b.value! : b.value! - a.value!));
  const winnerBy = row.sweep.winnerChosenBy
    ? (db.select({ name: users.name }).from(users).where(eq(users.id, row.sweep.winnerChosenBy)).get()?.name ?? null)
    : null;
  return {
    ...row.sweep,
    createdByName: row.createdByName,
    winnerChosenByName: winnerBy,
    spec,
    trials,
    best: ranked[0] ? { runId: ranked[0].runId, metric: spec.metric.name, value: ranked[0].value! } : null,
    /** Share of the metric's variance each parameter accounts for over trials with a value (null under 3 such trials). */
    importance: paramImportance(
      trials.filter((t) => t.value !== null).map((t) => ({ params: t.params, value: t.value! })),
      Object.keys(spec.space).sort(),
    ),
    counts: {
      total: trials.length,
      active: trials.filter((t) => !FINAL_RUN_STATUSES.includes(t.status)).length,
      completed: trials.filter((t) => t.status === "completed").length,
      stoppedEarly: trials.filter((t) => t.stoppedAtRung !== null).length,
    },
  };
}
export type SweepView = ReturnType<typeof getSweep>;

export function listSweeps(db: DbOrTx, experimentId?: number) {
  const q = db
    .select({
      id: sweeps.id,
      experimentId: sweeps.experimentId,
      name: sweeps.name,
      method: sweeps.method,
      status: sweeps.status,
      maxTrials: sweeps.maxTrials,
      createdAt: sweeps.createdAt,
      winnerRunId: sweeps.winnerRunId,
    })
    .from(sweeps);
  return (experimentId === undefined ? q : q.where(eq(sweeps.experimentId, experimentId))).orderBy(desc(sweeps.id)).all();
}

/**
 * The sweep that generated a run, with its winner decision, for lineage and reports ("chosen from sweep S …"). A read
 * part on the store (issue 16, db/store.ts): lineage reads it on SQLite and PostgreSQL.
 */
export function* sweepOfRunIn(q: Tx, t: StoreTables, runId: number) {
  const { sweepTrials, sweeps, users } = t;
  const link = yield* row(q.select().from(sweepTrials).where(eq(sweepTrials.runId, runId)).limit(1));
  if (!link) return null;
  const s = (yield* row(q.select().from(sweeps).where(eq(sweeps.id, link.sweepId))))!;
  const n = (yield* rows(q.select({ runId: sweepTrials.runId }).from(sweepTrials).where(eq(sweepTrials.sweepId, s.id)))).length;
  const by = s.winnerChosenBy
    ? (yield* row(q.select({ name: users.name }).from(users).where(eq(users.id, s.winnerChosenBy))))?.name
    : undefined;
  return {
    sweepId: s.id,
    sweepName: s.name,
    trialIndex: link.trialIndex,
    trials: n,
    chosen: s.winnerRunId === runId ? { by: by ?? "unknown", rationale: s.winnerRationale ?? "", at: s.winnerChosenAt } : null,
  };
}

export type SweepOfRun = NonNullable<ReturnType<typeof sweepOfRun>>;

/** sweepOfRunIn, synchronously on a SQLite handle (the sweeps router, not on the store yet). */
export function sweepOfRun(db: DbOrTx, runId: number) {
  return runOnSqliteTx(db as Tx, sweepOfRunIn(db as Tx, schema, runId));
}

/**
 * Whether the sweep asked to stop this trial run: ASHA stopped it at a rung (recordTrialStop) or the sweep was stopped.
 * The process training it cancels it at its next heartbeat (orchestrator pickUpRemoteCancels), so a trial trained by
 * a training worker stops although the sweep's driver runs in the web server.
 */
export function trialStopAsked(db: DbOrTx, runId: number): boolean {
  const row = db
    .select({ stoppedAtRung: sweepTrials.stoppedAtRung, status: sweeps.status })
    .from(sweepTrials)
    .innerJoin(sweeps, eq(sweeps.id, sweepTrials.sweepId))
    .where(eq(sweepTrials.runId, runId))
    .get();
  return row !== undefined && (row.stoppedAtRung !== null || row.status === "stopped");
}
