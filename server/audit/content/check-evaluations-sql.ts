/**
 * The evaluation check of a live database, done mostly inside SQLite (as check-checkpoints-sql.ts does for
 * checkpoints): SQLite builds, for every evaluation row, the evaluation.create payload text the row calls for
 * (check-evaluations.ts's fast path, the metrics digest computed by the same JavaScript function registered as an SQL
 * function) and returns only the rows that differ, whose actor differs from the row's author, or that have no event,
 * plus the events that have no row. Those, and only those, go through checkEvaluations (JavaScript), which names what
 * differs; so neither the 124k evaluation rows of a million-event ledger nor their events are materialised in
 * JavaScript. With the native extension, one pass from the events' side first recognises a clean ledger
 * (EVENTS_SIDE), which then needs none of the other reads. The result (problems, their order, facts checked,
 * notCovered) is the one checkEvaluations gives on all rows and events (tested: content-tamper.test.ts compares both
 * on every tampered copy).
 *
 * Invariants:
 * - The SQL comparison can only send a row to JavaScript, never pass one JavaScript would fail: integers are compared
 *   only when stored as integers within ±(2^53 − 1) (printed alike by SQLite and JavaScript), strings only when
 *   stored as text that needs no JSON escaping (json_quote adds nothing but the quotes, so JSON.stringify prints the
 *   same), anything else yields NULL text and goes to JavaScript.
 * - It applies only when every evaluation.create event up to uptoSeq is about entity type "evaluation", names its
 *   row by the canonical text of a safe integer, and no row is named twice; otherwise (never in a ledger the app
 *   wrote) the whole check runs in JavaScript on all rows and events, as before.
 */
import type Database from "better-sqlite3";
import { loadAuditNative } from "../native-range";
import type { ContentChecker, EventRef } from "./checker";
import { checkEvaluations } from "./check-evaluations";
import type { EventSource } from "./ledger-events";
import { evaluationResultTextSha256 } from "./records";
import {
  checkpointRow,
  CHECKPOINT_COLUMNS,
  EVALUATION_COLUMNS,
  evaluationRow,
  type EvaluationRow,
  type Tables,
  withEvaluations,
} from "./tables";
import { liveReads, type SqlRead, type SqlReads } from "./sql-reads";
import { int, intOrNull, SAFE_INTEGER, str } from "./sql-json";

const ACTION = "evaluation.create";
const SAFE = SAFE_INTEGER;
const SHA_FUNCTION = "runledger_evaluation_result_sha256";
/** The same digest in C (native/rl_audit.c, equal or NULL: tests/verify-native.test.ts), when the extension loads. */
const NATIVE_SHA = "rl_member_inserted_sha256(r.metrics_json, 'confusion', r.confusion_json)";

/**
 * check-evaluations.ts's fast-path text, built in SQL over evaluations r and checkpoints ck (NULL when it cannot be);
 * `sha` is the SQL expression of the metrics digest.
 */
const expectedPayload = (sha: string) =>
  [
    `'{"checkpointId":' || ${int("r.checkpoint_id")}`,
    `',"checkpointSha256":' || ${str("ck.sha256")}`,
    `',"createdAt":' || ${str("r.created_at")}`,
    `',"dataSha256":' || ${str("r.data_sha256")}`,
    `',"metricsSha256":"' || ${sha} || '"'`,
    `',"partition":' || ${str("r.partition")}`,
    `',"runId":' || ${int("r.run_id")}`,
    `',"source":' || ${str("r.source")}`,
    `',"splitId":' || ${intOrNull("r.split_id")} || '}'`,
  ].join(" || ");

/**
 * The same text built by the native extension in one call (rl_json_text: each value printed as the JavaScript
 * template prints it, or the whole text uncertain, a BLOB; native-json-text.test.ts); NULL without the row's
 * checkpoint, as the fast path needs it.
 */
const NATIVE_PAYLOAD = `CASE WHEN ck.id IS NOT NULL THEN rl_json_text('#checkpointId', r.checkpoint_id, 'checkpointSha256', ck.sha256,
    'createdAt', r.created_at, 'dataSha256', r.data_sha256, 'metricsSha256', ifnull(${NATIVE_SHA}, x''), 'partition', r.partition,
    '#runId', r.run_id, 'source', r.source, '#splitId', r.split_id) END`;

/** The creating event of row r (at most one, by the precondition), through the index audit_events_entity. */
const EVENT_OF_ROW = `audit_events ev ON ev.entity_type = 'evaluation' AND ev.entity_id = CAST(r.id AS TEXT) AND +ev.action = '${ACTION}' AND ev.seq <= @upto`;

/** The actor agrees with the author (compareActor passes), or the event names no user (nothing compared). */
const ACTOR_AGREES = `(ev.actor_id IS NULL OR (typeof(ev.actor_id) = 'integer' AND typeof(r.created_by) = 'integer' AND ev.actor_id = r.created_by))`;

/** The facts checkEvaluations counts for a row that passes its fast path: 9 fields + the event, + its actor when it names one. */
const FAST_FACTS = 10;

function registerShaFunction(sqlite: Database.Database): void {
  sqlite.function(SHA_FUNCTION, { deterministic: true }, (metrics: unknown, confusion: unknown) => {
    if (typeof metrics !== "string" || (confusion !== null && typeof confusion !== "string")) return null;
    try {
      return evaluationResultTextSha256(metrics, confusion);
    } catch {
      return null;
    }
  });
}

const PLAIN_EVENTS = `SELECT count(*), count(DISTINCT entity_id),
    ifnull(sum(entity_type IS NOT 'evaluation' OR typeof(entity_id) <> 'text' OR CAST(entity_id AS INTEGER) NOT BETWEEN -${SAFE} AND ${SAFE}
      OR entity_id <> CAST(CAST(entity_id AS INTEGER) AS TEXT)), 0)
  FROM audit_events WHERE action = '${ACTION}' AND seq <= ?`;

/** True when every evaluation.create event names its row plainly (see the invariants); false: check in JavaScript. */
function plainEvents(reads: SqlReads, uptoSeq: number): { plain: boolean; events: number } {
  const [events, distinct, odd] = reads.all(PLAIN_EVENTS, uptoSeq)[0] as [number, number, number];
  return { plain: odd === 0 && distinct === events, events };
}

/**
 * Rows without their event, or whose event differs from the text the row calls for, or whose actor differs;
 * `payload`: the SQL of that text.
 */
const differingRows = (payload: string) =>
  `SELECT ${EVALUATION_COLUMNS.split(", ")
    .map((col) => `r.${col}`)
    .join(", ")}, ev.seq, ev.actor_id, ev.entity_id, ev.payload
   FROM evaluations r LEFT JOIN ${EVENT_OF_ROW} LEFT JOIN checkpoints ck ON ck.id = r.checkpoint_id
   WHERE ev.seq IS NULL OR ev.payload IS NOT (${payload}) OR NOT ${ACTOR_AGREES}
   ORDER BY r.id`;

/**
 * Every (row, event) pair: how many, and how many name an actor (compareActor counts a fact for those). CROSS JOIN
 * keeps the rows as the outer loop (each event found through the entity index; the other order scans the rows per event).
 */
const PAIRS = `SELECT count(*), ifnull(sum(ev.actor_id IS NOT NULL), 0) FROM evaluations r CROSS JOIN ${EVENT_OF_ROW}`;

/**
 * With the native extension, the clean ledger's answer from the events' side first, in one pass (the action index,
 * each event's row by its primary key): PLAIN_EVENTS, differingRows and PAIRS cost 0.62-0.66 s for the
 * million-event ledger's 124k evaluations (two of them find each row's event through the entity index, and
 * PLAIN_EVENTS sorts the entity ids), this 0.33-0.36 s. It counts the events, those that name a row as
 * EVENT_OF_ROW pairs them (entity type, the canonical text of a safe integer id), the distinct rows they name,
 * those naming an actor, and the pairs whose text or actor differs; and the rows.
 *
 * When there are as many events as rows, every event names a row and no two the same one, each row has exactly one
 * event, so the events are plain (plainEvents), and when no pair differs differingRows returns no row and PAIRS
 * counts every event: what checkEvaluationsInSql then counts without reading them. Anything else reads them.
 */
const EVENTS_SIDE = `SELECT count(*), count(r.id), rl_distinct_ids(r.id), ifnull(sum(r.id IS NOT NULL AND ev.actor_id IS NOT NULL), 0),
    ifnull(sum(r.id IS NOT NULL AND (ev.payload IS NOT (${NATIVE_PAYLOAD}) OR NOT ${ACTOR_AGREES})), 0), (SELECT count(*) FROM evaluations)
  FROM audit_events ev LEFT JOIN evaluations r ON r.id = CAST(ev.entity_id AS INTEGER) AND ev.entity_type = 'evaluation'
    AND ev.entity_id = CAST(r.id AS TEXT) AND r.id BETWEEN -${SAFE} AND ${SAFE}
  LEFT JOIN checkpoints ck ON ck.id = r.checkpoint_id
  WHERE ev.action = '${ACTION}' AND ev.seq <= @upto`;

type EventsSideCounts = [events: number, paired: number, distinctRows: number, withActor: number, differing: number, rows: number];

/** The pairs a clean ledger has (EVENTS_SIDE shows it), and how many of their events name an actor; else null. */
function cleanFromEventsSide(reads: SqlReads, uptoSeq: number): { pairs: number; withActor: number } | null {
  const [events, paired, distinctRows, withActor, differing, rows] = reads.all(EVENTS_SIDE, { upto: uptoSeq })[0] as EventsSideCounts;
  return events === rows && paired === events && distinctRows === events && differing === 0 ? { pairs: events, withActor } : null;
}

/**
 * The heavy read of checkEvaluationsInSql the content worker makes first (sql-reads.ts): the events' side, which
 * decides a clean ledger (where it does not, the main thread makes the other reads itself: only a ledger that
 * fails); none without the native extension (the digest is then a JavaScript function of this connection).
 */
export const evaluationSqlReads = (sqlite: Database.Database, uptoSeq: number): SqlRead[] =>
  loadAuditNative(sqlite) ? [{ sql: EVENTS_SIDE, params: [{ upto: uptoSeq }] }] : [];

/** Events of `action` replaced by `list` (in seq order); every other read goes to `events`. */
function withEvents(events: EventSource, action: string, list: EventRef[]): EventSource {
  return {
    byAction: (a) => (a === action ? list : events.byAction(a)),
    laterEntityIds: (a) => events.laterEntityIds(a),
  };
}

/** Loads into t.checkpoints the checkpoints these evaluations name (the JavaScript path compares their sha256). */
function loadCheckpointsOf(sqlite: Database.Database, t: Tables, rows: Iterable<EvaluationRow>): void {
  const one = sqlite.prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints WHERE id = ?`).raw(true);
  for (const e of rows) {
    if (t.checkpoints.has(e.checkpointId)) continue;
    const raw = one.get(e.checkpointId) as unknown[] | undefined;
    if (raw) t.checkpoints.set(e.checkpointId, checkpointRow(raw));
  }
}

/**
 * checkEvaluations on a live database, inside SQLite where it can. `t.evaluations` may hold only some rows (those
 * other checks need); this reads the rest itself.
 */
export function checkEvaluationsInSql(
  c: ContentChecker,
  sqlite: Database.Database,
  events: EventSource,
  t: Tables,
  uptoSeq: number,
  reads: SqlReads = liveReads(sqlite),
): void {
  const native = loadAuditNative(sqlite);
  const clean = native ? cleanFromEventsSide(reads, uptoSeq) : null;
  if (clean) {
    // Every pair passed in SQL (see EVENTS_SIDE): what checkEvaluations counts for each; no row or event left for it.
    c.checked += clean.pairs * FAST_FACTS + clean.withActor;
    checkEvaluations(c, withEvents(events, ACTION, []), withEvaluations(t, new Map()));
    return;
  }
  const { plain, events: eventCount } = plainEvents(reads, uptoSeq);
  if (!plain) {
    // Every row and event in JavaScript, rows in table order (as loadTables reads them).
    const all = new Map<number, EvaluationRow>();
    for (const raw of sqlite.prepare(`SELECT ${EVALUATION_COLUMNS} FROM evaluations`).raw(true).iterate() as IterableIterator<unknown[]>) {
      const row = evaluationRow(raw);
      all.set(row.id, row);
    }
    loadCheckpointsOf(sqlite, t, all.values());
    checkEvaluations(c, events, withEvaluations(t, all));
    return;
  }
  // The text and digest in C when the extension loads (a JavaScript call per row costs ~16 µs: 2 s for a million-event ledger).
  const payload = native
    ? NATIVE_PAYLOAD
    : (registerShaFunction(sqlite), expectedPayload(`${SHA_FUNCTION}(r.metrics_json, r.confusion_json)`));
  const returned = reads.all(differingRows(payload), { upto: uptoSeq });
  const [pairs, withActor] = reads.all(PAIRS, { upto: uptoSeq })[0] as [number, number];
  const ncol = EVALUATION_COLUMNS.split(", ").length;
  const rows = new Map<number, EvaluationRow>(); // in table (id) order, as returned
  const slow: EventRef[] = [];
  let slowPairs = 0,
    slowWithActor = 0;
  for (const raw of returned) {
    const row = evaluationRow(raw);
    rows.set(row.id, row);
    const [seq, actorId, entityId, payload] = raw.slice(ncol) as [number | null, number | null, string, string];
    if (seq === null) continue; // no event: an orphan, judged by checkEvaluations
    slowPairs++;
    if (actorId !== null) slowWithActor++;
    slow.push({ seq, action: ACTION, actorId, entityId, payload });
  }
  // Events without a row (deleted rows): found from the event side.
  if (eventCount > pairs) {
    const rowless = sqlite
      .prepare(
        `SELECT ev.seq, ev.actor_id, ev.entity_id, ev.payload FROM audit_events ev LEFT JOIN evaluations r ON r.id = CAST(ev.entity_id AS INTEGER)
         WHERE ev.action = '${ACTION}' AND ev.seq <= ? AND r.id IS NULL`,
      )
      .raw(true)
      .all(uptoSeq) as [number, number | null, string, string][];
    for (const [seq, actorId, entityId, payload] of rowless) slow.push({ seq, action: ACTION, actorId, entityId, payload });
  }
  slow.sort((a, b) => a.seq - b.seq);
  // The pairs that passed in SQL: what checkEvaluations counts for each (its fast path passes them: same text).
  c.checked += (pairs - slowPairs) * FAST_FACTS + (withActor - slowWithActor);
  loadCheckpointsOf(sqlite, t, rows.values());
  checkEvaluations(c, withEvents(events, ACTION, slow), withEvaluations(t, rows));
}
