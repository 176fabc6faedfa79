/**
 * Which version an alias points at, now or at time T: the one rule, in one place. Every reader of
 * model_alias_events that asks "where does alias A of model M point" goes through here (registry reads and writes,
 * the audit page's report targets, the report, the bundle export).
 *
 * Invariant: an alias's value at time T is its latest model_alias_events row with created_at ≤ T, ties broken by
 * the larger id (rows are append-only; ISO-8601 UTC strings order as times); a row with a null version means the
 * alias was unset. "Now" is the latest row of all.
 *
 * On the store (issue 16): the `…In` forms are transaction parts (./on-store.ts); the synchronous forms serve the
 * callers still on SQLite only (the audit pages, the report, the bundle export, the MLflow-compatible API).
 */
import { and, asc, desc, eq, lte } from "drizzle-orm";
import type { modelAliasEvents } from "@/db/schema";
import type { DbOrTx, Tx } from "@/db/client";
import { row, rows, type StoreTables, type TxBody } from "@/db/store";
import { onSqlite } from "./on-store";

export type AliasMove = typeof modelAliasEvents.$inferSelect;

/** The move that set alias `alias` of model `modelId` as of `atIso` (default: now), or null when it was never set by then. */
export function* aliasMoveAtIn(q: Tx, t: StoreTables, modelId: number, alias: string, atIso?: string): TxBody<AliasMove | null> {
  const { modelAliasEvents } = t;
  const conds = [eq(modelAliasEvents.modelId, modelId), eq(modelAliasEvents.alias, alias)];
  if (atIso !== undefined) conds.push(lte(modelAliasEvents.createdAt, atIso));
  return (
    (yield* row(
      q
        .select()
        .from(modelAliasEvents)
        .where(and(...conds))
        .orderBy(desc(modelAliasEvents.createdAt), desc(modelAliasEvents.id))
        .limit(1),
    )) ?? null
  );
}

export function aliasMoveAt(db: DbOrTx, modelId: number, alias: string, atIso?: string): AliasMove | null {
  return onSqlite(db, (q, t) => aliasMoveAtIn(q, t, modelId, alias, atIso));
}

/** The version id alias `alias` of model `modelId` points at now (null: never set, or unset). */
export function* currentAliasVersionIdIn(q: Tx, t: StoreTables, modelId: number, alias: string): TxBody<number | null> {
  return (yield* aliasMoveAtIn(q, t, modelId, alias))?.modelVersionId ?? null;
}

export function currentAliasVersionId(db: DbOrTx, modelId: number, alias: string): number | null {
  return onSqlite(db, (q, t) => currentAliasVersionIdIn(q, t, modelId, alias));
}

/** Alias moves in the order they happened (of one model, or of all models), for histories and bulk reads. */
export function* aliasMovesIn(q: Tx, t: StoreTables, modelId?: number): TxBody<AliasMove[]> {
  const { modelAliasEvents } = t;
  return yield* rows(
    q
      .select()
      .from(modelAliasEvents)
      .where(modelId === undefined ? undefined : eq(modelAliasEvents.modelId, modelId))
      .orderBy(asc(modelAliasEvents.createdAt), asc(modelAliasEvents.id)),
  );
}

export function aliasMoves(db: DbOrTx, modelId?: number): AliasMove[] {
  return onSqlite(db, (q, t) => aliasMovesIn(q, t, modelId));
}

/**
 * Where every alias points now, from moves already read (any order): model id → alias → version id (null: unset).
 * The same rule as aliasMoveAt, for pages that show many aliases at once without one query per alias.
 */
export function currentAliasTargets(moves: readonly AliasMove[]): Map<number, Map<string, number | null>> {
  const latest = new Map<string, AliasMove>();
  for (const m of [...moves].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id - b.id))
    latest.set(`${m.modelId}\u0000${m.alias}`, m);
  const out = new Map<number, Map<string, number | null>>();
  for (const m of latest.values()) {
    let byAlias = out.get(m.modelId);
    if (!byAlias) out.set(m.modelId, (byAlias = new Map()));
    byAlias.set(m.alias, m.modelVersionId);
  }
  return out;
}

/** The aliases of model `modelId` that point at version `modelVersionId` now, sorted. */
export function aliasesOfVersion(db: DbOrTx, modelId: number, modelVersionId: number): string[] {
  const targets = currentAliasTargets(aliasMoves(db, modelId)).get(modelId) ?? new Map<string, number | null>();
  return [...targets]
    .filter(([, v]) => v === modelVersionId)
    .map(([a]) => a)
    .sort();
}
