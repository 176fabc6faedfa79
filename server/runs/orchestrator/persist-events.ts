/**
 * Persists trainer events for one run. Each recorded fact (dataset version, split, start, checkpoint,
 * evaluation, end) is written with its audit event in one synchronous transaction. Metric points are
 * buffered by the orchestrator and written in bulk with raw prepared statements (about 5x drizzle's builder).
 */
import { and, desc, eq } from "drizzle-orm";
import { runs, datasetVersions, splits, checkpoints, evaluations, metricSummaries, METRIC_ROLLUP_BLOCK } from "@/db/schema";
import type { Db } from "@/db/client";
import type Database from "better-sqlite3";
import { appendAuditEvent, SYSTEM_ACTOR, type Actor } from "@/server/audit/ledger";
import { canonicalJson, sha256Canonical, sha256Hex } from "@/contracts/canonical";
import { metricSeriesDigest } from "@/server/audit/content/records";
import type { ArtifactStore } from "@/server/artifacts/store";
import type { TrainerEvent } from "@/trainer/types";
import type { TrainingConfig } from "@/contracts/training-config";

/** The trainer acts for the person who launched the run; the ledger names both. */
export function trainerActor(launchedBy: { id: number; name: string }): Actor {
  return { id: launchedBy.id, name: `${SYSTEM_ACTOR.name} (trainer, for ${launchedBy.name})`, role: "system" };
}

export type MetricPoint = { key: string; step: number; epoch: number; value: number; wallTimeMs: number };

type BlockRollup = {
  firstStep: number;
  lastStep: number;
  minStep: number;
  minValue: number;
  maxStep: number;
  maxValue: number;
  count: number;
};

type MetricStatements = {
  /** One multi-row INSERT of INSERT_CHUNK points in a savepoint, rolled back (PARTIAL thrown) unless all were new. */
  insertChunk: (args: unknown[]) => void;
  insertOne: Database.Statement;
  upsertSummary: Database.Statement;
  upsertRollup: Database.Statement;
};
/** Rows per multi-row INSERT (6 bound values each: 1,200 variables, far below SQLite's limit). */
const INSERT_CHUNK = 200;
const PARTIAL = new Error("some points of the chunk were stored before");
const metricStatements = new WeakMap<Database.Database, MetricStatements>();
const INSERT_HEAD = "INSERT INTO metrics (run_id, key, step, epoch, value, wall_time_ms) VALUES ";
const INSERT_TAIL = " ON CONFLICT (run_id, key, step) DO NOTHING";

/** The statements, prepared once per connection (preparing them per call cost more than the inserts of a small batch). */
function statementsOf(sqlite: Database.Database): MetricStatements {
  let st = metricStatements.get(sqlite);
  if (st) return st;
  const chunk = sqlite.prepare(`${INSERT_HEAD}${Array(INSERT_CHUNK).fill("(?, ?, ?, ?, ?, ?)").join(", ")}${INSERT_TAIL}`);
  st = {
    insertChunk: sqlite.transaction((args: unknown[]) => {
      if (chunk.run(args).changes !== INSERT_CHUNK) throw PARTIAL;
    }),
    insertOne: sqlite.prepare(`${INSERT_HEAD}(?, ?, ?, ?, ?, ?)${INSERT_TAIL}`),
    upsertSummary: sqlite.prepare(
      `INSERT INTO metric_summaries (run_id, key, last, last_step, min, max, count) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (run_id, key) DO UPDATE SET
       last = CASE WHEN excluded.last_step >= metric_summaries.last_step THEN excluded.last ELSE metric_summaries.last END,
       last_step = MAX(metric_summaries.last_step, excluded.last_step),
       min = MIN(metric_summaries.min, excluded.min), max = MAX(metric_summaries.max, excluded.max),
       count = metric_summaries.count + excluded.count`,
    ),
    upsertRollup: sqlite.prepare(
      `INSERT INTO metric_rollups (run_id, key, block, first_step, last_step, min_step, min_value, max_step, max_value, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (run_id, key, block) DO UPDATE SET
       first_step = MIN(metric_rollups.first_step, excluded.first_step),
       last_step = MAX(metric_rollups.last_step, excluded.last_step),
       min_step = CASE WHEN excluded.min_value < metric_rollups.min_value OR (excluded.min_value = metric_rollups.min_value AND excluded.min_step < metric_rollups.min_step) THEN excluded.min_step ELSE metric_rollups.min_step END,
       min_value = MIN(metric_rollups.min_value, excluded.min_value),
       max_step = CASE WHEN excluded.max_value > metric_rollups.max_value OR (excluded.max_value = metric_rollups.max_value AND excluded.max_step < metric_rollups.max_step) THEN excluded.max_step ELSE metric_rollups.max_step END,
       max_value = MAX(metric_rollups.max_value, excluded.max_value),
       count = metric_rollups.count + excluded.count`,
    ),
  };
  metricStatements.set(sqlite, st);
  return st;
}

/**
 * Inserts the finite points and returns those stored now (in order): a point whose (run, key, step) was stored
 * before, or earlier in `points`, is left out and passed to `onStoredBefore` (which may throw to roll the caller's
 * transaction back). Full chunks go in one multi-row INSERT in a savepoint; when not all of its rows were new the
 * savepoint is rolled back and the chunk is inserted row by row, so each point's fate is known (RETURNING would tell
 * too, but made the common case four times slower).
 */
function insertPoints(
  st: MetricStatements,
  runId: number,
  points: MetricPoint[],
  onStoredBefore?: (p: MetricPoint) => void,
): MetricPoint[] {
  const finite = points.filter((p) => Number.isFinite(p.value)); // NaN/Infinity cannot be stored as REAL; the run's failure says why
  const stored: MetricPoint[] = [];
  const args: unknown[] = new Array(INSERT_CHUNK * 6);
  for (let at = 0; at < finite.length; at += INSERT_CHUNK) {
    const chunk = finite.slice(at, at + INSERT_CHUNK);
    if (chunk.length === INSERT_CHUNK) {
      for (let i = 0; i < chunk.length; i++) {
        const p = chunk[i]!;
        const o = i * 6;
        args[o] = runId;
        args[o + 1] = p.key;
        args[o + 2] = p.step;
        args[o + 3] = p.epoch;
        args[o + 4] = p.value;
        args[o + 5] = p.wallTimeMs;
      }
      try {
        st.insertChunk(args);
        stored.push(...chunk);
        continue;
      } catch (e) {
        if (e !== PARTIAL) throw e;
      }
    }
    for (const p of chunk) {
      if (st.insertOne.run(runId, p.key, p.step, p.epoch, p.value, p.wallTimeMs).changes === 1) stored.push(p);
      else onStoredBefore?.(p);
    }
  }
  return stored;
}

/**
 * Writes points, the per-(run, key) summary and the per-block rollups (metric_rollups: min/max with their
 * steps, first/last step, count per 1,024 steps) in one transaction, so charts that read rollups never see
 * points without their block. Ties on min/max keep the earliest step (what the raw-point reader picks).
 * Idempotent: a step already stored for (run, key) is kept and not counted again. A run resumed after a crash
 * retrains the partial epoch after its last checkpoint and re-sends those steps; the points committed before the
 * crash were acknowledged and stay (training is deterministic on the same backend, so the re-sent values are the
 * same), and the summary and rollup counts only ever count stored points. `onStoredBefore` is called for each point
 * whose (key, step) was already stored (the tracking API refuses another value there by throwing from it).
 */
export function insertMetricPoints(db: Db, runId: number, points: MetricPoint[], onStoredBefore?: (p: MetricPoint) => void): void {
  if (points.length === 0) return;
  const sqlite = db.$client;
  const { upsertSummary, upsertRollup } = statementsOf(sqlite);
  sqlite.transaction(() => {
    const blocks = new Map<string, Map<number, BlockRollup>>();
    const byKey = new Map<string, { last: number; lastStep: number; min: number; max: number; count: number }>();
    for (const p of insertPoints(statementsOf(sqlite), runId, points, onStoredBefore)) {
      const s = byKey.get(p.key);
      if (!s) byKey.set(p.key, { last: p.value, lastStep: p.step, min: p.value, max: p.value, count: 1 });
      else {
        if (p.step >= s.lastStep) Object.assign(s, { last: p.value, lastStep: p.step });
        s.min = Math.min(s.min, p.value);
        s.max = Math.max(s.max, p.value);
        s.count++;
      }
      let keyBlocks = blocks.get(p.key);
      if (!keyBlocks) blocks.set(p.key, (keyBlocks = new Map()));
      const index = Math.floor(p.step / METRIC_ROLLUP_BLOCK);
      const b = keyBlocks.get(index);
      if (!b)
        keyBlocks.set(index, {
          firstStep: p.step,
          lastStep: p.step,
          minStep: p.step,
          minValue: p.value,
          maxStep: p.step,
          maxValue: p.value,
          count: 1,
        });
      else {
        b.firstStep = Math.min(b.firstStep, p.step);
        b.lastStep = Math.max(b.lastStep, p.step);
        if (p.value < b.minValue || (p.value === b.minValue && p.step < b.minStep)) [b.minValue, b.minStep] = [p.value, p.step];
        if (p.value > b.maxValue || (p.value === b.maxValue && p.step < b.maxStep)) [b.maxValue, b.maxStep] = [p.value, p.step];
        b.count++;
      }
    }
    for (const [key, s] of byKey) upsertSummary.run(runId, key, s.last, s.lastStep, s.min, s.max, s.count);
    for (const [key, keyBlocks] of blocks) {
      for (const [index, b] of keyBlocks)
        upsertRollup.run(runId, key, index, b.firstStep, b.lastStep, b.minStep, b.minValue, b.maxStep, b.maxValue, b.count);
    }
  })();
}

type Deps = { db: Db; artifacts: ArtifactStore };

export function recordPrepared(
  deps: Deps,
  runId: number,
  actor: Actor,
  e: Extract<TrainerEvent, { type: "prepared" }>,
  datasetId: number,
): void {
  const { db } = deps;
  db.transaction((tx) => {
    const recipeSha256 = sha256Canonical(e.version.recipe);
    let version = tx
      .select()
      .from(datasetVersions)
      .where(
        and(
          eq(datasetVersions.datasetId, datasetId),
          eq(datasetVersions.recipeSha256, recipeSha256),
          eq(datasetVersions.sha256, e.version.sha256),
        ),
      )
      .get();
    if (!version) {
      version = tx
        .insert(datasetVersions)
        .values({
          datasetId,
          recipeJson: canonicalJson(e.version.recipe),
          recipeSha256,
          reportJson: canonicalJson(e.version.report),
          sha256: e.version.sha256,
          rowCount: e.version.rowCount,
          createdAt: new Date().toISOString(),
        })
        .returning()
        .get();
      appendAuditEvent(tx, {
        actor,
        action: "datasetVersion.create",
        entityType: "datasetVersion",
        entityId: version.id,
        payload: {
          datasetId,
          recipeSha256,
          sha256: version.sha256,
          rowsIn: e.version.report.rowsIn,
          rowsOut: e.version.report.rowsOut,
          rowCount: version.rowCount,
          reportSha256: sha256Hex(version.reportJson),
          createdAt: version.createdAt,
        },
      });
    }
    let split = tx
      .select()
      .from(splits)
      .where(and(eq(splits.datasetVersionId, version.id), eq(splits.sha256, e.split.sha256)))
      .get();
    if (!split) {
      split = tx
        .insert(splits)
        .values({
          datasetVersionId: version.id,
          specJson: canonicalJson(e.split.spec),
          manifestJson: canonicalJson(e.split.manifest),
          sha256: e.split.sha256,
          createdAt: new Date().toISOString(),
        })
        .returning()
        .get();
      const parts = e.split.manifest.partitions;
      appendAuditEvent(tx, {
        actor,
        action: "split.create",
        entityType: "split",
        entityId: split.id,
        payload: {
          datasetVersionId: version.id,
          sha256: split.sha256,
          counts: { train: parts.train.count, validation: parts.validation.count, test: parts.test.count },
          indicesSha256: { train: parts.train.indicesSha256, validation: parts.validation.indicesSha256, test: parts.test.indicesSha256 },
          specSha256: sha256Hex(split.specJson),
          createdAt: split.createdAt,
        },
      });
    }
    tx.update(runs).set({ datasetVersionId: version.id, splitId: split.id }).where(eq(runs.id, runId)).run();
  });
}

export function recordStarted(
  deps: Deps,
  runId: number,
  actor: Actor,
  e: Extract<TrainerEvent, { type: "started" }>,
  appCommit: string,
): void {
  deps.db.transaction((tx) => {
    const environment = { ...e.environment, appCommit, fineTune: e.fineTune ?? null };
    const startedAt = new Date().toISOString();
    const memoryJson = canonicalJson(e.memory);
    tx.update(runs)
      .set({
        status: "running",
        startedAt,
        backend: e.backend,
        backendReason: e.backendReason,
        environmentJson: canonicalJson(environment),
        paramCount: e.memory.paramCount,
        memoryJson,
        progressJson: JSON.stringify({ epoch: 0, epochs: e.epochs, batch: 0, batches: e.batchesPerEpoch }),
      })
      .where(eq(runs.id, runId))
      .run();
    // The data the run was prepared on ("prepared" comes before "started"), so the run's dataset version and split are covered.
    const data = tx.select({ datasetVersionId: runs.datasetVersionId, splitId: runs.splitId }).from(runs).where(eq(runs.id, runId)).get();
    appendAuditEvent(tx, {
      actor,
      action: "run.start",
      entityType: "run",
      entityId: runId,
      payload: {
        backend: e.backend,
        backendReason: e.backendReason,
        environment,
        paramCount: e.memory.paramCount,
        memorySha256: sha256Hex(memoryJson),
        datasetVersionId: data?.datasetVersionId ?? null,
        splitId: data?.splitId ?? null,
        startedAt,
      },
    });
  });
}

export function recordProgress(
  db: Db,
  runId: number,
  progress: { epoch: number; epochs: number; batch: number; batches: number; samplesPerSecond?: number },
): void {
  db.update(runs)
    .set({ progressJson: JSON.stringify(progress) })
    .where(eq(runs.id, runId))
    .run();
}

export function recordCheckpoint(deps: Deps, runId: number, actor: Actor, e: Extract<TrainerEvent, { type: "checkpoint" }>): number {
  const stored = deps.artifacts.put(e.weights);
  if (stored.sha256 !== e.sha256)
    throw new Error(`checkpoint at epoch ${e.epoch}: trainer reported sha256 ${e.sha256} but the bytes hash to ${stored.sha256}`);
  return deps.db.transaction((tx) => {
    const row = tx
      .insert(checkpoints)
      .values({
        runId,
        epoch: e.epoch,
        step: e.step,
        sha256: e.sha256,
        bytes: stored.bytes,
        metricsJson: canonicalJson(e.metrics),
        isBest: false,
        createdAt: new Date().toISOString(),
      })
      .returning()
      .get();
    appendAuditEvent(tx, {
      actor,
      action: "checkpoint.create",
      entityType: "checkpoint",
      entityId: row.id,
      payload: { runId, epoch: e.epoch, step: e.step, sha256: e.sha256, bytes: stored.bytes, metrics: e.metrics, createdAt: row.createdAt },
    });
    return row.id;
  });
}

export function recordEvaluation(deps: Deps, runId: number, actor: Actor, e: Extract<TrainerEvent, { type: "evaluation" }>): void {
  deps.db.transaction((tx) => {
    const ck = tx
      .select()
      .from(checkpoints)
      .where(and(eq(checkpoints.runId, runId), eq(checkpoints.sha256, e.checkpointSha256)))
      .get();
    if (!ck) throw new Error(`evaluation refers to checkpoint ${e.checkpointSha256}, which run ${runId} does not have`);
    const run = tx.select({ splitId: runs.splitId }).from(runs).where(eq(runs.id, runId)).get();
    const { confusion, ...rest } = e.result as typeof e.result & { confusion?: unknown };
    const row = tx
      .insert(evaluations)
      .values({
        runId,
        checkpointId: ck.id,
        splitId: run?.splitId ?? null,
        partition: e.partition,
        dataSha256: e.dataSha256,
        metricsJson: canonicalJson(rest),
        confusionJson: confusion ? canonicalJson(confusion) : null,
        source: "training",
        createdBy: actor.id ?? 0,
        createdAt: new Date().toISOString(),
      })
      .returning()
      .get();
    appendAuditEvent(tx, {
      actor,
      action: "evaluation.create",
      entityType: "evaluation",
      entityId: row.id,
      payload: {
        runId,
        checkpointId: ck.id,
        checkpointSha256: ck.sha256,
        partition: e.partition,
        dataSha256: e.dataSha256,
        splitId: row.splitId,
        source: row.source,
        createdAt: row.createdAt,
        metricsSha256: sha256Canonical(e.result),
      },
    });
  });
}

/** Picks the best checkpoint by the config's bestMetric; ties go to the earlier epoch. */
export function bestCheckpointId(
  rows: { id: number; metricsJson: string }[],
  best: TrainingConfig["training"]["bestMetric"],
): number | null {
  let bestId: number | null = null;
  let bestValue = 0;
  for (const r of rows) {
    const v = (JSON.parse(r.metricsJson) as Record<string, number>)[best.metric];
    if (typeof v !== "number" || !Number.isFinite(v)) continue;
    if (bestId === null || (best.mode === "min" ? v < bestValue : v > bestValue)) [bestId, bestValue] = [r.id, v];
  }
  return bestId ?? rows.at(-1)?.id ?? null;
}

export function recordFinished(
  deps: Deps,
  runId: number,
  actor: Actor,
  e: Extract<TrainerEvent, { type: "finished" }>,
  config: TrainingConfig,
): void {
  const { db } = deps;
  db.transaction((tx) => {
    const metricsDigest = metricSeriesDigest(db.$client, runId);
    const cks = tx
      .select({ id: checkpoints.id, metricsJson: checkpoints.metricsJson })
      .from(checkpoints)
      .where(eq(checkpoints.runId, runId))
      .orderBy(checkpoints.epoch)
      .all();
    const bestId = bestCheckpointId(cks, config.training.bestMetric);
    if (bestId !== null) tx.update(checkpoints).set({ isBest: true }).where(eq(checkpoints.id, bestId)).run();
    const summaries = tx.select().from(metricSummaries).where(eq(metricSummaries.runId, runId)).all();
    const finalMetrics = Object.fromEntries(summaries.map((s) => [s.key, s.last]));
    const finishedAt = new Date().toISOString();
    tx.update(runs).set({ status: e.status, finishedAt, finalWeightsSha256: e.weightsSha256 }).where(eq(runs.id, runId)).run();
    appendAuditEvent(tx, {
      actor,
      // "paused" never reaches here: the orchestrator keeps a paused run paused (its pause decision is the record).
      action: e.status === "completed" ? "run.complete" : "run.cancel",
      entityType: "run",
      entityId: runId,
      payload: {
        status: e.status,
        weightsSha256: e.weightsSha256,
        epochsRun: e.epochsRun,
        stoppedEarly: e.stoppedEarly,
        // A pilot's stop ended it before its planned epochs (only present then, so earlier payloads keep their shape).
        ...(e.stoppedByDecision ? { stoppedByDecision: true } : {}),
        samplesPerSecond: Math.round(e.samplesPerSecond),
        bestCheckpointId: bestId,
        finalMetrics,
        metricsSha256: metricsDigest.sha256,
        metricPointsSha256: metricsDigest.pointsSha256,
        metricPoints: metricsDigest.points,
        finishedAt,
      },
    });
  });
}

export function recordFailed(deps: Deps, runId: number, actor: Actor, message: string): void {
  deps.db.transaction((tx) => {
    const run = tx.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get();
    if (!run || run.status === "completed" || run.status === "failed" || run.status === "cancelled") return;
    const finishedAt = new Date().toISOString();
    tx.update(runs).set({ status: "failed", error: message, finishedAt }).where(eq(runs.id, runId)).run();
    const metricsDigest = metricSeriesDigest(deps.db.$client, runId);
    appendAuditEvent(tx, {
      actor,
      action: "run.fail",
      entityType: "run",
      entityId: runId,
      payload: {
        error: message.slice(0, 2000),
        errorSha256: sha256Hex(message),
        finishedAt,
        metricsSha256: metricsDigest.sha256,
        metricPointsSha256: metricsDigest.pointsSha256,
        metricPoints: metricsDigest.points,
      },
    });
  });
}

/**
 * The process that trained a run died: the run becomes "interrupted" with a system event naming the checkpoint it
 * will continue from (or none: it restarts from scratch). Re-checks the status in the transaction (another process
 * may have recovered it meanwhile); returns false when the run was no longer running.
 */
export function recordInterrupted(
  deps: Deps,
  runId: number,
  /** reason: why the run stopped, when its process knows it (a worker handing its runs back at SIGTERM). */
  info: { owner: string | null; lastHeartbeatAt: string | null; autoResume: boolean; reason?: string },
): boolean {
  return deps.db.transaction((tx) => {
    const run = tx.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get();
    if (!run || run.status !== "running") return false;
    const last = tx
      .select({ id: checkpoints.id, epoch: checkpoints.epoch, step: checkpoints.step })
      .from(checkpoints)
      .where(eq(checkpoints.runId, runId))
      .orderBy(desc(checkpoints.epoch))
      .limit(1)
      .get();
    const interruptedAt = new Date().toISOString();
    tx.update(runs).set({ status: "interrupted" }).where(eq(runs.id, runId)).run();
    appendAuditEvent(tx, {
      actor: SYSTEM_ACTOR,
      action: "run.interrupted",
      entityType: "run",
      entityId: runId,
      payload: {
        reason: info.reason ?? "the process training this run stopped without ending it (crash, kill or power loss)",
        owner: info.owner,
        lastHeartbeatAt: info.lastHeartbeatAt,
        lastCheckpointId: last?.id ?? null,
        lastCheckpointEpoch: last?.epoch ?? null,
        lastCheckpointStep: last?.step ?? null,
        resumeFrom: last ? `checkpoint of epoch ${last.epoch}` : "scratch (no checkpoint was written before the interruption)",
        autoResume: info.autoResume,
        interruptedAt,
      },
    });
    return true;
  });
}
