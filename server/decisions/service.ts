/**
 * Human decisions after a run exists: notes and corrections. Change and initial decisions are written by
 * createRun (server/runs/service.ts) in the run's own transaction.
 *
 * Invariants: decisions are immutable. A correction is a new row of kind "correction" whose
 * corrects_decision_id points at a decision of the same run; the corrected row is never edited.
 * Each note is written with its audit event in one transaction. Authoring a note on a run makes its author
 * part of that run's lineage (see server/lineage/ancestry.ts): they can no longer approve models built on it.
 * On the store (issue 16, db/store.ts): the run and the corrected decision are read inside the note's transaction, under
 * the ledger lock on PostgreSQL (whose triggers, like SQLite's, reject UPDATE and DELETE of decisions). Every decision
 * row is written by insertDecision with the ledger event that binds it (by the row's sha256) in the same transaction:
 * a note's own decision.create/.correct event, a run's run.create (server/runs/service.ts), a compression's record
 * (compression.ts), a pilot's run.interventionApplied (server/runs/pilot.ts: interventions, rollbacks) or a logged
 * batch's run.log (server/mlflow/logging.ts: params).
 */
import { eq } from "drizzle-orm";
import { z } from "zod";
import type { Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, row, transact, type StoreTables, type TxBody } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
import type { NewAuditEvent } from "@/server/audit/ledger";
import { decisionRecordSha256 } from "@/server/audit/content/records";
import { now, requireRole, type SignedInActor } from "../app-context/service-context";
import type { StoreServiceContext } from "../app-context/store-context";
import { invalidInput, notFound } from "@/server/errors";

/** Who may write decision notes: engineers (their own reasoning) and reviewers (review remarks on a run). */
export const DECISION_NOTE_ROLES = ["engineer", "reviewer"] as const;

export const addDecisionNoteInput = z.object({
  runId: z.number().int(),
  rationale: z.string().trim().min(1, "write the note: what you decided or observed, and why").max(4000),
  /** When set, the note corrects this earlier decision of the same run. */
  correctsDecisionId: z.number().int().optional(),
});
export type AddDecisionNoteInput = z.input<typeof addDecisionNoteInput>;

type Decision = StoreTables["decisions"]["$inferSelect"];
type NewDecision = Omit<StoreTables["decisions"]["$inferInsert"], "id">;

/** How a ledger event binds a decision: its sha256 covers every column (values, author, time); the content verifier recomputes it. */
export type DecisionRef = { id: number; path: string; kind: Decision["kind"]; sha256: string };

/**
 * Inserts one decision row and returns it with its reference. The caller appends, in the same transaction, the event
 * that binds it: `event` given, this part appends it itself (its payload built from the stored row, e.g. a note's
 * decision.create); omitted, the caller's own event carries the reference (run.create binds all of a run's decisions).
 */
export function* insertDecision(
  tx: Tx,
  t: StoreTables,
  values: NewDecision,
  event?: (created: Decision, ref: DecisionRef) => NewAuditEvent,
): TxBody<{ row: Decision; ref: DecisionRef }> {
  const created = (yield* row(tx.insert(t.decisions).values(values).returning()))!;
  const ref = { id: created.id, path: created.path, kind: created.kind, sha256: decisionRecordSha256(created) };
  if (event) yield* appendEvent(event(created, ref));
  return { row: created, ref };
}

/** Inserts a note (or a correction of an earlier decision of the same run) and its decision.create/.correct event. */
export function* insertDecisionNote(
  tx: Tx,
  t: StoreTables,
  actor: SignedInActor,
  input: z.output<typeof addDecisionNoteInput>,
): TxBody<Decision> {
  const { decisions, runs } = t;
  if (!(yield* row(tx.select({ id: runs.id }).from(runs).where(eq(runs.id, input.runId))))) notFound(`run ${input.runId}`);
  let corrected: Decision | undefined;
  if (input.correctsDecisionId !== undefined) {
    corrected = yield* row(tx.select().from(decisions).where(eq(decisions.id, input.correctsDecisionId)));
    if (!corrected) notFound(`decision ${input.correctsDecisionId}`);
    if (corrected.runId !== input.runId)
      invalidInput(
        `decision ${corrected.id} belongs to run ${corrected.runId}, not run ${input.runId}: a correction stays on the run of the decision it corrects`,
      );
  }
  const kind = corrected ? ("correction" as const) : ("note" as const);
  const { row: created } = yield* insertDecision(
    tx,
    t,
    {
      runId: input.runId,
      kind,
      path: corrected?.path ?? "",
      oldValueJson: null,
      newValueJson: null,
      rationale: input.rationale,
      correctsDecisionId: corrected?.id ?? null,
      authorId: actor.id,
      createdAt: now(),
    },
    (d, ref) => ({
      actor,
      action: corrected ? "decision.correct" : "decision.create",
      entityType: "decision",
      entityId: d.id,
      payload: {
        runId: input.runId,
        kind,
        path: d.path,
        correctsDecisionId: d.correctsDecisionId,
        rationale: d.rationale,
        createdAt: d.createdAt,
        sha256: ref.sha256,
      },
    }),
  );
  return created;
}

export async function addDecisionNote(ctx: StoreServiceContext, raw: AddDecisionNoteInput): Promise<Decision> {
  requireRole(ctx.actor, DECISION_NOTE_ROLES, "add decision notes");
  const input = addDecisionNoteInput.parse(raw);
  const store = asStore(ctx.db);
  return transact(store, (tx) => insertDecisionNote(tx, store.tables, ctx.actor, input), { pgLock: PG_LOCK_KEYS.ledger });
}
