/**
 * Read access to the audit tables for the Merkle tree, the checkpoints and the verifier.
 *
 * Streams rows through raw better-sqlite3 prepared statements (`.iterate()`), because a million events
 * must not be materialised as drizzle objects. This is the only file in server/audit with SQL text; it is
 * plain ANSI SQL so a PostgreSQL port replaces just this file.
 * Invariants: events come back in ascending seq order; nothing here writes but insertAuditEventRow, appendAuditEvent's
 * one insert (with lastAuditHead, its read of the chain's head: both prepared once per connection, since every write
 * in the app appends an event and building the two queries with drizzle cost more than running them).
 */
import type Database from "better-sqlite3";
import type { auditCheckpoints } from "@/db/schema";
import { cachedStatement, type Db } from "@/db/client";
import type { AuditEventRow } from "./ledger";

export type AuditCheckpointRow = typeof auditCheckpoints.$inferSelect;

/** A drizzle database or a bare better-sqlite3 connection (the verifier opens data directories read-only). */
export type AuditDbSource = Db | Database.Database;

export function sqliteOf(source: AuditDbSource): Database.Database {
  return "$client" in source ? source.$client : source;
}

const EVENT_COLUMNS = "seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash";
type RawEventRow = [number, string, number | null, string, string, string, string, string, string, string, string];

/**
 * All events with fromSeq <= seq <= toSeq, in seq order, one at a time. Reads raw arrays and builds the
 * objects in JS (about twice as fast as letting the driver build them). Stopping early (break/return)
 * releases the statement.
 */
export function* iterateAuditEvents(
  source: AuditDbSource,
  fromSeq = 1,
  toSeq = Number.MAX_SAFE_INTEGER,
): Generator<AuditEventRow, void, undefined> {
  const rows = sqliteOf(source)
    .prepare(`SELECT ${EVENT_COLUMNS} FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq`)
    .raw(true)
    .iterate(fromSeq, toSeq) as IterableIterator<RawEventRow>;
  try {
    for (const a of rows) {
      yield {
        seq: a[0],
        at: a[1],
        actorId: a[2],
        actorName: a[3],
        role: a[4],
        action: a[5],
        entityType: a[6],
        entityId: a[7],
        payload: a[8],
        leafHash: a[9],
        chainHash: a[10],
      };
    }
  } finally {
    rows.return?.();
  }
}

export function chainHashAt(source: AuditDbSource, seq: number): string | undefined {
  const row = sqliteOf(source).prepare("SELECT chain_hash AS h FROM audit_events WHERE seq = ?").get(seq) as { h: string } | undefined;
  return row?.h;
}

/** [seq, leafHash hex] pairs for seq <= toSeq, in seq order. */
export function iterateLeafHashes(source: AuditDbSource, toSeq = Number.MAX_SAFE_INTEGER): IterableIterator<[number, string]> {
  return sqliteOf(source)
    .prepare("SELECT seq, leaf_hash FROM audit_events WHERE seq <= ? ORDER BY seq")
    .raw(true)
    .iterate(toSeq) as IterableIterator<[number, string]>;
}

export function maxAuditSeq(source: AuditDbSource): number {
  const row = sqliteOf(source).prepare("SELECT max(seq) AS n FROM audit_events").get() as { n: number | null };
  return row.n ?? 0;
}

export function countAuditEventsAfter(source: AuditDbSource, afterSeq: number, excludingAction: string): number {
  const row = cachedStatement(sqliteOf(source), "SELECT count(*) AS n FROM audit_events WHERE seq > ? AND action <> ?").get(
    afterSeq,
    excludingAction,
  ) as { n: number };
  return row.n;
}

const CHECKPOINT_COLUMNS = "id, tree_size AS treeSize, root_hash AS rootHash, at, reason, key_fingerprint AS keyFingerprint, signature";

/** Every checkpoint row, oldest first. */
export function listAuditCheckpoints(source: AuditDbSource): AuditCheckpointRow[] {
  return sqliteOf(source).prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY id`).all() as AuditCheckpointRow[];
}

export function latestAuditCheckpoint(db: Db): AuditCheckpointRow | undefined {
  // A statement prepared once: the checkpoint policy asks after every API write.
  return cachedStatement(db.$client, `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY id DESC LIMIT 1`).get() as
    AuditCheckpointRow | undefined;
}

export function auditCheckpointsWithTreeSize(source: AuditDbSource, treeSize: number): AuditCheckpointRow[] {
  return sqliteOf(source)
    .prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE tree_size = ? ORDER BY id`)
    .all(treeSize) as AuditCheckpointRow[];
}

/** Every event with this action, in seq order, through the audit_events_action index (for rare actions: key rotations). */
export function auditEventsWithAction(source: AuditDbSource, action: string, toSeq = Number.MAX_SAFE_INTEGER): AuditEventRow[] {
  const rows = sqliteOf(source)
    .prepare(`SELECT ${EVENT_COLUMNS} FROM audit_events WHERE action = ? AND seq <= ? ORDER BY seq`)
    .raw(true)
    .all(action, toSeq) as RawEventRow[];
  return rows.map((a) => ({
    seq: a[0],
    at: a[1],
    actorId: a[2],
    actorName: a[3],
    role: a[4],
    action: a[5],
    entityType: a[6],
    entityId: a[7],
    payload: a[8],
    leafHash: a[9],
    chainHash: a[10],
  }));
}

/** The payload of the latest event with this action, or null (an indexed lookup: cheap enough to run per signature). */
export function latestAuditPayloadWithAction(source: AuditDbSource, action: string): string | null {
  const row = sqliteOf(source).prepare("SELECT payload FROM audit_events WHERE action = ? ORDER BY seq DESC LIMIT 1").get(action) as
    { payload: string } | undefined;
  return row?.payload ?? null;
}

/** The last event's seq and chain hash (appendAuditEvent, inside the writer's transaction). */
export function lastAuditHead(sqlite: Database.Database): { seq: number; chainHash: string } | undefined {
  return cachedStatement(sqlite, "SELECT seq, chain_hash AS chainHash FROM audit_events ORDER BY seq DESC LIMIT 1").get() as
    { seq: number; chainHash: string } | undefined;
}

/** Inserts one event row (appendAuditEvent only, inside the writer's transaction). */
export function insertAuditEventRow(sqlite: Database.Database, row: AuditEventRow): void {
  cachedStatement(
    sqlite,
    `INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    row.seq,
    row.at,
    row.actorId,
    row.actorName,
    row.role,
    row.action,
    row.entityType,
    row.entityId,
    row.payload,
    row.leafHash,
    row.chainHash,
  );
}
