/**
 * The common shape of a content check: each creating event must have its row and agree with it; each row must
 * have its creating event. Entity checkers (check-*.ts) supply what to compare.
 *
 * Invariants: an event whose row is missing, and a row without an event, are failures only when the tables are
 * complete (live database); a row whose creating event lies after the verified range (uptoSeq) is neither.
 */
import { type ContentChecker, type EventRef, parsePayload } from "./checker";
import type { EventSource } from "./ledger-events";

export type CreationSpec<R extends { id: number }> = {
  entityType: string;
  action: string;
  rows: Map<number, R>;
  complete: boolean;
  /** Report rows without their event (default true; off where another pass judges them). */
  judgeOrphans?: boolean;
  /** Which row an event is about (default: its entity id). */
  idOf?: (ev: EventRef, payload: Record<string, unknown>) => number | null;
  /** Fast path (entity id events only): true when the stored payload text is exactly what the row calls for. */
  fast?: (row: R, ev: EventRef) => boolean;
  /** Field by field, naming what differs (older payloads: missing fields are gaps). */
  check: (row: R, ev: EventRef, payload: Record<string, unknown>) => void;
  /** Checks beyond the payload (derived values, the actor), for rows that passed either way. */
  always?: (row: R, ev: EventRef) => void;
};

export type Created = Map<number, { ev: EventRef; payload: Record<string, unknown> | null }>;

/** Runs the spec; returns id → the creating event, for checks that join several tables. */
export function checkCreations<R extends { id: number }>(c: ContentChecker, events: EventSource, spec: CreationSpec<R>): Created {
  const seen: Created = new Map();
  for (const ev of events.byAction(spec.action)) {
    if (spec.fast && !spec.idOf) {
      const row = spec.rows.get(Number(ev.entityId));
      if (row && !seen.has(row.id) && spec.fast(row, ev)) {
        seen.set(row.id, { ev, payload: null });
        c.cover(spec.entityType, row.id, ev.seq);
        c.checked++;
        spec.always?.(row, ev);
        continue;
      }
    }
    const payload = parsePayload(c, spec.entityType, ev.entityId, ev);
    if (!payload) continue;
    const id = spec.idOf ? spec.idOf(ev, payload) : Number(ev.entityId);
    if (id === null || !Number.isInteger(id)) {
      c.problem({
        entityType: spec.entityType,
        entityId: ev.entityId,
        field: "id",
        recorded: String(id),
        found: null,
        seq: ev.seq,
        message: `event #${ev.seq} (${spec.action}) does not name a ${spec.entityType} id`,
      });
      continue;
    }
    const row = spec.rows.get(id);
    if (!row) {
      if (spec.complete) c.eventWithoutRow(spec.entityType, id, ev);
      continue;
    }
    if (seen.has(id)) {
      c.problem({
        entityType: spec.entityType,
        entityId: String(id),
        field: "ledger event",
        recorded: `seq ${seen.get(id)!.ev.seq}`,
        found: `seq ${ev.seq}`,
        seq: ev.seq,
        message: `${spec.entityType} ${id} is recorded as created twice (events #${seen.get(id)!.ev.seq} and #${ev.seq})`,
      });
      continue;
    }
    seen.set(id, { ev, payload });
    c.checked++;
    spec.check(row, ev, payload);
    spec.always?.(row, ev);
  }
  if (spec.judgeOrphans ?? true) {
    let later: Set<string> | null = null;
    for (const id of spec.rows.keys()) {
      if (seen.has(id)) continue;
      later ??= events.laterEntityIds(spec.action);
      if (later.has(String(id))) continue;
      c.rowWithoutEvent(spec.entityType, id, spec.action);
    }
  }
  return seen;
}

/** Compares the event's actor with the row's author column (who did it is a fact the report prints). */
export function compareActor(c: ContentChecker, entityType: string, id: number, ev: EventRef, authorId: number, field = "author"): void {
  if (ev.actorId === null) return; // system events name no user
  c.compare(entityType, id, field, ev.actorId, authorId, ev.seq);
}

/** True when an event of one of `actions` about the entity lies after the verified range (its row may show that later state). */
export function changedLater(events: EventSource, actions: readonly string[], entityId: string | number): boolean {
  // (Asked for every run, several times: no id text is made while nothing lies after the verified range.)
  for (const action of actions) {
    const later = events.laterEntityIds(action);
    if (later.size > 0 && later.has(String(entityId))) return true;
  }
  return false;
}
