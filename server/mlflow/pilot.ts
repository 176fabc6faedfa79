/**
 * Piloting a run logged by a script (Runledger extension of the tracking API, /api/2.0/runledger/runs/…): an engineer
 * asks on the run page to pause, resume or stop an API run, or to change one of its logged params ("set": its
 * settings, scriptSettings) (server/runs/pilot.ts requestIntervention: the same pending
 * run_interventions row and run.interventionRequested event as for an embedded run); the script reads the pending
 * interventions between its epochs and acknowledges each one it applies, at a step.
 *
 * - runs/pending-interventions (GET, every role, no side effect): the run's pending interventions, oldest first, and
 *   its Runledger status (a pause that took effect reads "paused").
 * - runs/ack-intervention (POST, engineers, like every write of the API): the intervention takes effect at that step,
 *   through the same applied transition an embedded run's trainer goes through at an epoch boundary
 *   (applyPendingAt: the decision by the requester with the metrics of that moment, run.interventionApplied; a pause
 *   parks the run as "paused"), in one transaction with its consequence: a resume is the run's next run.start
 *   (status running), a stop ends it as an embedded stop does (completed, run.complete with stoppedByDecision).
 *   The applied event names who acknowledged it and with which token (acknowledgedBy, acknowledgedViaTokenId). A
 *   "set" records the param's from → to as the decision's old and new values (the logged param row stays as logged:
 *   MLflow params are write-once); its from must still be the value in force (else INVALID_STATE: reject it).
 * - runs/reject-intervention (POST, engineers): the script cannot apply a pending intervention; it becomes "rejected"
 *   with the script's reason, closed by the token's user (run.interventionRejected by that user, rejectedByScript).
 *
 * On the store (issue 16, db/store.ts): each endpoint runs on SQLite or PostgreSQL; a write is one transaction under
 * the ledger lock on PostgreSQL, so two web servers acknowledging, rejecting and withdrawing one intervention at once
 * make exactly one transition.
 *
 * Invariants: only API runs (an embedded run's trainer applies its interventions itself); the transaction re-reads
 * the run and the row (an engineer may withdraw it meanwhile: INVALID_STATE, nothing written); a step is never
 * before the step where an earlier intervention of the run took effect; an API run writes no checkpoint at its
 * boundaries, so checkpointId stays null. A refused acknowledgement writes nothing.
 */
import { and, asc, eq, max } from "drizzle-orm";
import { z } from "zod";
import type { runInterventions } from "@/db/schema";
import type { Tx } from "@/db/client";
import { asStore, row, rows, transact, type StoreTables, type TxBody } from "@/db/store";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { now } from "@/server/app-context/service-context";
import { applyPendingAtIn, closeInterventionIn } from "@/server/runs/pilot";
import {
  metricsSnapshotAtIn,
  parseChanges,
  scriptSettingsIn,
  watchedMetricOfRunIn,
  type MetricsSnapshot,
} from "@/server/runs/pilot-queries";
import type {
  AckInterventionResponse,
  PendingInterventionsResponse,
  RejectInterventionResponse,
  RunledgerRunStatus,
  ScriptIntervention,
  ScriptInterventionKind,
} from "@/contracts/mlflow/runledger";
import { doesNotExist, invalidParam, MlflowError } from "./errors";
import { idField, int64, ms, numericId, parseRequest, readPart, requireWriter, type MlflowStoreCtx } from "./common";
import { activeApiRunIn, recordApiStartIn, recordEndIn, runRowIn } from "./runs";

type Row = typeof runInterventions.$inferSelect;

const missing = (param: string): never =>
  invalidParam(`Missing value for required parameter '${param}'. See the API docs for more information about request parameters.`);

const invalidState = (message: string): never => {
  throw new MlflowError("INVALID_STATE", message);
};

function view(r: Row, email: string): ScriptIntervention {
  return {
    intervention_id: String(r.id),
    kind: r.kind as ScriptInterventionKind,
    changes: parseChanges(r.changesJson).map((c) => ({ key: c.path, from: String(c.oldValue), to: String(c.newValue) })),
    rationale: r.rationale,
    requested_by: email,
    requested_at: ms(r.requestedAt)!,
  };
}

/** The metrics of the moment an intervention takes effect on a script's run (the run's last values, the watched trend). */
function* scriptSnapshotIn(tx: Tx, t: StoreTables, runId: number): TxBody<MetricsSnapshot> {
  const watched = yield* watchedMetricOfRunIn(tx, t, runId);
  if (watched !== null) return yield* metricsSnapshotAtIn(tx, t, runId, watched);
  return { last: {}, watched: null };
}

/** The email of a user (the requester of an intervention), in the caller's transaction or read. */
function* emailOfIn(q: Tx, t: StoreTables, userId: number): TxBody<string> {
  return (yield* row(q.select({ email: t.users.email }).from(t.users).where(eq(t.users.id, userId))))!.email;
}

export async function pendingInterventionsOfRun(ctx: MlflowStoreCtx, body: unknown): Promise<PendingInterventionsResponse> {
  const { run_id } = parseRequest(z.object({ run_id: idField.optional() }), body);
  if (!run_id) return missing("run_id");
  const store = asStore(ctx.db);
  return readPart(store, function* (q) {
    const { runInterventions: ri, users } = store.tables;
    const run = yield* runRowIn(q, store.tables, run_id);
    if (run.origin !== "api")
      invalidParam(`Run ${run_id} was trained by Runledger (origin "${run.origin}"): its trainer applies its interventions itself`);
    const found = yield* rows(
      q
        .select({ i: ri, email: users.email })
        .from(ri)
        .innerJoin(users, eq(users.id, ri.requestedBy))
        .where(and(eq(ri.runId, run.id), eq(ri.status, "pending")))
        .orderBy(asc(ri.id)),
    );
    return {
      run_id: String(run.id),
      run_status: run.status as RunledgerRunStatus,
      interventions: found.map((r) => view(r.i, r.email)),
    };
  });
}

/** MISSING_PARAMETER_VALUE for the first of `fields` absent or empty in the body (as MLflow names a missing field). */
function requireFields(body: unknown, fields: string[]): void {
  for (const field of fields) {
    const value = (body as Record<string, unknown>)[field];
    if (value === undefined || value === "") missing(field);
  }
}

/** The pending intervention `interventionId` of run `runId`: RESOURCE_DOES_NOT_EXIST, or INVALID_STATE once closed. */
function* pendingOfRunIn(tx: Tx, t: StoreTables, runId: number, interventionId: string, verb: "acknowledged" | "rejected"): TxBody<Row> {
  const id = numericId(interventionId);
  const ri = t.runInterventions;
  const pending = id === null ? undefined : yield* row(tx.select().from(ri).where(eq(ri.id, id)));
  if (!pending || pending.runId !== runId) return doesNotExist(`Intervention with id=${interventionId} not found on run ${runId}`);
  if (pending.status !== "pending")
    invalidState(`Intervention ${pending.id} is already ${pending.status}: only a pending intervention can be ${verb}`);
  return pending;
}

const nonNegative = int64.pipe(z.number().int().min(0, "must be 0 or more"));

/**
 * The acknowledgement in one transaction, on either store (db/store.ts), under the ledger lock on PostgreSQL: the run
 * and the row are re-read inside it, so an engineer's withdrawal or a second acknowledgement from another server
 * meanwhile is refused (INVALID_STATE) with nothing written.
 */
export async function ackIntervention(ctx: MlflowStoreCtx, body: unknown): Promise<AckInterventionResponse> {
  requireFields(body, ["run_id", "intervention_id", "step"]);
  const input = parseRequest(
    z.object({ run_id: idField, intervention_id: idField, step: nonNegative, epoch: nonNegative.optional() }),
    body,
  );
  requireWriter(ctx, "acknowledge interventions");
  const store = asStore(ctx.db);
  const t = store.tables;
  const ri = t.runInterventions;
  return transact(
    store,
    function* (tx) {
      const run = yield* activeApiRunIn(tx, t, input.run_id);
      const pending = yield* pendingOfRunIn(tx, t, run.id, input.intervention_id, "acknowledged");
      const needs: Record<string, string[]> = {
        pause: ["running"],
        resume: ["paused"],
        stop: ["running", "paused"],
        set: ["running", "paused"],
      };
      const allowed = needs[pending.kind];
      if (!allowed) return invalidState(`Intervention ${pending.id} is a ${pending.kind}: a script cannot apply it`);
      if (!allowed.includes(run.status))
        invalidState(`Run ${run.id} is ${run.status}: a ${pending.kind} takes effect on a run that is ${allowed.join(" or ")}`);
      const last = (yield* row(
        tx
          .select({ step: max(ri.appliedAtStep) })
          .from(ri)
          .where(and(eq(ri.runId, run.id), eq(ri.status, "applied"))),
      ))?.step;
      if (last !== null && last !== undefined && input.step < last)
        invalidParam(
          `Invalid value for parameter 'step': ${input.step} is before step ${last}, where an earlier intervention of run ${run.id} took effect; acknowledge at the step the script has reached`,
        );
      if (pending.kind === "set") {
        // Its old values are the ones in force when it was asked for; one pending change per param keeps them so
        // (requestIntervention). Re-checked: the decision's from → to must be what the script changed.
        const current = new Map((yield* scriptSettingsIn(tx, t, run.id)).map((s) => [s.key, s.current]));
        for (const c of parseChanges(pending.changesJson))
          if (current.get(c.path) !== String(c.oldValue))
            invalidState(
              `Intervention ${pending.id} changes ${c.path} from ${String(c.oldValue)}, but it is ${current.get(c.path) ?? "not a param of the run"} now: reject it, and a pilot asks again`,
            );
      }
      const at = now();
      const { intervention, decision } = yield* applyPendingAtIn(tx, t, {
        pending,
        epoch: input.epoch ?? input.step,
        step: input.step,
        at,
        checkpointId: null,
        snapshot: yield* scriptSnapshotIn(tx, t, run.id),
        payloadExtra: { acknowledgedBy: ctx.actor.id, acknowledgedViaTokenId: ctx.actor.tokenId },
      });
      if (pending.kind === "resume") yield* recordApiStartIn(ctx, tx, t, run);
      if (pending.kind === "stop") yield* recordEndIn(ctx, tx, t, run, "completed", at, { stoppedByDecision: true });
      const email = yield* emailOfIn(tx, t, pending.requestedBy);
      return {
        intervention: {
          ...view(intervention, email),
          applied_at_step: intervention.appliedAtStep!,
          applied_at_epoch: intervention.appliedAtEpoch!,
          applied_at: ms(intervention.appliedAt)!,
          decision_id: String(decision.id),
        },
        run_status: (yield* runRowIn(tx, t, String(run.id))).status as RunledgerRunStatus,
      };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

const reasonField = z.string().trim().min(1, "say why the script cannot apply it").max(4000, "at most 4000 characters");

/**
 * The script cannot apply a pending intervention (e.g. a param it cannot change mid-run): the row becomes "rejected"
 * with the script's reason, closed by the token's user, with run.interventionRejected (that user and token) in one
 * transaction (either store, under the ledger lock on PostgreSQL). The run's status is unchanged. A refused rejection
 * writes nothing.
 */
export async function rejectScriptIntervention(ctx: MlflowStoreCtx, body: unknown): Promise<RejectInterventionResponse> {
  requireFields(body, ["run_id", "intervention_id", "reason"]);
  const input = parseRequest(z.object({ run_id: idField, intervention_id: idField, reason: reasonField }), body);
  requireWriter(ctx, "reject interventions");
  const store = asStore(ctx.db);
  const t = store.tables;
  return transact(
    store,
    function* (tx) {
      const run = yield* activeApiRunIn(tx, t, input.run_id);
      const pending = yield* pendingOfRunIn(tx, t, run.id, input.intervention_id, "rejected");
      const closed = yield* closeInterventionIn(tx, t, pending, {
        status: "rejected",
        closer: ctx.actor,
        reason: input.reason,
        payloadExtra: { kind: pending.kind, rejectedByScript: true },
      });
      const email = yield* emailOfIn(tx, t, closed.requestedBy);
      return {
        intervention: { ...view(closed, email), rejected_at: ms(closed.closedAt)!, reason: input.reason },
        run_status: run.status as RunledgerRunStatus,
      };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}
