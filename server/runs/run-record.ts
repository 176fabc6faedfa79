/**
 * A run's record as `npm run cli -- show` prints it: status, epochs completed, final weights hash, and its decisions
 * in the order they were made: the creation decision (initial, or a fork's changes), its planned schedule entries
 * (with the epoch they are planned at and, once reached, the metrics there), its applied interventions (the epoch
 * and metrics snapshot recorded when each took effect), notes and corrections.
 *
 * Invariants: reads only; imports no service. A run's planned decisions pair with its config's schedule entries by
 * order (createRun writes one per entry, in schedule order). Old/new values come from the decision rows themselves,
 * the rows the ledger's run.create / run.interventionApplied events bind by hash.
 * On the store (issue 16, db/store.ts): every read is awaited, on SQLite or PostgreSQL.
 */
import { and, asc, eq, inArray, lte, max } from "drizzle-orm";
import type { Db } from "@/db/client";
import { asStore, reader, type Store } from "@/db/store";
import { trainingConfigSchema } from "@/contracts/training-config";
import { scheduleSteps } from "@/contracts/pilot-config";
import { notFound } from "@/server/errors";
import { parseChanges, SNAPSHOT_TREND_EPOCHS, watchedMetric, type MetricsSnapshot } from "./pilot-queries";

export type RecordChange = { path: string; oldValue: unknown; newValue: unknown };
export type RecordDecision = {
  id: number;
  /** The decision's kind: initial | change | planned | intervention | note | correction. */
  kind: string;
  /** For an intervention: what the pilot did (pause, resume, stop, set, rollback). */
  action?: string;
  /** The epoch boundary where it took (or, planned, takes) effect; 0 for decisions made before training (a branch: its start). */
  atEpoch: number | null;
  changes: RecordChange[];
  rationale: string;
  actor: { id: number; name: string; email: string };
  at: string;
  metricsAtDecision: MetricsSnapshot | null;
  interventionId?: number;
  /** A planned entry that replays another run's intervention. */
  replays?: { runId: number; interventionId: number };
  /** A planned entry: whether the run has reached its epoch. */
  reached?: boolean;
  /** A rollback: the branch run it created. */
  branchRunId?: number;
};

function mapChanges(oldJson: string | null, newJson: string | null): RecordChange[] {
  const olds = oldJson === null ? {} : (JSON.parse(oldJson) as Record<string, unknown>);
  const news = newJson === null ? {} : (JSON.parse(newJson) as Record<string, unknown>);
  return Object.keys(news).map((path) => ({ path, oldValue: olds[path] ?? null, newValue: news[path] }));
}

/** The metrics of a run at an epoch boundary, read back from its points (the planned entries' "snapshot"). */
export async function metricsAtEpoch(store: Store, runId: number, epoch: number, watched: string): Promise<MetricsSnapshot | null> {
  const { metrics } = store.tables;
  const read = reader(store);
  const last: Record<string, number> = {};
  const atEpoch = await read
    .select({ key: metrics.key, value: metrics.value, step: metrics.step })
    .from(metrics)
    .where(and(eq(metrics.runId, runId), eq(metrics.epoch, epoch)))
    .orderBy(asc(metrics.step));
  for (const p of atEpoch) if (!p.key.startsWith("batch_")) last[p.key] = p.value;
  if (Object.keys(last).length === 0) return null;
  const trend = (
    await read
      .select({ epoch: metrics.epoch, value: metrics.value })
      .from(metrics)
      .where(and(eq(metrics.runId, runId), eq(metrics.key, watched), lte(metrics.epoch, epoch)))
      .orderBy(asc(metrics.step))
  )
    .filter((p) => Number.isInteger(p.epoch))
    .slice(-SNAPSHOT_TREND_EPOCHS);
  return {
    last: Object.fromEntries(Object.entries(last).sort(([a], [b]) => a.localeCompare(b))),
    watched: trend.length ? { metric: watched, trend } : null,
  };
}

/** pilot-queries.ts's epochsCompleted (SQLite only until pilot is ported), awaited: the run's last epoch-level "lr" point. */
async function epochsCompletedOf(store: Store, runId: number): Promise<number> {
  const { metrics } = store.tables;
  const [last] = await reader(store)
    .select({ epoch: max(metrics.epoch) })
    .from(metrics)
    .where(and(eq(metrics.runId, runId), eq(metrics.key, "lr")));
  return Math.floor(last?.epoch ?? 0);
}

export async function runRecord(db: Store | Db, runId: number) {
  const store = asStore(db);
  const read = reader(store);
  const { checkpoints, decisions, runInterventions, runs, users } = store.tables;
  const [run] = await read.select().from(runs).where(eq(runs.id, runId)).limit(1);
  if (!run) notFound(`run ${runId}`);
  const config = trainingConfigSchema.parse(JSON.parse(run.configJson));
  const steps = scheduleSteps(config);
  const epoch = await epochsCompletedOf(store, runId);
  const rows = await read
    .select({ d: decisions, author: { id: users.id, name: users.name, email: users.email } })
    .from(decisions)
    .innerJoin(users, eq(users.id, decisions.authorId))
    .where(eq(decisions.runId, runId))
    .orderBy(asc(decisions.id));
  const decisionIds = rows.map((r) => r.d.id);
  const interventionOf = new Map(
    (decisionIds.length ? await read.select().from(runInterventions).where(inArray(runInterventions.decisionId, decisionIds)) : []).map(
      (i) => [i.decisionId!, i],
    ),
  );
  // A branch's creation decisions take effect where it continues its parent checkpoint, not at epoch 0.
  const startEpoch =
    run.origin === "branch" && run.parentCheckpointId !== null
      ? ((await read.select({ epoch: checkpoints.epoch }).from(checkpoints).where(eq(checkpoints.id, run.parentCheckpointId)).limit(1))[0]
          ?.epoch ?? 0)
      : 0;
  // The metrics at each reached planned entry, read before the decisions are mapped (the mapping is synchronous).
  const plannedMetrics = new Map<number, MetricsSnapshot | null>();
  for (const step of steps)
    if (epoch >= step.atEpoch && !plannedMetrics.has(step.atEpoch))
      plannedMetrics.set(step.atEpoch, await metricsAtEpoch(store, runId, step.atEpoch, watchedMetric(config)));
  let plannedIndex = 0;
  const out: RecordDecision[] = rows.map(({ d, author }) => {
    const base = { id: d.id, kind: d.kind, rationale: d.rationale, actor: author, at: d.createdAt };
    if (d.kind === "initial") return { ...base, atEpoch: startEpoch, changes: [], metricsAtDecision: null };
    if (d.kind === "change")
      return {
        ...base,
        atEpoch: startEpoch,
        changes: [{ path: d.path, oldValue: JSON.parse(d.oldValueJson ?? "null"), newValue: JSON.parse(d.newValueJson ?? "null") }],
        metricsAtDecision: null,
      };
    if (d.kind === "planned") {
      const step = steps[plannedIndex];
      const entry = config.schedule?.[plannedIndex];
      plannedIndex++;
      const reached = step !== undefined && epoch >= step.atEpoch;
      return {
        ...base,
        atEpoch: step?.atEpoch ?? null,
        changes: [...(step?.stop ? [{ path: "stop", oldValue: null, newValue: true }] : []), ...mapChanges(d.oldValueJson, d.newValueJson)],
        metricsAtDecision: reached ? (plannedMetrics.get(step.atEpoch) ?? null) : null,
        reached,
        ...(entry?.replays ? { replays: entry.replays } : {}),
      };
    }
    const i = interventionOf.get(d.id);
    if (d.kind === "intervention" && i) {
      const rollback = i.kind === "rollback" ? (JSON.parse(d.newValueJson ?? "{}") as { branchRunId?: number }) : null;
      return {
        ...base,
        action: i.kind,
        atEpoch: i.appliedAtEpoch,
        changes: parseChanges(i.changesJson),
        metricsAtDecision: i.metricsSnapshotJson === null ? null : (JSON.parse(i.metricsSnapshotJson) as MetricsSnapshot),
        interventionId: i.id,
        ...(rollback?.branchRunId !== undefined ? { branchRunId: rollback.branchRunId } : {}),
      };
    }
    return { ...base, atEpoch: null, changes: mapChanges(d.oldValueJson, d.newValueJson), metricsAtDecision: null };
  });
  return {
    runId: run.id,
    name: run.name,
    status: run.status,
    origin: run.origin,
    parentRunId: run.parentRunId,
    parentCheckpointId: run.parentCheckpointId,
    configSha256: run.configSha256,
    epoch,
    weightsSha256: run.finalWeightsSha256,
    decisions: out,
  };
}
