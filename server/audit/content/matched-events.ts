/**
 * Compact stand-ins for the bulk events of a live database's content check (run.create, run.start, the end events,
 * decision.create), made while the event log is read (bulk-events.ts) so the check does not keep ~500k payload
 * texts (~200 MB) until it ends: keeping them, not reading them, was most of the cost (the garbage collector copies
 * what is kept; ARCHITECTURE.md, "Verification speed").
 *
 * - RowMatchedEvent: the payload text was exactly the text the event's row calls for (the check's fast path), so the
 *   text is dropped; the fast path of the check that reads it (checkCreations' `fast`, checkRuns' run.start)
 *   answers "matched" for it without rebuilding the text.
 * - ParsedEndEvent: a run end event whose payload parsed to a JSON object; the object is kept (checkRuns keeps it
 *   anyway, in RunLedger.ends), the text dropped.
 *
 * Invariant: these are made only by bulk-events.ts, only where the check would take the same path on the full
 * event (see there); an event read from a database or bundle is never one (they are recognised by their class, so
 * no payload text can pose as one). Their `payload` is "" (never read for a matched event).
 */
import type { EventRef } from "./checker";

export class RowMatchedEvent implements EventRef {
  readonly payload = "";
  constructor(
    readonly seq: number,
    readonly action: string,
    readonly actorId: number | null,
    readonly entityId: string,
  ) {}
}

export class ParsedEndEvent implements EventRef {
  readonly payload = "";
  constructor(
    readonly seq: number,
    readonly action: string,
    readonly actorId: number | null,
    readonly entityId: string,
    readonly parsed: Record<string, unknown>,
  ) {}
}
