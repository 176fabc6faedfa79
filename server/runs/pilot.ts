/**
 * Live piloting of a run: an engineer asks for an intervention (pause, resume, stop, set config paths, roll back
 * to a checkpoint) while the run trains or is paused; it is queued as a pending run_interventions row and takes
 * effect at the next epoch boundary, when the training process calls applyIntervention: the row becomes applied
 * and a decision (who asked, old → new, why, the metrics at that moment, the checkpoint of that boundary) is
 * written with its ledger event. A pending intervention can be cancelled (by an engineer) or rejected (by the
 * server, e.g. when the run ended before reaching a boundary). A run logged by a script through the tracking API takes
 * pause, resume, stop and changes of its logged params (SCRIPT_PILOT_KINDS); the script applies them between its
 * epochs and acknowledges each at a step (server/mlflow/pilot.ts), which writes the same applied record
 * (applyPendingAt) without a checkpoint, or rejects one it cannot apply, with its reason.
 *
 * Invariants:
 * - Engineers only for requests and cancellations (re-checked here; the procedure ladder checked once).
 * - Each write and its audit event are one transaction that re-reads the state it depends on (the run's status, the
 *   row still pending); a refused request writes nothing. Each is a body part (`...In`, db/store.ts) run by an awaited
 *   `...On(store, ...)` on either store (the orchestrator's and the router's calls), under the ledger lock on PostgreSQL
 *   (issue 16), and by the synchronous SQLite form its remaining SQLite callers use (the CLI and tests, runOnSqliteTx).
 * - Changes are validated against the run's effective config (contracts/pilot-config.ts): only pilotable paths,
 *   each value valid for its path; old values are the effective ones at request time.
 * - A row leaves "pending" once (trigger run_interventions_one_transition); the events bind the row's hashes
 *   (server/audit/content/intervention-records.ts), which the content check recomputes.
 */
import { eq } from "drizzle-orm";
import { z } from "zod";
import { INTERVENTION_KINDS, type InterventionKind, type RunStatus } from "@/db/schema";
import type { runInterventions, users } from "@/db/schema";
import type { Tx } from "@/db/client";
import * as sqliteTables from "@/db/schema";
import {
  asStore,
  row as oneRow,
  rows,
  exec,
  readPart,
  runOnSqliteTx,
  transact,
  type Store,
  type StoreTables,
  type TxBody,
} from "@/db/store";
import type { Db } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { SYSTEM_ACTOR, type Actor } from "@/server/audit/ledger";
import { appendEvent } from "@/server/audit/ledger-pg";
import { canonicalJson } from "@/contracts/canonical";
import { describeConfigIssues } from "@/contracts/training-config";
import { effectiveConfig, validatePilotChanges, validateSchedule, type ConfigChange } from "@/contracts/pilot-config";
import type { TrainingConfig } from "@/contracts/training-config";
import { insertDecision, type DecisionRef } from "@/server/decisions/service";
import { interventionOutcomeSha256, interventionRequestSha256 } from "@/server/audit/content/intervention-records";
import { now, requireRole, type ServiceContext, type ServiceDeps, type SignedInActor } from "../app-context/service-context";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { actorOf } from "../users/service";
import { conflict, invalidInput, notFound, wrongState } from "@/server/errors";
import {
  metricsSnapshotAtIn,
  parseChanges,
  pendingInterventionsIn,
  runEffectiveConfigIn,
  scriptSettingsIn,
  watchedMetric,
  type MetricsSnapshot,
} from "./pilot-queries";

/** Who may pilot a run. */
export const PILOT_ROLES = ["engineer"] as const;

/**
 * What a pilot may ask of a run logged by a script through the tracking API (origin "api"): the script applies them
 * between its epochs and acknowledges each at a step, or rejects one it cannot apply (server/mlflow/pilot.ts). Its
 * "settings" are its logged params: a "set" names logged params and their new values. It has no training config and
 * no checkpoint Runledger could continue from, so it cannot be rolled back.
 */
export const SCRIPT_PILOT_KINDS: readonly InterventionKind[] = ["pause", "resume", "stop", "set"];

/** MLflow's limit on a param value (characters). */
const PARAM_VALUE_MAX = 6000;

/** What a pilot can do on a run logged by a script: the message of every refusal of another kind. */
function scriptPilotRefusal(runId: number, kind: InterventionKind): string {
  return `run ${runId} is logged by a script through the tracking API: a pilot can pause, resume or stop it, or change its logged params (the script applies them between its epochs and acknowledges them at a step), not ${kind} it${
    kind === "rollback" ? " (Runledger does not train it, so it cannot continue from a checkpoint: fork the script instead)" : ""
  }`;
}

/**
 * Refuses, before anything is read or recorded, a kind a run logged by a script does not take (a rollback: its
 * checkpoints are the script's artifacts, with no resume state). Nothing for any other run. Either store, outside a
 * transaction.
 */
export async function refuseScriptPilotKindOn(db: Store | Db, runId: number, kind: InterventionKind): Promise<void> {
  const store = asStore(db);
  await readPart(store, (q) => refuseScriptPilotKindIn(q, store.tables, runId, kind));
}

/** refuseScriptPilotKindOn as a part of a transaction body (db/store.ts), on either store. */
function* refuseScriptPilotKindIn(q: Tx, t: StoreTables, runId: number, kind: InterventionKind): TxBody<void> {
  const run = yield* oneRow(q.select({ origin: t.runs.origin }).from(t.runs).where(eq(t.runs.id, runId)));
  if (run?.origin === "api" && !SCRIPT_PILOT_KINDS.includes(kind)) invalidInput(scriptPilotRefusal(runId, kind));
}

/**
 * For a run logged by a script: its status and, for a "set", the changes of its logged params (old value: the one in
 * force now, scriptSettings; new value: the text asked for, as a param's value is text), or an invalid_input naming
 * what a pilot can ask of it. null for any other run.
 */
function* scriptRunStateIn(
  tx: Tx,
  t: StoreTables,
  runId: number,
  kind: InterventionKind,
  set: Record<string, unknown> | undefined,
): TxBody<{ effective: TrainingConfig; status: string; changes: ConfigChange[] } | null> {
  const run = yield* oneRow(tx.select({ origin: t.runs.origin, status: t.runs.status }).from(t.runs).where(eq(t.runs.id, runId)));
  if (run?.origin !== "api") return null;
  if (!SCRIPT_PILOT_KINDS.includes(kind)) invalidInput(scriptPilotRefusal(runId, kind));
  const changes: ConfigChange[] = [];
  if (kind === "set" && set) {
    const settings = new Map((yield* scriptSettingsIn(tx, t, runId)).map((s) => [s.key, s]));
    const problems: string[] = [];
    for (const [key, raw] of Object.entries(set)) {
      const s = settings.get(key);
      if (!s) {
        problems.push(
          `${key}: not a param of run ${runId} (${settings.size ? `its params: ${[...settings.keys()].join(", ")}` : "it has logged no param yet"})`,
        );
        continue;
      }
      if (typeof raw !== "string" && typeof raw !== "number" && typeof raw !== "boolean") {
        problems.push(`${key}: give the new value as text or a number (a param's value is text)`);
        continue;
      }
      if (typeof raw === "number" && !Number.isFinite(raw)) {
        problems.push(`${key}: give a finite number`);
        continue;
      }
      const value = String(raw).trim();
      if (value === "") problems.push(`${key}: give a new value`);
      else if (value.length > PARAM_VALUE_MAX) problems.push(`${key}: at most ${PARAM_VALUE_MAX} characters`);
      else changes.push({ path: key, oldValue: s.current, newValue: value });
    }
    if (problems.length) invalidInput(`set: ${problems.join("; ")}`);
    // One pending change per param: its old value stays the one in force when the script applies it.
    const pendingKeys = new Map<string, number>();
    for (const p of yield* pendingInterventionsIn(tx, t, runId))
      if (p.kind === "set") for (const c of p.changes) pendingKeys.set(c.path, p.id);
    for (const c of changes) {
      const other = pendingKeys.get(c.path);
      if (other !== undefined)
        conflict(
          `run ${runId} already has a pending change of ${c.path} (intervention ${other}): withdraw it first, or wait until the script applies it`,
        );
    }
  }
  return { effective: undefined as unknown as TrainingConfig, status: run.status, changes };
}

/** The run states in which each kind may be asked for. */
export const PILOT_ALLOWED_STATES: Record<InterventionKind, readonly RunStatus[]> = {
  pause: ["queued", "running"],
  resume: ["paused"],
  stop: ["queued", "running", "paused"],
  set: ["queued", "running", "paused"],
  // A rollback branches from a past checkpoint: of a running run (which stops at its next boundary), or of a
  // paused or completed one (which stays as it is).
  rollback: ["running", "paused", "completed"],
};

const rationale = (what: string) =>
  z.string().trim().min(1, `a rationale is required: ${what}`).max(4000, "rationale: at most 4000 characters");

export const requestInterventionInput = z.object({
  runId: z.number().int(),
  kind: z.enum(INTERVENTION_KINDS, { error: `kind must be one of ${INTERVENTION_KINDS.join(", ")}` }),
  /** Config path → new value (set; optional with rollback). */
  set: z.record(z.string(), z.unknown()).optional(),
  /** Rollback: the checkpoint of the same run to continue from. */
  fromCheckpointId: z.number().int().optional(),
  rationale: rationale("say why you intervene in this run"),
});
export type RequestInterventionInput = z.input<typeof requestInterventionInput>;

export const cancelInterventionInput = z.object({
  interventionId: z.number().int(),
  rationale: rationale("say why the intervention is withdrawn"),
});

export const metricsSnapshotSchema = z.object({
  last: z.record(z.string(), z.number()),
  watched: z.object({ metric: z.string(), trend: z.array(z.object({ epoch: z.number(), value: z.number() })) }).nullable(),
});

export const applyInterventionInput = z.object({
  interventionId: z.number().int(),
  /** The epoch boundary (epochs completed) and global step at which it takes effect. */
  epoch: z.number().int().min(0),
  step: z.number().int().min(0),
  /** When omitted, taken from the run's metrics as committed (metricsSnapshotAt). */
  metricsSnapshot: metricsSnapshotSchema.optional(),
  /** The training checkpoint written at this boundary (same run, same epoch). */
  checkpointId: z.number().int(),
  /** The time of the boundary (UTC ISO); defaults to now. */
  at: z.iso.datetime().optional(),
});
export type ApplyInterventionInput = z.input<typeof applyInterventionInput>;

function parseOrThrow<T extends z.ZodType>(schema: T, raw: unknown): z.output<T> {
  const r = schema.safeParse(raw);
  if (!r.success) invalidInput(describeConfigIssues(r.error));
  return r.data;
}

type Row = typeof runInterventions.$inferSelect;

/** The intervention, still pending (else not found, or a conflict naming its status), in a transaction body. */
function* pendingRowIn(tx: Tx, t: StoreTables, id: number): TxBody<Row> {
  const row = yield* oneRow(tx.select().from(t.runInterventions).where(eq(t.runInterventions.id, id)));
  if (!row) notFound(`intervention ${id}`);
  if (row.status !== "pending") wrongState(`intervention ${id} is already ${row.status}: only a pending intervention can change`);
  return row;
}

/**
 * A compression (server/runs/compression.ts) cannot be piloted, whatever the kind of intervention (a rollback included):
 * it has no epoch boundaries to stop at, and its trainer never asks for a control. Throws invalid_input; records nothing. Either store, outside a transaction.
 * (What a run logged by a script takes is scriptRunState's answer.)
 */
export async function refuseCompressionPilotOn(db: Store | Db, runId: number): Promise<void> {
  const store = asStore(db);
  await readPart(store, (q) => refuseCompressionPilotIn(q, store.tables, runId));
}

/** refuseCompressionPilotOn as a part of a transaction body (db/store.ts), on either store. */
function* refuseCompressionPilotIn(q: Tx, t: StoreTables, runId: number): TxBody<void> {
  if ((yield* oneRow(q.select({ origin: t.runs.origin }).from(t.runs).where(eq(t.runs.id, runId))))?.origin === "compress")
    invalidInput(`run ${runId} is a compression: it cannot be piloted; cancel it, or compress again with other parameters`);
}

/** Records an engineer's request; it takes effect at the run's next epoch boundary (applyIntervention). */
export function requestIntervention(ctx: Pick<ServiceContext, "db" | "actor">, raw: RequestInterventionInput) {
  const input = checkRequest(ctx.actor, raw);
  runOnSqliteTx(ctx.db as unknown as Tx, refuseScriptPilotKindIn(ctx.db as unknown as Tx, sqliteTables, input.runId, input.kind));
  checkRequestShape(input);
  return ctx.db.transaction((tx) => runOnSqliteTx(tx, requestInterventionIn(tx, sqliteTables, ctx.actor, input)));
}

/** requestIntervention on either store (db/store.ts): the same checks, row and event, under the ledger lock. */
export async function requestInterventionOn(ctx: { db: Store | Db; actor: ServiceContext["actor"] }, raw: RequestInterventionInput) {
  const store = asStore(ctx.db);
  const input = checkRequest(ctx.actor, raw);
  await readPart(store, (q) => refuseScriptPilotKindIn(q, store.tables, input.runId, input.kind));
  checkRequestShape(input);
  return transact(store, (tx) => requestInterventionIn(tx, store.tables, ctx.actor, input), { pgLock: PG_LOCK_KEYS.ledger });
}

type RequestInput = z.output<typeof requestInterventionInput>;

/** The role and the input's schema, checked before anything is read. */
function checkRequest(actor: ServiceContext["actor"], raw: RequestInterventionInput): RequestInput {
  requireRole(actor, PILOT_ROLES, "pilot runs");
  return parseOrThrow(requestInterventionInput, raw);
}

/** What the kind asks for in the input (a set names paths, a rollback a checkpoint), after the script-kind check. */
function checkRequestShape(input: RequestInput): void {
  const hasSet = input.set !== undefined && Object.keys(input.set).length > 0;
  if (input.kind === "set" && !hasSet) invalidInput("set: name at least one path to change (PATH=VALUE)");
  if (input.kind !== "set" && input.kind !== "rollback" && hasSet)
    invalidInput(`${input.kind} changes no setting: ask for a separate "set" intervention`);
  if (input.kind === "rollback" && input.fromCheckpointId === undefined) invalidInput("rollback: name the checkpoint to continue from");
  if (input.kind !== "rollback" && input.fromCheckpointId !== undefined)
    invalidInput("fromCheckpointId: only a rollback names a checkpoint");
}

/**
 * The request's transaction body (either store): re-reads the run's state, validates the changes against its effective
 * config, refuses a second pending one of the same kind, then inserts the row and its run.interventionRequested event.
 */
function* requestInterventionIn(tx: Tx, t: StoreTables, actor: Actor, input: RequestInput) {
  const { checkpoints: cks, runInterventions: ri } = t;
  const hasSet = input.set !== undefined && Object.keys(input.set).length > 0;
  const script = yield* scriptRunStateIn(tx, t, input.runId, input.kind, input.set);
  if (!script) yield* refuseCompressionPilotIn(tx, t, input.runId);
  const { effective, status } = script ?? (yield* runEffectiveConfigIn(tx, t, input.runId));
  const allowed = PILOT_ALLOWED_STATES[input.kind];
  if (!allowed.includes(status as RunStatus))
    wrongState(`run ${input.runId} is ${status}: ${input.kind} needs a run that is ${allowed.join(" or ")}`);
  let changes: ConfigChange[] = [];
  // A rollback's changes apply to the branch, on top of the settings in force at its checkpoint.
  const rollbackFrom =
    input.kind === "rollback" && input.fromCheckpointId !== undefined
      ? yield* oneRow(tx.select().from(cks).where(eq(cks.id, input.fromCheckpointId)))
      : undefined;
  if (input.kind === "rollback" && (!rollbackFrom || rollbackFrom.runId !== input.runId))
    invalidInput(`fromCheckpointId: checkpoint ${input.fromCheckpointId} is not a checkpoint of run ${input.runId}`);
  const base = rollbackFrom ? yield* branchBaseIn(tx, t, input.runId, rollbackFrom.epoch) : effective;
  if (hasSet) {
    if (script) changes = script.changes;
    else {
      const v = validatePilotChanges(base, input.set!);
      if (!v.ok) invalidInput(v.message);
      changes = v.changes;
    }
    if (input.kind === "set" && changes.every((c) => canonicalJson(c.oldValue) === canonicalJson(c.newValue)))
      conflict(`set: ${changes.map((c) => c.path).join(", ")} already ${changes.length > 1 ? "have" : "has"} that value`);
  }
  if (rollbackFrom) {
    const branchConfig = effectiveConfig(base, [{ changes }]);
    const schedule = validateSchedule(branchConfig);
    if (!schedule.ok) invalidInput(`the branch's config would not be valid: ${schedule.message}`);
    if (branchConfig.training.epochs <= rollbackFrom.epoch)
      invalidInput(
        `the branch continues after epoch ${rollbackFrom.epoch} but would train only ${branchConfig.training.epochs} epochs: raise training.epochs`,
      );
  }
  if (input.fromCheckpointId !== undefined) {
    const ck = yield* oneRow(tx.select({ runId: cks.runId }).from(cks).where(eq(cks.id, input.fromCheckpointId)));
    if (!ck || ck.runId !== input.runId)
      invalidInput(`fromCheckpointId: checkpoint ${input.fromCheckpointId} is not a checkpoint of run ${input.runId}`);
  }
  if (input.kind !== "set") {
    const dup = (yield* rows(
      tx.select({ id: ri.id, kind: ri.kind, status: ri.status }).from(ri).where(eq(ri.runId, input.runId)).orderBy(ri.id),
    )).find((r) => r.status === "pending" && r.kind === input.kind);
    if (dup) conflict(`run ${input.runId} already has a pending ${input.kind} (intervention ${dup.id})`);
  }
  const row = (yield* oneRow(
    tx
      .insert(ri)
      .values({
        runId: input.runId,
        kind: input.kind,
        changesJson: canonicalJson(changes),
        fromCheckpointId: input.fromCheckpointId ?? null,
        rationale: input.rationale,
        requestedBy: actor.id!,
        requestedAt: now(),
        status: "pending",
      })
      .returning(),
  ))!;
  yield* appendEvent({
    actor,
    action: "run.interventionRequested",
    entityType: "intervention",
    entityId: row.id,
    payload: {
      runId: row.runId,
      kind: row.kind,
      changes,
      fromCheckpointId: row.fromCheckpointId,
      rationale: row.rationale,
      requestedAt: row.requestedAt,
      statusAtRequest: status,
      sha256: interventionRequestSha256(row),
    },
  });
  return { ...row, changes };
}

/**
 * The one close of a pending intervention, in the caller's transaction (which has re-read `pending` as still
 * pending): the row becomes "cancelled" (an engineer's withdrawal) or "rejected" (it cannot take effect), closed by
 * `closer` at now with `reason`, and its event (run.interventionCancelled or run.interventionRejected, by `closer`)
 * binds the closed row's outcome hash. The reason is the payload's `rationale` for a cancellation and its `reason`
 * for a rejection, as the content check reads them (check-interventions.ts); `closer` SYSTEM_ACTOR: the server closed
 * it (closed_by null). `payloadExtra` adds fields of one closer (a script's rejection: kind, rejectedByScript).
 * Returns the closed row. A part of a transaction body (db/store.ts), on either store.
 */
export function* closeInterventionIn(
  tx: Tx,
  t: StoreTables,
  pending: Row,
  close: { status: "cancelled" | "rejected"; closer: Actor; reason: string; payloadExtra?: Record<string, unknown> },
): TxBody<Row> {
  const ri = t.runInterventions;
  const row = (yield* oneRow(
    tx
      .update(ri)
      .set({ status: close.status, closedBy: close.closer.id, closedAt: now(), closeReason: close.reason })
      .where(eq(ri.id, pending.id))
      .returning(),
  ))!;
  yield* appendEvent({
    actor: close.closer,
    action: close.status === "cancelled" ? "run.interventionCancelled" : "run.interventionRejected",
    entityType: "intervention",
    entityId: row.id,
    payload: {
      runId: row.runId,
      ...(close.status === "cancelled" ? { rationale: close.reason } : { reason: close.reason }),
      closedAt: row.closedAt,
      ...close.payloadExtra,
      sha256: interventionOutcomeSha256(row),
    },
  });
  return row;
}

/** Withdraws a pending intervention (any engineer), with a rationale. */
export function cancelIntervention(ctx: Pick<ServiceContext, "db" | "actor">, raw: z.input<typeof cancelInterventionInput>) {
  requireRole(ctx.actor, PILOT_ROLES, "pilot runs");
  const input = parseOrThrow(cancelInterventionInput, raw);
  return ctx.db.transaction((tx) => runOnSqliteTx(tx, cancelInterventionIn(tx, sqliteTables, ctx.actor, input)));
}

/** cancelIntervention on either store (db/store.ts): the same row and event, under the ledger lock. */
export async function cancelInterventionOn(
  ctx: { db: Store | Db; actor: ServiceContext["actor"] },
  raw: z.input<typeof cancelInterventionInput>,
) {
  requireRole(ctx.actor, PILOT_ROLES, "pilot runs");
  const input = parseOrThrow(cancelInterventionInput, raw);
  const store = asStore(ctx.db);
  return transact(store, (tx) => cancelInterventionIn(tx, store.tables, ctx.actor, input), { pgLock: PG_LOCK_KEYS.ledger });
}

function* cancelInterventionIn(tx: Tx, t: StoreTables, actor: Actor, input: z.output<typeof cancelInterventionInput>) {
  const pending = yield* pendingRowIn(tx, t, input.interventionId);
  const row = yield* closeInterventionIn(tx, t, pending, { status: "cancelled", closer: actor, reason: input.rationale });
  return { ...row, changes: parseChanges(row.changesJson) };
}

/**
 * The one "applied" transition of a pending intervention (at a boundary's checkpoint, with its decision) and its
 * run.interventionApplied event, in the caller's transaction. The event names the requester: it is their decision
 * taking effect, as the decision row says. `payloadExtra` adds fields of one kind (a rollback's branch run).
 */
function* recordAppliedIn(
  tx: Tx,
  t: StoreTables,
  a: {
    pending: Row;
    requester: typeof users.$inferSelect;
    epoch: number;
    step: number;
    at: string;
    /** null only for a run logged by a script (server/mlflow/pilot.ts): it writes no checkpoint at its boundaries. */
    checkpointId: number | null;
    snapshot: MetricsSnapshot;
    /** The decision insertDecision wrote in this transaction: run.interventionApplied binds it by its sha256. */
    decision: DecisionRef;
    payloadExtra?: Record<string, unknown>;
  },
): TxBody<Row> {
  const ri = t.runInterventions;
  const row = (yield* oneRow(
    tx
      .update(ri)
      .set({
        status: "applied",
        appliedAtEpoch: a.epoch,
        appliedAtStep: a.step,
        appliedAt: a.at,
        metricsSnapshotJson: canonicalJson(a.snapshot),
        checkpointId: a.checkpointId,
        decisionId: a.decision.id,
      })
      .where(eq(ri.id, a.pending.id))
      .returning(),
  ))!;
  yield* appendEvent({
    actor: actorOf(a.requester),
    action: "run.interventionApplied",
    entityType: "intervention",
    entityId: row.id,
    payload: {
      runId: row.runId,
      kind: row.kind,
      epoch: row.appliedAtEpoch,
      step: row.appliedAtStep,
      appliedAt: row.appliedAt,
      checkpointId: row.checkpointId,
      metricsSnapshot: a.snapshot,
      decisionId: a.decision.id,
      decisionSha256: a.decision.sha256,
      sha256: interventionOutcomeSha256(row),
      ...a.payloadExtra,
    },
  });
  return row;
}

/**
 * Called by the process that trains the run, at an epoch boundary, after it wrote that boundary's checkpoint and
 * before it continues with the changed settings: the pending intervention becomes applied and its decision is
 * written (author: the requester; time: the boundary), in one transaction with run.interventionApplied.
 */
export function applyIntervention(deps: Pick<ServiceDeps, "db">, raw: ApplyInterventionInput) {
  const input = parseOrThrow(applyInterventionInput, raw);
  const at = input.at ?? now();
  return deps.db.transaction((tx) => runOnSqliteTx(tx, applyInterventionIn(tx, sqliteTables, input, at)));
}

/** applyIntervention on either store (db/store.ts): the same rows and event, under the ledger lock. */
export async function applyInterventionOn(deps: { db: Store | Db }, raw: ApplyInterventionInput) {
  const input = parseOrThrow(applyInterventionInput, raw);
  const at = input.at ?? now();
  const store = asStore(deps.db);
  return transact(store, (tx) => applyInterventionIn(tx, store.tables, input, at), { pgLock: PG_LOCK_KEYS.ledger });
}

function* applyInterventionIn(tx: Tx, t: StoreTables, input: z.output<typeof applyInterventionInput>, at: string) {
  const cks = t.checkpoints;
  const pending = yield* pendingRowIn(tx, t, input.interventionId);
  const ck = yield* oneRow(tx.select().from(cks).where(eq(cks.id, input.checkpointId)));
  if (!ck || ck.runId !== pending.runId)
    invalidInput(`checkpointId: checkpoint ${input.checkpointId} is not a checkpoint of run ${pending.runId}`);
  if (ck.epoch !== input.epoch)
    invalidInput(`checkpointId: checkpoint ${ck.id} was written at epoch ${ck.epoch}, not at epoch ${input.epoch}`);
  const snapshot: MetricsSnapshot =
    input.metricsSnapshot ??
    (yield* metricsSnapshotAtIn(tx, t, pending.runId, watchedMetric((yield* runEffectiveConfigIn(tx, t, pending.runId)).effective)));
  return yield* applyPendingAtIn(tx, t, { pending, epoch: input.epoch, step: input.step, at, checkpointId: ck.id, snapshot });
}

type ApplyPendingAt = {
  pending: Row;
  epoch: number;
  step: number;
  at: string;
  checkpointId: number | null;
  snapshot: MetricsSnapshot;
  payloadExtra?: Record<string, unknown>;
};

/**
 * The applied transition of a pending intervention other than a rollback, in the caller's transaction: its decision
 * (author: the requester; time: `at`), the row applied at (epoch, step, checkpoint) with run.interventionApplied, and a
 * pause parking the run. The trainer's boundary (applyIntervention) and a script's acknowledgement
 * (server/mlflow/pilot.ts, no checkpoint, `payloadExtra` naming who acknowledged it) write the same record.
 */
export function* applyPendingAtIn(tx: Tx, t: StoreTables, a: ApplyPendingAt) {
  const { pending, at } = a;
  const requester = (yield* oneRow(tx.select().from(t.users).where(eq(t.users.id, pending.requestedBy))))!;
  const changes = parseChanges(pending.changesJson);
  const paths = changes.map((c) => c.path);
  const decision = yield* insertDecision(tx, t, {
    runId: pending.runId,
    kind: "intervention",
    // The pilot's action, then the paths it changed ("pause"; "training.learningRate"; "rollback, training.epochs").
    path: (pending.kind === "set" ? paths : [pending.kind, ...paths]).join(", "),
    oldValueJson: changes.length ? canonicalJson(Object.fromEntries(changes.map((c) => [c.path, c.oldValue]))) : null,
    newValueJson: changes.length ? canonicalJson(Object.fromEntries(changes.map((c) => [c.path, c.newValue]))) : null,
    rationale: pending.rationale,
    correctsDecisionId: null,
    authorId: pending.requestedBy,
    createdAt: at,
  });
  const row = yield* recordAppliedIn(tx, t, {
    pending,
    requester,
    epoch: a.epoch,
    step: a.step,
    at,
    checkpointId: a.checkpointId,
    snapshot: a.snapshot,
    decision: decision.ref,
    payloadExtra: a.payloadExtra,
  });
  // A pause parks a queued or running run (its training slot is freed by the caller); a resume is the run's next
  // run.start. The content check derives the status the same way (check-runs.ts).
  const runStatus = (yield* oneRow(tx.select({ status: t.runs.status }).from(t.runs).where(eq(t.runs.id, row.runId))))!.status;
  if (row.kind === "pause" && (runStatus === "running" || runStatus === "queued"))
    yield* exec(tx.update(t.runs).set({ status: "paused" }).where(eq(t.runs.id, row.runId)));
  return { intervention: { ...row, changes }, decision: decision.row };
}

/**
 * Called by the server when a pending intervention cannot take effect (e.g. the run ended first): rejected, with why.
 * Either store (db/store.ts): the row and its event, under the ledger lock.
 */
export async function rejectInterventionOn(deps: { db: Store | Db }, input: { interventionId: number; reason: string }) {
  const reason = input.reason.trim();
  if (!reason) invalidInput("reason: say why the intervention cannot take effect");
  const store = asStore(deps.db);
  return transact(store, (tx) => rejectInterventionIn(tx, store.tables, input.interventionId, reason), {
    pgLock: PG_LOCK_KEYS.ledger,
  });
}

function* rejectInterventionIn(tx: Tx, t: StoreTables, interventionId: number, reason: string) {
  const pending = yield* pendingRowIn(tx, t, interventionId);
  const row = yield* closeInterventionIn(tx, t, pending, { status: "rejected", closer: SYSTEM_ACTOR, reason });
  return { ...row, changes: parseChanges(row.changesJson) };
}

/**
 * rejectIntervention as a part of a transaction body, on either store, for an intervention the body has just read as
 * pending (under its lock: e.g. the run's end rejecting its pending ones).
 */
export function* rejectPendingInterventionIn(tx: Tx, t: StoreTables, pending: Row, reason: string): TxBody<Row> {
  if (!reason.trim()) invalidInput("reason: say why the intervention cannot take effect");
  return yield* closeInterventionIn(tx, t, pending, { status: "rejected", closer: SYSTEM_ACTOR, reason: reason.trim() });
}

/**
 * The config a rollback branch from epoch `epoch` of run `runId` starts from: the run's effective config at that
 * checkpoint, without the schedule entries already applied by then (their values are in it; later ones still apply).
 */
export function* branchBaseIn(tx: Tx, t: StoreTables, runId: number, epoch: number): TxBody<TrainingConfig> {
  const { effective } = yield* runEffectiveConfigIn(tx, t, runId, epoch);
  const { schedule, ...rest } = effective;
  const later = (schedule ?? []).filter((e) => e.atEpoch > epoch);
  return later.length > 0 ? { ...rest, schedule: later } : rest;
}

export const applyRollbackInput = z.object({
  interventionId: z.number().int(),
  /** Where it takes effect: the boundary a running run stopped at, else the rollback's own checkpoint. */
  epoch: z.number().int().min(0),
  step: z.number().int().min(0),
  checkpointId: z.number().int(),
  at: z.iso.datetime().optional(),
});

/** The run a rollback branches into, as the runs service creates it (CreateRunInput's fields a branch uses). */
export type BranchRunInput = { experimentId: number; config: unknown; rationale: string };
/** Where a branch continues (the runs service's BranchOf): the rollback's checkpoint and the config in force there. */
export type BranchFrom = { checkpointId: number; base: TrainingConfig };

/**
 * How the runs service creates a rollback's branch on either store (service.ts branchRunOnStore; passed in: the service
 * module imports this one). `prepare` is what createRunOnStore does before its transaction (the checks that need no
 * lock, the dataset registered on first use: I/O, kept out of the body); `insertIn` is createRunOnStore's transaction
 * part, run inside the rollback's transaction so the branch exists only if the rollback applies.
 */
export type BranchRunOnStore = {
  prepare(store: Store, artifacts: AnyArtifactStore, actor: SignedInActor, input: BranchRunInput): Promise<void>;
  insertIn(tx: Tx, t: StoreTables, actor: SignedInActor, input: BranchRunInput, branch: BranchFrom): TxBody<{ id: number }>;
};

/**
 * A rollback taking effect, in one transaction on either store (db/store.ts), under the ledger lock: the branch run is
 * created (`branchRun`, the runs service's branchRunOnStore: its parent checkpoint is the rollback's; config: the
 * source's effective config there plus the rollback's changes; decisions: those changes, with the rollback's
 * rationale, by its requester; its run.create event), the intervention becomes applied, and the source run's decision
 * names the branch (path "rollback", plus "stop" when the run was training and stops at this boundary; new value
 * {branchRunId, fromCheckpointId, fromEpoch, set}), with run.interventionApplied. The caller launches the branch after
 * the commit. What the run creation does before its transaction (its dataset) is done first, from the rows as they
 * are then; the transaction re-reads and re-checks everything, so the branch exists only if the rollback applies.
 */
export async function applyRollbackOn(
  deps: { db: Store | Db; artifacts: AnyArtifactStore },
  raw: z.input<typeof applyRollbackInput>,
  branchRun: BranchRunOnStore,
) {
  const input = parseOrThrow(applyRollbackInput, raw);
  const at = input.at ?? now();
  const store = asStore(deps.db);
  const planned = await readPart(store, (q) => rollbackBranchIn(q, store.tables, input));
  await branchRun.prepare(store, deps.artifacts, planned.actor, planned.branchInput);
  return transact(store, (tx) => applyRollbackIn(tx, store.tables, input, at, branchRun.insertIn), { pgLock: PG_LOCK_KEYS.ledger });
}

/**
 * The rollback's checks (still pending, a rollback, the boundary's checkpoint of the same run at that epoch) and its
 * branch as the runs service is asked to create it, by the requester, from the rows as they are now.
 */
function* rollbackBranchIn(tx: Tx, t: StoreTables, input: z.output<typeof applyRollbackInput>) {
  const cks = t.checkpoints;
  const pending = yield* pendingRowIn(tx, t, input.interventionId);
  if (pending.kind !== "rollback" || pending.fromCheckpointId === null) invalidInput(`intervention ${pending.id} is not a rollback`);
  const ck = yield* oneRow(tx.select().from(cks).where(eq(cks.id, input.checkpointId)));
  if (!ck || ck.runId !== pending.runId || ck.epoch !== input.epoch)
    invalidInput(`checkpointId: checkpoint ${input.checkpointId} is not run ${pending.runId}'s checkpoint of epoch ${input.epoch}`);
  const from = (yield* oneRow(tx.select().from(cks).where(eq(cks.id, pending.fromCheckpointId))))!;
  const source = (yield* oneRow(tx.select().from(t.runs).where(eq(t.runs.id, pending.runId))))!;
  const requester = (yield* oneRow(tx.select().from(t.users).where(eq(t.users.id, pending.requestedBy))))!;
  const changes = parseChanges(pending.changesJson);
  const base = yield* branchBaseIn(tx, t, source.id, from.epoch);
  const branchInput: BranchRunInput = {
    experimentId: source.experimentId,
    config: effectiveConfig(base, [{ changes }]),
    rationale: pending.rationale,
  };
  return { pending, ck, from, source, requester, actor: actorOf(requester), changes, base, branchInput };
}

/** The rollback's transaction body (either store): its checks, the branch (`insertBranch`), the decision and the applied row. */
function* applyRollbackIn(
  tx: Tx,
  t: StoreTables,
  input: z.output<typeof applyRollbackInput>,
  at: string,
  insertBranch: BranchRunOnStore["insertIn"],
) {
  const { pending, ck, from, source, requester, actor, changes, base, branchInput } = yield* rollbackBranchIn(tx, t, input);
  const branch = yield* insertBranch(tx, t, actor, branchInput, { checkpointId: from.id, base });
  const stopsRun = source.status === "running" || source.status === "queued";
  const snapshot = yield* metricsSnapshotAtIn(tx, t, source.id, watchedMetric(base));
  const decision = yield* insertDecision(tx, t, {
    runId: source.id,
    kind: "intervention",
    path: stopsRun ? "rollback, stop" : "rollback",
    oldValueJson: null,
    newValueJson: canonicalJson({
      branchRunId: branch.id,
      fromCheckpointId: from.id,
      fromEpoch: from.epoch,
      set: Object.fromEntries(changes.map((c) => [c.path, c.newValue])),
    }),
    rationale: pending.rationale,
    correctsDecisionId: null,
    authorId: pending.requestedBy,
    createdAt: at,
  });
  const row = yield* recordAppliedIn(tx, t, {
    pending,
    requester,
    epoch: input.epoch,
    step: input.step,
    at,
    checkpointId: ck.id,
    snapshot,
    decision: decision.ref,
    payloadExtra: { branchRunId: branch.id },
  });
  return { intervention: { ...row, changes }, decision: decision.row, branchRunId: branch.id };
}
