/**
 * Read access to the audit tables on PostgreSQL (issue 16): the counterpart of ledger-reads.ts for the verifier's
 * inputs (events in seq order, streamed with a server-side cursor; the checkpoint rows; the key rotations), used by
 * the store copy check (server/backup/store-copy-check.ts) until the verifier itself is ported.
 *
 * Invariants: run inside a transaction on `client` (db/pg-cursor.ts); events come back in ascending seq order with
 * exactly the stored text (the hashes are computed over it), ids and sizes as JS numbers.
 */
import type pg from "pg";
import { pgCursorRows } from "@/db/pg-cursor";
import type { AuditEventRow } from "./ledger";
import type { AuditCheckpointRow } from "./ledger-reads";

const EVENT_COLUMNS = "seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash";

const int = (v: unknown): number => Number(v);
const intOrNull = (v: unknown): number | null => (v === null ? null : Number(v));

function eventOf(a: unknown[]): AuditEventRow {
  return {
    seq: int(a[0]),
    at: a[1] as string,
    actorId: intOrNull(a[2]),
    actorName: a[3] as string,
    role: a[4] as string,
    action: a[5] as string,
    entityType: a[6] as string,
    entityId: a[7] as string,
    payload: a[8] as string,
    leafHash: a[9] as string,
    chainHash: a[10] as string,
  };
}

/** Every event in seq order, one at a time, through a cursor. */
export async function* iterateAuditEventsPg(client: pg.ClientBase, batchRows = 2000): AsyncGenerator<AuditEventRow, void, undefined> {
  for await (const a of pgCursorRows(client, `SELECT ${EVENT_COLUMNS} FROM audit_events ORDER BY seq`, batchRows)) yield eventOf(a);
}

/** The events with this action (e.g. key rotations), in seq order. */
export async function auditEventsWithActionPg(client: pg.ClientBase, action: string): Promise<AuditEventRow[]> {
  const r = await client.query<unknown[]>({
    text: `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE action = $1 ORDER BY seq`,
    values: [action],
    rowMode: "array",
  });
  return r.rows.map(eventOf);
}

export async function listAuditCheckpointsPg(client: pg.ClientBase): Promise<AuditCheckpointRow[]> {
  const r = await client.query<{
    id: string;
    tree_size: string;
    root_hash: string;
    at: string;
    reason: string;
    key_fingerprint: string;
    signature: string;
  }>("SELECT id, tree_size, root_hash, at, reason, key_fingerprint, signature FROM audit_checkpoints ORDER BY id");
  return r.rows.map((c) => ({
    id: int(c.id),
    treeSize: int(c.tree_size),
    rootHash: c.root_hash,
    at: c.at,
    reason: c.reason,
    keyFingerprint: c.key_fingerprint,
    signature: c.signature,
  }));
}
