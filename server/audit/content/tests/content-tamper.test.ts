/**
 * Tampering for real with a copy of a real app database (trained Iris run, registry, promotion, signatures,
 * documents) and its artifact store, each test expecting the named content problem: files replaced or deleted,
 * table cells edited (triggers dropped where they protect the row), rows deleted or inserted behind the app's back.
 * Also: a clean copy passes, and the same check runs through verifyDatabase when it reports a content level.
 */
import Database from "better-sqlite3";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyDatabase } from "@/server/audit/verify";
import { auditNativeExtension, loadAuditNative } from "@/server/audit/native-range";
import { checkContent } from "../verify-content";
import type { ContentProblem } from "../types";
import { artifactPath, buildContentFixture, snapshot, type ContentFixture, type Snapshot } from "./content-fixture";

let fx: ContentFixture;
beforeAll(async () => {
  fx = await buildContentFixture();
}, 180_000);
afterAll(() => fx?.app.close());

/** Tampers with a fresh copy, then runs the content check on it. */
function tampered(tamper: (s: Snapshot) => void): { ok: boolean; problems: ContentProblem[]; decisionsProvenInSql: boolean } {
  const s = snapshot(fx.app);
  try {
    tamper(s);
    const r = checkContent(s.db, { artifactsDir: s.artifactsDir, uptoSeq: s.maxSeq });
    // Evaluations checked, and decisions first judged, inside SQLite (the default here) and both in JavaScript give
    // the same result.
    const inJs = checkContent(s.db, { artifactsDir: s.artifactsDir, uptoSeq: s.maxSeq, evaluationsInSql: false, decisionsInSql: false });
    expect(inJs.decisionsProvenInSql).toBe(false);
    expect(r.level).toEqual(inJs.level);
    if (process.env.SHOW_CONTENT_PROBLEMS) console.log(r.level.problems.map((p) => `- ${p.message}`).join("\n"));
    return { ok: r.level.ok, problems: r.level.problems, decisionsProvenInSql: r.decisionsProvenInSql };
  } finally {
    s.close();
  }
}

function expectProblem(r: { ok: boolean; problems: ContentProblem[] }, want: Partial<ContentProblem>): ContentProblem {
  expect(r.ok).toBe(false);
  const hit = r.problems.find((p) => Object.entries(want).every(([k, v]) => p[k as keyof ContentProblem] === v));
  if (!hit) throw new Error(`expected a problem like ${JSON.stringify(want)}; got:\n${r.problems.map((p) => `- ${p.message}`).join("\n")}`);
  expect(hit.message.length).toBeGreaterThan(10);
  return hit;
}

const get = <T>(s: Snapshot, sql: string, ...args: unknown[]) => s.db.prepare(sql).get(...args) as T;

/** Runs `check` on a new connection to the copy that cannot load the native extension (RUNLEDGER_AUDIT_NATIVE=0). */
function withoutNativeExtension<T>(s: Snapshot, check: (db: Database.Database) => T): T {
  const before = process.env.RUNLEDGER_AUDIT_NATIVE;
  process.env.RUNLEDGER_AUDIT_NATIVE = "0";
  const db = new Database(path.join(s.dir, "runledger.sqlite"));
  try {
    expect(loadAuditNative(db)).toBe(false);
    return check(db);
  } finally {
    db.close();
    if (before === undefined) delete process.env.RUNLEDGER_AUDIT_NATIVE;
    else process.env.RUNLEDGER_AUDIT_NATIVE = before;
  }
}
const bestCheckpoint = (s: Snapshot) =>
  get<{ id: number; sha256: string }>(s, "SELECT id, sha256 FROM checkpoints WHERE run_id = ? AND is_best = 1", fx.runId);

describe("content verification catches real tampering", () => {
  it("passes a clean copy", () => {
    const r = tampered(() => {});
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    // (check-decisions-sql.ts, which needs the native extension; tampered() compares it with JavaScript's verdict)
    expect(r.decisionsProvenInSql).toBe(auditNativeExtension().path !== null);
  });

  it("decisions are proven clean inside SQLite only when JavaScript would find nothing (check-decisions-sql.ts)", () => {
    const dropEventTriggers = (s: Snapshot) =>
      s.db.exec("DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_insert");
    const copyDecision =
      "INSERT INTO decisions (run_id, kind, path, old_value_json, new_value_json, rationale, author_id, created_at) SELECT ?, ?, path, old_value_json, new_value_json, rationale, author_id, created_at FROM decisions";
    const initialOf = (s: Snapshot) =>
      get<{ id: number }>(s, "SELECT id FROM decisions WHERE run_id = ? AND kind = 'initial'", fx.runId).id;
    // Appends a copy of the note's decision.create event as the log's last event, with the given columns replaced
    // by SQL expressions (the chain is not recomputed: these cases are about the content check).
    const appendNoteEventCopy = (
      s: Snapshot,
      replaced: Partial<Record<"action" | "entity_type" | "entity_id" | "payload", string>> = {},
    ) => {
      dropEventTriggers(s);
      const { action = "action", entity_type = "entity_type", entity_id = "entity_id", payload = "payload" } = replaced;
      s.db.exec(
        `INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash)
         SELECT (SELECT max(seq) FROM audit_events) + 1, at, actor_id, actor_name, role, ${action}, ${entity_type}, ${entity_id}, ${payload}, leaf_hash, chain_hash
         FROM audit_events WHERE action = 'decision.create' AND entity_id = '${fx.noteId}'`,
      );
      s.maxSeq += 1;
    };
    // (want null: JavaScript judges, whatever it finds; tampered() compares it with the verdict from SQLite's side)
    const cases: [string, (s: Snapshot) => void, Partial<ContentProblem> | null][] = [
      [
        "a note inserted without its event",
        (s) =>
          s.db
            .prepare(
              "INSERT INTO decisions (run_id, kind, path, old_value_json, new_value_json, rationale, author_id, created_at) SELECT run_id, kind, path, old_value_json, new_value_json, 'slipped in', author_id, created_at FROM decisions WHERE id = ?",
            )
            .run(fx.noteId),
        { entityType: "decision", field: "ledger event" },
      ],
      [
        "the note's event recorded twice",
        (s) => appendNoteEventCopy(s),
        { entityType: "decision", entityId: String(fx.noteId), field: "ledger event" },
      ],
      [
        "an event naming a decision that does not exist",
        (s) => appendNoteEventCopy(s, { entity_id: "'999999'" }),
        { entityType: "decision", entityId: "999999", field: "row" },
      ],
      [
        "the note's event credited to another user",
        (s) => {
          dropEventTriggers(s);
          s.db
            .prepare(
              "UPDATE audit_events SET actor_id = (SELECT min(id) FROM users WHERE id <> actor_id) WHERE action = 'decision.create' AND entity_id = ?",
            )
            .run(String(fx.noteId));
        },
        { entityType: "decision", entityId: String(fx.noteId), field: "author" },
      ],
      [
        "an initial decision inserted for a run that does not exist",
        (s) => {
          s.db.exec("PRAGMA foreign_keys = OFF");
          s.db.prepare(`${copyDecision} WHERE id = ?`).run(999999, "initial", initialOf(s));
        },
        { entityType: "decision", field: "ledger event" },
      ],
      [
        "a logged param inserted without its run.log event",
        (s) => s.db.prepare(`${copyDecision} WHERE id = ?`).run(fx.runId, "param", initialOf(s)),
        { entityType: "decision", field: "ledger event" },
      ],
      [
        "a run.log event inserted (it may name decisions too)",
        (s) =>
          appendNoteEventCopy(s, {
            action: "'run.log'",
            entity_type: "'run'",
            entity_id: `'${fx.runId}'`,
            payload: `'{"decisions":[]}'`,
          }),
        null,
      ],
      [
        "the run's creation time edited (its run.create no longer matches)",
        (s) => {
          s.db.exec("DROP TRIGGER IF EXISTS runs_no_update; DROP TRIGGER IF EXISTS runs_immutable");
          s.db.prepare("UPDATE runs SET created_at = '2020-01-01T00:00:00.000Z' WHERE id = ?").run(fx.runId);
        },
        { entityType: "run", entityId: String(fx.runId), field: "run creation time" },
      ],
      [
        "a run inserted without its run.create",
        (s) => {
          s.db.exec("PRAGMA foreign_keys = OFF");
          s.db
            .prepare(
              "INSERT INTO runs (id, experiment_id, name, status, config_json, config_sha256, seed, created_by, created_at) SELECT 999999, experiment_id, 'ghost', 'queued', config_json, config_sha256, seed, created_by, created_at FROM runs WHERE id = ?",
            )
            .run(fx.runId);
        },
        { entityType: "run", entityId: "999999", field: "ledger event" },
      ],
      [
        "the note's event deleted",
        (s) => {
          s.db.exec("DROP TRIGGER IF EXISTS audit_events_no_delete");
          s.db.prepare("DELETE FROM audit_events WHERE action = 'decision.create' AND entity_id = ?").run(String(fx.noteId));
        },
        { entityType: "decision", entityId: String(fx.noteId), field: "ledger event" },
      ],
    ];
    for (const [name, tamper, want] of cases) {
      const r = tampered(tamper);
      expect(r.decisionsProvenInSql, name).toBe(false);
      if (want) expectProblem(r, want);
    }
  });

  it("checkpoint file replaced: the weights file's bytes no longer hash to the recorded sha256", () => {
    let ck!: { id: number; sha256: string };
    const r = tampered((s) => {
      ck = bestCheckpoint(s);
      fs.writeFileSync(artifactPath(s.artifactsDir, ck.sha256), Buffer.from("not the weights"));
    });
    const p = expectProblem(r, { entityType: "checkpoint", entityId: String(ck.id), field: "weights file", recorded: ck.sha256 });
    expect(p.found).toMatch(/^[0-9a-f]{64}$/);
    expect(p.found).not.toBe(ck.sha256);
    expect(p.seq).toBeGreaterThan(0);
    expectProblem(r, { entityType: "modelVersion", entityId: String(fx.bestVersionId), field: "weights file" });
  });

  it("checkpoint file deleted: missing from the artifact store", () => {
    let ck!: { id: number; sha256: string };
    const r = tampered((s) => {
      ck = bestCheckpoint(s);
      fs.rmSync(artifactPath(s.artifactsDir, ck.sha256));
    });
    expectProblem(r, { entityType: "checkpoint", entityId: String(ck.id), field: "weights file", recorded: ck.sha256, found: null });
  });

  it("config edited in the runs table (learning rate 0.02 → 0.5)", () => {
    const r = tampered((s) => {
      s.db.prepare("UPDATE runs SET config_json = json_set(config_json, '$.training.learningRate', 0.5) WHERE id = ?").run(fx.runId);
    });
    const p = expectProblem(r, { entityType: "run", entityId: String(fx.runId), field: "config (sha256 of the stored config)" });
    expect(p.recorded).not.toBe(p.found);
    expectProblem(r, { entityType: "run", entityId: String(fx.runId), field: "run_params training.learningRate" });
  });

  it("metric value edited", () => {
    const r = tampered((s) => {
      s.db
        .prepare(
          "UPDATE metrics SET value = value * 0.5 WHERE run_id = ? AND key = 'val_loss' AND step = (SELECT max(step) FROM metrics WHERE run_id = ? AND key = 'val_loss')",
        )
        .run(fx.runId, fx.runId);
    });
    expectProblem(r, { entityType: "run", entityId: String(fx.runId), field: "metric points (epoch, key, step, value)" });
    expectProblem(r, { entityType: "run", entityId: String(fx.runId), field: "final metrics" });
  });

  it("epoch of a metric point edited (where the curve draws it)", () => {
    const r = tampered((s) => {
      s.db
        .prepare(
          "UPDATE metrics SET epoch = epoch + 1 WHERE run_id = ? AND key = 'loss' AND step = (SELECT min(step) FROM metrics WHERE run_id = ? AND key = 'loss')",
        )
        .run(fx.runId, fx.runId);
    });
    expectProblem(r, { entityType: "run", entityId: String(fx.runId), field: "metric points (epoch, key, step, value)" });
  });

  it("test accuracy edited in an evaluation (1.0 → 0.42)", () => {
    let evalId = 0;
    const r = tampered((s) => {
      evalId = get<{ id: number }>(s, "SELECT id FROM evaluations WHERE run_id = ? AND partition = 'test'", fx.runId).id;
      s.db.prepare("UPDATE evaluations SET metrics_json = json_set(metrics_json, '$.accuracy', 0.42) WHERE id = ?").run(evalId);
    });
    expectProblem(r, { entityType: "evaluation", entityId: String(evalId), field: "metrics (incl. confusion matrix)" });
    // The record reviewers signed no longer matches either.
    expectProblem(r, { entityType: "promotionRequest", field: "record under review (model version and evaluation, recomputed)" });
  });

  it("evaluations: author, split or checkpoint edited, the row deleted, a row inserted without an event", () => {
    const evalId = (s: Snapshot) =>
      get<{ id: number }>(s, "SELECT id FROM evaluations WHERE run_id = ? AND partition = 'test'", fx.runId).id;
    let id = 0;
    const edit = (sql: string) =>
      tampered((s) => {
        id = evalId(s);
        s.db.prepare("PRAGMA foreign_keys = OFF").run();
        s.db.prepare(sql).run(id);
      });
    expectProblem(edit("UPDATE evaluations SET created_by = created_by + 100 WHERE id = ?"), {
      entityType: "evaluation",
      entityId: String(id),
      field: "evaluated by",
    });
    expectProblem(edit("UPDATE evaluations SET split_id = 999 WHERE id = ?"), {
      entityType: "evaluation",
      entityId: String(id),
      field: "split",
      found: "999",
    });
    expectProblem(
      edit(
        "UPDATE evaluations SET checkpoint_id = (SELECT max(c.id) FROM checkpoints c WHERE c.id <> evaluations.checkpoint_id) WHERE id = ?",
      ),
      { entityType: "evaluation", entityId: String(id), field: "checkpoint" },
    );
    expectProblem(edit("DELETE FROM evaluations WHERE id = ?"), { entityType: "evaluation", entityId: String(id), field: "row" });
    let copy = 0;
    const inserted = tampered((s) => {
      copy = Number(
        s.db
          .prepare(
            "INSERT INTO evaluations (run_id, checkpoint_id, split_id, partition, data_sha256, metrics_json, confusion_json, source, created_by, created_at) SELECT run_id, checkpoint_id, split_id, partition, data_sha256, metrics_json, confusion_json, source, created_by, created_at FROM evaluations WHERE id = ?",
          )
          .run(evalId(s)).lastInsertRowid,
      );
    });
    expectProblem(inserted, { entityType: "evaluation", entityId: String(copy), field: "ledger event", recorded: null });
    // An event naming its row as "0<id>" (only an edit of the log can): the whole check runs in JavaScript, same result.
    const renamed = tampered((s) => {
      s.db.exec("DROP TRIGGER audit_events_no_update");
      s.db
        .prepare("UPDATE audit_events SET entity_id = '0' || entity_id WHERE action = 'evaluation.create' AND entity_id = ?")
        .run(String(evalId(s)));
    });
    expect(renamed.ok).toBe(true); // Number("07") is 7: the JavaScript check pairs it with its row as before
  });

  it("alias moved in the table, and an alias row inserted without an event", () => {
    const r = tampered((s) => {
      s.db.prepare("UPDATE model_alias_events SET model_version_id = ? WHERE alias = 'production'").run(fx.epoch1VersionId);
      const a = get<{ model_id: number; moved_by: number }>(s, "SELECT model_id, moved_by FROM model_alias_events LIMIT 1");
      s.db
        .prepare(
          "INSERT INTO model_alias_events (model_id, alias, model_version_id, promotion_request_id, moved_by, created_at) VALUES (?, 'production', ?, NULL, ?, '2030-01-01T00:00:00.000Z')",
        )
        .run(a.model_id, fx.bestVersionId, a.moved_by);
    });
    const moved = expectProblem(r, { entityType: "aliasMove", field: "model version" });
    expect(moved.recorded).toBe(String(fx.bestVersionId));
    expect(moved.found).toBe(String(fx.epoch1VersionId));
    expectProblem(r, { entityType: "aliasMove", field: "ledger event", recorded: null });
  });

  it("decision rationale edited (trigger dropped): the run.create record hash and the note's rationale", () => {
    const r = tampered((s) => {
      s.db.exec("DROP TRIGGER decisions_no_update");
      s.db.prepare("UPDATE decisions SET rationale = 'chosen after careful review' WHERE run_id = ? AND kind = 'initial'").run(fx.runId);
      s.db.prepare("UPDATE decisions SET rationale = 'all good' WHERE id = ?").run(fx.noteId);
    });
    expectProblem(r, { entityType: "decision", field: "record (rationale, old/new values, author, time)" });
    expectProblem(r, { entityType: "decision", entityId: String(fx.noteId), field: "rationale", found: JSON.stringify("all good") });
  });

  it("model version weights hash edited", () => {
    let other = "";
    const r = tampered((s) => {
      other = get<{ sha256: string }>(s, "SELECT sha256 FROM checkpoints WHERE run_id = ? AND is_best = 0 LIMIT 1", fx.runId).sha256;
      s.db.prepare("UPDATE model_versions SET weights_sha256 = ? WHERE id = ?").run(other, fx.bestVersionId);
    });
    expectProblem(r, {
      entityType: "modelVersion",
      entityId: String(fx.bestVersionId),
      field: "weights sha256",
      found: JSON.stringify(other),
    });
  });

  it("document text edited (trigger dropped)", () => {
    const r = tampered((s) => {
      s.db.exec("DROP TRIGGER documents_no_update");
      s.db.prepare("UPDATE documents SET body = 'Suitable for medical diagnosis.' WHERE id = ?").run(fx.documentId);
    });
    expectProblem(r, {
      entityType: "document",
      entityId: String(fx.documentId),
      field: "text and metadata (sha256 of the stored version)",
    });
  });

  it("signature edited (trigger dropped): meaning changed from review to approval", () => {
    let sigId = 0;
    const r = tampered((s) => {
      s.db.exec("DROP TRIGGER signatures_no_update");
      sigId = get<{ id: number }>(s, "SELECT id FROM signatures WHERE record_type = 'document'").id;
      s.db.prepare("UPDATE signatures SET meaning = 'approval' WHERE id = ?").run(sigId);
    });
    expectProblem(r, {
      entityType: "signature",
      entityId: String(sigId),
      field: "meaning",
      recorded: JSON.stringify("review"),
      found: JSON.stringify("approval"),
    });
  });

  it("dataset version digest edited", () => {
    let id = 0;
    const r = tampered((s) => {
      id = get<{ id: number }>(s, "SELECT id FROM dataset_versions LIMIT 1").id;
      s.db.prepare("UPDATE dataset_versions SET sha256 = ? WHERE id = ?").run("ab".repeat(32), id);
    });
    expectProblem(r, {
      entityType: "datasetVersion",
      entityId: String(id),
      field: "cleaned rows sha256",
      found: JSON.stringify("ab".repeat(32)),
    });
  });

  it("run row deleted: its events have no row", () => {
    const r = tampered((s) => {
      s.db.prepare("DELETE FROM runs WHERE id = ?").run(fx.runId);
    });
    expectProblem(r, { entityType: "run", entityId: String(fx.runId), field: "row", found: null });
  });

  it("split partition counts edited in the manifest", () => {
    const r = tampered((s) => {
      s.db.prepare("UPDATE splits SET manifest_json = json_set(manifest_json, '$.partitions.test.count', 99)").run();
    });
    expectProblem(r, { entityType: "split", field: "manifest (sha256 of the stored manifest)" });
    expectProblem(r, { entityType: "split", field: "partition counts" });
  });

  it("checkpoint values stored as BLOBs of the same bytes (step, time): found as in JavaScript", () => {
    const s = snapshot(fx.app);
    try {
      const ck = bestCheckpoint(s);
      s.db.prepare("UPDATE checkpoints SET step = CAST(step AS BLOB), created_at = CAST(created_at AS BLOB) WHERE id = ?").run(ck.id);
      expect(get<{ t: string }>(s, "SELECT typeof(step) AS t FROM checkpoints WHERE id = ?", ck.id).t).toBe("blob");
      const opts = { artifactsDir: s.artifactsDir, uptoSeq: s.maxSeq };
      const inSql = checkContent(s.db, opts).level; // checkpoints compared inside SQLite, the rows that differ in JavaScript
      const inJs = checkContent(s.db, { ...opts, coverage: true }).level; // every checkpoint in JavaScript
      for (const level of [inSql, inJs]) {
        expectProblem(level, { entityType: "checkpoint", entityId: String(ck.id), field: "step" });
        expectProblem(level, { entityType: "checkpoint", entityId: String(ck.id), field: "checkpoint creation time" });
      }
      expect(inSql.problems).toEqual(inJs.problems);
    } finally {
      s.close();
    }
  });

  it("each field a checkpoint.create or evaluation.create text holds, edited in its row: found inside SQLite as in JavaScript", () => {
    const edits: [entityType: "checkpoint" | "evaluation", sql: string][] = [
      ["checkpoint", "UPDATE checkpoints SET bytes = bytes + 1 WHERE id = @id"],
      ["checkpoint", "UPDATE checkpoints SET created_at = '2020-01-01T00:00:00.000Z' WHERE id = @id"],
      ["checkpoint", "UPDATE checkpoints SET epoch = epoch + 10 WHERE id = @id"],
      ["checkpoint", "UPDATE checkpoints SET metrics_json = json_set(metrics_json, '$.loss', 9) WHERE id = @id"],
      ["checkpoint", "UPDATE checkpoints SET sha256 = (SELECT sha256 FROM checkpoints WHERE id <> @id LIMIT 1) WHERE id = @id"],
      ["checkpoint", "UPDATE checkpoints SET step = step + 1 WHERE id = @id"],
      ["evaluation", "UPDATE evaluations SET created_at = '2020-01-01T00:00:00.000Z' WHERE id = @id"],
      ["evaluation", "UPDATE evaluations SET data_sha256 = 'ab' WHERE id = @id"],
      ["evaluation", "UPDATE evaluations SET partition = 'validation' WHERE id = @id"],
      ["evaluation", "UPDATE evaluations SET source = 'rerun' WHERE id = @id"],
      ["evaluation", "UPDATE evaluations SET confusion_json = NULL WHERE id = @id"],
    ];
    for (const [entityType, sql] of edits) {
      const s = snapshot(fx.app);
      try {
        const id =
          entityType === "checkpoint"
            ? bestCheckpoint(s).id
            : get<{ id: number }>(s, "SELECT id FROM evaluations WHERE run_id = ? AND partition = 'test'", fx.runId).id;
        expect(s.db.prepare(sql).run({ id }).changes, sql).toBe(1);
        const opts = { artifactsDir: s.artifactsDir, uptoSeq: s.maxSeq };
        const inSql = checkContent(s.db, opts).level;
        const inJs = checkContent(s.db, { ...opts, coverage: true }).level; // every checkpoint and evaluation in JavaScript
        expectProblem(inSql, { entityType, entityId: String(id) });
        expect(inSql.problems, sql).toEqual(inJs.problems);
        // Without the native extension the texts are built with SQL's own string functions (sql-json.ts).
        expect(withoutNativeExtension(s, (db) => checkContent(db, opts).level).problems, sql).toEqual(inJs.problems);
      } finally {
        s.close();
      }
    }
  });

  it("a row's creating event copied onto another row, or its entity type changed: not passed from the events' side", () => {
    // With the native extension a clean ledger is recognised from the events' side (check-checkpoints-sql.ts and
    // check-evaluations-sql.ts eventsSide): as many events as rows, each naming a distinct row. A row inserted
    // without an event together with a second event for another row keeps the counts equal: only the distinct rows
    // tell. A checkpoint.create event of another entity type names no row.
    // The copy's columns and values (a checkpoint's epoch is unique within its run).
    const evaluationColumns =
      "run_id, checkpoint_id, split_id, partition, data_sha256, metrics_json, confusion_json, source, created_by, created_at";
    const columns = {
      checkpoints: [
        "run_id, epoch, step, sha256, bytes, metrics_json, is_best, created_at",
        "run_id, epoch + 1000, step, sha256, bytes, metrics_json, 0, created_at",
      ],
      evaluations: [evaluationColumns, evaluationColumns],
    };
    const cases: [entityType: "checkpoint" | "evaluation", table: keyof typeof columns, tamper: "copied" | "retyped"][] = [
      ["checkpoint", "checkpoints", "copied"],
      ["checkpoint", "checkpoints", "retyped"],
      ["evaluation", "evaluations", "copied"],
      // (An evaluation.create event of another entity type sends the evaluations to JavaScript, which pairs them by id
      // alone, as for "07" above: nothing to find there.)
    ];
    for (const [entityType, table, tamper] of cases) {
      const s = snapshot(fx.app);
      try {
        const first = get<{ id: number }>(s, `SELECT min(id) AS id FROM ${table}`).id;
        const action = `${entityType}.create`;
        let rowWithoutEvent = String(first);
        let uptoSeq = s.maxSeq;
        if (tamper === "copied") {
          const [cols, values] = columns[table];
          rowWithoutEvent = String(
            s.db.prepare(`INSERT INTO ${table} (${cols}) SELECT ${values} FROM ${table} WHERE id = ?`).run(first).lastInsertRowid,
          );
          uptoSeq = s.maxSeq + 1;
          s.db
            .prepare(
              `INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash)
               SELECT ?, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash FROM audit_events WHERE action = ? AND entity_id = ?`,
            )
            .run(uptoSeq, action, String(first));
        } else {
          s.db.exec("DROP TRIGGER audit_events_no_update");
          s.db.prepare("UPDATE audit_events SET entity_type = 'run' WHERE action = ? AND entity_id = ?").run(action, String(first));
        }
        const counts = [
          `SELECT count(*) FROM ${table}`,
          `SELECT count(*) FROM audit_events WHERE action = '${action}' AND seq <= ${uptoSeq}`,
        ];
        expect(counts.map((sql) => s.db.prepare(sql).pluck().get())).toEqual(Array(2).fill(s.db.prepare(counts[0]!).pluck().get()));
        const opts = { artifactsDir: s.artifactsDir, uptoSeq };
        const inSql = checkContent(s.db, opts).level;
        // (Had the events' side passed it, nothing would be found.) Without the native extension there is no events'
        // side: the rows are joined to their events as before, with the same result.
        expectProblem(inSql, { entityType, entityId: rowWithoutEvent, field: "ledger event", recorded: null });
        expect(withoutNativeExtension(s, (db) => checkContent(db, opts).level)).toEqual(inSql);
      } finally {
        s.close();
      }
    }
  });

  it("a row moved to a negative id with its event: the events' side is uncertain and the rows are judged the slow way", () => {
    // rl_distinct_ids (rl_audit.c) counts distinct row ids in a bitmap and answers NULL for an id it cannot place,
    // which the events' side takes for "not clean": the result must be the one the rows' side finds.
    const cases = [
      ["checkpoint", "checkpoints", "checkpoint.create", "SELECT min(id) FROM checkpoints"],
      ["evaluation", "evaluations", "evaluation.create", "SELECT min(id) FROM evaluations"],
      ["decision", "decisions", "decision.create", "SELECT min(id) FROM decisions WHERE kind = 'note'"],
    ] as const;
    for (const [entityType, table, action, pick] of cases) {
      const s = snapshot(fx.app);
      try {
        const id = s.db.prepare(pick).pluck().get() as number;
        s.db.exec("DROP TRIGGER audit_events_no_update; DROP TRIGGER decisions_no_update");
        expect(s.db.prepare(`UPDATE ${table} SET id = ? WHERE id = ?`).run(-id, id).changes).toBe(1);
        const moved = s.db
          .prepare("UPDATE audit_events SET entity_id = ? WHERE action = ? AND entity_type = ? AND entity_id = ?")
          .run(String(-id), action, entityType, String(id));
        expect(moved.changes, table).toBe(1);
        const opts = { artifactsDir: s.artifactsDir, uptoSeq: s.maxSeq };
        const inSql = checkContent(s.db, opts).level;
        if (auditNativeExtension().path !== null)
          expect(s.db.prepare(`SELECT rl_distinct_ids(id) FROM ${table}`).pluck().get(), table).toBeNull();
        const inJs = checkContent(s.db, { ...opts, coverage: true }).level;
        expect(inSql.problems, table).toEqual(inJs.problems);
        // (coverage counts its facts its own way; without the extension they are counted as with it)
        expect(
          withoutNativeExtension(s, (db) => checkContent(db, opts).level),
          table,
        ).toEqual(inSql);
      } finally {
        s.close();
      }
    }
  });

  it("run status and best flags edited", () => {
    const r = tampered((s) => {
      s.db.prepare("UPDATE runs SET status = 'failed' WHERE id = ?").run(fx.runId);
      s.db.prepare("UPDATE checkpoints SET is_best = 1 WHERE run_id = ?").run(fx.runId);
    });
    expectProblem(r, { entityType: "run", field: "status", recorded: JSON.stringify("completed"), found: JSON.stringify("failed") });
    expectProblem(r, { entityType: "checkpoint", field: "best flag", recorded: "false", found: "true" });
  });

  it("a run and an experiment shown deleted in the table, with no delete event in the log (only such rows are read)", () => {
    let experimentId = 0;
    const r = tampered((s) => {
      // (With no delete or restore event, check-api.ts reads only the rows that show a deletion: this is that path.)
      expect(
        get<{ n: number }>(s, "SELECT count(*) AS n FROM audit_events WHERE action LIKE '%.delete' OR action LIKE '%.restore'").n,
      ).toBe(0);
      experimentId = get<{ experiment_id: number }>(s, "SELECT experiment_id FROM runs WHERE id = ?", fx.runId).experiment_id;
      s.db.prepare("UPDATE runs SET deleted_at = '2026-01-01T00:00:00.000Z' WHERE id = ?").run(fx.runId);
      s.db.prepare("UPDATE experiments SET deleted_at = 0 WHERE id = ?").run(experimentId); // not even a time (stored as the text "0")
    });
    expectProblem(r, { entityType: "run", entityId: String(fx.runId), field: "deleted at (lifecycle)", recorded: "null" });
    expectProblem(r, {
      entityType: "experiment",
      entityId: String(experimentId),
      field: "deleted at (lifecycle)",
      found: JSON.stringify("0"),
    });
  });

  it("promotion request status edited back to pending, and a decision time moved", () => {
    let id = 0;
    const r = tampered((s) => {
      id = get<{ id: number }>(s, "SELECT id FROM promotion_requests LIMIT 1").id;
      s.db.prepare("UPDATE promotion_requests SET status = 'pending', decided_at = NULL WHERE id = ?").run(id);
    });
    expectProblem(r, {
      entityType: "promotionRequest",
      entityId: String(id),
      field: "status",
      recorded: JSON.stringify("approved"),
      found: JSON.stringify("pending"),
    });
    expectProblem(r, { entityType: "promotionRequest", entityId: String(id), field: "decision time", found: "null" });
  });

  it("a promotion request's approval rule lowered in the table", () => {
    let id = 0;
    const r = tampered((s) => {
      id = get<{ id: number }>(s, "SELECT id FROM promotion_requests LIMIT 1").id;
      s.db.prepare("UPDATE promotion_requests SET approvals_required = approvals_required + 1 WHERE id = ?").run(id);
    });
    expectProblem(r, { entityType: "promotionRequest", entityId: String(id), field: "approvals required at request time" });
  });

  it("a user's role changed in the table", () => {
    const r = tampered((s) => {
      s.db.prepare("UPDATE users SET role = 'reviewer' WHERE email = 'auditor@runledger.local'").run();
    });
    expectProblem(r, { entityType: "user", field: "role", recorded: JSON.stringify("auditor"), found: JSON.stringify("reviewer") });
  });

  it("a dataset's stored bytes replaced", () => {
    let id = 0;
    const r = tampered((s) => {
      const d = get<{ id: number; sha256: string }>(s, "SELECT id, sha256 FROM datasets LIMIT 1");
      id = d.id;
      fs.appendFileSync(artifactPath(s.artifactsDir, d.sha256), "5.0,3.0,1.0,0.2,setosa\n");
    });
    expectProblem(r, { entityType: "dataset", entityId: String(id), field: "stored bytes" });
  });

  it("through verifyDatabase: a clean database has its content intact", async () => {
    const r = await verifyDatabase(fx.app.db, { dataDir: fx.app.dataDir, publicKeyPem: fx.app.auditKeys.publicKeyPem });
    expect(r.levels.content.skipped).toBeUndefined();
    expect(r.levels.content.problems).toEqual([]);
    expect(r.levels.content.ok).toBe(true);
    expect(r.levels.content.checked).toBeGreaterThan(100);
  });

  it("through verifyDatabase on a data directory: a replaced weights file fails the content level and the verification", async () => {
    const s = snapshot(fx.app);
    try {
      const ck = bestCheckpoint(s);
      fs.writeFileSync(artifactPath(s.artifactsDir, ck.sha256), Buffer.from("not the weights"));
      const r = await verifyDatabase(s.dir, { publicKeyPem: fx.app.auditKeys.publicKeyPem });
      expect(r.levels.chain.ok).toBe(true);
      expect(r.levels.content.ok).toBe(false);
      expect(r.ok).toBe(false);
      expect(
        r.levels.content.problems.some((p) => p.entityType === "checkpoint" && p.entityId === String(ck.id) && p.field === "weights file"),
      ).toBe(true);
    } finally {
      s.close();
    }
  });
});
