/**
 * Appends audit events on the PostgreSQL store (issue 16): the counterpart of ledger.ts's `appendAuditEvent`, for a
 * store shared by several processes and machines. Call it inside the same transaction as the change it records.
 *
 * Invariants:
 * - The row (seq, stored payload, leaf hash, chain hash) comes from ledger.ts's `nextAuditEventRow`: the same event
 *   has the same bytes and hashes on SQLite and on PostgreSQL, and the same verifier checks both.
 * - Appends are serialised by a transaction-scoped advisory lock (PG_LOCK_KEYS.ledger), taken before the tip is read
 *   and released at commit or rollback: the next appender, in any process, reads the tip only after this one's row
 *   is committed (READ COMMITTED takes a fresh snapshot per statement) or rolled back, so seq stays gapless. At
 *   REPEATABLE READ or SERIALIZABLE the snapshot could predate the lock, so the append refuses them.
 * - The lock is held until the transaction ends: keep ledger-writing transactions short (ARCHITECTURE.md, rule 1 of
 *   "Transactions and the second store"). In SQLite the single writer gives the same guarantee.
 */
import { desc, sql } from "drizzle-orm";
import { auditEvents } from "@/db/schema-pg";
import { PG_LOCK_KEYS, type PgTx } from "@/db/pg-client";
import { native, type TxBody } from "@/db/store";
import { appendAuditEvent, nextAuditEventRow, type AuditEventRow, type NewAuditEvent } from "./ledger";

export async function appendAuditEventPg(tx: PgTx, e: NewAuditEvent): Promise<AuditEventRow> {
  const locked = await tx.execute<{ isolation: string }>(
    sql`SELECT pg_advisory_xact_lock(${PG_LOCK_KEYS.ledger.toString()}::bigint), current_setting('transaction_isolation') AS isolation`,
  );
  const isolation = locked.rows[0]?.isolation;
  if (isolation !== "read committed") {
    throw new Error(`ledger append needs a READ COMMITTED transaction (this one is ${String(isolation)}): its tip read could be stale`);
  }
  const [last] = await tx
    .select({ seq: auditEvents.seq, chainHash: auditEvents.chainHash })
    .from(auditEvents)
    .orderBy(desc(auditEvents.seq))
    .limit(1);
  const row = nextAuditEventRow(last, e);
  await tx.insert(auditEvents).values(row);
  return row;
}

/**
 * The ledger append as a part of a store transaction body (db/store.ts): `yield* appendEvent(e)` appends through
 * ledger.ts on SQLite and appendAuditEventPg on PostgreSQL, the same row on either. A body that also reads and then
 * writes other rows runs with `pgLock: PG_LOCK_KEYS.ledger`, so the ledger lock is its first and only lock. One
 * exception: an MLflow artifact upload on PostgreSQL's chunk store copies its blob rows in its transaction before it
 * takes the ledger lock (the blob commits with its record or not at all). That cannot deadlock as long as nothing
 * that holds the ledger lock writes blobs, which holds today (server/mlflow; see its README).
 */
export function appendEvent(e: NewAuditEvent): TxBody<AuditEventRow> {
  return native({ sqlite: (tx) => appendAuditEvent(tx, e), pg: (tx) => appendAuditEventPg(tx, e) });
}
