/**
 * Human decisions after a run exists: notes and corrections. Change and initial decisions are written by
 * createRun (server/runs/service.ts) in the run's own transaction.
 *
 * Invariants: decisions are immutable. A correction is a new row of kind "correction" whose
 * corrects_decision_id points at a decision of the same run; the corrected row is never edited.
 * Each note is written with its audit event in one transaction. Authoring a note on a run makes its author
 * part of that run's lineage (see server/lineage/ancestry.ts): they can no longer approve models built on it.
 * On the store (issue 16, db/store.ts): the run and the corrected decision are read inside the note's transaction, under
 * the ledger lock on PostgreSQL (whose triggers, like SQLite's, reject UPDATE and DELETE of decisions).
 */
import { eq } from "drizzle-orm";
import { z } from "zod";
import type { Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, row, transact, type StoreTables, type TxBody } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
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
  const created = (yield* row(
    tx
      .insert(decisions)
      .values({
        runId: input.runId,
        kind,
        path: corrected?.path ?? "",
        oldValueJson: null,
        newValueJson: null,
        rationale: input.rationale,
        correctsDecisionId: corrected?.id ?? null,
        authorId: actor.id,
        createdAt: now(),
      })
      .returning(),
  ))!;
  yield* appendEvent({
    actor,
    action: corrected ? "decision.correct" : "decision.create",
    entityType: "decision",
    entityId: created.id,
    // sha256 covers every column of the row (values, author, time); the content verifier recomputes it.
    payload: {
      runId: input.runId,
      kind,
      path: created.path,
      correctsDecisionId: created.correctsDecisionId,
      rationale: created.rationale,
      createdAt: created.createdAt,
      sha256: decisionRecordSha256(created),
    },
  });
  return created;
}

export async function addDecisionNote(ctx: StoreServiceContext, raw: AddDecisionNoteInput): Promise<Decision> {
  requireRole(ctx.actor, DECISION_NOTE_ROLES, "add decision notes");
  const input = addDecisionNoteInput.parse(raw);
  const store = asStore(ctx.db);
  return transact(store, (tx) => insertDecisionNote(tx, store.tables, ctx.actor, input), { pgLock: PG_LOCK_KEYS.ledger });
}
