/**
 * Annotating a run after launch: its name and description (issue 14). Tags have their own verbs (addRunTag /
 * removeRunTag in service.ts, events run.tag / run.untag).
 *
 * Who: any engineer, not only the run's author. Runs belong to the team's experiments and engineers already tag,
 * fork, pilot and cancel each other's runs; the ledger names who changed what, which is the control that matters.
 *
 * Invariants:
 * - The config, its hash and everything derived from it are untouched: only runs.name and runs.description change.
 * - One call is one transaction: the row update and one run.annotate event per changed field, payload
 *   { field, from, to }. A field given with its current value writes nothing (no empty events).
 * - The content check (server/audit/content/check-runs.ts) compares the row with the latest run.annotate `to` of
 *   each field, else with run.create (name) or "" (description): an edit without its event is still found.
 * - On the store (issue 16, db/store.ts): the current values are read inside the transaction, under the ledger lock on
 *   PostgreSQL, so two edits at once each record the value they replaced.
 */
import { eq } from "drizzle-orm";
import { z } from "zod";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, exec, row, transact } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
import { requireRole } from "../app-context/service-context";
import type { StoreServiceContext } from "../app-context/store-context";
import { notFound } from "@/server/errors";

export const ANNOTATE_FIELDS = ["name", "description"] as const;
export type AnnotateField = (typeof ANNOTATE_FIELDS)[number];

// Control characters other than tab/newline have no business in a label and could hide text in the UI.
const noControl = (s: string) => !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(s);

export const annotateInput = z
  .object({
    runId: z.number().int().positive(),
    name: z
      .string()
      .trim()
      .min(1, "a run name must not be empty")
      .max(120, "a run name is at most 120 characters")
      .refine((s) => noControl(s) && !/[\n\t]/.test(s), "a run name is one line without control characters")
      .optional(),
    description: z
      .string()
      .trim()
      .max(4000, "a description is at most 4,000 characters")
      .refine(noControl, "a description may not hold control characters")
      .optional(),
  })
  .refine((v) => v.name !== undefined || v.description !== undefined, "nothing to change: give a name or a description");

export type AnnotateResult = { runId: number; changed: AnnotateField[] };

export async function annotateRun(ctx: StoreServiceContext, raw: z.input<typeof annotateInput>): Promise<AnnotateResult> {
  requireRole(ctx.actor, ["engineer"], "rename or describe runs");
  const input = annotateInput.parse(raw);
  const store = asStore(ctx.db);
  const { runs } = store.tables;
  return transact(
    store,
    function* (tx) {
      const run = yield* row(tx.select({ name: runs.name, description: runs.description }).from(runs).where(eq(runs.id, input.runId)));
      if (!run) notFound(`run ${input.runId}`);
      const changed: AnnotateField[] = [];
      const patch: Partial<Record<AnnotateField, string>> = {};
      for (const field of ANNOTATE_FIELDS) {
        const to = input[field];
        if (to === undefined || to === run[field]) continue;
        patch[field] = to;
        changed.push(field);
        yield* appendEvent({
          actor: ctx.actor,
          action: "run.annotate",
          entityType: "run",
          entityId: input.runId,
          payload: { field, from: run[field], to },
        });
      }
      if (changed.length) yield* exec(tx.update(runs).set(patch).where(eq(runs.id, input.runId)));
      return { runId: input.runId, changed };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}
