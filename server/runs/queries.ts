/**
 * Read-side queries for runs: lists with key params and final metrics, one run in full, metric points for live curves.
 * On the store (issue 16, db/store.ts): each read is awaited on SQLite or PostgreSQL, with an explicit order where
 * SQLite gave its index order (tags and summaries by name, in byte order on both), a script-logged run's settings
 * included (pilot-queries.ts scriptSettingsIn).
 */
import { and, desc, eq, gt, inArray } from "drizzle-orm";
import type { Db } from "@/db/client";
import { asStore, byteOrder, readPart, reader, type Store } from "@/db/store";
import type { TrainingConfig } from "@/contracts/training-config";
import { notFound } from "@/server/errors";
import { scriptSettingsIn } from "./pilot-queries";

export type RunProgress = { epoch: number; epochs: number; batch: number; batches: number; samplesPerSecond?: number };

function keyParams(c: TrainingConfig) {
  return {
    dataset: "builtin" in c.data.dataset ? c.data.dataset.builtin : `dataset ${c.data.dataset.datasetId}`,
    layers: c.model.layers
      .map((l) => ("units" in l ? `${l.type}(${l.units})` : "filters" in l ? `${l.type}(${l.filters})` : l.type))
      .join(" → "),
    optimizer: c.training.optimizer.name,
    learningRate: c.training.learningRate,
    batchSize: c.training.batchSize,
    epochs: c.training.epochs,
    seed: c.training.seed,
  };
}

function durationMs(r: { startedAt: string | null; finishedAt: string | null }) {
  if (!r.startedAt) return null;
  return (r.finishedAt ? Date.parse(r.finishedAt) : Date.now()) - Date.parse(r.startedAt);
}

export async function listRuns(db: Store | Db, experimentId: number) {
  const store = asStore(db);
  const read = reader(store);
  const { runs, users, metricSummaries, runTags } = store.tables;
  const rows = await read
    .select({ run: runs, author: users.name })
    .from(runs)
    .innerJoin(users, eq(users.id, runs.createdBy))
    .where(eq(runs.experimentId, experimentId))
    .orderBy(desc(runs.id));
  const ids = rows.map((r) => r.run.id);
  const summaries = ids.length
    ? await read
        .select()
        .from(metricSummaries)
        .where(inArray(metricSummaries.runId, ids))
        .orderBy(metricSummaries.runId, byteOrder(store, metricSummaries.key))
    : [];
  const tags = ids.length
    ? await read.select().from(runTags).where(inArray(runTags.runId, ids)).orderBy(runTags.runId, byteOrder(store, runTags.tag))
    : [];
  return rows.map(({ run, author }) => ({
    id: run.id,
    name: run.name,
    status: run.status,
    origin: run.origin,
    author,
    createdAt: run.createdAt,
    durationMs: durationMs(run),
    backend: run.backend,
    // A run logged through the tracking API has no training config (server/mlflow/): its params are decisions.
    params: run.origin === "api" ? null : keyParams(JSON.parse(run.configJson) as TrainingConfig),
    metrics: Object.fromEntries(summaries.filter((s) => s.runId === run.id).map((s) => [s.key, s.last])),
    progress: run.progressJson ? (JSON.parse(run.progressJson) as RunProgress) : null,
    tags: tags.filter((t) => t.runId === run.id).map((t) => t.tag),
  }));
}

export async function getRun(db: Store | Db, id: number) {
  const store = asStore(db);
  const read = reader(store);
  const { runs, users, experiments, metricSummaries, checkpoints, evaluations, decisions, runTags, datasetVersions, splits, datasets } =
    store.tables;
  const [row] = await read
    .select({ run: runs, author: users.name, experimentName: experiments.name, projectId: experiments.projectId })
    .from(runs)
    .innerJoin(users, eq(users.id, runs.createdBy))
    .innerJoin(experiments, eq(experiments.id, runs.experimentId))
    .where(eq(runs.id, id))
    .limit(1);
  if (!row) notFound(`run ${id}`);
  const { run } = row;
  const [version] = run.datasetVersionId
    ? await read
        .select({ v: datasetVersions, datasetName: datasets.name, datasetSha256: datasets.sha256, datasetId: datasets.id })
        .from(datasetVersions)
        .innerJoin(datasets, eq(datasets.id, datasetVersions.datasetId))
        .where(eq(datasetVersions.id, run.datasetVersionId))
        .limit(1)
    : [];
  const [split] = run.splitId ? await read.select().from(splits).where(eq(splits.id, run.splitId)).limit(1) : [];
  const [parent] = run.parentRunId
    ? await read
        .select({ finalWeightsSha256: runs.finalWeightsSha256, name: runs.name, status: runs.status })
        .from(runs)
        .where(eq(runs.id, run.parentRunId))
        .limit(1)
    : [];
  const [parentCheckpoint] = run.parentCheckpointId
    ? await read
        .select({ id: checkpoints.id, epoch: checkpoints.epoch, sha256: checkpoints.sha256, runId: checkpoints.runId })
        .from(checkpoints)
        .where(eq(checkpoints.id, run.parentCheckpointId))
        .limit(1)
    : [];
  const decisionRows = await read
    .select({ d: decisions, author: users.name })
    .from(decisions)
    .innerJoin(users, eq(users.id, decisions.authorId))
    .where(eq(decisions.runId, id))
    .orderBy(decisions.id);
  const summaries = await read
    .select()
    .from(metricSummaries)
    .where(eq(metricSummaries.runId, id))
    .orderBy(byteOrder(store, metricSummaries.key));
  const checkpointRows = await read.select().from(checkpoints).where(eq(checkpoints.runId, id)).orderBy(checkpoints.epoch);
  const evaluationRows = await read
    .select({ e: evaluations, createdByName: users.name })
    .from(evaluations)
    .innerJoin(users, eq(users.id, evaluations.createdBy))
    .where(eq(evaluations.runId, id))
    .orderBy(evaluations.id);
  const tagRows = await read.select({ tag: runTags.tag }).from(runTags).where(eq(runTags.runId, id)).orderBy(byteOrder(store, runTags.tag));
  // A script-logged run's settings: its logged params with the pilot's changes that took effect (pilot-queries.ts).
  const settings = run.origin === "api" ? await readPart(store, (q) => scriptSettingsIn(q, store.tables, run.id)) : null;
  const cancellation = run.status === "cancelled" ? await cancellationOf(store, run.id) : null;
  return {
    id: run.id,
    name: run.name,
    /** Markdown written by engineers after launch (runs.annotate); "" when none. */
    description: run.description,
    status: run.status,
    origin: run.origin,
    experimentId: run.experimentId,
    experimentName: row.experimentName,
    projectId: row.projectId,
    author: row.author,
    createdBy: run.createdBy,
    createdAt: run.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    durationMs: durationMs(run),
    config: JSON.parse(run.configJson) as TrainingConfig,
    /**
     * A run logged by a script (origin "api"): its settings, i.e. its logged params with the pilot's changes that took
     * effect (scriptSettings); null for any other run (its settings are its config).
     */
    scriptSettings: settings,
    configSha256: run.configSha256,
    parentRunId: run.parentRunId,
    parentCheckpointId: run.parentCheckpointId,
    parent: parent ?? null,
    parentCheckpoint: parentCheckpoint ?? null,
    /** For a re-run: did training reproduce the parent's final weights bit for bit? null until both have finished. */
    reproducedParentWeights:
      run.origin === "rerun" && parent?.finalWeightsSha256 && run.finalWeightsSha256
        ? parent.finalWeightsSha256 === run.finalWeightsSha256
        : null,
    backend: run.backend,
    backendReason: run.backendReason,
    environment: run.environmentJson ? (JSON.parse(run.environmentJson) as Record<string, unknown>) : null,
    paramCount: run.paramCount,
    memory: run.memoryJson ? (JSON.parse(run.memoryJson) as Record<string, unknown>) : null,
    progress: run.progressJson ? (JSON.parse(run.progressJson) as RunProgress) : null,
    finalWeightsSha256: run.finalWeightsSha256,
    error: run.error,
    /**
     * Who asked to cancel a cancelled run, when and why (cancellationOf: an engineer's request, or its sweep's stop;
     * reason null on requests recorded before cancellations needed one). null when it was not cancelled or nothing in
     * the ledger asked for it.
     */
    cancellation,
    datasetVersion: version
      ? {
          id: version.v.id,
          datasetId: version.datasetId,
          datasetName: version.datasetName,
          datasetSha256: version.datasetSha256,
          sha256: version.v.sha256,
          rowCount: version.v.rowCount,
          recipe: JSON.parse(version.v.recipeJson) as unknown,
          report: JSON.parse(version.v.reportJson) as unknown,
        }
      : null,
    split: split
      ? {
          id: split.id,
          sha256: split.sha256,
          spec: JSON.parse(split.specJson) as unknown,
          manifest: JSON.parse(split.manifestJson) as unknown,
        }
      : null,
    summaries,
    checkpoints: checkpointRows.map((c) => ({ ...c, metrics: JSON.parse(c.metricsJson) as Record<string, number> })),
    evaluations: evaluationRows.map(({ e, createdByName }) => ({
      ...e,
      createdByName,
      metrics: JSON.parse(e.metricsJson) as Record<string, unknown>,
      confusion: e.confusionJson ? (JSON.parse(e.confusionJson) as { labels: string[]; matrix: number[][] }) : null,
    })),
    decisions: decisionRows.map(({ d, author }) => ({
      ...d,
      author,
      oldValue: d.oldValueJson === null ? null : (JSON.parse(d.oldValueJson) as unknown),
      newValue: d.newValueJson === null ? null : (JSON.parse(d.newValueJson) as unknown),
    })),
    tags: tagRows.map((t) => t.tag),
  };
}
export type RunDetail = Awaited<ReturnType<typeof getRun>>;

/** Metric points after `afterStep` (for incremental live updates), grouped by key. */
export async function metricPoints(db: Store | Db, runId: number, opts: { keys?: string[]; afterStep?: number; limit?: number }) {
  const store = asStore(db);
  const { metrics } = store.tables;
  const conds = [eq(metrics.runId, runId)];
  if (opts.keys?.length) conds.push(inArray(metrics.key, opts.keys));
  if (opts.afterStep !== undefined) conds.push(gt(metrics.step, opts.afterStep));
  const rows = await reader(store)
    .select({ key: metrics.key, step: metrics.step, epoch: metrics.epoch, value: metrics.value, wallTimeMs: metrics.wallTimeMs })
    .from(metrics)
    .where(and(...conds))
    .orderBy(metrics.step)
    .limit(opts.limit ?? 50_000);
  const series: Record<string, { step: number; epoch: number; value: number; wallTimeMs: number }[]> = {};
  for (const r of rows) (series[r.key] ??= []).push({ step: r.step, epoch: r.epoch, value: r.value, wallTimeMs: r.wallTimeMs });
  return { series, maxStep: rows.reduce((m, r) => Math.max(m, r.step), opts.afterStep ?? 0) };
}

/**
 * Who asked to cancel run `runId`, when and why, read from the ledger (the requests are recorded nowhere else): the
 * latest of its run.cancelRequest events and, for a sweep's trial, the sweep's stops that name it (sweep.stopTrial:
 * early termination, with the rule's reason; sweep.stop: the whole sweep, with the engineer's rationale).
 */
async function cancellationOf(store: Store, runId: number): Promise<{ by: string; at: string; reason: string | null } | null> {
  const { auditEvents, sweepTrials } = store.tables;
  const read = reader(store);
  const columns = {
    seq: auditEvents.seq,
    by: auditEvents.actorName,
    at: auditEvents.at,
    action: auditEvents.action,
    payload: auditEvents.payload,
  };
  const [request] = await read
    .select(columns)
    .from(auditEvents)
    .where(and(eq(auditEvents.entityType, "run"), eq(auditEvents.entityId, String(runId)), eq(auditEvents.action, "run.cancelRequest")))
    .orderBy(desc(auditEvents.seq))
    .limit(1);
  const candidates = request ? [request] : [];
  const [trial] = await read.select({ sweepId: sweepTrials.sweepId }).from(sweepTrials).where(eq(sweepTrials.runId, runId)).limit(1);
  if (trial) {
    const stops = await read
      .select(columns)
      .from(auditEvents)
      .where(
        and(
          eq(auditEvents.entityType, "sweep"),
          eq(auditEvents.entityId, String(trial.sweepId)),
          inArray(auditEvents.action, ["sweep.stopTrial", "sweep.stop"]),
        ),
      )
      .orderBy(desc(auditEvents.seq));
    const names = (e: (typeof stops)[number]) => {
      const p = JSON.parse(e.payload) as { runId?: unknown; cancelledTrialRunIds?: unknown };
      return e.action === "sweep.stopTrial"
        ? p.runId === runId
        : Array.isArray(p.cancelledTrialRunIds) && p.cancelledTrialRunIds.includes(runId);
    };
    const stop = stops.find(names);
    if (stop) candidates.push(stop);
  }
  const latest = candidates.sort((a, b) => b.seq - a.seq)[0];
  if (!latest) return null;
  const p = JSON.parse(latest.payload) as { reason?: unknown; rationale?: unknown };
  const reason = latest.action === "sweep.stop" ? p.rationale : p.reason;
  return { by: latest.by, at: latest.at, reason: typeof reason === "string" ? reason : null };
}
