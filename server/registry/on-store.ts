/**
 * How the registry runs on the store (issue 16, db/store.ts): every read is written once as a transaction part over
 * given tables (`function* …In(q, t, …)`), which runs
 * - inside a store transaction body (`yield*`), on SQLite or PostgreSQL;
 * - as an awaited read outside a transaction (readOnStore, through db/store.ts readPart): on SQLite synchronously on
 *   the handle, as before the port; on PostgreSQL statement by statement on the pool;
 * - synchronously on a SQLite handle (onSqlite), for the callers not on the store yet (the auditor's report, lineage,
 *   the MLflow-compatible API's own SQLite transaction).
 * And what follows a committed alias move or signature: a signed audit checkpoint, on either store (under the ledger's
 * advisory lock on PostgreSQL: server/audit/checkpoints.ts).
 */
import type { DbOrTx, Tx } from "@/db/client";
import * as schema from "@/db/schema";
import { readPart, runOnSqliteTx, type Store, type StoreTables, type TxBody } from "@/db/store";
import type { AuditKeys } from "@/server/audit/keys";
import { checkpointAfterCommitOn, type CheckpointOutcome } from "../app-context/audit-checkpoint-after-commit";

export type ReadPart<T> = (q: Tx, t: StoreTables) => TxBody<T>;

/** A read part, awaited, outside any transaction of the caller. */
export function readOnStore<T>(store: Store, part: ReadPart<T>): Promise<T> {
  return readPart(store, (q) => part(q, store.tables));
}

/** A read part run synchronously on a SQLite handle (a transaction the caller holds, or the database). */
export function onSqlite<T>(db: DbOrTx, part: ReadPart<T>): T {
  return runOnSqliteTx(db as Tx, part(db as Tx, schema));
}

/** The signed audit checkpoint after a committed change, on either store (never rejects: a failure is the outcome). */
export function checkpointAfterChange(store: Store, auditKeys: AuditKeys, reason: string): Promise<CheckpointOutcome> {
  return checkpointAfterCommitOn({ db: store, auditKeys }, reason);
}
