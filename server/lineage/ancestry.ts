/**
 * Who and what a model version descends from: the chain of runs through forks, re-runs and fine-tunes, and
 * every person who authored a run or a decision on that chain. Four-eyes promotion relies on this set:
 * nobody in it may sign a promotion of the version.
 *
 * Invariant: the chain follows runs.parent_run_id (a fine-tune's parent is the run of its parent checkpoint,
 * set by createRun), root last; a cycle cannot occur (parents exist before children) but is guarded anyway.
 */
import { eq, inArray } from "drizzle-orm";
import { decisions, modelVersions, runs } from "@/db/schema";
import type { DbOrTx } from "@/db/client";

/** The run and its ancestors, nearest first. */
export function runAncestry(db: DbOrTx, runId: number): (typeof runs.$inferSelect)[] {
  const chain: (typeof runs.$inferSelect)[] = [];
  const seen = new Set<number>();
  let next: number | null = runId;
  while (next !== null && !seen.has(next)) {
    seen.add(next);
    const row: typeof runs.$inferSelect | undefined = db.select().from(runs).where(eq(runs.id, next)).get();
    if (!row) break;
    chain.push(row);
    next = row.parentRunId;
  }
  return chain;
}

export type LineageAuthor = { userId: number; why: string };

/**
 * Everyone who shaped a model version: authors of each run on its chain, authors of every decision on those
 * runs (initial, change, note, correction) and whoever registered the version. Several reasons per person are kept.
 */
export function lineageAuthors(db: DbOrTx, modelVersionId: number): LineageAuthor[] {
  const version = db.select().from(modelVersions).where(eq(modelVersions.id, modelVersionId)).get();
  if (!version) return [];
  const chain = runAncestry(db, version.runId);
  const out: LineageAuthor[] = [{ userId: version.createdBy, why: `registered model version ${version.version}` }];
  for (const r of chain) out.push({ userId: r.createdBy, why: `authored run #${r.id}` });
  const ids = chain.map((r) => r.id);
  const ds = ids.length ? db.select({ id: decisions.id, runId: decisions.runId, authorId: decisions.authorId, kind: decisions.kind }).from(decisions).where(inArray(decisions.runId, ids)).all() : [];
  for (const d of ds) out.push({ userId: d.authorId, why: `authored decision #${d.id} (${d.kind}) on run #${d.runId}` });
  return out;
}
