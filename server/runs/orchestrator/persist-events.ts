/**
 * Persists trainer events for one run, on either store (issue 16, db/store.ts). Each recorded fact (dataset version,
 * split, start, checkpoint, evaluation, end, interruption) is written with its audit event in one transaction: a
 * store part (`function* …Tx(tx, store, …)`) run by its awaited form (`recordStartedOn({ db: store, … }, …)`) on SQLite
 * or PostgreSQL under the ledger lock, so both stores get the same rows and the same ledger events. The orchestrator's
 * run sessions (run-session.ts) await them one trainer event at a time.
 *
 * Metric points are buffered by the orchestrator and written in bulk: on SQLite with raw prepared statements (about
 * 5x drizzle's builder), on PostgreSQL with one `unnest` statement per 10,000 points; the summaries and rollups
 * written with them are computed by the same code (rollupsOf) on both.
 */
import type { AppProvenance } from "@/server/runs/app-provenance";
import { and, desc, eq, sql } from "drizzle-orm";
import { METRIC_ROLLUP_BLOCK } from "@/db/schema";
import { sqliteClientOf, type Db, type Tx } from "@/db/client";
import { PG_LOCK_KEYS, type PgTx } from "@/db/pg-client";
import { asStore, exec, native, reader, row, rows, transact, type Store, type TxBody } from "@/db/store";
import type Database from "better-sqlite3";
import { SYSTEM_ACTOR, type Actor } from "@/server/audit/ledger";
import { appendEvent } from "@/server/audit/ledger-pg";
import { canonicalJson, sha256Canonical, sha256Hex } from "@/contracts/canonical";
import { metricSeriesDigestTx } from "@/server/audit/content/records";
import type { ArtifactStore } from "@/server/artifacts/store";
import type { AsyncArtifactStore } from "@/server/artifacts/async-store";
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

type KeySummary = { last: number; lastStep: number; min: number; max: number; count: number };

/**
 * The summary per key and the rollup per (key, block) of the points stored now, to be merged into the stored ones
 * (the upserts' ON CONFLICT). One computation for both stores, so their rollups are equal.
 */
function rollupsOf(stored: MetricPoint[]): { byKey: Map<string, KeySummary>; blocks: Map<string, Map<number, BlockRollup>> } {
  const blocks = new Map<string, Map<number, BlockRollup>>();
  const byKey = new Map<string, KeySummary>();
  for (const p of stored) {
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
  return { byKey, blocks };
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
 * Synchronous, SQLite (the orchestrator and the tracking API); insertMetricPointsOn is the form for either store, and
 * insertMetricPointsTx the part for a caller's own transaction body.
 */
export function insertMetricPoints(db: Db, runId: number, points: MetricPoint[], onStoredBefore?: (p: MetricPoint) => void): void {
  insertMetricPointsSqlite(db.$client, runId, points, onStoredBefore);
}

/** On a better-sqlite3 connection: its own transaction, or a savepoint inside the caller's. */
function insertMetricPointsSqlite(
  sqlite: Database.Database,
  runId: number,
  points: MetricPoint[],
  onStoredBefore?: (p: MetricPoint) => void,
): void {
  if (points.length === 0) return;
  const { upsertSummary, upsertRollup } = statementsOf(sqlite);
  sqlite.transaction(() => {
    const { byKey, blocks } = rollupsOf(insertPoints(statementsOf(sqlite), runId, points, onStoredBefore));
    for (const [key, s] of byKey) upsertSummary.run(runId, key, s.last, s.lastStep, s.min, s.max, s.count);
    for (const [key, keyBlocks] of blocks) {
      for (const [index, b] of keyBlocks)
        upsertRollup.run(runId, key, index, b.firstStep, b.lastStep, b.minStep, b.minValue, b.maxStep, b.maxValue, b.count);
    }
  })();
}

/**
 * insertMetricPoints as a part of a transaction body (db/store.ts), on either store: the SQLite statements above, or
 * insertMetricPointsPg on the body's PostgreSQL transaction. An error thrown by `onStoredBefore` rolls the body back.
 */
export function* insertMetricPointsTx(runId: number, points: MetricPoint[], onStoredBefore?: (p: MetricPoint) => void): TxBody<void> {
  if (points.length === 0) return;
  yield* native({
    sqlite: (tx) => insertMetricPointsSqlite(sqliteClientOf(tx), runId, points, onStoredBefore),
    pg: (tx) => insertMetricPointsPg(tx, runId, points, onStoredBefore),
  });
}

/** insertMetricPoints on either store, in a transaction of its own (the same rows on both). */
export async function insertMetricPointsOn(
  store: Store | Db,
  runId: number,
  points: MetricPoint[],
  onStoredBefore?: (p: MetricPoint) => void,
): Promise<void> {
  const s = asStore(store);
  if (s.dialect === "sqlite") return insertMetricPoints(s.db, runId, points, onStoredBefore);
  if (points.length === 0) return;
  await transact(s, () => insertMetricPointsTx(runId, points, onStoredBefore));
}

/** Points per PostgreSQL statement: six arrays of this length bound as six parameters. */
const PG_INSERT_CHUNK = 10_000;

/**
 * PostgreSQL: each chunk is one `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING key, step`, so the
 * points stored now are known in one round trip (a point stored before returns nothing). A (key, step) repeated in
 * `points` is stored at its first place, as on SQLite; the later ones go to `onStoredBefore`, in input order.
 */
async function insertMetricPointsPg(
  tx: PgTx,
  runId: number,
  points: MetricPoint[],
  onStoredBefore?: (p: MetricPoint) => void,
): Promise<void> {
  const finite = points.filter((p) => Number.isFinite(p.value)); // as on SQLite: NaN/Infinity are not stored
  const stored: MetricPoint[] = [];
  for (let at = 0; at < finite.length; at += PG_INSERT_CHUNK) {
    const part = finite.slice(at, at + PG_INSERT_CHUNK);
    const seen = new Set<string>();
    // Only a (key, step)'s first place in the chunk is inserted: a later one is reported as stored before.
    const firstHere = part.map((p) => {
      const id = `${p.step}\u0000${p.key}`;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
    const chunk = part.filter((_, i) => firstHere[i]);
    const result = await tx.execute<{ key: string; step: string }>(sql`
      INSERT INTO metrics (run_id, key, step, epoch, value, wall_time_ms)
      SELECT ${runId}::bigint, k, s, e, v, w
        FROM unnest(${sql.param(chunk.map((p) => p.key))}::text[], ${sql.param(chunk.map((p) => p.step))}::bigint[],
                    ${sql.param(chunk.map((p) => p.epoch))}::float8[], ${sql.param(chunk.map((p) => p.value))}::float8[],
                    ${sql.param(chunk.map((p) => p.wallTimeMs))}::bigint[]) AS u(k, s, e, v, w)
      ON CONFLICT (run_id, key, step) DO NOTHING
      RETURNING key, step`);
    const isNew = new Set(result.rows.map((r) => `${r.step}\u0000${r.key}`));
    // The chunk's points in input order: new ones stored, the rest (stored before, or repeated here) reported.
    part.forEach((p, i) => {
      if (firstHere[i] && isNew.has(`${p.step}\u0000${p.key}`)) stored.push(p);
      else onStoredBefore?.(p);
    });
  }
  const { byKey, blocks } = rollupsOf(stored);
  if (byKey.size > 0) {
    // Sorted (as the rollups below), so that upserts of one run's rows take their row locks in one order.
    const keys = [...byKey.keys()].sort();
    const sums = keys.map((k) => byKey.get(k)!);
    await tx.execute(sql`
      INSERT INTO metric_summaries (run_id, key, last, last_step, min, max, count)
      SELECT ${runId}::bigint, * FROM unnest(${sql.param(keys)}::text[], ${sql.param(sums.map((s) => s.last))}::float8[],
        ${sql.param(sums.map((s) => s.lastStep))}::bigint[], ${sql.param(sums.map((s) => s.min))}::float8[],
        ${sql.param(sums.map((s) => s.max))}::float8[], ${sql.param(sums.map((s) => s.count))}::bigint[])
      ON CONFLICT (run_id, key) DO UPDATE SET
        last = CASE WHEN excluded.last_step >= metric_summaries.last_step THEN excluded.last ELSE metric_summaries.last END,
        last_step = GREATEST(metric_summaries.last_step, excluded.last_step),
        min = LEAST(metric_summaries.min, excluded.min), max = GREATEST(metric_summaries.max, excluded.max),
        count = metric_summaries.count + excluded.count`);
  }
  const flat = [...blocks]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .flatMap(([key, keyBlocks]) => [...keyBlocks].sort(([a], [b]) => a - b).map(([index, b]) => ({ key, index, ...b })));
  if (flat.length > 0)
    await tx.execute(sql`
      INSERT INTO metric_rollups (run_id, key, block, first_step, last_step, min_step, min_value, max_step, max_value, count)
      SELECT ${runId}::bigint, * FROM unnest(${sql.param(flat.map((b) => b.key))}::text[], ${sql.param(flat.map((b) => b.index))}::bigint[],
        ${sql.param(flat.map((b) => b.firstStep))}::bigint[], ${sql.param(flat.map((b) => b.lastStep))}::bigint[],
        ${sql.param(flat.map((b) => b.minStep))}::bigint[], ${sql.param(flat.map((b) => b.minValue))}::float8[],
        ${sql.param(flat.map((b) => b.maxStep))}::bigint[], ${sql.param(flat.map((b) => b.maxValue))}::float8[],
        ${sql.param(flat.map((b) => b.count))}::bigint[])
      ON CONFLICT (run_id, key, block) DO UPDATE SET
        first_step = LEAST(metric_rollups.first_step, excluded.first_step),
        last_step = GREATEST(metric_rollups.last_step, excluded.last_step),
        min_step = CASE WHEN excluded.min_value < metric_rollups.min_value OR (excluded.min_value = metric_rollups.min_value AND excluded.min_step < metric_rollups.min_step) THEN excluded.min_step ELSE metric_rollups.min_step END,
        min_value = LEAST(metric_rollups.min_value, excluded.min_value),
        max_step = CASE WHEN excluded.max_value > metric_rollups.max_value OR (excluded.max_value = metric_rollups.max_value AND excluded.max_step < metric_rollups.max_step) THEN excluded.max_step ELSE metric_rollups.max_step END,
        max_value = GREATEST(metric_rollups.max_value, excluded.max_value),
        count = metric_rollups.count + excluded.count`);
}

/** The digests a run's end event records, inside the transaction that records it (records.ts, either store). */
const metricDigestTx = metricSeriesDigestTx;

/** The synchronous forms' dependencies: the SQLite handle (the orchestrator). */
/** The store forms' dependencies: either store, and an artifact store whose put may be awaited (the cluster's). */
export type StoreDeps = { db: Store | Db; artifacts: Pick<ArtifactStore, "put"> | Pick<AsyncArtifactStore, "put"> };

/** Runs a part on either store, under the ledger lock (every part here appends to the ledger, or may). */
function persist<T>(store: Store | Db, part: (tx: Tx, s: Store) => TxBody<T>): Promise<T> {
  const s = asStore(store);
  return transact(s, (tx) => part(tx, s), { pgLock: PG_LOCK_KEYS.ledger });
}

type Prepared = Extract<TrainerEvent, { type: "prepared" }>;
type Started = Extract<TrainerEvent, { type: "started" }>;
type Checkpointed = Extract<TrainerEvent, { type: "checkpoint" }>;
type Evaluated = Extract<TrainerEvent, { type: "evaluation" }>;
type Finished = Extract<TrainerEvent, { type: "finished" }>;

function* recordPreparedTx(tx: Tx, { tables }: Store, runId: number, actor: Actor, e: Prepared, datasetId: number): TxBody<void> {
  const { datasetVersions, splits, runs } = tables;
  const recipeSha256 = sha256Canonical(e.version.recipe);
  let version = yield* row(
    tx
      .select()
      .from(datasetVersions)
      .where(
        and(
          eq(datasetVersions.datasetId, datasetId),
          eq(datasetVersions.recipeSha256, recipeSha256),
          eq(datasetVersions.sha256, e.version.sha256),
        ),
      )
      .limit(1),
  );
  if (!version) {
    version = (yield* row(
      tx
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
        .returning(),
    ))!;
    yield* appendEvent({
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
  let split = yield* row(
    tx
      .select()
      .from(splits)
      .where(and(eq(splits.datasetVersionId, version.id), eq(splits.sha256, e.split.sha256)))
      .limit(1),
  );
  if (!split) {
    split = (yield* row(
      tx
        .insert(splits)
        .values({
          datasetVersionId: version.id,
          specJson: canonicalJson(e.split.spec),
          manifestJson: canonicalJson(e.split.manifest),
          sha256: e.split.sha256,
          createdAt: new Date().toISOString(),
        })
        .returning(),
    ))!;
    const parts = e.split.manifest.partitions;
    yield* appendEvent({
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
  yield* exec(tx.update(runs).set({ datasetVersionId: version.id, splitId: split.id }).where(eq(runs.id, runId)));
}

export function recordPreparedOn(deps: StoreDeps, runId: number, actor: Actor, e: Prepared, datasetId: number): Promise<void> {
  return persist(deps.db, (tx, s) => recordPreparedTx(tx, s, runId, actor, e, datasetId));
}

function* recordStartedTx(tx: Tx, { tables }: Store, runId: number, actor: Actor, e: Started, app: AppProvenance): TxBody<void> {
  const { runs } = tables;
  const environment = { ...e.environment, ...app, fineTune: e.fineTune ?? null };
  const startedAt = new Date().toISOString();
  const memoryJson = canonicalJson(e.memory);
  yield* exec(
    tx
      .update(runs)
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
      .where(eq(runs.id, runId)),
  );
  // The data the run was prepared on ("prepared" comes before "started"), so the run's dataset version and split are covered.
  const data = yield* row(
    tx.select({ datasetVersionId: runs.datasetVersionId, splitId: runs.splitId }).from(runs).where(eq(runs.id, runId)),
  );
  yield* appendEvent({
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
}

export function recordStartedOn(deps: StoreDeps, runId: number, actor: Actor, e: Started, app: AppProvenance): Promise<void> {
  return persist(deps.db, (tx, s) => recordStartedTx(tx, s, runId, actor, e, app));
}

type Progress = { epoch: number; epochs: number; batch: number; batches: number; samplesPerSecond?: number };

/** Progress is operational (no ledger event): one awaited statement on either store. */
export async function recordProgressOn(store: Store | Db, runId: number, progress: Progress): Promise<void> {
  const { runs } = asStore(store).tables;
  await reader(asStore(store))
    .update(runs)
    .set({ progressJson: JSON.stringify(progress) })
    .where(eq(runs.id, runId));
}

function* recordCheckpointTx(tx: Tx, { tables }: Store, runId: number, actor: Actor, e: Checkpointed, bytes: number): TxBody<number> {
  const row0 = (yield* row(
    tx
      .insert(tables.checkpoints)
      .values({
        runId,
        epoch: e.epoch,
        step: e.step,
        sha256: e.sha256,
        bytes,
        metricsJson: canonicalJson(e.metrics),
        isBest: false,
        createdAt: new Date().toISOString(),
      })
      .returning(),
  ))!;
  yield* appendEvent({
    actor,
    action: "checkpoint.create",
    entityType: "checkpoint",
    entityId: row0.id,
    payload: { runId, epoch: e.epoch, step: e.step, sha256: e.sha256, bytes, metrics: e.metrics, createdAt: row0.createdAt },
  });
  return row0.id;
}

function checkStoredWeights(e: Checkpointed, stored: { sha256: string }): void {
  if (stored.sha256 !== e.sha256)
    throw new Error(`checkpoint at epoch ${e.epoch}: trainer reported sha256 ${e.sha256} but the bytes hash to ${stored.sha256}`);
}

/** The weights are stored (and their hash checked) before the transaction, which records the checkpoint. */
export async function recordCheckpointOn(deps: StoreDeps, runId: number, actor: Actor, e: Checkpointed): Promise<number> {
  const stored = await deps.artifacts.put(e.weights);
  checkStoredWeights(e, stored);
  return persist(deps.db, (tx, s) => recordCheckpointTx(tx, s, runId, actor, e, stored.bytes));
}

function* recordEvaluationTx(tx: Tx, { tables }: Store, runId: number, actor: Actor, e: Evaluated): TxBody<void> {
  const { checkpoints, runs, evaluations } = tables;
  const ck = yield* row(
    tx
      .select()
      .from(checkpoints)
      .where(and(eq(checkpoints.runId, runId), eq(checkpoints.sha256, e.checkpointSha256)))
      .limit(1),
  );
  if (!ck) throw new Error(`evaluation refers to checkpoint ${e.checkpointSha256}, which run ${runId} does not have`);
  const run = yield* row(tx.select({ splitId: runs.splitId }).from(runs).where(eq(runs.id, runId)));
  const { confusion, ...rest } = e.result as typeof e.result & { confusion?: unknown };
  const stored = (yield* row(
    tx
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
      .returning(),
  ))!;
  yield* appendEvent({
    actor,
    action: "evaluation.create",
    entityType: "evaluation",
    entityId: stored.id,
    payload: {
      runId,
      checkpointId: ck.id,
      checkpointSha256: ck.sha256,
      partition: e.partition,
      dataSha256: e.dataSha256,
      splitId: stored.splitId,
      source: stored.source,
      createdAt: stored.createdAt,
      metricsSha256: sha256Canonical(e.result),
    },
  });
}

export function recordEvaluationOn(deps: StoreDeps, runId: number, actor: Actor, e: Evaluated): Promise<void> {
  return persist(deps.db, (tx, s) => recordEvaluationTx(tx, s, runId, actor, e));
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

function* recordFinishedTx(tx: Tx, { tables }: Store, runId: number, actor: Actor, e: Finished, config: TrainingConfig): TxBody<void> {
  const { checkpoints, metricSummaries, runs } = tables;
  const metricsDigest = yield* metricDigestTx(runId);
  const cks = yield* rows(
    tx
      .select({ id: checkpoints.id, metricsJson: checkpoints.metricsJson })
      .from(checkpoints)
      .where(eq(checkpoints.runId, runId))
      .orderBy(checkpoints.epoch),
  );
  const bestId = bestCheckpointId(cks, config.training.bestMetric);
  if (bestId !== null) yield* exec(tx.update(checkpoints).set({ isBest: true }).where(eq(checkpoints.id, bestId)));
  // Key order does not matter: finalMetrics is hashed canonically (keys sorted) in the event.
  const summaries = yield* rows(tx.select().from(metricSummaries).where(eq(metricSummaries.runId, runId)));
  const finalMetrics = Object.fromEntries(summaries.map((s) => [s.key, s.last]));
  const finishedAt = new Date().toISOString();
  yield* exec(tx.update(runs).set({ status: e.status, finishedAt, finalWeightsSha256: e.weightsSha256 }).where(eq(runs.id, runId)));
  yield* appendEvent({
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
}

export function recordFinishedOn(deps: StoreDeps, runId: number, actor: Actor, e: Finished, config: TrainingConfig): Promise<void> {
  return persist(deps.db, (tx, s) => recordFinishedTx(tx, s, runId, actor, e, config));
}

function* recordFailedTx(tx: Tx, { tables }: Store, runId: number, actor: Actor, message: string): TxBody<void> {
  const { runs } = tables;
  const run = yield* row(tx.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)));
  if (!run || run.status === "completed" || run.status === "failed" || run.status === "cancelled") return;
  const finishedAt = new Date().toISOString();
  yield* exec(tx.update(runs).set({ status: "failed", error: message, finishedAt }).where(eq(runs.id, runId)));
  const metricsDigest = yield* metricDigestTx(runId);
  yield* appendEvent({
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
}

export function recordFailedOn(deps: { db: Store | Db }, runId: number, actor: Actor, message: string): Promise<void> {
  return persist(deps.db, (tx, s) => recordFailedTx(tx, s, runId, actor, message));
}

export type InterruptionInfo = {
  owner: string | null;
  lastHeartbeatAt: string | null;
  autoResume: boolean;
  /** Why the run stopped, when its process knows it (a worker handing its runs back at SIGTERM). */
  reason?: string;
};

/**
 * The process that trained a run died: the run becomes "interrupted" with a system event naming the checkpoint it
 * will continue from (or none: it restarts from scratch). Re-checks the status in the transaction (another process
 * may have recovered it meanwhile); returns false when the run was no longer running.
 */
export function* recordInterruptedTx(tx: Tx, { tables }: Store, runId: number, info: InterruptionInfo): TxBody<boolean> {
  const { runs, checkpoints } = tables;
  const run = yield* row(tx.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)));
  if (!run || run.status !== "running") return false;
  const last = yield* row(
    tx
      .select({ id: checkpoints.id, epoch: checkpoints.epoch, step: checkpoints.step })
      .from(checkpoints)
      .where(eq(checkpoints.runId, runId))
      .orderBy(desc(checkpoints.epoch))
      .limit(1),
  );
  const interruptedAt = new Date().toISOString();
  yield* exec(tx.update(runs).set({ status: "interrupted" }).where(eq(runs.id, runId)));
  yield* appendEvent({
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
}

export function recordInterruptedOn(deps: { db: Store | Db }, runId: number, info: InterruptionInfo): Promise<boolean> {
  return persist(deps.db, (tx, s) => recordInterruptedTx(tx, s, runId, info));
}
