/**
 * What signing a checkpoint reads, as transaction parts on either store (db/store.ts, issue 16): the latest
 * checkpoint, the events since it, the leaves before it. checkpoints.ts composes them into one body.
 *
 * Invariants: events and leaves come back in ascending seq order with exactly the stored text (the hashes are computed
 * over it). The bulk reads never hold the whole log: SQLite streams them through ledger-reads.ts's raw statements (as
 * before the port), PostgreSQL reads them in pages by seq inside the signing transaction, which holds the ledger lock,
 * so no page can see an event appended after the first.
 */
import { and, asc, count, desc, eq, gt, gte, lte, ne } from "drizzle-orm";
import { sqliteClientOf, type Db, type Tx } from "@/db/client";
import type { PgTx } from "@/db/pg-client";
import { auditEvents as pgAuditEvents } from "@/db/schema-pg";
import { native, row, type StoreTables, type TxBody } from "@/db/store";
import type { AuditEventRow } from "./ledger";
import { type AuditCheckpointRow, iterateAuditEvents, iterateLeafHashes } from "./ledger-reads";
import { storeTreeLevelsForCheckpoint, type TreeLevelsOutcome } from "./tree-levels";
import { storeTreeLevelsForCheckpointPg } from "./tree-levels-pg";

/** Rows per page of the PostgreSQL bulk reads. */
const PAGE_ROWS = 10_000;

/** The latest checkpoint, as a query on any handle (a transaction's, or `reader(store)` for an awaited read). */
export function latestCheckpointQuery(db: Db | Tx, t: StoreTables) {
  return db.select().from(t.auditCheckpoints).orderBy(desc(t.auditCheckpoints.id)).limit(1);
}

export function* latestCheckpointIn(tx: Tx, t: StoreTables): TxBody<AuditCheckpointRow | undefined> {
  return yield* row(latestCheckpointQuery(tx, t));
}

/** The parsed payload of the "audit.checkpoint" event that recorded checkpoint `checkpointId`, if any. */
export function* checkpointEventPayloadIn(
  tx: Tx,
  t: StoreTables,
  checkpointId: number,
): TxBody<(Record<string, unknown> & Partial<{ treeSize: number; rootHash: string; frontier: string[] }>) | null> {
  const e = t.auditEvents;
  const found = yield* row(
    tx
      .select({ payload: e.payload })
      .from(e)
      .where(and(eq(e.entityType, "auditCheckpoint"), eq(e.entityId, String(checkpointId)), eq(e.action, "audit.checkpoint")))
      .orderBy(desc(e.seq))
      .limit(1),
  );
  if (!found) return null;
  try {
    const parsed = JSON.parse(found.payload) as unknown;
    return parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function* chainHashIn(tx: Tx, t: StoreTables, seq: number): TxBody<string | undefined> {
  const e = t.auditEvents;
  return (yield* row(tx.select({ h: e.chainHash }).from(e).where(eq(e.seq, seq)).limit(1)))?.h;
}

/** How many events after `afterSeq` are not `excludingAction`, as a query on any handle (one row, `n`). */
export function countEventsAfterQuery(db: Db | Tx, t: StoreTables, afterSeq: number, excludingAction: string) {
  const e = t.auditEvents;
  return db
    .select({ n: count() })
    .from(e)
    .where(and(gt(e.seq, afterSeq), ne(e.action, excludingAction)));
}

export function* countEventsAfterIn(tx: Tx, t: StoreTables, afterSeq: number, excludingAction: string): TxBody<number> {
  return (yield* row(countEventsAfterQuery(tx, t, afterSeq, excludingAction)))?.n ?? 0;
}

/** Calls `each` with [seq, leaf hash hex] for seq <= toSeq, in seq order. */
export function eachLeafUpTo(toSeq: number, each: (seq: number, leafHex: string) => void): TxBody<void> {
  return native({
    sqlite: (tx) => {
      for (const [seq, leafHex] of iterateLeafHashes(sqliteClientOf(tx), toSeq)) each(seq, leafHex);
    },
    pg: async (tx) => {
      for (let after = 0; after < toSeq;) {
        const page = await tx
          .select({ seq: pgAuditEvents.seq, leafHash: pgAuditEvents.leafHash })
          .from(pgAuditEvents)
          .where(and(gt(pgAuditEvents.seq, after), lte(pgAuditEvents.seq, toSeq)))
          .orderBy(asc(pgAuditEvents.seq))
          .limit(PAGE_ROWS);
        for (const r of page) each(r.seq, r.leafHash);
        if (page.length < PAGE_ROWS) return;
        after = page[page.length - 1]!.seq;
      }
    },
  });
}

/** Calls `each` with every event from seq `fromSeq` on, in seq order. */
export function eachEventFrom(fromSeq: number, each: (event: AuditEventRow) => void): TxBody<void> {
  return native({
    sqlite: (tx) => {
      for (const e of iterateAuditEvents(sqliteClientOf(tx), fromSeq)) each(e);
    },
    pg: async (tx) => {
      for (let from = fromSeq; ;) {
        const page = await tx
          .select()
          .from(pgAuditEvents)
          .where(gte(pgAuditEvents.seq, from))
          .orderBy(asc(pgAuditEvents.seq))
          .limit(PAGE_ROWS);
        for (const e of page) each(e);
        if (page.length < PAGE_ROWS) return;
        from = page[page.length - 1]!.seq + 1;
      }
    },
  });
}

/** Keeps the stored tree levels (tree-levels.ts) in step with a checkpoint being signed; never throws. */
export function storeTreeLevelsIn(treeSize: number, rootHash: string): TxBody<TreeLevelsOutcome> {
  return native({
    sqlite: (tx) => storeTreeLevelsForCheckpoint(sqliteClientOf(tx), treeSize, rootHash),
    pg: (tx: PgTx) => storeTreeLevelsForCheckpointPg(tx, treeSize, rootHash),
  });
}
