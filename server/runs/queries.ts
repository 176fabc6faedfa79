/** Read-side queries for runs: lists with key params and final metrics, one run in full, metric points for live curves. */
import { and, desc, eq, gt, inArray } from "drizzle-orm";
import {
  runs,
  users,
  experiments,
  metricSummaries,
  checkpoints,
  evaluations,
  decisions,
  runTags,
  metrics,
  datasetVersions,
  splits,
  datasets,
} from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import type { TrainingConfig } from "@/contracts/training-config";
import { notFound } from "@/server/errors";
import { scriptSettings } from "./pilot-queries";

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

export function listRuns(db: DbOrTx, experimentId: number) {
  const rows = db
    .select({ run: runs, author: users.name })
    .from(runs)
    .innerJoin(users, eq(users.id, runs.createdBy))
    .where(eq(runs.experimentId, experimentId))
    .orderBy(desc(runs.id))
    .all();
  const ids = rows.map((r) => r.run.id);
  const summaries = ids.length ? db.select().from(metricSummaries).where(inArray(metricSummaries.runId, ids)).all() : [];
  const tags = ids.length ? db.select().from(runTags).where(inArray(runTags.runId, ids)).all() : [];
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

export function getRun(db: DbOrTx, id: number) {
  const row = db
    .select({ run: runs, author: users.name, experimentName: experiments.name, projectId: experiments.projectId })
    .from(runs)
    .innerJoin(users, eq(users.id, runs.createdBy))
    .innerJoin(experiments, eq(experiments.id, runs.experimentId))
    .where(eq(runs.id, id))
    .get();
  if (!row) notFound(`run ${id}`);
  const { run } = row;
  const version = run.datasetVersionId
    ? db
        .select({ v: datasetVersions, datasetName: datasets.name, datasetSha256: datasets.sha256, datasetId: datasets.id })
        .from(datasetVersions)
        .innerJoin(datasets, eq(datasets.id, datasetVersions.datasetId))
        .where(eq(datasetVersions.id, run.datasetVersionId))
        .get()
    : undefined;
  const split = run.splitId ? db.select().from(splits).where(eq(splits.id, run.splitId)).get() : undefined;
  const parent = run.parentRunId
    ? db
        .select({ finalWeightsSha256: runs.finalWeightsSha256, name: runs.name, status: runs.status })
        .from(runs)
        .where(eq(runs.id, run.parentRunId))
        .get()
    : undefined;
  const parentCheckpoint = run.parentCheckpointId
    ? db
        .select({ id: checkpoints.id, epoch: checkpoints.epoch, sha256: checkpoints.sha256, runId: checkpoints.runId })
        .from(checkpoints)
        .where(eq(checkpoints.id, run.parentCheckpointId))
        .get()
    : undefined;
  const decisionRows = db
    .select({ d: decisions, author: users.name })
    .from(decisions)
    .innerJoin(users, eq(users.id, decisions.authorId))
    .where(eq(decisions.runId, id))
    .orderBy(decisions.id)
    .all();
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
    scriptSettings: run.origin === "api" ? scriptSettings(db, run.id) : null,
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
    summaries: db.select().from(metricSummaries).where(eq(metricSummaries.runId, id)).all(),
    checkpoints: db
      .select()
      .from(checkpoints)
      .where(eq(checkpoints.runId, id))
      .orderBy(checkpoints.epoch)
      .all()
      .map((c) => ({ ...c, metrics: JSON.parse(c.metricsJson) as Record<string, number> })),
    evaluations: db
      .select({ e: evaluations, createdByName: users.name })
      .from(evaluations)
      .innerJoin(users, eq(users.id, evaluations.createdBy))
      .where(eq(evaluations.runId, id))
      .orderBy(evaluations.id)
      .all()
      .map(({ e, createdByName }) => ({
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
    tags: db
      .select()
      .from(runTags)
      .where(eq(runTags.runId, id))
      .all()
      .map((t) => t.tag),
  };
}
export type RunDetail = ReturnType<typeof getRun>;

/** Metric points after `afterStep` (for incremental live updates), grouped by key. */
export function metricPoints(db: DbOrTx, runId: number, opts: { keys?: string[]; afterStep?: number; limit?: number }) {
  const conds = [eq(metrics.runId, runId)];
  if (opts.keys?.length) conds.push(inArray(metrics.key, opts.keys));
  if (opts.afterStep !== undefined) conds.push(gt(metrics.step, opts.afterStep));
  const rows = db
    .select({ key: metrics.key, step: metrics.step, epoch: metrics.epoch, value: metrics.value, wallTimeMs: metrics.wallTimeMs })
    .from(metrics)
    .where(and(...conds))
    .orderBy(metrics.step)
    .limit(opts.limit ?? 50_000)
    .all();
  const series: Record<string, { step: number; epoch: number; value: number; wallTimeMs: number }[]> = {};
  for (const r of rows) (series[r.key] ??= []).push({ step: r.step, epoch: r.epoch, value: r.value, wallTimeMs: r.wallTimeMs });
  return { series, maxStep: rows.reduce((m, r) => Math.max(m, r.step), opts.afterStep ?? 0) };
}
