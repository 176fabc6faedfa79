/**
 * Reads the audit events the content check needs, by action (index audit_events_action), seq <= uptoSeq, in seq
 * order, as raw rows. The caller runs inside the verifier's read transaction, so these are the payloads the chain
 * pass verified. Also answers "is there an event for this entity after uptoSeq?" so rows written by events the
 * chain pass did not reach are not mistaken for rows without an event.
 *
 * Invariant: read only; plain SQL on audit_events (the PostgreSQL port replaces this file with ledger-reads.ts).
 */
import type Database from "better-sqlite3";
import type { EventCompactor } from "./bulk-events";
import type { EventRef } from "./checker";
import { PAYLOAD_UNLESS_ROW_TEXT, ROW_JOINS } from "./bulk-events-sql";

type RawEvent = [number, number | null, string, string];
/** A row of sqliteEventSource's reads: payload null and stored-null 0 when SQLite left a matching payload unread. */
type ReadRow = [seq: number, actorId: number | null, entityId: string, payload: string | null, action: string, storedNull: number];

/** Every action the content check reads. */
export const CONTENT_ACTIONS = [
  "user.create",
  "project.create",
  "experiment.create",
  "experiment.update",
  "experiment.delete",
  "experiment.restore",
  "experiment.setTag",
  "token.create",
  "token.revoke",
  "dataset.create",
  "datasetVersion.create",
  "split.create",
  "run.create",
  "run.start",
  "run.complete",
  "run.cancel",
  "run.fail",
  "run.tag",
  "run.untag",
  "run.log",
  "run.logInputs",
  "run.deleteTag",
  "run.delete",
  "run.restore",
  "run.interventionRequested",
  "run.interventionApplied",
  "run.interventionCancelled",
  "run.interventionRejected",
  "checkpoint.create",
  "evaluation.create",
  "decision.create",
  "decision.correct",
  "model.create",
  "model.update",
  "modelVersion.create",
  "alias.move",
  "promotion.request",
  "promotion.approve",
  "promotion.reject",
  "promotion.withdraw",
  "signature.create",
  "document.update",
] as const;

/** Above this share of content events in the log, one sequential pass beats index lookups row by row. */
const SCAN_SHARE = 0.1;

export type EventSource = {
  /** Events of one action with seq <= uptoSeq, in seq order. */
  byAction(action: string): EventRef[];
  /** Entity ids with an event of `action` after uptoSeq (recorded later than what was verified). */
  laterEntityIds(action: string): Set<string>;
  /**
   * True when every content event not checked in SQL was read while the source was made, in one pass in seq order
   * (sqliteEventSource's sequential pass): each passed through the compactor then, and none will be read again.
   */
  scannedUpFront?: boolean;
};

/** The answer of laterEntityIds when no event lies after uptoSeq (shared: asked once per run and action; never changed). */
const NOTHING_LATER: Set<string> = new Set();

/**
 * `inSql`: actions checked inside SQLite, not read up front (they stay readable through the index). `compactor`:
 * makes what is kept of each content event read (bulk-events.ts: the bulk events matched to their rows as they are
 * read, kept without their text); it is made once, before any content event is read, and may read other actions
 * from the source then. `rowsInSql` (needs the native extension loaded on `sqlite`, and a compactor): SQLite
 * compares the run.create, run.start and decision.create payloads with their rows' texts (bulk-events-sql.ts) and
 * the compactor gets a matching one unread.
 */
export function sqliteEventSource(
  sqlite: Database.Database,
  uptoSeq: number,
  inSql: readonly string[] = [],
  compactor?: (source: EventSource) => EventCompactor,
  rowsInSql = false,
): EventSource {
  const matchRows = rowsInSql && compactor !== undefined;
  // seq, actor_id, entity_id, payload (NULL: unread, equal to its row's text), action, whether the payload stored is NULL
  const columns = matchRows
    ? `e.seq, e.actor_id, e.entity_id, ${PAYLOAD_UNLESS_ROW_TEXT}, e.action, e.payload IS NULL`
    : "e.seq, e.actor_id, e.entity_id, e.payload, e.action, e.payload IS NULL";
  const from = matchRows ? `audit_events e ${ROW_JOINS}` : "audit_events e";
  const stmt = sqlite.prepare(`SELECT ${columns} FROM ${from} WHERE e.action = ? AND e.seq <= ? ORDER BY e.seq`).raw(true);
  const payloadOf = sqlite.prepare("SELECT payload FROM audit_events WHERE seq = ?").pluck();
  const readUnread = (seq: number) => payloadOf.get(seq) as string;
  /** An event read as a row of `columns`, made by `make` (handed an unread payload only when it is the compactor). */
  const made = (make: EventCompactor, row: ReadRow): EventRef => {
    const [seq, actorId, entityId, payload, action, storedNull] = row;
    if (payload !== null || storedNull === 1) return make(seq, action, actorId, entityId, payload as string);
    return make === plainEvent
      ? plainEvent(seq, action, actorId, entityId, readUnread(seq))
      : make(seq, action, actorId, entityId, "", readUnread);
  };
  const later = sqlite.prepare("SELECT entity_id FROM audit_events WHERE action = ? AND seq > ?").raw(true);
  const cache = new Map<string, EventRef[]>();
  const laterCache = new Map<string, Set<string>>();
  const anyLater = (sqlite.prepare("SELECT 1 FROM audit_events WHERE seq > ? LIMIT 1").get(uptoSeq) ?? null) !== null;
  // Read every content event up front: through the action index when they are few, in one sequential pass when many.
  // (seq is gapless, so uptoSeq is the number of events verified.)
  const inList = CONTENT_ACTIONS.filter((a) => !inSql.includes(a))
    .map((a) => `'${a}'`)
    .join(",");
  const wanted =
    uptoSeq <= 0
      ? 0
      : (sqlite.prepare(`SELECT count(*) AS n FROM audit_events WHERE action IN (${inList}) AND seq <= ?`).get(uptoSeq) as { n: number }).n;
  let compact: EventCompactor = plainEvent;
  const source: EventSource = {
    byAction(action) {
      let list = cache.get(action);
      if (!list) {
        list = [];
        const make = (CONTENT_ACTIONS as readonly string[]).includes(action) ? compact : plainEvent;
        for (const row of stmt.iterate(action, uptoSeq) as IterableIterator<ReadRow>) {
          row[4] = action; // filed under the action's own (interned) name
          list.push(made(make, row));
        }
        cache.set(action, list);
      }
      return list;
    },
    laterEntityIds(action) {
      if (!anyLater) return NOTHING_LATER;
      let ids = laterCache.get(action);
      if (!ids) laterCache.set(action, (ids = new Set((later.all(action, uptoSeq) as [string][]).map((r) => r[0]))));
      return ids;
    },
  };
  if (compactor) compact = compactor(source);
  if (uptoSeq > 0 && wanted / uptoSeq >= SCAN_SHARE) {
    // Each event is filed under the action's own (interned) name, not the text SQLite returns for it.
    const lists = new Map<string, { action: string; list: EventRef[] }>();
    for (const a of CONTENT_ACTIONS) if (!inSql.includes(a)) cache.set(a, []);
    for (const a of CONTENT_ACTIONS) if (!inSql.includes(a)) lists.set(a, { action: a, list: cache.get(a)! });
    const scan = sqlite.prepare(`SELECT ${columns} FROM ${from} WHERE e.seq <= ? AND +e.action IN (${inList}) ORDER BY e.seq`).raw(true);
    for (const row of scan.iterate(uptoSeq) as IterableIterator<ReadRow>) {
      const to = lists.get(row[4])!;
      row[4] = to.action;
      to.list.push(made(compact, row));
    }
    source.scannedUpFront = true;
  }
  return source;
}

function plainEvent(seq: number, action: string, actorId: number | null, entityId: string, payload: string): EventRef {
  return { seq, action, actorId, entityId, payload };
}

/**
 * Calls `onEvent` for each event of `actions` with seq <= uptoSeq, in seq order, without keeping them (each EventRef
 * is fresh and may be kept by the callee; `knownObject`: see `objectsUnread` below). Reads through the action index
 * when those events are few, else in one sequential pass (as sqliteEventSource).
 */
export function streamEvents(
  sqlite: Database.Database,
  uptoSeq: number,
  actions: readonly string[],
  onEvent: (ev: EventRef, knownObject: boolean) => void,
  objectsUnread: readonly string[] = [],
): void {
  if (uptoSeq <= 0 || actions.length === 0) return;
  const inList = actions.map(() => "?").join(",");
  const wanted = sqlite
    .prepare(`SELECT count(*) FROM audit_events WHERE action IN (${inList}) AND seq <= ?`)
    .pluck()
    .get(...actions, uptoSeq) as number;
  const where = wanted / uptoSeq >= SCAN_SHARE ? `seq <= ? AND +action IN (${inList})` : `action IN (${inList}) AND seq <= ?`;
  const params = wanted / uptoSeq >= SCAN_SHARE ? [uptoSeq, ...actions] : [...actions, uptoSeq];
  // For `objectsUnread` (the caller loaded the native extension), a payload SQLite finds certainly a canonical JSON
  // object (rl_unless_json_object) is not read: it comes as NULL (told apart from a NULL stored by the last column),
  // and the event is passed on with payload "" and knownObject.
  const payload = objectsUnread.length
    ? `CASE WHEN action IN (${objectsUnread.map((a) => `'${a.replaceAll("'", "''")}'`).join(",")}) THEN rl_unless_json_object(payload) ELSE payload END`
    : "payload";
  const rows = sqlite
    .prepare(`SELECT seq, actor_id, entity_id, ${payload}, action, payload IS NULL FROM audit_events WHERE ${where} ORDER BY seq`)
    .raw(true)
    .iterate(...params) as IterableIterator<[...RawEvent, string, number]>;
  for (const [seq, actorId, entityId, text, action, storedNull] of rows) {
    const known = text === null && storedNull === 0;
    onEvent({ seq, action, actorId, entityId, payload: known ? "" : text }, known);
  }
}

/** Events from any iterable of parsed event rows (a bundle's events.jsonl), indexed by action. */
export function iterableEventSource(
  rows: Iterable<{ seq: number; action: string; actorId: number | null; entityId: string; payload: string; at: string }>,
  uptoSeq = Number.MAX_SAFE_INTEGER,
): EventSource {
  const byAction = new Map<string, EventRef[]>();
  for (const r of rows) {
    if (r.seq > uptoSeq) continue;
    let list = byAction.get(r.action);
    if (!list) byAction.set(r.action, (list = []));
    list.push({ seq: r.seq, action: r.action, actorId: r.actorId, entityId: r.entityId, payload: r.payload });
  }
  for (const list of byAction.values()) list.sort((a, b) => a.seq - b.seq);
  return { byAction: (a) => byAction.get(a) ?? [], laterEntityIds: () => new Set() };
}
