/**
 * The decision check of a live database, recognised clean inside SQLite (native extension): one aggregate read
 * proves that checkDecisions (check-decisions.ts) would find nothing, and counts the facts it would count, so the
 * main thread neither reads the decisions table (247k rows of a million-event ledger) nor the decision.create
 * events into JavaScript. Anything else, and the whole check runs in JavaScript as before, on the same snapshot.
 *
 * What checkDecisions does on a clean ledger, and what PROOF shows instead:
 * - The initial and change decisions of a run are claimed by its run.create when that event matched its row's text
 *   exactly (payload null in RunLedger.createEvents; the text lists every such decision of the run, with the sha256
 *   of its whole row: bulk-events-sql.ts CREATED_DECISIONS). So: every run.create matched (checked in JavaScript,
 *   on checkRuns' result), every run row has one, and every initial or change decision belongs to a run row
 *   (PROOF); then each is claimed once, one fact each.
 * - Notes and corrections are claimed by their decision.create / decision.correct event taking checkCreations' fast
 *   path: the event names the row by the canonical text of its id, its payload is exactly the note text the row
 *   calls for (the same SQL text as bulk-events-sql.ts NOTE_TEXT, which can only be equal where JavaScript's
 *   noteText is), no row is named twice, and the actor, if any, is the row's author (stored as integers). One fact
 *   per event, one more per event naming an actor (compareActor). Every note or correction row must be so named.
 * - No decision of another kind, and no run.interventionApplied or run.log event (which name decisions too, each
 *   its own way) up to the verified seq: else JavaScript judges.
 * Then no row is left unclaimed and no event lacks its row, which is all the final section of checkDecisions asks.
 *
 * Invariant: true only when checkDecisions, given the same snapshot, would report no problem, no gap and no
 * notCovered sentence, and count exactly the facts added here (content-tamper.test.ts compares the two ways on
 * every tampered copy, and tampers with the decisions until each condition fails).
 */
import type Database from "better-sqlite3";
import { loadAuditNative } from "../native-range";
import type { ContentChecker } from "./checker";
import type { RunLedger } from "./check-runs";
import { NOTE_TEXT } from "./bulk-events-sql";
import type { SqlRead, SqlReads } from "./sql-reads";
import type { Tables } from "./tables";

/** The actions whose events name notes and corrections (not read up front when the decisions are judged here). */
export const NOTE_ACTIONS = ["decision.create", "decision.correct"] as const;

/** The counts that decide (see the header), in ProofCounts' order: the events', the rows' (one pass each), the others'. */
const PROOF = `SELECT * FROM
  (SELECT count(*), rl_distinct_ids(n.id), ifnull(sum(n.kind IN ('note', 'correction')), 0),
      ifnull(sum(n.id IS NOT NULL AND e.actor_id IS NOT NULL), 0)
    FROM audit_events e
    LEFT JOIN decisions n ON n.id = CAST(e.entity_id AS INTEGER) AND e.entity_id = CAST(n.id AS TEXT) AND e.payload = ${NOTE_TEXT}
      AND (e.actor_id IS NULL OR (typeof(e.actor_id) = 'integer' AND typeof(n.author_id) = 'integer' AND e.actor_id = n.author_id))
    WHERE e.action IN ('decision.create', 'decision.correct') AND e.seq <= @upto),
  (SELECT count(*), ifnull(sum(d.kind IN ('note', 'correction')), 0), ifnull(sum(d.kind IN ('initial', 'change')), 0),
      ifnull(sum(d.kind IN ('initial', 'change') AND r.id IS NULL), 0)
    FROM decisions d LEFT JOIN runs r ON r.id = d.run_id),
  (SELECT count(*) FROM audit_events WHERE action IN ('run.interventionApplied', 'run.log') AND seq <= @upto)`;

type ProofCounts = [
  events: number,
  /** rows the events name (as many as events: every event names a row, none the same) */ distinctRows: number,
  /** events naming a note or correction row: the number of such rows named, when no row is named twice */ notesNamed: number,
  withActor: number,
  rows: number,
  noteRows: number,
  withRunRows: number,
  withRunRowsWithoutRun: number,
  otherEvents: number,
];

/** The read PROOF makes (the content worker may make it first: sql-reads.ts); none without the native extension. */
export function decisionSqlReads(sqlite: Database.Database, uptoSeq: number): SqlRead[] {
  return loadAuditNative(sqlite) ? [{ sql: PROOF, params: [{ upto: uptoSeq }] }] : [];
}

/**
 * True, with the facts checkDecisions would count added to `c`, when the decisions are proven clean (see the
 * header); false, with nothing added, when checkDecisions must judge them. Needs the native extension on the
 * connection `reads` reads from; `runs`: checkRuns' result on the same snapshot.
 */
export function decisionsProvenInSql(
  c: ContentChecker,
  reads: SqlReads,
  uptoSeq: number,
  t: Pick<Tables, "runs" | "complete">,
  runs: RunLedger,
): boolean {
  if (!t.complete) return false;
  // (Read first: the content worker has usually made this read already, and a read it made is taken, used or not.)
  const [events, distinctRows, notesNamed, withActor, rows, noteRows, withRunRows, withRunRowsWithoutRun, otherEvents] = reads.all(PROOF, {
    upto: uptoSeq,
  })[0] as ProofCounts;
  for (const { payload } of runs.createEvents.values()) if (payload !== null) return false;
  for (const id of t.runs.keys()) if (!runs.createEvents.has(id)) return false;
  const clean =
    distinctRows === events && // (an event whose row, text or actor differs names no row: rl_distinct_ids skips it)
    notesNamed === noteRows &&
    rows === noteRows + withRunRows &&
    withRunRowsWithoutRun === 0 &&
    otherEvents === 0;
  if (!clean) return false;
  c.checked += withRunRows + events + withActor;
  return true;
}
