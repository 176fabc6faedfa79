/**
 * The bulk events matched to their rows while the log is read (bulk-events.ts: kept without their text) give the
 * check exactly the result it gives on the full events: problems (messages, order), facts counted, notCovered and
 * the report's coverage, on a clean copy of a real app database and on copies tampered where those events and rows
 * meet (run, start, end, decision note and initial decision rows edited or deleted, event payloads rewritten, a
 * second run.create, annotations).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkContent } from "../verify-content";
import { buildContentFixture, snapshot, type ContentFixture, type Snapshot } from "./content-fixture";

let fx: ContentFixture;
beforeAll(async () => {
  fx = await buildContentFixture();
}, 180_000);
afterAll(() => fx?.app.close());

/** Both ways, with and without coverage; returns whether the tampered copy failed (so each case is seen to bite). */
function sameBothWays(tamper: (s: Snapshot) => void): boolean {
  const s = snapshot(fx.app);
  try {
    tamper(s);
    const opts = { artifactsDir: s.artifactsDir, uptoSeq: s.maxSeq };
    const matched = checkContent(s.db, opts);
    const full = checkContent(s.db, { ...opts, matchWhileReading: false });
    expect(matched.level).toEqual(full.level);
    const matchedCov = checkContent(s.db, { ...opts, coverage: true });
    const fullCov = checkContent(s.db, { ...opts, coverage: true, matchWhileReading: false });
    expect(matchedCov.level).toEqual(fullCov.level);
    expect([...matchedCov.coverage]).toEqual([...fullCov.coverage]);
    return !matched.level.ok;
  } finally {
    s.close();
  }
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
