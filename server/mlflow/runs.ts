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
import { and, asc, eq, inArray, sql } from "drizzle-orm";
import { z } from "zod";
import { decisions, experiments, metricSummaries, runInputs, runParams, runs, runTagValues, users } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import { appendAuditEvent } from "@/server/audit/ledger";
import { now } from "@/server/app-context/service-context";
import { canonicalJson, sha256Canonical } from "@/contracts/canonical";
import { metricSeriesDigest } from "@/server/audit/content/records";
import { API_RUN_CONFIG, RUN_STATUSES, type Run, type RunInfo, type MlflowEndpoints } from "@/contracts/mlflow/types";
import { doesNotExist, invalidParam, MlflowError } from "./errors";
import { rejectIntervention } from "@/server/runs/pilot";
import { pendingInterventions } from "@/server/runs/pilot-queries";
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
  requireWriter,
  STATUS_OF_MLFLOW,
  type MlflowCtx,
} from "./common";
import { experimentRow } from "./experiments";
import { writeBatch } from "./logging";

export type RunRow = typeof runs.$inferSelect;
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

export function runRow(db: DbOrTx, runId: string): RunRow {
  const id = numericId(runId);
  const row = id === null ? undefined : db.select().from(runs).where(eq(runs.id, id)).get();
  if (!row) return doesNotExist(`Run with id=${runId} not found`);
  return row;
}

/** A run that may be written to: an API run, not deleted (MLflow: "must be in the 'active' state"). */
export function activeApiRun(db: DbOrTx, runId: string): RunRow {
  const row = runRow(db, runId);
  if (row.deletedAt) invalidParam(`The run ${runId} must be in the 'active' state. Current state is deleted.`);
  if (row.origin !== "api")
    invalidParam(`Run ${runId} was trained by Runledger (origin "${row.origin}"): only runs created through this API can be logged to`);
  return row;
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

/** MLflow Runs for run rows, in the given order, with their latest metrics, params and tags (one query each). */
export function toMlflowRuns(db: DbOrTx, rows: RunRow[]): Run[] {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const emails = new Map(
    db
      .select({ id: users.id, email: users.email })
      .from(users)
      .where(inArray(users.id, [...new Set(rows.map((r) => r.createdBy))]))
      .all()
      .map((u) => [u.id, u.email]),
  );
  const group = <T extends { runId: number }>(list: T[]) => {
    const m = new Map<number, T[]>();
    for (const x of list) {
      const l = m.get(x.runId);
      if (l) l.push(x);
      else m.set(x.runId, [x]);
    }
    return m;
  };
  const metrics = group(
    db
      .select({
        runId: metricSummaries.runId,
        key: metricSummaries.key,
        value: metricSummaries.last,
        step: metricSummaries.lastStep,
        timestamp: sql<number>`(SELECT m.wall_time_ms FROM metrics m WHERE m.run_id = "metric_summaries"."run_id" AND m.key = "metric_summaries"."key" AND m.step = "metric_summaries"."last_step")`,
      })
      .from(metricSummaries)
      .where(inArray(metricSummaries.runId, ids))
      .orderBy(asc(metricSummaries.key))
      .all(),
  );
  const params = group(
    db
      .select({ runId: decisions.runId, key: decisions.path, valueJson: decisions.newValueJson })
      .from(decisions)
      .where(and(inArray(decisions.runId, ids), eq(decisions.kind, "param")))
      .orderBy(asc(decisions.path))
      .all(),
  );
  // Embedded runs: their params are the flattened training config (run_params), shown as MLflow string params.
  const embedded = rows.filter((r) => r.origin !== "api").map((r) => r.id);
  const configParams = group(
    embedded.length
      ? db
          .select({ runId: runParams.runId, key: runParams.key, valueText: runParams.valueText, valueNum: runParams.valueNum })
          .from(runParams)
          .where(inArray(runParams.runId, embedded))
          .orderBy(asc(runParams.key))
          .all()
      : [],
  );
  const tags = group(
    db
      .select({ runId: runTagValues.runId, key: runTagValues.key, value: runTagValues.value })
      .from(runTagValues)
      .where(inArray(runTagValues.runId, ids))
      .orderBy(asc(runTagValues.key))
      .all(),
  );
  const inputs = group(db.select().from(runInputs).where(inArray(runInputs.runId, ids)).orderBy(asc(runInputs.id)).all());
  return rows.map((r) => {
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
function experimentFor(ctx: MlflowCtx, tx: DbOrTx, experimentId: string | undefined): number {
  if (experimentId && experimentId !== "0") {
    const row = experimentRow(tx, experimentId);
    if (row.deletedAt) invalidParam(`The experiment ${experimentId} must be in the 'active' state. Current state is deleted.`);
    return row.id;
  }
  const projectId = ensureMlflowProject(tx, ctx.actor);
  const found = tx
    .select({ id: experiments.id })
    .from(experiments)
    .where(and(eq(experiments.projectId, projectId), eq(experiments.name, "Default")))
    .get();
  if (found) return found.id;
  const row = tx
    .insert(experiments)
    .values({ projectId, name: "Default", description: "", createdBy: ctx.actor.id, createdAt: now() })
    .returning()
    .get();
  appendAuditEvent(tx, {
    actor: ctx.actor,
    action: "experiment.create",
    entityType: "experiment",
    entityId: row.id,
    payload: { projectId, name: "Default", description: "" },
  });
  return row.id;
}

export function createRun(ctx: MlflowCtx, body: unknown): MlflowEndpoints["runs/create"]["res"] {
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
  const created = ctx.db.transaction((tx) => {
    const experimentId = experimentFor(ctx, tx, input.experiment_id);
    const n =
      tx
        .select({ n: sql<number>`count(*)` })
        .from(runs)
        .where(eq(runs.experimentId, experimentId))
        .get()?.n ?? 0;
    const at = now();
    const startedAt = input.start_time !== undefined ? iso(input.start_time) : at;
    const name = (input.run_name || runNameTag || `run ${n + 1}`).slice(0, 120);
    const run = tx
      .insert(runs)
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
      .returning()
      .get();
    appendAuditEvent(tx, {
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
    appendApiRunStart(ctx, tx, run.id, startedAt);
    const tags = [...input.tags.filter((t) => t.key !== "mlflow.runName"), { key: "mlflow.runName", value: name }];
    if (input.user_id && !tags.some((t) => t.key === "mlflow.user")) tags.push({ key: "mlflow.user", value: input.user_id });
    writeBatch(ctx, tx, run, { metrics: [], params: [], tags });
    return run.id;
  });
  return { run: toMlflowRuns(ctx.db, [runRow(ctx.db, String(created))])[0]! };
}

export function getRun(ctx: MlflowCtx, body: unknown): MlflowEndpoints["runs/get"]["res"] {
  const { run_id, run_uuid } = parseRequest(z.object({ run_id: idField.optional(), run_uuid: idField.optional() }), body);
  const id = run_id ?? run_uuid;
  if (id === undefined)
    return invalidParam("Missing value for required parameter 'run_id'. See the API docs for more information about request parameters.");
  return { run: toMlflowRuns(ctx.db, [runRow(ctx.db, id)])[0]! };
}

/**
 * The end event of a run that stops (the same fields as an embedded run's, metric digest included). `stoppedByDecision`:
 * a pilot's stop ended it (server/mlflow/pilot.ts), marked as an embedded run's run.complete marks it. Interventions
 * still pending are rejected (by the server, with why), as when an embedded run ends before its next boundary.
 */
export function recordEnd(
  ctx: MlflowCtx,
  tx: DbOrTx,
  run: RunRow,
  status: "completed" | "failed" | "cancelled",
  finishedAt: string,
  opts: { stoppedByDecision?: true } = {},
) {
  for (const p of pendingInterventions(tx, run.id))
    rejectIntervention(
      { db: tx as MlflowCtx["db"] },
      {
        interventionId: p.id,
        reason: `the run ended (${MLFLOW_STATUS_OF[status]}) before the script applied it`,
      },
    );
  const digest = metricSeriesDigest(ctx.db.$client, run.id);
  tx.update(runs).set({ status, finishedAt }).where(eq(runs.id, run.id)).run();
  const metricsFields = {
    metricsSha256: digest.sha256,
    metricPointsSha256: digest.pointsSha256,
    metricPoints: digest.points,
  };
  if (status === "failed") {
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "run.fail",
      entityType: "run",
      entityId: run.id,
      payload: { error: null, errorSha256: null, finishedAt, ...metricsFields },
    });
    return;
  }
  const finalMetrics = Object.fromEntries(
    tx
      .select({ key: metricSummaries.key, last: metricSummaries.last })
      .from(metricSummaries)
      .where(eq(metricSummaries.runId, run.id))
      .all()
      .map((s) => [s.key, s.last]),
  );
  appendAuditEvent(tx, {
    actor: ctx.actor,
    action: status === "completed" ? "run.complete" : "run.cancel",
    entityType: "run",
    entityId: run.id,
    payload: { status, weightsSha256: null, ...opts, bestCheckpointId: null, finalMetrics, ...metricsFields, finishedAt },
  });
}

/** The run.start of an API run set running again (runs/update RUNNING, or a pilot's resume acknowledged by the script). */
export function recordApiStart(ctx: MlflowCtx, tx: DbOrTx, run: RunRow) {
  tx.update(runs).set({ status: "running", finishedAt: null }).where(eq(runs.id, run.id)).run();
  appendApiRunStart(ctx, tx, run.id, run.startedAt);
}

/** An API run's run.start: no trainer, so no backend, dataset, split, environment or memory estimate to record. */
function appendApiRunStart(ctx: MlflowCtx, tx: DbOrTx, runId: number, startedAt: string | null) {
  appendAuditEvent(tx, {
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
  });
}

export function updateRun(ctx: MlflowCtx, body: unknown): MlflowEndpoints["runs/update"]["res"] {
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
  ctx.db.transaction((tx) => {
    const run = activeApiRun(tx, id);
    if (input.run_name && input.run_name !== run.name) {
      tx.update(runs).set({ name: input.run_name }).where(eq(runs.id, run.id)).run();
      appendAuditEvent(tx, {
        actor: ctx.actor,
        action: "run.annotate",
        entityType: "run",
        entityId: run.id,
        payload: { field: "name", from: run.name, to: input.run_name },
      });
      writeBatch(
        ctx,
        tx,
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
      recordApiStart(ctx, tx, run);
      return;
    }
    if (TERMINAL.has(run.status) && TERMINAL.has(target))
      invalidParam(`Run ${id} has already ended (${MLFLOW_STATUS_OF[run.status]}): set it RUNNING before ending it as ${input.status}`);
    recordEnd(ctx, tx, run, target as "completed" | "failed" | "cancelled", input.end_time !== undefined ? iso(input.end_time) : now());
  });
  return { run_info: toMlflowRuns(ctx.db, [runRow(ctx.db, id)])[0]!.info };
}

function lifecycle(ctx: MlflowCtx, body: unknown, del: boolean) {
  const { run_id } = parseRequest(z.object({ run_id: idField }), body);
  requireWriter(ctx, del ? "delete runs" : "restore runs");
  ctx.db.transaction((tx) => {
    const run = runRow(tx, run_id);
    if (run.origin !== "api")
      invalidParam(`Run ${run_id} was trained by Runledger (origin "${run.origin}"): it cannot be deleted through this API`);
    if (Boolean(run.deletedAt) === del) return;
    const at = now();
    tx.update(runs)
      .set({ deletedAt: del ? at : null })
      .where(eq(runs.id, run.id))
      .run();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: del ? "run.delete" : "run.restore",
      entityType: "run",
      entityId: run.id,
      payload: del ? { deletedAt: at } : { deletedAt: run.deletedAt, restoredAt: at },
    });
  });
  return {};
}

export const deleteRun = (ctx: MlflowCtx, body: unknown) => lifecycle(ctx, body, true);
export const restoreRun = (ctx: MlflowCtx, body: unknown) => lifecycle(ctx, body, false);

export const isTerminal = (status: string) => TERMINAL.has(status);
