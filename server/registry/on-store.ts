/**
 * How the registry runs on the store (issue 16, db/store.ts): every read is written once as a transaction part over
 * given tables (`function* …In(q, t, …)`), which runs
 * - inside a store transaction body (`yield*`), on SQLite or PostgreSQL;
 * - as an awaited read outside a transaction (readOnStore): on SQLite synchronously on the handle, as before the port;
 *   on PostgreSQL in one read-only pool transaction (READ COMMITTED, no lock);
 * - synchronously on a SQLite handle (onSqlite), for the callers not on the store yet (the auditor's report, lineage,
 *   the MLflow-compatible API's own SQLite transaction).
 * And what follows a committed alias move or signature: a signed audit checkpoint on SQLite; on PostgreSQL, until audit
 * checkpoints are on the store, an outcome that says none followed (the change stands), as signDocument does.
 */
import type { DbOrTx, Tx } from "@/db/client";
import * as schema from "@/db/schema";
import { runOnSqliteTx, transact, type Store, type StoreTables, type TxBody } from "@/db/store";
import type { AuditKeys } from "@/server/audit/keys";
import { checkpointAfterCommit, type CheckpointOutcome } from "../app-context/audit-checkpoint-after-commit";

export type ReadPart<T> = (q: Tx, t: StoreTables) => TxBody<T>;

/** A read part, awaited, outside any transaction of the caller. */
export async function readOnStore<T>(store: Store, part: ReadPart<T>): Promise<T> {
  if (store.dialect === "sqlite") return onSqlite(store.db, part);
  return transact(store, (tx) => part(tx, store.tables));
}

/** A read part run synchronously on a SQLite handle (a transaction the caller holds, or the database). */
export function onSqlite<T>(db: DbOrTx, part: ReadPart<T>): T {
  return runOnSqliteTx(db as Tx, part(db as Tx, schema));
}

/** Said instead of a checkpoint after a change on PostgreSQL (server/audit/checkpoints.ts is SQLite code for now). */
export const NO_CHECKPOINT_ON_PG: CheckpointOutcome = {
  ok: false,
  error: "signed audit checkpoints are not on the PostgreSQL store yet (issue 16): no checkpoint follows this change",
};

/** The signed audit checkpoint after a committed change (SQLite), or NO_CHECKPOINT_ON_PG. */
export function checkpointAfterChange(store: Store, auditKeys: AuditKeys, reason: string): CheckpointOutcome {
  return store.dialect === "sqlite" ? checkpointAfterCommit({ db: store.db, auditKeys }, reason) : NO_CHECKPOINT_ON_PG;
}
