/**
 * Content check of what the tracking API (server/mlflow/, server/auth/tokens.ts) keeps outside the run tables:
 * - api_tokens: each row against its token.create (owner, name, prefix, time) and revoked_at against token.revoke;
 * - experiment_tags and run_tag_values: the key → value-sha256 map the experiment.setTag events (resp. the run.log
 *   tags and run.deleteTag events, in seq order) leave, against the rows;
 * - experiments.deleted_at and runs.deleted_at: the latest experiment.delete / experiment.restore (run.delete /
 *   run.restore) event against the column;
 * - run_inputs: each row named by a run.logInputs event of its run, with the sha256 of its whole record;
 * - run_artifacts: each row named by a run.log event of its run (path, sha256, size, time), and its file in the
 *   store hashing to that sha256 (a replaced or missing file is reported).
 * Live database only (the tables are read here). Invariants: read only; an entity with such an event after the
 * verified range (uptoSeq) is not judged (its row may show the later state).
 */
import type Database from "better-sqlite3";
import { sha256Hex } from "@/contracts/canonical";
import { runInputRecordSha256, type RunInputRecordRow } from "./records";
import { type ContentChecker, type EventRef, parsePayload } from "./checker";
import type { EventSource } from "./ledger-events";
import type { ArtifactHasher } from "./artifact-files";
import { checkArtifact } from "./check-checkpoints";

type Payload = Record<string, unknown>;

function parsed(c: ContentChecker, entityType: string, evs: readonly EventRef[]): { ev: EventRef; p: Payload }[] {
  const out: { ev: EventRef; p: Payload }[] = [];
  for (const ev of evs) {
    const p = parsePayload(c, entityType, ev.entityId, ev);
    if (p) out.push({ ev, p });
  }
  return out;
}

function checkTokens(c: ContentChecker, events: EventSource, sqlite: Database.Database): void {
  const rows = sqlite.prepare("SELECT id, user_id, name, prefix, created_at, revoked_at FROM api_tokens").raw(true).all() as [
    number,
    number,
    string,
    string,
    string,
    string | null,
  ][];
  const created = new Map(parsed(c, "token", events.byAction("token.create")).map((x) => [Number(x.ev.entityId), x]));
  const revoked = new Map(parsed(c, "token", events.byAction("token.revoke")).map((x) => [Number(x.ev.entityId), x]));
  const later = new Set([...events.laterEntityIds("token.create"), ...events.laterEntityIds("token.revoke")]);
  const ids = new Set<number>();
  for (const [id, userId, name, prefix, createdAt, revokedAt] of rows) {
    ids.add(id);
    if (later.has(String(id))) continue;
    const ev = created.get(id);
    if (!ev) {
      c.rowWithoutEvent("token", id, "token.create");
      continue;
    }
    c.compareFields("token", id, ev.ev, ev.p, [
      ["userId", userId, "token owner"],
      ["name", name, "token name"],
      ["prefix", prefix, "token prefix"],
      ["createdAt", createdAt, "token creation time"],
    ]);
    const r = revoked.get(id);
    c.compare("token", id, "revoked at", r ? r.p.revokedAt : null, revokedAt, r?.ev.seq ?? ev.ev.seq);
  }
  for (const [id, { ev }] of created) if (!ids.has(id)) c.eventWithoutRow("token", id, ev);
}

/** Folds key/value-sha256 events per entity; `apply` returns [key, valueSha256 | null (deleted)] pairs of one event. */
function foldTags(
  c: ContentChecker,
  entityType: string,
  evs: readonly EventRef[],
  apply: (ev: EventRef, p: Payload) => [string, string | null][],
): Map<string, Map<string, { sha: string; seq: number }>> {
  const out = new Map<string, Map<string, { sha: string; seq: number }>>();
  for (const { ev, p } of parsed(
    c,
    entityType,
    [...evs].sort((a, b) => a.seq - b.seq),
  )) {
    let m = out.get(ev.entityId);
    if (!m) out.set(ev.entityId, (m = new Map()));
    for (const [key, sha] of apply(ev, p)) {
      if (sha === null) m.delete(key);
      else m.set(key, { sha, seq: ev.seq });
    }
  }
  return out;
}

function compareTags(
  c: ContentChecker,
  entityType: string,
  recorded: Map<string, Map<string, { sha: string; seq: number }>>,
  rows: [number, string, string][],
  later: Set<string>,
): void {
  const found = new Map<string, Map<string, string>>();
  for (const [id, key, value] of rows) {
    let m = found.get(String(id));
    if (!m) found.set(String(id), (m = new Map()));
    m.set(key, value);
  }
  for (const id of new Set([...recorded.keys(), ...found.keys()])) {
    if (later.has(id)) continue;
    const r = recorded.get(id) ?? new Map<string, { sha: string; seq: number }>();
    const f = found.get(id) ?? new Map<string, string>();
    for (const [key, { sha, seq }] of r)
      c.compare(entityType, id, `tag ${key} (sha256 of its value)`, sha, f.has(key) ? sha256Hex(f.get(key)!) : null, seq);
    for (const key of f.keys())
      if (!r.has(key))
        c.problem({
          entityType,
          entityId: id,
          field: `tag ${key}`,
          recorded: null,
          found: "row exists",
          seq: null,
          message: `${entityType} ${id} has the tag ${key}, which no ledger event set (row written outside the app?)`,
        });
  }
}

/**
 * `table`'s rows (id, deleted_at) against the last delete or restore event of each. With no such event, only the
 * rows that show a deletion can differ, and only those are read (a million-event ledger's 124k runs are not).
 */
function checkLifecycle(
  c: ContentChecker,
  events: EventSource,
  entityType: "experiment" | "run",
  sqlite: Database.Database,
  table: string,
): void {
  const evs = parsed(c, entityType, [...events.byAction(`${entityType}.delete`), ...events.byAction(`${entityType}.restore`)]).sort(
    (a, b) => a.ev.seq - b.ev.seq,
  );
  const last = new Map<string, { deletedAt: unknown; seq: number }>();
  for (const { ev, p } of evs) last.set(ev.entityId, { deletedAt: ev.action.endsWith(".delete") ? p.deletedAt : null, seq: ev.seq });
  const later = new Set([...events.laterEntityIds(`${entityType}.delete`), ...events.laterEntityIds(`${entityType}.restore`)]);
  // (In table order either way: ORDER BY the INTEGER PRIMARY KEY is the order of a plain scan.)
  const rows = sqlite
    .prepare(`SELECT id, deleted_at FROM ${table}${last.size === 0 ? " WHERE deleted_at IS NOT NULL" : ""} ORDER BY id`)
    .raw(true)
    .all() as [number, string | null][];
  for (const [id, deletedAt] of rows) {
    if (later.has(String(id))) continue;
    const l = last.get(String(id));
    if (!l && deletedAt === null) continue;
    c.compare(entityType, id, "deleted at (lifecycle)", l ? l.deletedAt : null, deletedAt, l?.seq ?? null);
  }
}

function checkInputs(c: ContentChecker, events: EventSource, sqlite: Database.Database): void {
  const rows = new Map<number, RunInputRecordRow>();
  for (const r of sqlite
    .prepare(
      "SELECT id, run_id, name, digest, source_type, source, schema_text, profile, context, tags_json, created_by, created_at FROM run_inputs",
    )
    .raw(true)
    .iterate() as IterableIterator<
    [number, number, string, string, string, string, string | null, string | null, string | null, string, number, string]
  >)
    rows.set(r[0], {
      id: r[0],
      runId: r[1],
      name: r[2],
      digest: r[3],
      sourceType: r[4],
      source: r[5],
      schemaText: r[6],
      profile: r[7],
      context: r[8],
      tagsJson: r[9],
      createdBy: r[10],
      createdAt: r[11],
    });
  const named = new Set<number>();
  for (const { ev, p } of parsed(c, "run", events.byAction("run.logInputs"))) {
    const refs = Array.isArray(p.inputs) ? (p.inputs as { id?: unknown; sha256?: unknown }[]) : [];
    for (const ref of refs) {
      if (typeof ref.id !== "number") continue;
      const row = rows.get(ref.id);
      if (!row) {
        c.eventWithoutRow("run input", ref.id, ev);
        continue;
      }
      named.add(row.id);
      c.compare("run input", row.id, "run", Number(ev.entityId), row.runId, ev.seq);
      c.compare(
        "run input",
        row.id,
        "record (dataset name, digest, source, schema, profile, tags, author, time)",
        ref.sha256,
        runInputRecordSha256(row),
        ev.seq,
      );
    }
  }
  const later = events.laterEntityIds("run.logInputs");
  for (const row of rows.values())
    if (!named.has(row.id) && !later.has(String(row.runId))) c.rowWithoutEvent("run input", row.id, "run.logInputs");
}

function checkArtifacts(c: ContentChecker, events: EventSource, sqlite: Database.Database, files: ArtifactHasher | null): void {
  const rows = new Map(
    (
      sqlite.prepare("SELECT id, run_id, path, sha256, bytes, created_at FROM run_artifacts").raw(true).all() as [
        number,
        number,
        string,
        string,
        number,
        string,
      ][]
    ).map(([id, runId, path, sha256, bytes, createdAt]) => [id, { id, runId, path, sha256, bytes, createdAt }]),
  );
  const named = new Set<number>();
  for (const { ev, p } of parsed(c, "run", events.byAction("run.log"))) {
    if (!Array.isArray(p.artifacts)) continue;
    for (const ref of p.artifacts as Payload[]) {
      if (typeof ref.id !== "number") continue;
      const row = rows.get(ref.id);
      if (!row) {
        c.eventWithoutRow("run artifact", ref.id, ev);
        continue;
      }
      named.add(row.id);
      c.compare("run artifact", row.id, "run", Number(ev.entityId), row.runId, ev.seq);
      c.compareFields("run artifact", row.id, ev, ref, [
        ["path", row.path, "artifact path"],
        ["sha256", row.sha256, "artifact sha256"],
        ["bytes", row.bytes, "artifact size"],
        ["createdAt", row.createdAt, "artifact upload time"],
      ]);
      checkArtifact(c, files, "run artifact", row.id, "artifact file", ref.sha256, ref.bytes, ev.seq);
    }
  }
  const later = events.laterEntityIds("run.log");
  for (const row of rows.values())
    if (!named.has(row.id) && !later.has(String(row.runId))) c.rowWithoutEvent("run artifact", row.id, "run.log");
}

export function checkApiRecords(
  c: ContentChecker,
  events: EventSource,
  sqlite: Database.Database,
  files: ArtifactHasher | null = null,
): void {
  checkTokens(c, events, sqlite);
  checkInputs(c, events, sqlite);
  checkArtifacts(c, events, sqlite, files);
  const expTags = foldTags(c, "experiment", events.byAction("experiment.setTag"), (_ev, p) =>
    typeof p.key === "string" && typeof p.valueSha256 === "string" ? [[p.key, p.valueSha256]] : [],
  );
  compareTags(
    c,
    "experiment",
    expTags,
    sqlite.prepare("SELECT experiment_id, key, value FROM experiment_tags").raw(true).all() as [number, string, string][],
    events.laterEntityIds("experiment.setTag"),
  );
  const runTags = foldTags(c, "run", [...events.byAction("run.log"), ...events.byAction("run.deleteTag")], (ev, p) => {
    if (ev.action === "run.deleteTag") return typeof p.key === "string" ? [[p.key, null]] : [];
    const tags = Array.isArray(p.tags) ? (p.tags as { key?: unknown; valueSha256?: unknown }[]) : [];
    return tags
      .filter((t) => typeof t.key === "string" && typeof t.valueSha256 === "string")
      .map((t) => [t.key as string, t.valueSha256 as string]);
  });
  compareTags(
    c,
    "run",
    runTags,
    sqlite.prepare("SELECT run_id, key, value FROM run_tag_values").raw(true).all() as [number, string, string][],
    new Set([...events.laterEntityIds("run.log"), ...events.laterEntityIds("run.deleteTag")]),
  );
  checkLifecycle(c, events, "experiment", sqlite, "experiments");
  checkLifecycle(c, events, "run", sqlite, "runs");
}
