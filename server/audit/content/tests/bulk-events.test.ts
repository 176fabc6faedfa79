/**
 * The bulk events matched to their rows while the log is read (bulk-events.ts: kept without their text) give the
 * check exactly the result it gives on the full events: problems (messages, order), facts counted, notCovered and
 * the report's coverage, on a clean copy of a real app database and on copies tampered where those events and rows
 * meet (run, start, end, decision note and initial decision rows edited or deleted, event payloads rewritten, a
 * second run.create, annotations).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkContent } from "../verify-content";
import { PAYLOAD_UNLESS_ROW_TEXT, ROW_JOINS, ROW_MATCHED_ACTIONS } from "../bulk-events-sql";
import { loadAuditNative } from "../../native-range";
import { loadTables } from "../tables";
import { nativeOff } from "../../tests/native-test-db";
import { buildContentFixture, snapshot, type ContentFixture, type Snapshot } from "./content-fixture";

let fx: ContentFixture;
beforeAll(async () => {
  fx = await buildContentFixture();
}, 180_000);
afterAll(() => fx?.app.close());

/**
 * All three ways (matched by SQLite and JavaScript, by JavaScript alone, not matched), with and without coverage;
 * returns whether the tampered copy failed (so each case is seen to bite).
 */
function sameBothWays(tamper: (s: Snapshot) => void): boolean {
  const s = snapshot(fx.app);
  try {
    tamper(s);
    const opts = { artifactsDir: s.artifactsDir, uptoSeq: s.maxSeq };
    const full = checkContent(s.db, { ...opts, matchWhileReading: false });
    const fullCov = checkContent(s.db, { ...opts, coverage: true, matchWhileReading: false });
    for (const rowsInSql of [true, false]) {
      const matched = checkContent(s.db, { ...opts, rowsInSql });
      expect(matched.level).toEqual(full.level);
      const matchedCov = checkContent(s.db, { ...opts, coverage: true, rowsInSql });
      expect(matchedCov.level).toEqual(fullCov.level);
      expect([...matchedCov.coverage]).toEqual([...fullCov.coverage]);
    }
    return !full.level.ok;
  } finally {
    s.close();
  }
}

/** How many run.create, run.start and decision.create events SQLite finds equal to their rows' texts (left unread). */
function unreadInSql(s: Snapshot): { unread: number; events: number } {
  expect(loadAuditNative(s.db)).toBe(true);
  const actions = ROW_MATCHED_ACTIONS.map((a) => `'${a}'`).join(", ");
  return s.db
    .prepare(
      `SELECT count(*) AS events, ifnull(sum(payload IS NULL), 0) AS unread
       FROM (SELECT ${PAYLOAD_UNLESS_ROW_TEXT} AS payload FROM audit_events e ${ROW_JOINS} WHERE e.action IN (${actions}))`,
    )
    .get() as { unread: number; events: number };
}

/** Rewrites the payload of the events of `action` about `entityId` (the ledger's own trigger dropped on the copy). */
function rewritePayload(s: Snapshot, action: string, entityId: number, sql: string): void {
  s.db.exec("DROP TRIGGER IF EXISTS audit_events_no_update");
  const n = s.db
    .prepare(`UPDATE audit_events SET payload = ${sql} WHERE action = ? AND entity_id = ?`)
    .run(action, String(entityId)).changes;
  expect(n).toBeGreaterThan(0);
}

describe("bulk events matched while read: the same result as on the full events", () => {
  it("a clean copy", () => {
    expect(sameBothWays(() => {})).toBe(false);
  });

  it.skipIf(nativeOff)("SQLite matches every run.create, run.start and decision.create the app wrote (its fast path is live)", () => {
    const s = snapshot(fx.app);
    try {
      const { unread, events } = unreadInSql(s);
      expect(events).toBeGreaterThanOrEqual(3); // the run's run.create and run.start, the reviewer's note
      expect(unread).toBe(events);
    } finally {
      s.close();
    }
  });

  it("values SQLite must print as JavaScript does, or leave to it: escapes, non-ASCII text, numbers stored as text or REAL, BLOBs", () => {
    // Each is a real edit of a row (so it fails), and the SQL texts must judge it as JavaScript does.
    const edits: [sql: string, value: unknown][] = [
      ["UPDATE runs SET name = @v WHERE id = @run", 'tab\t "quoted" \\ é😀 \u2028 \u0001'],
      ["UPDATE runs SET backend = CAST(@v AS TEXT) WHERE id = @run", Buffer.from([0xff])],
      ["UPDATE runs SET param_count = @v WHERE id = @run", 51.5],
      ["UPDATE runs SET experiment_id = @v WHERE id = @run", "x"],
      ["UPDATE runs SET environment_json = @v WHERE id = @run", Buffer.from("{}")],
      ["UPDATE runs SET memory_json = @v WHERE id = @run", null],
      ["UPDATE runs SET created_at = @v WHERE id = @run", 5],
      ["UPDATE decisions SET rationale = @v WHERE id = @note", 'line\nbreak "q" \\ é'],
      ["UPDATE decisions SET new_value_json = CAST(new_value_json AS BLOB) WHERE run_id = @run AND kind = 'initial' AND @v", 1],
      ["UPDATE decisions SET author_id = @v WHERE id = @note", 1.5],
    ];
    for (const [sql, v] of edits) {
      const failed = sameBothWays((s) => {
        s.db.exec("DROP TRIGGER IF EXISTS decisions_no_update");
        expect(s.db.prepare(sql).run({ run: fx.runId, note: fx.noteId, v }).changes).toBeGreaterThan(0);
      });
      expect(failed, sql).toBe(true);
    }
  });

  it("rows with lazy texts read the same values as rows read whole (lazy-texts.ts)", () => {
    const s = snapshot(fx.app);
    try {
      s.db.prepare("UPDATE runs SET environment_json = NULL WHERE id = ?").run(fx.runId); // a NULL text too
      const eager = loadTables(s.db, { checkpoints: "all" });
      const lazy = loadTables(s.db, { checkpoints: "all", texts: "lazy" });
      const plain = (row: object) => {
        const out: Record<string, unknown> = {};
        for (const key of Object.keys(eager.runs.values().next().value!)) out[key] = (row as Record<string, unknown>)[key];
        return out;
      };
      expect(lazy.runs.size).toBe(eager.runs.size);
      for (const [id, row] of eager.runs) expect(plain(lazy.runs.get(id)!)).toEqual(plain(row));
      expect(lazy.runs.get(fx.runId)!.configJson).toContain('"training"');
      expect(lazy.decisions.size).toBe(eager.decisions.size);
      for (const [id, row] of eager.decisions)
        expect(Object.fromEntries(Object.keys(row).map((k) => [k, lazy.decisions.get(id)![k as keyof typeof row]]))).toEqual(row);
    } finally {
      s.close();
    }
  });

  it.skipIf(nativeOff)("a rename (run.annotate): the run.create text names the run as created, which SQLite leaves to JavaScript", () => {
    // The row keeps the name the run.create recorded, so SQLite finds that text; a rename event whose first "from"
    // differs makes JavaScript expect another name at creation.
    const failed = sameBothWays((s) => {
      const name = s.db.prepare("SELECT name FROM runs WHERE id = ?").pluck().get(fx.runId) as string;
      s.db
        .prepare(
          `INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash)
           SELECT max(seq) + 1, max(at), actor_id, actor_name, role, 'run.annotate', 'run', ?, ?, leaf_hash, chain_hash FROM audit_events`,
        )
        .run(String(fx.runId), JSON.stringify({ field: "name", from: "another name", to: name }));
      s.maxSeq += 1;
      expect(unreadInSql(s).unread).toBe(unreadInSql(s).events);
    });
    expect(failed).toBe(true);
  });

  it("run, start and end columns edited", () => {
    const failed = sameBothWays((s) => {
      s.db
        .prepare("UPDATE runs SET name = 'renamed', backend = 'gpu', final_weights_sha256 = 'ab', status = 'failed' WHERE id = ?")
        .run(fx.runId);
    });
    expect(failed).toBe(true);
  });

  it("config and its hash column edited", () => {
    expect(sameBothWays((s) => s.db.prepare("UPDATE runs SET config_json = '{\"x\":1}' WHERE id = ?").run(fx.runId))).toBe(true);
    expect(sameBothWays((s) => s.db.prepare("UPDATE runs SET config_sha256 = 'ab' WHERE id = ?").run(fx.runId))).toBe(true);
  });

  it("decision rows edited and deleted (initial decisions and the note)", () => {
    const failed = sameBothWays((s) => {
      s.db.exec("DROP TRIGGER decisions_no_update; DROP TRIGGER decisions_no_delete");
      s.db.prepare("UPDATE decisions SET rationale = 'edited' WHERE run_id = ? AND kind = 'initial'").run(fx.runId);
      s.db.prepare("DELETE FROM decisions WHERE id = ?").run(fx.noteId);
    });
    expect(failed).toBe(true);
  });

  it("event payloads rewritten: run.create, run.start, the end event, the note", () => {
    // Same value, other spelling: not the row's text, so checked field by field, and it passes.
    expect(sameBothWays((s) => rewritePayload(s, "run.create", fx.runId, "replace(payload, '\"origin\":', '\"origin\" :')"))).toBe(false);
    expect(sameBothWays((s) => rewritePayload(s, "run.create", fx.runId, "json_set(payload, '$.origin', 'x')"))).toBe(true);
    expect(sameBothWays((s) => rewritePayload(s, "run.start", fx.runId, "json_set(payload, '$.backend', 'gpu')"))).toBe(true);
    expect(sameBothWays((s) => rewritePayload(s, "run.start", fx.runId, "'not json'"))).toBe(true);
    expect(sameBothWays((s) => rewritePayload(s, "run.complete", fx.runId, "'[1]'"))).toBe(true);
    expect(sameBothWays((s) => rewritePayload(s, "decision.create", fx.noteId, "json_set(payload, '$.rationale', 'x')"))).toBe(true);
  });

  it("a second run.create of the same run, and the run row deleted", () => {
    const twice = sameBothWays((s) => {
      s.db.exec("DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_insert");
      // A copy of the run's run.create under the next free seq (the chain is not what this test checks).
      s.db.exec(
        `INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash)
         SELECT (SELECT max(seq) FROM audit_events) + 1, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash
         FROM audit_events WHERE action = 'run.create' AND entity_id = '${fx.runId}'`,
      );
      s.maxSeq += 1;
    });
    expect(twice).toBe(true);
    expect(sameBothWays((s) => s.db.prepare("DELETE FROM runs WHERE id = ?").run(fx.runId))).toBe(true);
  });
});
