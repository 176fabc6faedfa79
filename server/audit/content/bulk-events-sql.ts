/**
 * The bulk events' fast-path texts built inside SQLite (native extension: rl_json_text and its kin in rl_audit.c),
 * so that while a live database's log is read (ledger-events.ts) SQLite compares each run.create, run.start and
 * decision.create payload with the text its row calls for and leaves a matching payload unread: JavaScript then
 * neither reads those ~370k texts of a million-event ledger nor rebuilds and hashes the texts they are compared
 * with. The texts are the ones check-runs.ts (runCreateText, runStartText) and check-decisions.ts (noteText) build,
 * field for field in the same order; records.ts decisionRecordSha256 likewise.
 *
 * Invariants:
 * - A payload is left unread only when it is equal, byte for byte, to a text every value of which SQLite printed as
 *   JavaScript prints the value better-sqlite3 reads (rl_json_text's rules: safe INTEGERs, TEXT of valid UTF-8
 *   quoted as JSON.stringify quotes it, NULL); anything else makes the text a zero-length BLOB, equal to no
 *   payload, and the event is read and judged by bulk-events.ts in JavaScript as before. So SQLite can only send an
 *   event to JavaScript, never pass one JavaScript would not.
 * - An event's row is found only when its entity id is the canonical text of the row's id (JavaScript's Number()
 *   would find it from other spellings too; those go to JavaScript).
 * - What the text cannot know is left to bulk-events.ts: whether the event is the first of its entity, and a run's
 *   name at creation when run.annotate renamed it (then it reads the payload).
 */

/** records.ts decisionRecordSha256 of decisions row `d`. */
const decisionRecordSha256 = (d: string) =>
  `rl_json_sha256('#authorId', ${d}.author_id, '#correctsDecisionId', ${d}.corrects_decision_id, 'createdAt', ${d}.created_at, '#id', ${d}.id,` +
  ` 'kind', ${d}.kind, 'newValueJson', ${d}.new_value_json, 'oldValueJson', ${d}.old_value_json, 'path', ${d}.path, 'rationale', ${d}.rationale, '#runId', ${d}.run_id)`;

/** check-runs.ts runStartText of runs row r. */
const RUN_START_TEXT =
  `rl_json_text('backend', r.backend, 'backendReason', r.backend_reason, '#datasetVersionId', r.dataset_version_id, '~environment', r.environment_json,` +
  ` 'memorySha256', rl_text_sha256(r.memory_json), '#paramCount', r.param_count, '#splitId', r.split_id, 'startedAt', r.started_at)`;

/**
 * The decisions created with run r (check-runs.ts decisionsCreatedWithRuns: kind initial or change, in id order) as
 * runCreateText lists them; rl_json_array takes them only in increasing id order (the decisions_run index gives it).
 */
const CREATED_DECISIONS = `(SELECT rl_json_array(rl_json_text('#id', d.id, 'kind', d.kind, 'path', d.path, 'sha256', ${decisionRecordSha256("d")}), d.id)
    FROM decisions d WHERE d.run_id = r.id AND d.kind IN ('initial', 'change'))`;

/** check-runs.ts runCreateMatches: the stored config hashes to its column, and runCreateText with the row's name. */
const RUN_CREATE_TEXT = `CASE WHEN rl_text_sha256(r.config_json) = r.config_sha256 THEN rl_json_text('configSha256', r.config_sha256, 'createdAt', r.created_at,
    '~decisions', ${CREATED_DECISIONS}, '#experimentId', r.experiment_id, 'name', r.name, 'origin', r.origin,
    '#parentCheckpointId', r.parent_checkpoint_id, '#parentRunId', r.parent_run_id) END`;

/** check-decisions.ts noteText of decisions row n (also check-decisions-sql.ts's test). */
export const NOTE_TEXT =
  `rl_json_text('#correctsDecisionId', n.corrects_decision_id, 'createdAt', n.created_at, 'kind', n.kind, 'path', n.path, 'rationale', n.rationale,` +
  ` '#runId', n.run_id, 'sha256', ${decisionRecordSha256("n")})`;

/** The actions whose events SQLite compares with their rows. */
export const ROW_MATCHED_ACTIONS = ["run.create", "run.start", "decision.create"] as const;

/** The rows of audit_events e's events (at most one each: joined on their primary keys). */
export const ROW_JOINS = `LEFT JOIN runs r ON e.action IN ('run.create', 'run.start') AND r.id = CAST(e.entity_id AS INTEGER) AND e.entity_id = CAST(r.id AS TEXT)
  LEFT JOIN decisions n ON e.action = 'decision.create' AND n.id = CAST(e.entity_id AS INTEGER) AND e.entity_id = CAST(n.id AS TEXT)`;

/** e's payload, or NULL when it is exactly the text its row calls for (tell a stored NULL apart by `e.payload IS NULL`). */
export const PAYLOAD_UNLESS_ROW_TEXT = `CASE WHEN e.payload = (CASE e.action WHEN 'run.start' THEN ${RUN_START_TEXT} WHEN 'run.create' THEN ${RUN_CREATE_TEXT}
    WHEN 'decision.create' THEN ${NOTE_TEXT} END) THEN NULL ELSE e.payload END`;
