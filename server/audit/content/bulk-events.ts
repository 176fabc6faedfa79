/**
 * While a live database's event log is read (ledger-events.ts sqliteEventSource), each bulk event (run.create,
 * run.start, the run end events, decision.create: ~500k of a million-event ledger) is compared with its row at once
 * and, when it takes the check's fast path, kept without its payload text (matched-events.ts). The checks then run
 * as before, in the same order, on the same events: only what they would have computed for those events is known
 * already. So problems, their order, facts counted and coverage are unchanged (content-tamper.test.ts compares with
 * the full events on every tampered copy).
 *
 * Why an event may lose its text, per action (each must take the same path in the check as with its text):
 * - run.create: the first run.create of its run id (so checkCreations has not seen the run yet), the row exists and
 *   runCreateMatches (checkRuns' fast path, with the same annotations and decisions). Its only other reader,
 *   check-sweeps.ts, reads run.create payloads that name a sweep ("sweepId"), which the row's text never does.
 * - run.start: its row (entity id = the row's id as text) calls for exactly this text (checkRuns' run.start test).
 * - run.complete / run.cancel / run.fail: the payload parses to a JSON object (checkRuns parses it and keeps the
 *   object as the run's end); kept parsed.
 * - decision.create: the first decision.create of its id, the row exists and its note text is exactly this.
 *
 * On a database with the native extension, SQLite has compared the run.create, run.start and decision.create
 * payloads with their rows' texts already (bulk-events-sql.ts) and hands a matching payload over unread: the same
 * test on the same row, so only what its text cannot know is decided here (first of its id, a rename).
 *
 * Invariant: the rows compared with are the ones the checks read (the same Tables, or the same tables in the same
 * read transaction); nothing here reports a problem.
 */
import { ContentChecker, type EventRef } from "./checker";
import { annotations, END_ACTIONS, membersOf, runCreateMatches, type RunDecisions, runStartText } from "./check-runs";
import { noteText } from "./check-decisions";
import type { EventSource } from "./ledger-events";
import { ParsedEndEvent, RowMatchedEvent } from "./matched-events";
import type { Tables } from "./tables";
import type { RunDerivedEvents } from "./run-events-feed";

/**
 * Makes the EventRef the source keeps for one event read (`action` is one of CONTENT_ACTIONS' interned strings).
 * `readUnread`: given, SQLite found the payload exactly equal to the text its row calls for (bulk-events-sql.ts) and
 * left it unread (`payload` is then ""); `readUnread(seq)` reads it. (One reader for all events, not a closure per
 * event: half a million closures, each named by tsx's keepNames helper, cost ~0.3 s on the main thread, profiled.)
 */
export type EventCompactor = (
  seq: number,
  action: string,
  actorId: number | null,
  entityId: string,
  payload: string,
  readUnread?: (seq: number) => string,
) => EventRef;

/**
 * The compactor for a check on `t` (withRun: decisionsCreatedWithRuns(t)). Reads run.annotate from `events` now
 * (the source must still answer it by its index: it is called before the log is scanned). `endFields`: an end
 * event's parsed payload keeps only these members (those the check reads: check-runs.ts CHECKED_END_FIELDS when the
 * run-derived checks run elsewhere), so ~120k objects of members nobody reads are not kept; null keeps them all.
 * `derived`: also records every run.create and end event as it is read, as the content worker's own pass would
 * read it, so the worker need not read them again (run-events-feed.ts).
 */
export function bulkEventCompactor(
  t: Tables,
  withRun: RunDecisions,
  events: EventSource,
  endFields: readonly string[] | null = null,
  derived: RunDerivedEvents | null = null,
): EventCompactor {
  const annotated = annotations(new ContentChecker(false), events); // checkRuns reports its problems
  const runCreated = new Set<number>();
  const noteCreated = new Set<number>();
  const ends = new Set<string>(END_ACTIONS);
  return (seq, action, actorId, entityId, payload, readUnread) => {
    // A payload SQLite matched (`readUnread` given) equals the text JavaScript would build from the same row (found
    // by the canonical text of its id): only what that text cannot know is decided here, reading the payload when needed.
    const unread = readUnread !== undefined;
    if (action === "run.create") {
      // (A payload SQLite matched is its row's text: a canonical JSON object, what the builder's knownObject says.)
      derived?.record(seq, action, actorId, entityId, unread ? "" : payload, unread);
      const id = Number(entityId);
      const first = !runCreated.has(id);
      runCreated.add(id);
      const run = first ? t.runs.get(id) : undefined;
      // A rename (run.annotate) makes the name at creation differ from the row's, which SQLite built the text with.
      if (run && unread && (annotated.size === 0 || !annotated.has(`${id}:name`)))
        return new RowMatchedEvent(seq, action, actorId, entityId);
      if (run && runCreateMatches(run, unread ? readUnread(seq) : payload, annotated, withRun))
        return new RowMatchedEvent(seq, action, actorId, entityId);
    } else if (action === "run.start") {
      const run = t.runs.get(Number(entityId));
      if (run && String(run.id) === entityId && (unread || payload === runStartText(run)))
        return new RowMatchedEvent(seq, action, actorId, entityId);
    } else if (ends.has(action)) {
      const text = unread ? readUnread(seq) : payload;
      derived?.record(seq, action, actorId, entityId, text, false);
      const parsed = parsedObject(text);
      if (parsed) return new ParsedEndEvent(seq, action, actorId, entityId, endFields ? membersOf(parsed, endFields) : parsed);
    } else if (action === "decision.create") {
      const id = Number(entityId);
      const first = !noteCreated.has(id);
      noteCreated.add(id);
      const d = first ? t.decisions.get(id) : undefined;
      if (d && (unread || payload === noteText(d))) return new RowMatchedEvent(seq, action, actorId, entityId);
    }
    return { seq, action, actorId, entityId, payload: unread ? readUnread(seq) : payload };
  };
}

/** As checker.ts parsePayload, without reporting: a JSON object, else null. */
function parsedObject(payload: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(payload) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
