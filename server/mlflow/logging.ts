/**
 * Logging to a run: log-metric, log-parameter, set-tag, delete-tag and log-batch, all through one batch writer.
 *
 * Invariants:
 * - One call = one transaction = one run.log event (delete-tag: run.deleteTag) carrying the sha256 of the canonical
 *   batch as received (after validation), the decisions it created (id, path, kind, sha256 of the whole row, as
 *   run.create lists its decisions) and each tag's value sha256. The answer is sent only after the commit.
 * - Limits of MLflow (contracts/mlflow/types.ts MLFLOW_LIMITS): at most 1000 metrics, 100 params, 100 tags, 1000
 *   items in total; keys of at most 250 characters in MLflow's alphabet; param values ≤ 6000, tag values ≤ 8000.
 * - Params are write-once (MLflow): the same value again is accepted and changes nothing; another value is refused
 *   with INVALID_PARAMETER_VALUE. Each new param is a decision of kind "param" (path = key, new value = the JSON
 *   string) by the token's user; its rationale is the run's `runledger.rationale` tag (this batch's, else the run's).
 * - Metric points land in the metrics table with their summaries and rollups (insertMetricPoints, as embedded runs),
 *   epoch = step, wall time = timestamp. Runledger keeps one value per (run, key, step): re-sending the same value
 *   is accepted (idempotent retries); a different value at a stored step is refused (nothing is silently dropped).
 *   Non-finite values are refused (they cannot be stored or hashed canonically). A run that has ended takes no
 *   more metrics (its end event sealed their digest).
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import { z } from "zod";
import * as schema from "@/db/schema";
import type { Db, DbOrTx, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, exec, row, rows, runOnSqliteTx, transact, type StoreTables, type TxBody } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
import { now } from "@/server/app-context/service-context";
import { canonicalJson, sha256Hex } from "@/contracts/canonical";
import { insertDecision, type DecisionRef } from "@/server/decisions/service";
import { insertMetricPointsTx, type MetricPoint } from "@/server/runs/orchestrator/persist-events";
import { MLFLOW_LIMITS, RATIONALE_TAG, type MlflowEndpoints } from "@/contracts/mlflow/types";
import { invalidParam, MlflowError } from "./errors";
import { idField, int64, numericId, parseRequest, requireWriter, type MlflowCtx, type MlflowStoreCtx } from "./common";
import { activeApiRun, activeApiRunIn, isTerminal, type RunRow } from "./runs";

export type BatchMetric = { key: string; value: number; timestamp: number; step: number };
export type Batch = { metrics: BatchMetric[]; params: { key: string; value: string }[]; tags: { key: string; value: string }[] };

const DEFAULT_RATIONALE = `logged through the MLflow API without a "${RATIONALE_TAG}" tag`;
const KEY_ALPHABET = /^[\w.\- /:]+$/;

const metricField = z.object({
  key: z.string(),
  value: z.union([z.number(), z.enum(["NaN", "Infinity", "-Infinity"]).transform(Number)]),
  timestamp: int64,
  step: int64.default(0),
});
const paramField = z.object({ key: z.string(), value: z.string() });
const tagField = z.object({ key: z.string(), value: z.string() });

function checkKey(kind: string, key: string): void {
  if (key.length > MLFLOW_LIMITS.maxEntityKeyLength)
    invalidParam(
      `${kind} key '${key.slice(0, 40)}…' had length ${key.length}, which exceeded length limit of ${MLFLOW_LIMITS.maxEntityKeyLength}`,
    );
  if (!KEY_ALPHABET.test(key) || key.split("/").some((part) => part === "." || part === ".."))
    invalidParam(
      `Invalid ${kind.toLowerCase()} name: '${key}'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).`,
    );
}

/** MLflow's batch checks, in its order: counts first, then each item. */
export function validateBatch(b: Batch): void {
  const { maxMetricsPerBatch: M, maxParamsTagsPerBatch: P, maxEntitiesPerBatch: E } = MLFLOW_LIMITS;
  const split = "Please split up metrics, params, and tags across multiple requests and try again.";
  if (b.metrics.length > M)
    invalidParam(`A batch logging request can contain at most ${M} metrics. Got ${b.metrics.length} metrics. ${split}`);
  if (b.params.length > P) invalidParam(`A batch logging request can contain at most ${P} params. Got ${b.params.length} params. ${split}`);
  if (b.tags.length > P) invalidParam(`A batch logging request can contain at most ${P} tags. Got ${b.tags.length} tags. ${split}`);
  const total = b.metrics.length + b.params.length + b.tags.length;
  if (total > E)
    invalidParam(`A batch logging request can contain at most ${E} metrics, params, and tags in total. Got ${total}. ${split}`);
  const checked = new Set<string>(); // a batch repeats a few keys (10 keys x 100 steps): each is checked once
  for (const m of b.metrics) {
    if (!checked.has(m.key)) {
      checkKey("Metric", m.key);
      checked.add(m.key);
    }
    if (!Number.isFinite(m.value))
      invalidParam(
        `Got invalid value ${m.value} for metric '${m.key}': Runledger stores finite values only (NaN and infinities cannot be hashed canonically)`,
      );
  }
  const seen = new Map<string, string>();
  for (const p of b.params) {
    checkKey("Param", p.key);
    if (p.value.length > MLFLOW_LIMITS.maxParamValueLength)
      invalidParam(
        `Param value '${p.value.slice(0, 40)}…' had length ${p.value.length}, which exceeded length limit of ${MLFLOW_LIMITS.maxParamValueLength}`,
      );
    const before = seen.get(p.key);
    if (before !== undefined && before !== p.value)
      invalidParam(
        `Duplicate parameter keys have been submitted: ['${p.key}']. Please ensure the request contains only one param value per param key.`,
      );
    seen.set(p.key, p.value);
  }
  for (const t of b.tags) {
    checkKey("Tag", t.key);
    if (t.value.length > MLFLOW_LIMITS.maxTagValueLength)
      invalidParam(
        `Tag value '${t.value.slice(0, 40)}…' had length ${t.value.length}, which exceeded length limit of ${MLFLOW_LIMITS.maxTagValueLength}`,
      );
  }
}

const jsonString = (s: string): string => JSON.stringify(s);
const num = (x: number): string => (Number.isFinite(x) ? String(x) : JSON.stringify(x));
const pairs = (xs: { key: string; value: string }[]): string =>
  xs.map((x) => `{"key":${jsonString(x.key)},"value":${jsonString(x.value)}}`).join(",");

/**
 * The canonical JSON (RFC 8785, contracts/canonical.ts canonicalJson) of a parsed batch, written out for its fixed
 * shape: the same bytes, about ten times faster than the generic serializer for 1000 metrics (a test checks they are
 * equal). Members in code-unit order (metrics, params, tags; key, step, timestamp, value); numbers and strings as
 * JSON.stringify spells them, which is what RFC 8785 prescribes for finite numbers and well-formed strings.
 */
export function batchCanonicalJson(b: Batch): string {
  // Finite numbers: String(x) is JSON.stringify(x) (and RFC 8785's form). Each key's JSON is written once per batch.
  const keyJson = new Map<string, string>();
  let metrics = "";
  for (let i = 0; i < b.metrics.length; i++) {
    const m = b.metrics[i]!;
    let k = keyJson.get(m.key);
    if (k === undefined) keyJson.set(m.key, (k = `{"key":${jsonString(m.key)},"step":`));
    metrics += `${i ? "," : ""}${k}${String(m.step)},"timestamp":${String(m.timestamp)},"value":${num(m.value)}}`;
  }
  const out = `{"metrics":[${metrics}],"params":[${pairs(b.params)}],"tags":[${pairs(b.tags)}]}`;
  // Lone surrogates are refused as canonicalJson refuses them (they have no canonical form).
  if (out.includes("\\ud")) return canonicalJson(b);
  return out;
}

/**
 * The batch's points in the metrics table's key order (key, then step; stable, so a repeated step keeps its place):
 * consecutive inserts land on the same B-tree leaf. A batch usually comes step by step across its keys (10 keys x 100
 * steps); in key order the inserts and their commit took about a third less CPU (2.0 vs 3.0 ms per 1000 points,
 * 4 runs written in turn). insertMetricPoints keeps the order; summaries and rollups do not depend on it.
 */
export function pointsInKeyOrder(metrics: BatchMetric[]): MetricPoint[] {
  const byKey = new Map<string, MetricPoint[]>();
  for (const m of metrics) {
    const p: MetricPoint = { key: m.key, step: m.step, epoch: m.step, value: m.value, wallTimeMs: m.timestamp };
    const list = byKey.get(m.key);
    if (list) list.push(p);
    else byKey.set(m.key, [p]);
  }
  const out: MetricPoint[] = [];
  for (const key of [...byKey.keys()].sort()) {
    const list = byKey.get(key)!;
    let ascending = true;
    for (let i = 1; i < list.length && ascending; i++) ascending = list[i - 1]!.step <= list[i]!.step;
    if (!ascending) list.sort((x, y) => x.step - y.step);
    for (const p of list) out.push(p);
  }
  return out;
}

/**
 * Writes a validated batch to `run` inside the caller's transaction (which re-read the run) and its run.log event: a
 * transaction part (db/store.ts). Throws (rolling the transaction back) on a param overwrite, a conflicting metric
 * point or metrics for an ended run. On either store (issue 16): the points go in through insertMetricPointsTx
 * (server/runs/orchestrator/persist-events.ts).
 */
export function* writeBatchPart(ctx: MlflowStoreCtx, tx: Tx, t: StoreTables, run: RunRow, b: Batch): TxBody<void> {
  if (b.metrics.length + b.params.length + b.tags.length === 0) return;
  const { decisions, runTagValues, runs } = t;
  const at = now();
  // Metrics: refuse what would be dropped (another value at a stored step) before writing anything.
  if (b.metrics.length > 0) {
    if (isTerminal(run.status))
      invalidParam(
        `Run ${run.id} has ended (${run.status}); its metrics were sealed by its end event. Set the run RUNNING again to log more.`,
      );
    const inBatch = new Map<string, Map<number, number>>(); // key → step → value (no string per point)
    for (const m of b.metrics) {
      let steps = inBatch.get(m.key);
      if (!steps) inBatch.set(m.key, (steps = new Map()));
      const v = steps.get(m.step);
      if (v !== undefined && v !== m.value)
        invalidParam(
          `Metric '${m.key}' has two values at step ${m.step} in this batch: Runledger keeps one value per step; log them at distinct steps`,
        );
      steps.set(m.step, m.value);
    }
  }
  // Params: write-once.
  const existing = new Map<string, string>();
  if (b.params.length > 0)
    for (const d of yield* rows(
      tx
        .select({ path: decisions.path, valueJson: decisions.newValueJson })
        .from(decisions)
        .where(
          and(
            eq(decisions.runId, run.id),
            eq(decisions.kind, "param"),
            inArray(
              decisions.path,
              b.params.map((p) => p.key),
            ),
          ),
        ),
    ))
      existing.set(d.path, JSON.parse(d.valueJson ?? '""') as string);
  const fresh: { key: string; value: string }[] = [];
  for (const p of b.params) {
    const old = existing.get(p.key);
    if (old === undefined) {
      if (!fresh.some((f) => f.key === p.key)) fresh.push(p);
      continue;
    }
    if (old !== p.value)
      invalidParam(
        `Changing param values is not allowed. Param with key='${p.key}' was already logged with value='${old}' for run ID='${run.id}'. Attempted logging new value '${p.value}'.`,
      );
  }
  // The rationale is read only when a param becomes a decision.
  const rationaleTag =
    fresh.length === 0
      ? undefined
      : ([...b.tags].reverse().find((t) => t.key === RATIONALE_TAG)?.value ??
        (yield* row(
          tx
            .select({ value: runTagValues.value })
            .from(runTagValues)
            .where(and(eq(runTagValues.runId, run.id), eq(runTagValues.key, RATIONALE_TAG)))
            .limit(1),
        ))?.value);
  const rationale = rationaleTag?.trim() ? rationaleTag.trim().slice(0, 4000) : DEFAULT_RATIONALE;

  // A point at a step stored before (or repeated in this batch): the same value is an idempotent retry (not stored
  // again); another one is refused, which rolls the whole call back (nothing of it is written). The insert reports
  // those points; their stored values are read after it with one statement of the body (on PostgreSQL the insert
  // cannot read synchronously; on SQLite the same statement, so both stores check alike).
  if (b.metrics.length > 0) {
    const storedBefore: MetricPoint[] = [];
    yield* insertMetricPointsTx(run.id, pointsInKeyOrder(b.metrics), (p) => storedBefore.push(p));
    if (storedBefore.length > 0) yield* refuseChangedPoints(tx, t, run.id, storedBefore);
  }
  // Each param's decision is bound by the run.log event below (its reference in `decisions`).
  const decisionRefs: DecisionRef[] = [];
  for (const p of fresh) {
    const { ref } = yield* insertDecision(tx, t, {
      runId: run.id,
      kind: "param",
      path: p.key,
      oldValueJson: null,
      newValueJson: JSON.stringify(p.value),
      rationale,
      authorId: ctx.actor.id,
      createdAt: at,
    });
    decisionRefs.push(ref);
  }
  const lastTag = new Map<string, string>();
  for (const t of b.tags) lastTag.set(t.key, t.value);
  for (const [key, value] of lastTag)
    yield* exec(
      tx
        .insert(runTagValues)
        .values({ runId: run.id, key, value, updatedAt: at })
        .onConflictDoUpdate({ target: [runTagValues.runId, runTagValues.key], set: { value, updatedAt: at } }),
    );
  yield* appendEvent({
    actor: ctx.actor,
    action: "run.log",
    entityType: "run",
    entityId: run.id,
    payload: {
      batchSha256: sha256Hex(batchCanonicalJson(b)),
      metrics: b.metrics.length,
      params: b.params.length,
      decisions: decisionRefs,
      tags: [...lastTag].map(([key, value]) => ({ key, valueSha256: sha256Hex(value) })),
      at,
    },
  });
  const runName = lastTag.get("mlflow.runName");
  if (runName !== undefined && runName.trim() && runName.slice(0, 120) !== run.name) {
    yield* exec(
      tx
        .update(runs)
        .set({ name: runName.slice(0, 120) })
        .where(eq(runs.id, run.id)),
    );
    yield* appendEvent({
      actor: ctx.actor,
      action: "run.annotate",
      entityType: "run",
      entityId: run.id,
      payload: { field: "name", from: run.name, to: runName.slice(0, 120) },
    });
  }
}

/**
 * Refuses the first of `points` (in their order) whose (key, step) holds another value in the run's stored points:
 * one read of the stored values of their keys at their steps (a superset of the points, matched here).
 */
function* refuseChangedPoints(tx: Tx, t: StoreTables, runId: number, points: MetricPoint[]): TxBody<void> {
  const { metrics } = t;
  const keys = [...new Set(points.map((p) => p.key))];
  const steps = [...new Set(points.map((p) => p.step))];
  const stored = new Map<string, number>();
  for (const r of yield* rows(
    tx
      .select({ key: metrics.key, step: metrics.step, value: metrics.value })
      .from(metrics)
      .where(and(eq(metrics.runId, runId), inArray(metrics.key, keys), inArray(metrics.step, steps))),
  ))
    stored.set(`${r.step}\u0000${r.key}`, r.value);
  for (const p of points) {
    const v = stored.get(`${p.step}\u0000${p.key}`);
    if (v !== undefined && v !== p.value)
      invalidParam(
        `Metric '${p.key}' already has the value ${v} at step ${p.step} of run ${runId}: Runledger keeps one value per step; log ${p.value} at another step`,
      );
  }
}

/** writeBatchPart on SQLite, synchronously, inside the caller's `db.transaction` (log-batch's SQLite path, the ingest worker). */
export function writeBatch(ctx: MlflowCtx, tx: DbOrTx, run: RunRow, b: Batch): void {
  runOnSqliteTx(tx as Tx, writeBatchPart(ctx, tx as Tx, schema, run, b));
}

const runById = new WeakMap<Db, { get: (args: { id: number }) => RunRow | undefined }>();

/**
 * activeApiRun (runs.ts) with the run read through a query prepared once per connection: every log call reads its
 * run, and building the select with drizzle cost more than running it. Same checks, same answers. Call it inside the
 * writer's transaction (the statement runs on the same connection).
 */
function apiRunToLog(db: Db, runId: string): RunRow {
  let q = runById.get(db);
  if (!q)
    runById.set(
      db,
      (q = db
        .select()
        .from(schema.runs)
        .where(eq(schema.runs.id, sql.placeholder("id")))
        .prepare()),
    );
  const id = numericId(runId);
  const row = id === null ? undefined : q.get({ id });
  if (!row) return activeApiRun(db, runId); // answers RESOURCE_DOES_NOT_EXIST as runs.ts words it
  if (row.deletedAt || row.origin !== "api") return activeApiRun(db, runId); // refused there, in its words
  return row;
}

/**
 * A logging call on SQLite (the dispatcher's SQLite path and the ingest worker's group commit): the same body as on
 * PostgreSQL (writeBatchPart), driven synchronously. It stays synchronous on purpose: the group commit
 * (ingest-group.ts) runs each call as a savepoint of its one transaction and must know each call's outcome before
 * its COMMIT, which an awaited transaction would only tell after. IMMEDIATE, as every store transaction on SQLite
 * (db/store.ts): it reads the run and the stored params before writing, and a deferred transaction that another
 * process wrote past in between fails with SQLITE_BUSY instead of waiting; nested in the group's transaction it is
 * a savepoint.
 */
function logTo(ctx: MlflowCtx, runId: string, b: Batch): Record<string, never> {
  validateBatch(b);
  requireWriter(ctx, "log to runs");
  ctx.db.transaction((tx) => writeBatch(ctx, tx, apiRunToLog(ctx.db, runId), b), { behavior: "immediate" });
  return {};
}

/**
 * A logging call on the caller's store: SQLite as before (logTo, with its statement prepared once per connection);
 * PostgreSQL in one transaction under the ledger lock, the run, the stored params and the stored points re-read inside
 * it, so one param (or point) logged twice at once with different values gives one value and MLflow's refusal, and no
 * point lands in a run whose end event has sealed its digest.
 */
async function logToStore(ctx: MlflowStoreCtx, runId: string, b: Batch): Promise<Record<string, never>> {
  const store = asStore(ctx.db);
  if (store.dialect === "sqlite") return logTo({ ...ctx, db: store.db, artifacts: ctx.artifacts as MlflowCtx["artifacts"] }, runId, b);
  validateBatch(b);
  requireWriter(ctx, "log to runs");
  const t = store.tables;
  await transact(
    store,
    function* (tx) {
      yield* writeBatchPart(ctx, tx, t, yield* activeApiRunIn(tx, t, runId), b);
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return {};
}

const runIdOf = (input: { run_id?: string; run_uuid?: string }): string =>
  input.run_id ??
  input.run_uuid ??
  invalidParam("Missing value for required parameter 'run_id'. See the API docs for more information about request parameters.");
const runIdFields = { run_id: idField.optional(), run_uuid: idField.optional() };

/** log-batch's request schema (plainLogBatch reads the common shape faster, with the same result). */
export const logBatchInput = z.object({
  ...runIdFields,
  metrics: z.array(metricField).default([]),
  params: z.array(paramField).default([]),
  tags: z.array(tagField).default([]),
});

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const idOf = (x: unknown): string | undefined | null =>
  x === undefined ? undefined : typeof x === "string" ? x : Number.isSafeInteger(x) ? String(x) : null;

function plainPairs(xs: unknown): { key: string; value: string }[] | null {
  if (xs === undefined) return [];
  if (!Array.isArray(xs)) return null;
  const out: { key: string; value: string }[] = new Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    const x: unknown = xs[i];
    if (!isRecord(x) || typeof x.key !== "string" || typeof x.value !== "string") return null;
    out[i] = { key: x.key, value: x.value };
  }
  return out;
}

/**
 * A log-batch body of the plain shape MLflow clients send (ids as strings, numbers as JSON numbers, steps present or
 * left out) read without zod: the same result as the zod schema below gives for it (unknown members dropped, step 0
 * by default), at a fraction of the cost for 1000 metrics. Anything else (numbers as strings, "NaN", a wrong type)
 * returns null and goes through zod, which answers its errors.
 */
export function plainLogBatch(body: unknown): { runId: string | undefined; batch: Batch } | null {
  if (!isRecord(body)) return null;
  const runId = idOf(body.run_id);
  const runUuid = idOf(body.run_uuid);
  if (runId === null || runUuid === null) return null;
  const ms = body.metrics === undefined ? [] : body.metrics;
  if (!Array.isArray(ms)) return null;
  const metrics: BatchMetric[] = new Array(ms.length);
  for (let i = 0; i < ms.length; i++) {
    const m: unknown = ms[i];
    if (!isRecord(m)) return null;
    const { key, value, timestamp } = m;
    const step = m.step === undefined ? 0 : m.step;
    if (typeof key !== "string" || !Number.isFinite(value) || !Number.isSafeInteger(timestamp) || !Number.isSafeInteger(step)) return null;
    metrics[i] = { key, value: value as number, timestamp: timestamp as number, step: step as number };
  }
  const params = plainPairs(body.params);
  const tags = plainPairs(body.tags);
  if (!params || !tags) return null;
  return { runId: runId ?? runUuid, batch: { metrics, params, tags } };
}

/** A log-batch body: the plain shape read without zod, anything else through zod (which answers its errors). */
function batchOf(body: unknown): { runId: string; batch: Batch } {
  const plain = plainLogBatch(body);
  if (plain) return { runId: plain.runId ?? runIdOf({}), batch: plain.batch };
  const input = parseRequest(logBatchInput, body);
  return { runId: runIdOf(input), batch: { metrics: input.metrics, params: input.params, tags: input.tags } };
}

/** log-batch on SQLite, synchronously: the ingest worker's group commit (ingest-group.ts) calls it. */
export function logBatch(ctx: MlflowCtx, body: unknown): MlflowEndpoints["runs/log-batch"]["res"] {
  const { runId, batch } = batchOf(body);
  return logTo(ctx, runId, batch);
}

/** log-batch on the caller's store (the dispatcher). */
export async function logBatchOnStore(ctx: MlflowStoreCtx, body: unknown): Promise<MlflowEndpoints["runs/log-batch"]["res"]> {
  const { runId, batch } = batchOf(body);
  return logToStore(ctx, runId, batch);
}

export async function logMetric(ctx: MlflowStoreCtx, body: unknown) {
  const input = parseRequest(z.object({ ...runIdFields, ...metricField.shape }), body);
  return logToStore(ctx, runIdOf(input), {
    metrics: [{ key: input.key, value: input.value, timestamp: input.timestamp, step: input.step }],
    params: [],
    tags: [],
  });
}

export async function logParam(ctx: MlflowStoreCtx, body: unknown) {
  const input = parseRequest(z.object({ ...runIdFields, key: z.string(), value: z.string().default("") }), body);
  return logToStore(ctx, runIdOf(input), { metrics: [], params: [{ key: input.key, value: input.value }], tags: [] });
}

export async function setTag(ctx: MlflowStoreCtx, body: unknown) {
  const input = parseRequest(z.object({ ...runIdFields, key: z.string(), value: z.string() }), body);
  return logToStore(ctx, runIdOf(input), { metrics: [], params: [], tags: [{ key: input.key, value: input.value }] });
}

export async function deleteTag(ctx: MlflowStoreCtx, body: unknown): Promise<Record<string, never>> {
  const input = parseRequest(z.object({ run_id: idField, key: z.string() }), body);
  requireWriter(ctx, "delete run tags");
  const store = asStore(ctx.db);
  const { runTagValues } = store.tables;
  await transact(
    store,
    function* (tx) {
      const run = yield* activeApiRunIn(tx, store.tables, input.run_id);
      const found = yield* row(
        tx
          .select({ value: runTagValues.value })
          .from(runTagValues)
          .where(and(eq(runTagValues.runId, run.id), eq(runTagValues.key, input.key)))
          .limit(1),
      );
      if (!found) throw new MlflowError("RESOURCE_DOES_NOT_EXIST", `No tag with name: ${input.key} in run with id ${input.run_id}`);
      yield* exec(tx.delete(runTagValues).where(and(eq(runTagValues.runId, run.id), eq(runTagValues.key, input.key))));
      yield* appendEvent({
        actor: ctx.actor,
        action: "run.deleteTag",
        entityType: "run",
        entityId: run.id,
        payload: { key: input.key, valueSha256: sha256Hex(found.value) },
      });
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return {};
}
