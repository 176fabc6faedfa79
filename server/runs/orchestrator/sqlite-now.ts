/**
 * The orchestrator is still synchronous and on SQLite (its trainer-event handler persists each event before the next
 * one, and a persistence error must throw there): it runs the store parts of persist-events.ts, leases.ts and
 * run-queue.ts through this, one IMMEDIATE transaction each, synchronously. Every other caller uses their awaited
 * forms, which run the same parts on either store (db/store.ts `transact`).
 */
import type { Db, Tx } from "@/db/client";
import { runOnSqliteTx, type TxBody } from "@/db/store";

export function onSqliteNow<T>(db: Db, body: (tx: Tx) => TxBody<T>): T {
  // db.transaction is IMMEDIATE (db/client.ts): the same one-writer guarantee transact gives on SQLite.
  return db.transaction((tx) => runOnSqliteTx(tx, body(tx)));
}
