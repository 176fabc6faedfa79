/**
 * MLflow runs: create, get, update (status, end time, name), delete, restore; and how a Runledger run reads as an
 * MLflow Run (info; data: latest metric values, params, tags).
 *
 * Ledger: create-run writes run.create (origin "api", config API_RUN_CONFIG, no decisions) and run.start (MLflow runs
 * start RUNNING; startedAt = start_time) in one transaction, plus a run.log for its initial tags. update-run maps
 * MLflow statuses onto Runledger's (FINISHED → completed: run.complete, FAILED → failed: run.fail, KILLED → cancelled:
 * run.cancel, RUNNING again → run.start); the end event carries the digest of the run's metric points exactly as an
 * embedded run's does, so `audit verify` checks them, and metrics are therefore not accepted once a run has ended
 * (INVALID_PARAMETER_VALUE: set it RUNNING again first). end_time applies with the transition that ends the run.
 * A new name is a run.annotate {field: "name"}. Delete/restore flip runs.deleted_at (run.delete / run.restore).
 */
import { and, asc, eq, inArray, sql, type AnyColumn } from "drizzle-orm";
import { z } from "zod";
import * as schema from "@/db/schema";
import type { DbOrTx, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, exec, row, rows, runOnSqliteTx, transact, type Dialect, type StoreTables, type TxBody } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
import { now } from "@/server/app-context/service-context";
import { canonicalJson, sha256Canonical } from "@/contracts/canonical";
import { metricSeriesDigestTx } from "@/server/audit/content/records";
import { API_RUN_CONFIG, RUN_STATUSES, type Run, type RunInfo, type MlflowEndpoints } from "@/contracts/mlflow/types";
import { insertExperiment } from "@/server/projects/service";
import { doesNotExist, invalidParam, MlflowError } from "./errors";
import { rejectPendingInterventionIn } from "@/server/runs/pilot";
import { pendingInterventionsIn } from "@/server/runs/pilot-queries";
import {
  ensureMlflowProject,
  idField,
  int64,
  iso,
  keyValue,
  MLFLOW_STATUS_OF,
  ms,
  numericId,
  parseRequest,
  readPart,
  requireWriter,
  STATUS_OF_MLFLOW,
  type MlflowStoreCtx,
} from "./common";
import { experimentRow } from "./experiments";
import { writeBatchPart } from "./logging";

export type RunRow = StoreTables["runs"]["$inferSelect"];
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

/** The run of an MLflow id, or RESOURCE_DOES_NOT_EXIST (a part: in a transaction, or through readPart). */
export function* runRowIn(q: Tx, t: StoreTables, runId: string): TxBody<RunRow> {
  const id = numericId(runId);
  const found = id === null ? undefined : yield* row(q.select().from(t.runs).where(eq(t.runs.id, id)).limit(1));
  if (!found) return doesNotExist(`Run with id=${runId} not found`);
  return found;
}

/** A run that may be written to: an API run, not deleted (MLflow: "must be in the 'active' state"). */
export function* activeApiRunIn(q: Tx, t: StoreTables, runId: string): TxBody<RunRow> {
  const found = yield* runRowIn(q, t, runId);
  if (found.deletedAt) invalidParam(`The run ${runId} must be in the 'active' state. Current state is deleted.`);
  if (found.origin !== "api")
    invalidParam(`Run ${runId} was trained by Runledger (origin "${found.origin}"): only runs created through this API can be logged to`);
  return found;
}

/** runRowIn on SQLite, synchronously (for the endpoints still on SQLite only: artifacts, history, inputs). */
export function runRow(db: DbOrTx, runId: string): RunRow {
  return runOnSqliteTx(db as Tx, runRowIn(db as Tx, schema, runId));
}

/** activeApiRunIn on SQLite, synchronously (as runRow). */
export function activeApiRun(db: DbOrTx, runId: string): RunRow {
  return runOnSqliteTx(db as Tx, activeApiRunIn(db as Tx, schema, runId));
}

function info(r: RunRow, email: string): RunInfo {
  return {
    run_id: String(r.id),
    run_uuid: String(r.id),
    run_name: r.name,
    experiment_id: String(r.experimentId),
    user_id: email,
    status: MLFLOW_STATUS_OF[r.status],
    start_time: ms(r.startedAt ?? r.createdAt)!,
    ...(r.finishedAt ? { end_time: ms(r.finishedAt)! } : {}),
    artifact_uri: `mlflow-artifacts:/${r.experimentId}/${r.id}/artifacts`,
    lifecycle_stage: r.deletedAt ? "deleted" : "active",
  };
}

/**
 * MLflow Runs for run rows, in the given order, with their latest metrics, params and tags (one query each; keys in
 * byte order on both stores). A part: read it through readPart.
 */
export function* mlflowRunsOf(q: Tx, t: StoreTables, dialect: Dialect, list: RunRow[]): TxBody<Run[]> {
  if (list.length === 0) return [];
  const { users, metricSummaries, decisions, runParams, runTagValues, runInputs } = t;
  const byKey = (col: AnyColumn) => (dialect === "pg" ? sql`${col} COLLATE "C"` : asc(col));
  const ids = list.map((r) => r.id);
  const emails = new Map(
    (yield* rows(
      q
        .select({ id: users.id, email: users.email })
        .from(users)
        .where(inArray(users.id, [...new Set(list.map((r) => r.createdBy))])),
    )).map((u) => [u.id, u.email]),
  );
  const group = <T extends { runId: number }>(found: T[]) => {
    const m = new Map<number, T[]>();
    for (const x of found) {
      const l = m.get(x.runId);
      if (l) l.push(x);
      else m.set(x.runId, [x]);
    }
    return m;
  };
  const metrics = group(
    yield* rows(
      q
        .select({
          runId: metricSummaries.runId,
          key: metricSummaries.key,
          value: metricSummaries.last,
          step: metricSummaries.lastStep,
          // node-postgres reads a bigint as text
          timestamp:
            sql<number>`(SELECT m.wall_time_ms FROM metrics m WHERE m.run_id = "metric_summaries"."run_id" AND m.key = "metric_summaries"."key" AND m.step = "metric_summaries"."last_step")`.mapWith(
              Number,
            ),
        })
        .from(metricSummaries)
        .where(inArray(metricSummaries.runId, ids))
        .orderBy(byKey(metricSummaries.key)),
    ),
  );
  const params = group(
    yield* rows(
      q
        .select({ runId: decisions.runId, key: decisions.path, valueJson: decisions.newValueJson })
        .from(decisions)
        .where(and(inArray(decisions.runId, ids), eq(decisions.kind, "param")))
        .orderBy(byKey(decisions.path)),
    ),
  );
  // Embedded runs: their params are the flattened training config (run_params), shown as MLflow string params.
  const embedded = list.filter((r) => r.origin !== "api").map((r) => r.id);
  const configParams = group(
    embedded.length
      ? yield* rows(
          q
            .select({ runId: runParams.runId, key: runParams.key, valueText: runParams.valueText, valueNum: runParams.valueNum })
            .from(runParams)
            .where(inArray(runParams.runId, embedded))
            .orderBy(byKey(runParams.key)),
        )
      : [],
  );
  const tags = group(
    yield* rows(
      q
        .select({ runId: runTagValues.runId, key: runTagValues.key, value: runTagValues.value })
        .from(runTagValues)
        .where(inArray(runTagValues.runId, ids))
        .orderBy(byKey(runTagValues.key)),
    ),
  );
  const inputs = group(yield* rows(q.select().from(runInputs).where(inArray(runInputs.runId, ids)).orderBy(asc(runInputs.id))));
  return list.map((r) => {
    const ins = inputs.get(r.id) ?? [];
    const m = metrics.get(r.id) ?? [];
    const p = [
      ...(params.get(r.id) ?? []),
      ...(configParams.get(r.id) ?? []).map((x) => ({
        key: x.key,
        valueJson: JSON.stringify(x.valueText ?? (x.valueNum === null ? "" : String(x.valueNum))),
      })),
    ];
    const t = tags.get(r.id) ?? [];
    return {
      info: info(r, emails.get(r.createdBy) ?? ""),
      data: {
        ...(m.length ? { metrics: m.map((x) => ({ key: x.key, value: x.value, timestamp: x.timestamp ?? 0, step: x.step })) } : {}),
        ...(p.length ? { params: p.map((x) => ({ key: x.key, value: JSON.parse(x.valueJson ?? '""') as string })) } : {}),
        ...(t.length ? { tags: t.map((x) => ({ key: x.key, value: x.value })) } : {}),
      },
      inputs: ins.length
        ? {
            dataset_inputs: ins.map((x) => {
              const tags = JSON.parse(x.tagsJson) as { key: string; value: string }[];
              return {
                ...(tags.length ? { tags } : {}),
                dataset: {
                  name: x.name,
                  digest: x.digest,
                  source_type: x.sourceType,
                  source: x.source,
                  ...(x.schemaText !== null ? { schema: x.schemaText } : {}),
                  ...(x.profile !== null ? { profile: x.profile } : {}),
                },
              };
            }),
          }
        : {},
    };
  });
}

/** The experiment id of create-run: the given one, or "0" / none → an experiment "Default" in the MLflow project. */
function* experimentFor(ctx: MlflowStoreCtx, tx: Tx, t: StoreTables, experimentId: string | undefined): TxBody<number> {
  if (experimentId && experimentId !== "0") {
    const found = yield* experimentRow(tx, t, experimentId);
    if (found.deletedAt) invalidParam(`The experiment ${experimentId} must be in the 'active' state. Current state is deleted.`);
    return found.id;
  }
  const projectId = yield* ensureMlflowProject(tx, t, ctx.actor);
  const { experiments } = t;
  const found = yield* row(
    tx
      .select({ id: experiments.id })
      .from(experiments)
      .where(and(eq(experiments.projectId, projectId), eq(experiments.name, "Default")))
      .limit(1),
  );
  if (found) return found.id;
  // The projects service's insert (experiment.create), as experiments/create uses it.
  return (yield* insertExperiment(tx, t, ctx.actor, { projectId, name: "Default", description: "" })).id;
}

/** The run as MLflow reads it, after its write committed. */
async function runAnswer(ctx: MlflowStoreCtx, runId: string): Promise<Run> {
  const store = asStore(ctx.db);
  return readPart(store, function* (q) {
    return (yield* mlflowRunsOf(q, store.tables, store.dialect, [yield* runRowIn(q, store.tables, runId)]))[0]!;
  });
}

export async function createRun(ctx: MlflowStoreCtx, body: unknown): Promise<MlflowEndpoints["runs/create"]["res"]> {
  const input = parseRequest(
    z.object({
      experiment_id: idField.optional(),
      user_id: z.string().optional(),
      run_name: z.string().max(120).optional(),
      start_time: int64.optional(),
      tags: z.array(keyValue).default([]),
    }),
    body,
  );
  requireWriter(ctx, "create runs");
  const runNameTag = input.tags.find((t) => t.key === "mlflow.runName")?.value;
  if (input.run_name && runNameTag !== undefined && runNameTag !== input.run_name)
    invalidParam(
      `Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='${input.run_name}', mlflow.runName='${runNameTag}').`,
    );
  const configJson = canonicalJson(API_RUN_CONFIG);
  const configSha256 = sha256Canonical(API_RUN_CONFIG);
  const store = asStore(ctx.db);
  const t = store.tables;
  const created = await transact(
    store,
    function* (tx) {
      const experimentId = yield* experimentFor(ctx, tx, t, input.experiment_id);
      const counted = yield* row(
        tx
          .select({ n: sql<number>`count(*)`.mapWith(Number) })
          .from(t.runs)
          .where(eq(t.runs.experimentId, experimentId)),
      );
      const n = counted?.n ?? 0;
      const at = now();
      const startedAt = input.start_time !== undefined ? iso(input.start_time) : at;
      const name = (input.run_name || runNameTag || `run ${n + 1}`).slice(0, 120);
      const run = (yield* row(
        tx
          .insert(t.runs)
          .values({
            experimentId,
            name,
            status: "running",
            configJson,
            configSha256,
            seed: 0,
            origin: "api",
            createdBy: ctx.actor.id,
            createdAt: at,
            startedAt,
          })
          .returning(),
      ))!;
      yield* appendEvent({
        actor: ctx.actor,
        action: "run.create",
        entityType: "run",
        entityId: run.id,
        payload: {
          experimentId,
          name,
          configSha256,
          origin: "api",
          parentRunId: null,
          parentCheckpointId: null,
          createdAt: at,
          decisions: [],
        },
      });
      yield* appendEvent(apiRunStartEvent(ctx, run.id, startedAt));
      const tags = [...input.tags.filter((tag) => tag.key !== "mlflow.runName"), { key: "mlflow.runName", value: name }];
      if (input.user_id && !tags.some((tag) => tag.key === "mlflow.user")) tags.push({ key: "mlflow.user", value: input.user_id });
      yield* writeBatchPart(ctx, tx, t, run, { metrics: [], params: [], tags });
      return run.id;
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return { run: await runAnswer(ctx, String(created)) };
}

export async function getRun(ctx: MlflowStoreCtx, body: unknown): Promise<MlflowEndpoints["runs/get"]["res"]> {
  const { run_id, run_uuid } = parseRequest(z.object({ run_id: idField.optional(), run_uuid: idField.optional() }), body);
  const id = run_id ?? run_uuid;
  if (id === undefined)
    return invalidParam("Missing value for required parameter 'run_id'. See the API docs for more information about request parameters.");
  return { run: await runAnswer(ctx, id) };
}

/**
 * The end event of a run that stops (the same fields as an embedded run's, metric digest included). `stoppedByDecision`:
 * a pilot's stop ended it (server/mlflow/pilot.ts), marked as an embedded run's run.complete marks it. Interventions
 * still pending are rejected (by the server, with why), as when an embedded run ends before its next boundary. A part
 * of the caller's transaction body, on either store: the pending interventions and the points are read inside it, so
 * under the ledger lock no point or intervention slips in between the digest and the end.
 */
export function* recordEndIn(
  ctx: MlflowStoreCtx,
  tx: Tx,
  t: StoreTables,
  run: RunRow,
  status: "completed" | "failed" | "cancelled",
  finishedAt: string,
  opts: { stoppedByDecision?: true } = {},
): TxBody<void> {
  const { runs, metricSummaries } = t;
  for (const p of yield* pendingInterventionsIn(tx, t, run.id))
    yield* rejectPendingInterventionIn(tx, t, p, `the run ended (${MLFLOW_STATUS_OF[status]}) before the script applied it`);
  const digest = yield* metricSeriesDigestTx(run.id);
  yield* exec(tx.update(runs).set({ status, finishedAt }).where(eq(runs.id, run.id)));
  const metricsFields = {
    metricsSha256: digest.sha256,
    metricPointsSha256: digest.pointsSha256,
    metricPoints: digest.points,
  };
  if (status === "failed") {
    yield* appendEvent({
      actor: ctx.actor,
      action: "run.fail",
      entityType: "run",
      entityId: run.id,
      payload: { error: null, errorSha256: null, finishedAt, ...metricsFields },
    });
    return;
  }
  // Keys in byte order (SQLite's primary-key order; PostgreSQL gives none): MLflow keys are ASCII, where JS's order is it.
  const summaries = yield* rows(
    tx.select({ key: metricSummaries.key, last: metricSummaries.last }).from(metricSummaries).where(eq(metricSummaries.runId, run.id)),
  );
  const finalMetrics = Object.fromEntries(
    summaries.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0)).map((s) => [s.key, s.last]),
  );
  yield* appendEvent({
    actor: ctx.actor,
    action: status === "completed" ? "run.complete" : "run.cancel",
    entityType: "run",
    entityId: run.id,
    payload: { status, weightsSha256: null, ...opts, bestCheckpointId: null, finalMetrics, ...metricsFields, finishedAt },
  });
}

/** The run.start of an API run set running again (runs/update RUNNING, or a pilot's resume acknowledged by the script). */
export function* recordApiStartIn(ctx: MlflowStoreCtx, tx: Tx, t: StoreTables, run: RunRow): TxBody<void> {
  yield* exec(tx.update(t.runs).set({ status: "running", finishedAt: null }).where(eq(t.runs.id, run.id)));
  yield* appendEvent(apiRunStartEvent(ctx, run.id, run.startedAt));
}

/** An API run's run.start: no trainer, so no backend, dataset, split, environment or memory estimate to record. */
function apiRunStartEvent(ctx: MlflowStoreCtx, runId: number, startedAt: string | null) {
  return {
    actor: ctx.actor,
    action: "run.start",
    entityType: "run",
    entityId: runId,
    payload: {
      backend: null,
      backendReason: null,
      datasetVersionId: null,
      splitId: null,
      environment: null,
      memorySha256: null,
      paramCount: null,
      startedAt,
    },
  } as const;
}

export async function updateRun(ctx: MlflowStoreCtx, body: unknown): Promise<MlflowEndpoints["runs/update"]["res"]> {
  const input = parseRequest(
    z.object({
      run_id: idField.optional(),
      run_uuid: idField.optional(),
      status: z.enum(RUN_STATUSES as [string, ...string[]]).optional(),
      end_time: int64.optional(),
      run_name: z.string().max(120).optional(),
    }),
    body,
  );
  const id = input.run_id ?? input.run_uuid;
  if (id === undefined)
    return invalidParam("Missing value for required parameter 'run_id'. See the API docs for more information about request parameters.");
  requireWriter(ctx, "update runs");
  const store = asStore(ctx.db);
  const t = store.tables;
  await transact(
    store,
    function* (tx) {
      const run = yield* activeApiRunIn(tx, t, id);
      if (input.run_name && input.run_name !== run.name) {
        yield* exec(tx.update(t.runs).set({ name: input.run_name }).where(eq(t.runs.id, run.id)));
        yield* appendEvent({
          actor: ctx.actor,
          action: "run.annotate",
          entityType: "run",
          entityId: run.id,
          payload: { field: "name", from: run.name, to: input.run_name },
        });
        yield* writeBatchPart(
          ctx,
          tx,
          t,
          { ...run, name: input.run_name },
          { metrics: [], params: [], tags: [{ key: "mlflow.runName", value: input.run_name }] },
        );
      }
      if (input.status === undefined) return;
      const target = STATUS_OF_MLFLOW[input.status as keyof typeof STATUS_OF_MLFLOW];
      if (target === run.status) return;
      if (target === "queued") invalidParam(`Run ${id} has started: it cannot be SCHEDULED again`);
      if (target === "running") {
        // A pilot paused it (its decision is the record): it runs again when a pilot's resume is acknowledged.
        if (run.status === "paused")
          throw new MlflowError(
            "INVALID_STATE",
            `Run ${id} was paused by a pilot: it continues when a pilot resumes it (GET /api/2.0/runledger/runs/pending-interventions, then ack the resume)`,
          );
        yield* recordApiStartIn(ctx, tx, t, run);
        return;
      }
      if (TERMINAL.has(run.status) && TERMINAL.has(target))
        invalidParam(`Run ${id} has already ended (${MLFLOW_STATUS_OF[run.status]}): set it RUNNING before ending it as ${input.status}`);
      const finishedAt = input.end_time !== undefined ? iso(input.end_time) : now();
      yield* recordEndIn(ctx, tx, t, run, target as "completed" | "failed" | "cancelled", finishedAt);
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return { run_info: (await runAnswer(ctx, id)).info };
}

async function lifecycle(ctx: MlflowStoreCtx, body: unknown, del: boolean): Promise<Record<string, never>> {
  const { run_id } = parseRequest(z.object({ run_id: idField }), body);
  requireWriter(ctx, del ? "delete runs" : "restore runs");
  const store = asStore(ctx.db);
  const t = store.tables;
  await transact(
    store,
    function* (tx) {
      const run = yield* runRowIn(tx, t, run_id);
      if (run.origin !== "api")
        invalidParam(`Run ${run_id} was trained by Runledger (origin "${run.origin}"): it cannot be deleted through this API`);
      if (Boolean(run.deletedAt) === del) return;
      const at = now();
      yield* exec(
        tx
          .update(t.runs)
          .set({ deletedAt: del ? at : null })
          .where(eq(t.runs.id, run.id)),
      );
      yield* appendEvent({
        actor: ctx.actor,
        action: del ? "run.delete" : "run.restore",
        entityType: "run",
        entityId: run.id,
        payload: del ? { deletedAt: at } : { deletedAt: run.deletedAt, restoredAt: at },
      });
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return {};
}

export const deleteRun = (ctx: MlflowStoreCtx, body: unknown) => lifecycle(ctx, body, true);
export const restoreRun = (ctx: MlflowStoreCtx, body: unknown) => lifecycle(ctx, body, false);

export const isTerminal = (status: string) => TERMINAL.has(status);
