/**
 * The checkpoint check of a live database, done mostly inside SQLite: checkpoint.create is the most frequent
 * content event (one per epoch of every run), and materialising each event and row in JavaScript costs more than
 * the rest of the content check together. SQLite builds, for every event, the payload text its row calls for and
 * returns only the events that differ (or whose row is missing); those take the JavaScript path
 * (check-checkpoints.ts), which names the field that differs. A clean ledger is recognised first from the events'
 * side (eventsSide); otherwise rows without an event are found through the audit_events_entity index. Best flags
 * by reading only the rows flagged best, files by distinct sha256.
 *
 * Invariant: the SQL text comparison can only send an event to the JavaScript path (which decides), never pass one
 * JavaScript would fail: the text it builds is the canonical payload, each value only when its storage type and text
 * print alike in SQL and JavaScript (sql-json.ts: safe INTEGERs, TEXT needing no JSON escape, the metrics as stored
 * JSON text; with the native extension, rl_json_text's rules); anything else makes the text NULL (a BLOB) and goes
 * to JS.
 */
import type Database from "better-sqlite3";
import type { ContentChecker, EventRef } from "./checker";
import type { ArtifactHasher } from "./artifact-files";
import { bestCheckpointOf, checkArtifact, checkCheckpointEvents, FIELDS } from "./check-checkpoints";
import { LIFECYCLE_ACTIONS, type RunLedger } from "./check-runs";
import { changedLater } from "./creations";
import type { EventSource } from "./ledger-events";
import { checkpointRow, CHECKPOINT_COLUMNS, type Tables } from "./tables";
import { liveReads, type SqlRead, type SqlReads } from "./sql-reads";
import { int, rawText, str } from "./sql-json";
import { loadAuditNative } from "../native-range";

/** check-checkpoints.ts's payload text of row c (NULL where a value's storage type or text would not print alike: sql-json.ts). */
const EXPECTED_PAYLOAD = [
  `'{"bytes":' || ${int("c.bytes")}`,
  `',"createdAt":' || ${str("c.created_at")}`,
  `',"epoch":' || ${int("c.epoch")}`,
  `',"metrics":' || ${rawText("c.metrics_json")}`,
  `',"runId":' || ${int("c.run_id")}`,
  `',"sha256":' || ${str("c.sha256")}`,
  `',"step":' || ${int("c.step")} || '}'`,
].join(" || ");

/** The same text built by the native extension in one call (rl_json_text; native-json-text.test.ts): ~0.15 s less per million events. */
const NATIVE_PAYLOAD = `rl_json_text('#bytes', c.bytes, 'createdAt', c.created_at, '#epoch', c.epoch, '~metrics', c.metrics_json, '#runId', c.run_id,
    'sha256', c.sha256, '#step', c.step)`;

type RowSide = [...unknown[]]; // checkpoint columns (CHECKPOINT_COLUMNS), then seq, actor_id, payload

// One pass over the rows, each joined to its creating event through the entity index: SQLite returns only the rows
// without an event and the rows whose event's payload differs from the text the row calls for (`payload`: its SQL).
const differingRows = (payload: string) => `SELECT ${CHECKPOINT_COLUMNS.split(", ")
  .map((col) => `c.${col}`)
  .join(", ")}, e.seq, e.actor_id, e.payload
  FROM checkpoints c LEFT JOIN audit_events e ON e.entity_type = 'checkpoint' AND e.entity_id = CAST(c.id AS TEXT) AND +e.action = 'checkpoint.create' AND e.seq <= ?
  WHERE e.seq IS NULL OR e.payload IS NOT (${payload})`;

const payloadOn = (sqlite: Database.Database) => (loadAuditNative(sqlite) ? NATIVE_PAYLOAD : EXPECTED_PAYLOAD);
/** count(DISTINCT c.id), in a bitmap with the native extension (rl_distinct_ids: NULL, so not clean, when uncertain). */
const distinctRowsOn = (sqlite: Database.Database) => (loadAuditNative(sqlite) ? "rl_distinct_ids(c.id)" : "count(DISTINCT c.id)");
const differingRowsOn = (sqlite: Database.Database) => differingRows(payloadOn(sqlite));

/**
 * The clean ledger's answer from the events' side, in one pass (the action index, each event's row by its primary
 * key: 0.41 s for the million-event ledger's 371k checkpoints, against 0.46-0.52 s for differingRows, which finds
 * each row's event through the entity index): how many checkpoint.create events there are, how many name a row as
 * differingRows pairs them (entity type and the canonical text of its id), how many distinct rows those are, and
 * how many of those pairs differ.
 *
 * When there are as many events as rows, every event names a row and no two the same one, each row has exactly
 * one event (the only event differingRows finds for it), so when none differs differingRows returns no row and
 * every event pairs: what cleanFromEventsSide answers without reading it. Anything else reads differingRows.
 */
const eventsSide = (
  payload: string,
  distinct: string,
) => `SELECT count(*), count(c.id), ${distinct}, ifnull(sum(c.id IS NOT NULL AND e.payload IS NOT (${payload})), 0)
  FROM audit_events e LEFT JOIN checkpoints c ON c.id = CAST(e.entity_id AS INTEGER) AND e.entity_type = 'checkpoint' AND e.entity_id = CAST(c.id AS TEXT)
  WHERE e.action = 'checkpoint.create' AND e.seq <= ?`;

/** True when eventsSide shows that differingRows would return no row and every event pairs with one (see there). */
function cleanFromEventsSide(reads: SqlReads, sqlite: Database.Database, uptoSeq: number, rowCount: number): boolean {
  const [events, paired, distinctRows, differing] = reads.all(
    eventsSide(payloadOn(sqlite), distinctRowsOn(sqlite)),
    uptoSeq,
  )[0] as number[];
  return events === rowCount && paired === events && distinctRows === events && differing === 0;
}

/**
 * The heavy read of checkCheckpointsInSql the content worker makes first (sql-reads.ts): the events' side, which
 * decides a clean ledger. Where it does not, the main thread reads differingRows itself (only a ledger that fails).
 */
export const checkpointSqlReads = (sqlite: Database.Database, uptoSeq: number): SqlRead[] => [
  { sql: eventsSide(payloadOn(sqlite), distinctRowsOn(sqlite)), params: [uptoSeq] },
];

/** `reads`: where the heavy reads come from (checkpointSqlReads; default: this connection). */
export function checkCheckpointsInSql(
  c: ContentChecker,
  sqlite: Database.Database,
  events: EventSource,
  t: Tables,
  runs: RunLedger,
  files: ArtifactHasher | null,
  uptoSeq: number,
  reads: SqlReads = liveReads(sqlite),
): void {
  const rowCount = (sqlite.prepare("SELECT count(*) AS n FROM checkpoints").get() as { n: number }).n;
  const eventCount = (
    sqlite.prepare("SELECT count(*) AS n FROM audit_events WHERE action = 'checkpoint.create' AND seq <= ?").get(uptoSeq) as { n: number }
  ).n;
  // The rows without an event or whose event differs (differingRows; none when the events' side shows a clean
  // ledger). The best flags are checked at the end (checkBestFlags).
  const clean = cleanFromEventsSide(reads, sqlite, uptoSeq, rowCount);
  const returned = clean ? [] : (reads.all(differingRowsOn(sqlite), uptoSeq) as RowSide[]);
  const ncol = CHECKPOINT_COLUMNS.split(", ").length;
  const orphans: number[] = [];
  const slow: EventRef[] = [];
  const slowRows = new Map<number, ReturnType<typeof checkpointRow>>();
  for (const raw of returned) {
    const row = checkpointRow(raw);
    const [seq, actorId, payload] = raw.slice(ncol) as [number | null, number | null, string | null];
    if (seq === null) orphans.push(row.id);
    else {
      slow.push({ seq, action: "checkpoint.create", actorId, entityId: String(row.id), payload: payload! });
      slowRows.set(row.id, row);
      t.checkpoints.set(row.id, row);
    }
  }
  const pairs = rowCount - orphans.length;
  c.checked += (pairs - slow.length) * (FIELDS + 1);
  if (eventCount !== pairs) {
    // Some event has no row (deleted?) or a row has two creating events: find them from the event side.
    const eventSide = sqlite
      .prepare(
        `SELECT e.seq, e.actor_id, e.entity_id, e.payload FROM audit_events e LEFT JOIN checkpoints c ON c.id = CAST(e.entity_id AS INTEGER) WHERE e.action = 'checkpoint.create' AND e.seq <= ? AND c.id IS NULL`,
      )
      .raw(true)
      .all(uptoSeq) as [number, number | null, string, string][];
    for (const [seq, actorId, entityId, payload] of eventSide) slow.push({ seq, action: "checkpoint.create", actorId, entityId, payload });
    if (eventSide.length !== eventCount - pairs)
      c.notCovered("some checkpoints have more than one checkpoint.create event; each row was compared with one of them");
  }
  // The differing events (with their rows) take the JavaScript path, which names the field or the missing row.
  checkCheckpointEvents(c, events, slow, slowRows, true, false, files);
  if (orphans.length) {
    const later = events.laterEntityIds("checkpoint.create");
    for (const id of orphans) if (!later.has(String(id))) c.rowWithoutEvent("checkpoint", id, "checkpoint.create");
  }

  // Weights files: each distinct sha256 once (index checkpoints_sha256), named by its first checkpoint.
  if (files) {
    const first = sqlite
      .prepare(
        "SELECT id, bytes, (SELECT count(*) FROM checkpoints WHERE sha256 = @sha) FROM checkpoints WHERE sha256 = @sha ORDER BY id LIMIT 1",
      )
      .raw(true);
    const createdBy = sqlite
      .prepare(
        "SELECT seq FROM audit_events WHERE entity_type = 'checkpoint' AND entity_id = ? AND action = 'checkpoint.create' AND seq <= ?",
      )
      .pluck();
    for (const sha of sqlite.prepare("SELECT DISTINCT sha256 FROM checkpoints").pluck().iterate() as IterableIterator<string>) {
      const d = files.holds(sha) ? files.digest(sha) : null;
      if (d && d.sha256 === sha) {
        c.checked++;
        continue;
      }
      const [id, bytes, n] = first.get({ sha }) as [number, number, number];
      const seq = (createdBy.get(String(id), uptoSeq) as number | undefined) ?? null;
      checkArtifact(c, files, "checkpoint", id, n > 1 ? `weights file (shared by ${n} checkpoints)` : "weights file", sha, bytes, seq);
    }
  }

  checkBestFlags(c, sqlite, events, runs);
  c.checked += rowCount;
}

/**
 * Best flags: the rows flagged best must be the ones the run end events named, and those must be flagged. When the
 * flagged rows, as "id:run" texts in id order, are exactly the pairs the end events name (bestFlagsNamed), the
 * loops below would find nothing: only their facts are counted, and the 124k flagged rows are not handed to
 * JavaScript (the check alone ~395 -> ~200 ms on the million-event ledger). Anything else takes the loops.
 */
function checkBestFlags(c: ContentChecker, sqlite: Database.Database, events: EventSource, runs: RunLedger): void {
  const named = bestFlagsNamed(runs);
  if (flaggedAsText(sqlite) === named.text) {
    // The first loop's compare, once per flagged row of a run not changed later; the second finds every best flagged.
    for (const runId of named.runIds) if (!changedLater(events, LIFECYCLE_ACTIONS, runId)) c.checked++;
    return;
  }
  const flagged = sqlite.prepare("SELECT id, run_id FROM checkpoints WHERE is_best = 1").raw(true).all() as [id: number, runId: number][];
  const isFlagged = new Set(flagged.map(([id]) => id));
  for (const [id, runId] of flagged) {
    if (changedLater(events, LIFECYCLE_ACTIONS, runId)) continue;
    c.compare("checkpoint", id, "best flag", bestCheckpointOf(runs, runId) === id, true, runs.ends.get(runId)?.ev.seq ?? null);
  }
  const exists = sqlite.prepare("SELECT 1 FROM checkpoints WHERE id = ?").pluck();
  for (const [runId, end] of runs.ends) {
    const best = bestCheckpointOf(runs, runId);
    if (typeof best !== "number" || isFlagged.has(best) || changedLater(events, LIFECYCLE_ACTIONS, runId)) continue;
    if (exists.get(best) === undefined) continue; // the missing row is reported by its event
    c.compare("checkpoint", best, "best flag", true, false, end.ev.seq);
  }
}

/**
 * The (best checkpoint, run) pairs the run end events name, as "id:run" lines in id order, and their runs in that
 * order. Only numbers are named (bestCheckpointOf gives null for a failed run, anything for an edited payload);
 * two runs naming one checkpoint give two lines, which no table (ids are unique) can match.
 */
function bestFlagsNamed(runs: RunLedger): { text: string; runIds: number[] } {
  let bests: number[] = [];
  let runIds: number[] = [];
  let inOrder = true;
  for (const runId of runs.ends.keys()) {
    const best = bestCheckpointOf(runs, runId);
    if (typeof best !== "number") continue;
    if (bests.length > 0 && !(best >= bests[bests.length - 1]!)) inOrder = false;
    bests.push(best);
    runIds.push(runId);
  }
  // (Runs end in id order with their checkpoints, so the sort is rarely needed; a stable sort keeps ties as found.)
  if (!inOrder) {
    const order = bests.map((_, i) => i).sort((a, b) => bests[a]! - bests[b]! || a - b);
    [bests, runIds] = [order.map((i) => bests[i]!), order.map((i) => runIds[i]!)];
  }
  let text = "";
  for (let i = 0; i < bests.length; i++) text += `${i ? "\n" : ""}${bests[i]}:${runIds[i]}`;
  return { text, runIds };
}

/**
 * The rows flagged best (the loops' `is_best = 1`), as "id:run" lines in id order; null when an id or run_id is
 * not an INTEGER (a table rebuilt with other column types: its text could equal a number's while the loops, given
 * the value, would not find it equal). Equal to bestFlagsNamed's text only when each flagged row's id and run print
 * as a named pair does, every pair once: then each flagged row is its run's named best, and each named best that
 * exists is flagged. (If SQLite ever handed the rows out of id order, the texts would differ and the loops decide:
 * slower, never weaker.)
 */
function flaggedAsText(sqlite: Database.Database): string | null {
  const [notInteger, text] = sqlite
    .prepare(
      `SELECT ifnull(sum(typeof(id) <> 'integer' OR typeof(run_id) <> 'integer'), 0), ifnull(group_concat(id || ':' || run_id, char(10)), '')
       FROM (SELECT id, run_id FROM checkpoints WHERE is_best = 1 ORDER BY id)`,
    )
    .raw(true)
    .get() as [number, string];
  return notInteger === 0 ? text : null;
}
