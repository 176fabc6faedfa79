/**
 * Reads of sweeps: a sweep with its trials (each trial's run status, generated params, objective value, the rung
 * at which early termination stopped it), the list of an experiment's sweeps, and the metric values the sweep
 * driver judges (a trial's best epoch value). Queries take `db` (or a transaction) first. Each read is a transaction
 * part (`…In`, issue 16) with a synchronous SQLite form for the CLI, and an awaited form on either store for the router
 * and the driver (sweepOnStore, sweepsOnStore, sweepOfRunOn; the driver reads sweepTrialsIn through readPart).
 */
import { and, asc, desc, eq, inArray } from "drizzle-orm";
import type { Db, DbOrTx, Tx } from "@/db/client";
import * as schema from "@/db/schema";
import { asStore, readPart, reader, row, rows, runOnSqliteTx, type Store, type StoreTables, type TxBody } from "@/db/store";
import { sweeps, sweepTrials, type RunStatus } from "@/db/schema";
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
export function* objectiveValuesIn(
  q: Tx,
  t: StoreTables,
  runIds: number[],
  metric: string,
  direction: "minimize" | "maximize",
): TxBody<Map<number, number>> {
  if (runIds.length === 0) return new Map();
  const { metricSummaries: ms } = t;
  const found = yield* rows(
    q
      .select({ runId: ms.runId, min: ms.min, max: ms.max })
      .from(ms)
      .where(and(inArray(ms.runId, runIds), eq(ms.key, metric))),
  );
  return new Map(found.map((r) => [r.runId, direction === "minimize" ? r.min : r.max]));
}

export function objectiveValues(db: DbOrTx, runIds: number[], metric: string, direction: "minimize" | "maximize"): Map<number, number> {
  return runOnSqliteTx(db as Tx, objectiveValuesIn(db as Tx, schema, runIds, metric, direction));
}

/** A sweep's trials in trial order, each with its run's status, params, objective value and early stop. */
export function* sweepTrialsIn(q: Tx, t: StoreTables, sweepId: number, spec: SweepSpec): TxBody<SweepTrialRow[]> {
  const { sweepTrials: st, runs: r } = t;
  const found = yield* rows(
    q
      .select({
        trialIndex: st.trialIndex,
        runId: st.runId,
        paramsJson: st.paramsJson,
        stoppedAtRung: st.stoppedAtRung,
        runName: r.name,
        status: r.status,
        progressJson: r.progressJson,
      })
      .from(st)
      .innerJoin(r, eq(r.id, st.runId))
      .where(eq(st.sweepId, sweepId))
      .orderBy(asc(st.trialIndex)),
  );
  const values = yield* objectiveValuesIn(
    q,
    t,
    found.map((x) => x.runId),
    spec.metric.name,
    spec.metric.direction,
  );
  return found.map((x) => ({
    trialIndex: x.trialIndex,
    runId: x.runId,
    runName: x.runName,
    status: x.status,
    params: JSON.parse(x.paramsJson) as Record<string, unknown>,
    value: values.get(x.runId) ?? null,
    stoppedAtRung: x.stoppedAtRung,
    epochsRun: x.progressJson ? ((JSON.parse(x.progressJson) as { epoch?: number }).epoch ?? null) : null,
  }));
}

/** A sweep with its trials, the best completed trial, parameter importance and counts. */
export function* sweepIn(q: Tx, t: StoreTables, sweepId: number) {
  const { sweeps: sw, users: u } = t;
  const found = yield* row(
    q.select({ sweep: sw, createdByName: u.name }).from(sw).innerJoin(u, eq(u.id, sw.createdBy)).where(eq(sw.id, sweepId)),
  );
  if (!found) notFound(`sweep ${sweepId}`);
  const spec = JSON.parse(found.sweep.specJson) as SweepSpec;
  const trials = yield* sweepTrialsIn(q, t, sweepId, spec);
  const dir = spec.metric.direction;
  const ranked = trials
    .filter((x) => x.value !== null && x.status === "completed")
    .sort((a, b) => (dir === "minimize" ? a.value! - b.value! : b.value! - a.value!));
  const winnerBy = found.sweep.winnerChosenBy
    ? ((yield* row(q.select({ name: u.name }).from(u).where(eq(u.id, found.sweep.winnerChosenBy))))?.name ?? null)
    : null;
  return {
    ...found.sweep,
    createdByName: found.createdByName,
    winnerChosenByName: winnerBy,
    spec,
    trials,
    best: ranked[0] ? { runId: ranked[0].runId, metric: spec.metric.name, value: ranked[0].value! } : null,
    /** Share of the metric's variance each parameter accounts for over trials with a value (null under 3 such trials). */
    importance: paramImportance(
      trials.filter((x) => x.value !== null).map((x) => ({ params: x.params, value: x.value! })),
      Object.keys(spec.space).sort(),
    ),
    counts: {
      total: trials.length,
      active: trials.filter((x) => !FINAL_RUN_STATUSES.includes(x.status)).length,
      completed: trials.filter((x) => x.status === "completed").length,
      stoppedEarly: trials.filter((x) => x.stoppedAtRung !== null).length,
    },
  };
}

/** sweepIn on a SQLite handle (the CLI and the driver, not on the store yet). */
export function getSweep(db: DbOrTx, sweepId: number) {
  return runOnSqliteTx(db as Tx, sweepIn(db as Tx, schema, sweepId));
}
export type SweepView = ReturnType<typeof getSweep>;

/** sweepIn on either store, awaited. */
export function sweepOnStore(db: Store | Db, sweepId: number): Promise<SweepView> {
  const store = asStore(db);
  return readPart(store, (q) => sweepIn(q, store.tables, sweepId));
}

/** An experiment's sweeps (or all), newest first. */
function sweepsQuery(q: DbOrTx, t: StoreTables, experimentId?: number) {
  const { sweeps: sw } = t;
  const base = q
    .select({
      id: sw.id,
      experimentId: sw.experimentId,
      name: sw.name,
      method: sw.method,
      status: sw.status,
      maxTrials: sw.maxTrials,
      createdAt: sw.createdAt,
      winnerRunId: sw.winnerRunId,
    })
    .from(sw);
  return (experimentId === undefined ? base : base.where(eq(sw.experimentId, experimentId))).orderBy(desc(sw.id));
}

export function listSweeps(db: DbOrTx, experimentId?: number) {
  return sweepsQuery(db, schema, experimentId).all();
}

/** listSweeps on either store, awaited. */
export async function sweepsOnStore(db: Store | Db, experimentId?: number): Promise<ReturnType<typeof listSweeps>> {
  const store = asStore(db);
  return await sweepsQuery(reader(store), store.tables, experimentId);
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

/** sweepOfRunIn, synchronously on a SQLite handle. */
export function sweepOfRun(db: DbOrTx, runId: number) {
  return runOnSqliteTx(db as Tx, sweepOfRunIn(db as Tx, schema, runId));
}

/** sweepOfRunIn on either store, awaited (the sweeps router's ofRun). */
export function sweepOfRunOn(db: Store | Db, runId: number): Promise<ReturnType<typeof sweepOfRun>> {
  const store = asStore(db);
  return readPart(store, (q) => sweepOfRunIn(q, store.tables, runId));
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

/** trialStopAsked on either store (the orchestrator's heartbeat looks for it). */
export async function trialStopAskedOn(db: Store | Db, runId: number): Promise<boolean> {
  const store = asStore(db);
  const { sweepTrials: trials, sweeps: all } = store.tables;
  const [found] = await reader(store)
    .select({ stoppedAtRung: trials.stoppedAtRung, status: all.status })
    .from(trials)
    .innerJoin(all, eq(all.id, trials.sweepId))
    .where(eq(trials.runId, runId))
    .limit(1);
  return found !== undefined && (found.stoppedAtRung !== null || found.status === "stopped");
}
