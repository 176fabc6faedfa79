/**
 * Read side of live piloting: a run's interventions with their decisions, its effective config (config plus applied
 * interventions), the pending interventions the training process picks up at an epoch boundary, and the metrics
 * snapshot recorded when one takes effect.
 *
 * Invariants: reads only; imports no service. The effective config is effectiveConfig() of contracts/pilot-config.ts
 * over the applied rows in the order they took effect (step, then id), so writer and reader agree on old values.
 */
import { and, asc, desc, eq, inArray, max } from "drizzle-orm";
import type { DbOrTx, Tx } from "@/db/client";
import * as sqliteTables from "@/db/schema";
import { row, rows, runOnSqliteTx, type StoreTables, type TxBody } from "@/db/store";
import { trainingConfigSchema, type TrainingConfig } from "@/contracts/training-config";
import { effectiveConfig, scheduleSteps, type ConfigChange } from "@/contracts/pilot-config";
import { notFound } from "@/server/errors";

export type MetricsSnapshot = {
  /** Last value of each metric of the run. */
  last: Record<string, number>;
  /** The watched metric (early stopping's, else the best-checkpoint metric) over the last few epochs, oldest first. */
  watched: { metric: string; trend: { epoch: number; value: number }[] } | null;
};

/** How many epochs of the watched metric a snapshot keeps. */
export const SNAPSHOT_TREND_EPOCHS = 5;

export function parseChanges(changesJson: string): ConfigChange[] {
  return JSON.parse(changesJson) as ConfigChange[];
}

/** The applied interventions of a run, in the order they took effect (a part of a body, either store). */
function* appliedRowsIn(q: Tx, t: StoreTables, runId: number) {
  const ri = t.runInterventions;
  return yield* rows(
    q
      .select()
      .from(ri)
      .where(and(eq(ri.runId, runId), eq(ri.status, "applied")))
      .orderBy(asc(ri.appliedAtStep), asc(ri.id)),
  );
}

/** The last epoch the run completed (its last epoch-level "lr" point), 0 before its first. */
export function epochsCompleted(db: DbOrTx, runId: number): number {
  return runOnSqliteTx(db as Tx, epochsCompletedIn(db as Tx, sqliteTables, runId));
}

/** epochsCompleted as a part of a transaction body (db/store.ts), on either store. */
export function* epochsCompletedIn(q: Tx, t: StoreTables, runId: number): TxBody<number> {
  const m = t.metrics;
  const r = yield* row(
    q
      .select({ epoch: max(m.epoch) })
      .from(m)
      .where(and(eq(m.runId, runId), eq(m.key, "lr"))),
  );
  return Math.floor(Number(r?.epoch ?? 0));
}

type EffectiveConfig = { config: TrainingConfig; effective: TrainingConfig; status: string };

/**
 * The run's config as created, plus the changes that took effect since: its planned schedule entries whose epoch
 * it has completed (the trainer applies them at that boundary before any live control) and its applied
 * interventions, in epoch order (planned first within an epoch). A rollback's changes belong to the branch it
 * created, not to this run, so they are left out.
 */
export function runEffectiveConfig(
  db: DbOrTx,
  runId: number,
  /** The effective config at that epoch boundary (what its checkpoint's resume state holds); default: now. */
  atEpoch = Infinity,
): EffectiveConfig {
  return runOnSqliteTx(db as Tx, runEffectiveConfigIn(db as Tx, sqliteTables, runId, atEpoch));
}

/** runEffectiveConfig as a part of a transaction body (db/store.ts), on either store. */
export function* runEffectiveConfigIn(q: Tx, t: StoreTables, runId: number, atEpoch = Infinity): TxBody<EffectiveConfig> {
  const r = t.runs;
  const run = yield* row(q.select({ configJson: r.configJson, status: r.status }).from(r).where(eq(r.id, runId)));
  if (!run) notFound(`run ${runId}`);
  const config = trainingConfigSchema.parse(JSON.parse(run.configJson));
  const reached = config.schedule?.length ? Math.min(yield* epochsCompletedIn(q, t, runId), atEpoch) : 0;
  const planned = scheduleSteps(config)
    .filter((s) => s.atEpoch <= reached)
    .map((s) => ({ epoch: s.atEpoch, order: 0, changes: s.changes }));
  const live = (yield* appliedRowsIn(q, t, runId))
    .filter((r) => r.kind !== "rollback" && (r.appliedAtEpoch ?? 0) <= atEpoch)
    .map((r) => ({ epoch: r.appliedAtEpoch ?? 0, order: 1, changes: parseChanges(r.changesJson) }));
  // Stable sort: within an epoch, planned entries keep their schedule order and interventions their step/id order.
  const applied = [...planned, ...live].sort((a, b) => a.epoch - b.epoch || a.order - b.order);
  return { config, effective: effectiveConfig(config, applied), status: run.status };
}

/** The metric the pilot is watching: early stopping's metric when set, else the one that marks the best checkpoint. */
export function watchedMetric(config: TrainingConfig): string {
  return config.training.earlyStopping?.metric ?? config.training.bestMetric.metric;
}

/** The run tag naming the metric a pilot watches on a run logged by a script (tracking API); see watchedMetricOfRun. */
export const WATCHED_METRIC_TAG = "runledger.watched_metric";

/**
 * The metric a pilot watches on run `runId`: watchedMetric of its effective config; for a run logged by a script
 * (origin "api", no training config), the metric its tag runledger.watched_metric names, else its first metric (by
 * name) with "val" and "loss" in its name, else with "loss", else its first metric; null before any metric.
 */
export function watchedMetricOfRun(db: DbOrTx, runId: number): string | null {
  return runOnSqliteTx(db as Tx, watchedMetricOfRunIn(db as Tx, sqliteTables, runId));
}

/** watchedMetricOfRun as a part of a transaction body, or a read (db/store.ts), on either store. */
export function* watchedMetricOfRunIn(q: Tx, t: StoreTables, runId: number): TxBody<string | null> {
  const { runs, metricSummaries: ms, runTagValues: tags } = t;
  const run = yield* row(q.select({ origin: runs.origin }).from(runs).where(eq(runs.id, runId)));
  if (!run) notFound(`run ${runId}`);
  if (run.origin !== "api") return watchedMetric((yield* runEffectiveConfigIn(q, t, runId)).effective);
  // Keys by name in byte order on both stores (SQLite's BINARY; PostgreSQL's collation may differ): sorted here.
  const keys = (yield* rows(q.select({ key: ms.key }).from(ms).where(eq(ms.runId, runId))))
    .map((r) => r.key)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const tagged = (yield* row(
    q
      .select({ value: tags.value })
      .from(tags)
      .where(and(eq(tags.runId, runId), eq(tags.key, WATCHED_METRIC_TAG)))
      .limit(1),
  ))?.value;
  return apiRunWatchedMetric(keys, tagged);
}

/**
 * The watched metric of an API run (see watchedMetricOfRun) from its metric keys (sorted by name) and the value of
 * its runledger.watched_metric tag; shared with the compare view's reader on either store (explore/compare-interventions.ts).
 */
export function apiRunWatchedMetric(keys: string[], tagged: string | undefined): string | null {
  if (tagged !== undefined && keys.includes(tagged)) return tagged;
  const lower = (k: string) => k.toLowerCase();
  return (
    keys.find((k) => lower(k).includes("val") && lower(k).includes("loss")) ??
    keys.find((k) => lower(k).includes("loss")) ??
    keys[0] ??
    null
  );
}

/** Last value of every metric of the run and the per-epoch trend (last value of each epoch) of `watched`. */
export function metricsSnapshotAt(db: DbOrTx, runId: number, watched: string, epochs = SNAPSHOT_TREND_EPOCHS): MetricsSnapshot {
  return runOnSqliteTx(db as Tx, metricsSnapshotAtIn(db as Tx, sqliteTables, runId, watched, epochs));
}

/** metricsSnapshotAt as a part of a transaction body (db/store.ts), on either store. */
export function* metricsSnapshotAtIn(
  q: Tx,
  t: StoreTables,
  runId: number,
  watched: string,
  epochs = SNAPSHOT_TREND_EPOCHS,
): TxBody<MetricsSnapshot> {
  const { metricSummaries: ms, metrics: m } = t;
  const last: Record<string, number> = {};
  // Keys in byte order on both stores (as SQLite's BINARY sorts them), so the snapshot's JSON is the same.
  const summaries = yield* rows(q.select({ key: ms.key, last: ms.last }).from(ms).where(eq(ms.runId, runId)));
  for (const s of summaries.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0))) last[s.key] = s.last;
  // Newest points first; one value per epoch (its latest), until `epochs` epochs are found.
  const trend: { epoch: number; value: number }[] = [];
  const points = yield* rows(
    q
      .select({ epoch: m.epoch, value: m.value })
      .from(m)
      .where(and(eq(m.runId, runId), eq(m.key, watched)))
      .orderBy(desc(m.step))
      .limit(epochs * 64),
  );
  for (const p of points) {
    if (trend.length && trend[trend.length - 1]!.epoch === p.epoch) continue;
    trend.push({ epoch: p.epoch, value: p.value });
    if (trend.length === epochs) break;
  }
  trend.reverse();
  return { last, watched: trend.length ? { metric: watched, trend } : null };
}

/** A run's interventions (oldest first) with who asked, their decision when applied, and their changes parsed. */
export function listInterventions(db: DbOrTx, runId: number) {
  return runOnSqliteTx(db as Tx, listInterventionsIn(db as Tx, sqliteTables, runId));
}

/** listInterventions as a part of a transaction body, or a read (db/store.ts), on either store: the same rows. */
export function* listInterventionsIn(q: Tx, t: StoreTables, runId: number) {
  const { runs, runInterventions: ri, users, decisions } = t;
  const run = yield* row(q.select({ id: runs.id }).from(runs).where(eq(runs.id, runId)));
  if (!run) notFound(`run ${runId}`);
  const found = yield* rows(
    q
      .select({ i: ri, requester: { name: users.name, email: users.email } })
      .from(ri)
      .innerJoin(users, eq(users.id, ri.requestedBy))
      .where(eq(ri.runId, runId))
      .orderBy(asc(ri.id)),
  );
  const decisionIds = found.map((r) => r.i.decisionId).filter((id): id is number => id !== null);
  const byId = new Map(
    (decisionIds.length ? yield* rows(q.select().from(decisions).where(inArray(decisions.id, decisionIds))) : []).map((d) => [d.id, d]),
  );
  return found.map(({ i, requester }) => ({
    id: i.id,
    runId: i.runId,
    kind: i.kind,
    status: i.status,
    changes: parseChanges(i.changesJson),
    fromCheckpointId: i.fromCheckpointId,
    rationale: i.rationale,
    requestedBy: { id: i.requestedBy, ...requester },
    requestedAt: i.requestedAt,
    appliedAtEpoch: i.appliedAtEpoch,
    appliedAtStep: i.appliedAtStep,
    appliedAt: i.appliedAt,
    metricsSnapshot: i.metricsSnapshotJson === null ? null : (JSON.parse(i.metricsSnapshotJson) as MetricsSnapshot),
    checkpointId: i.checkpointId,
    decision: i.decisionId === null ? null : (byId.get(i.decisionId) ?? null),
    closedBy: i.closedBy,
    closedAt: i.closedAt,
    closeReason: i.closeReason,
  }));
}
export type InterventionView = ReturnType<typeof listInterventions>[number];

/** The pending interventions of a run, oldest first: what the training process applies at its next epoch boundary. */
export function pendingInterventions(db: DbOrTx, runId: number) {
  return runOnSqliteTx(db as Tx, pendingInterventionsIn(db as Tx, sqliteTables, runId));
}

/** pendingInterventions as a part of a transaction body (db/store.ts), on either store: the same rows, oldest first. */
export function* pendingInterventionsIn(tx: Tx, t: StoreTables, runId: number) {
  const { runInterventions: ri } = t;
  const pending = yield* rows(
    tx
      .select()
      .from(ri)
      .where(and(eq(ri.runId, runId), eq(ri.status, "pending")))
      .orderBy(asc(ri.id)),
  );
  return pending.map((r) => ({ ...r, changes: parseChanges(r.changesJson) }));
}

/** One setting of a run logged by a script: a logged param, and the pilot's changes of it that took effect. */
export type ScriptSetting = {
  key: string;
  /** The value the script logged (MLflow params are write-once: this stays as logged). */
  logged: string;
  /** The value in force now: the last applied change's new value, else the logged one. */
  current: string;
  /** The applied changes, in the order they took effect. */
  changes: { interventionId: number; step: number; epoch: number; from: string; to: string; decisionId: number | null }[];
};

/**
 * The settings of a run logged by a script through the tracking API (origin "api", no training config): its logged
 * params (decisions of kind "param", oldest first; a param is logged once), each with the applied "set"
 * interventions over it in the order they took effect (step, then id: as runEffectiveConfig orders them). A change
 * names a logged param; its values are strings, as a param's.
 */
export function scriptSettings(db: DbOrTx, runId: number): ScriptSetting[] {
  return runOnSqliteTx(db as Tx, scriptSettingsIn(db as Tx, sqliteTables, runId));
}

/** scriptSettings as a part of a transaction body (db/store.ts), on either store. */
export function* scriptSettingsIn(q: Tx, t: StoreTables, runId: number): TxBody<ScriptSetting[]> {
  const d = t.decisions;
  const logged = yield* rows(
    q
      .select({ path: d.path, value: d.newValueJson })
      .from(d)
      .where(and(eq(d.runId, runId), eq(d.kind, "param")))
      .orderBy(asc(d.id)),
  );
  const out = new Map<string, ScriptSetting>();
  for (const p of logged) {
    if (out.has(p.path)) continue;
    const value = p.value === null ? "" : String(JSON.parse(p.value) as unknown);
    out.set(p.path, { key: p.path, logged: value, current: value, changes: [] });
  }
  for (const r of yield* appliedRowsIn(q, t, runId)) {
    if (r.kind !== "set") continue;
    for (const c of parseChanges(r.changesJson)) {
      const s = out.get(c.path);
      if (!s) continue;
      const to = String(c.newValue);
      s.changes.push({
        interventionId: r.id,
        step: r.appliedAtStep ?? 0,
        epoch: r.appliedAtEpoch ?? 0,
        from: String(c.oldValue),
        to,
        decisionId: r.decisionId,
      });
      s.current = to;
    }
  }
  return [...out.values()];
}
