/**
 * Best flags on a live database (check-checkpoints-sql.ts, checkBestFlags): when the rows flagged best print, as
 * "id:run" in id order, exactly as the pairs the run end events name, the check counts their facts without reading
 * the flagged rows into JavaScript; anything else takes the row-by-row loops. Each tampered copy is checked both
 * ways (the loops forced by making the flagged rows' text unusable) and must give the same level, findings included.
 */
import type Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { irisConfig } from "@/server/tests/test-app";
import type { ContentProblem } from "../types";
import { checkContent } from "../verify-content";
import { buildContentFixture, snapshot, type ContentFixture, type Snapshot } from "./content-fixture";

let fx: ContentFixture;
let otherRunId = 0;
beforeAll(async () => {
  fx = await buildContentFixture();
  // A second run, so that a flag can be moved to a checkpoint of another run.
  const engineer = fx.app.as("engineer");
  ({ id: otherRunId } = await engineer.runs.create({
    experimentId: fx.app.experimentId,
    config: irisConfig({ epochs: 2, learningRate: 0.05 }),
    rationale: "a second run for the best-flag checks",
  }));
  await fx.app.orchestrator.waitFor(otherRunId);
}, 240_000);
afterAll(() => fx?.app.close());

const FLAGGED_AS_TEXT = /group_concat\(id \|\|/;
const FLAGGED_ROWS = /^SELECT id, run_id FROM checkpoints WHERE is_best = 1$/;

/** Checks the copy, recording the statements it prepares; `loops` makes the flagged rows' text unusable. */
function check(s: Snapshot, loops: boolean) {
  const statements: string[] = [];
  const prepare = s.db.prepare.bind(s.db);
  s.db.prepare = ((sql: string) => {
    statements.push(sql);
    return prepare(loops && FLAGGED_AS_TEXT.test(sql) ? "SELECT 1, ''" : sql);
  }) as typeof s.db.prepare;
  try {
    return { level: checkContent(s.db, { artifactsDir: s.artifactsDir, uptoSeq: s.maxSeq }).level, statements };
  } finally {
    s.db.prepare = prepare as typeof s.db.prepare;
  }
}

/** Both ways on a tampered copy: same level; returns it and whether the text way read the flagged rows itself. */
function bothWays(tamper: (db: Database.Database) => void) {
  const s = snapshot(fx.app);
  try {
    tamper(s.db);
    const byText = check(s, false);
    const byLoops = check(s, true);
    expect(byLoops.statements.some((sql) => FLAGGED_ROWS.test(sql))).toBe(true);
    expect(byText.level).toEqual(byLoops.level);
    return { level: byText.level, readFlaggedRows: byText.statements.some((sql) => FLAGGED_ROWS.test(sql)) };
  } finally {
    s.close();
  }
}

const bestOf = (db: Database.Database, runId: number) =>
  db.prepare("SELECT id FROM checkpoints WHERE run_id = ? AND is_best = 1").pluck().get(runId) as number;
const notBestOf = (db: Database.Database, runId: number) =>
  db.prepare("SELECT min(id) FROM checkpoints WHERE run_id = ? AND is_best = 0").pluck().get(runId) as number;

function bestFlagProblems(problems: ContentProblem[]) {
  return problems.filter((p) => p.field === "best flag").map(({ entityId, recorded, found }) => ({ entityId, recorded, found }));
}

describe("best flags checked from the flagged rows' text", () => {
  it("a clean ledger: the flagged rows are not read into JavaScript, and the facts count as the loops count them", () => {
    const r = bothWays(() => {});
    expect(r.level.problems).toEqual([]);
    expect(r.readFlaggedRows).toBe(false);
  });

  it("a best checkpoint unflagged, and another checkpoint flagged", () => {
    let best = 0;
    let other = 0;
    const r = bothWays((db) => {
      best = bestOf(db, fx.runId);
      other = notBestOf(db, fx.runId);
      db.prepare("UPDATE checkpoints SET is_best = 0 WHERE id = ?").run(best);
      db.prepare("UPDATE checkpoints SET is_best = 1 WHERE id = ?").run(other);
    });
    expect(r.readFlaggedRows).toBe(true);
    expect(bestFlagProblems(r.level.problems)).toEqual([
      { entityId: String(other), recorded: "false", found: "true" },
      { entityId: String(best), recorded: "true", found: "false" },
    ]);
  });

  it("a best checkpoint moved to another run (same ids flagged, another run): named by its flag, not only by its payload", () => {
    let best = 0;
    const r = bothWays((db) => {
      best = bestOf(db, fx.runId);
      db.prepare("UPDATE checkpoints SET run_id = ?, epoch = 99 WHERE id = ?").run(otherRunId, best);
    });
    expect(r.readFlaggedRows).toBe(true);
    expect(bestFlagProblems(r.level.problems)).toEqual([{ entityId: String(best), recorded: "false", found: "true" }]);
    expect(r.level.problems.some((p) => p.entityId === String(best) && p.field !== "best flag")).toBe(true);
  });

  it("the two runs' best checkpoints swapped between the runs", () => {
    let bests: number[] = [];
    const r = bothWays((db) => {
      bests = [bestOf(db, fx.runId), bestOf(db, otherRunId)];
      db.prepare("UPDATE checkpoints SET run_id = ?, epoch = 98 WHERE id = ?").run(otherRunId, bests[0]);
      db.prepare("UPDATE checkpoints SET run_id = ?, epoch = 99 WHERE id = ?").run(fx.runId, bests[1]);
    });
    expect(bestFlagProblems(r.level.problems)).toEqual(bests.map((id) => ({ entityId: String(id), recorded: "false", found: "true" })));
  });

  it.each([
    ["run", "id INTEGER PRIMARY KEY, run_id TEXT NOT NULL"],
    ["id", "id TEXT PRIMARY KEY, run_id INTEGER NOT NULL"],
  ])("the table rebuilt with its %s column as TEXT (each prints as the named pair's number, but is a text)", (column, key) => {
    const r = bothWays((db) => {
      // An operator with a SQL shell can recreate a table with other column types; SQLite then stores "7", not 7.
      const columns = "id, run_id, epoch, step, sha256, bytes, metrics_json, is_best, created_at";
      db.exec(`ALTER TABLE checkpoints RENAME TO checkpoints_before;
        CREATE TABLE checkpoints (${key}, epoch INTEGER NOT NULL, step INTEGER NOT NULL, sha256 TEXT NOT NULL,
          bytes INTEGER NOT NULL, metrics_json TEXT NOT NULL, is_best INTEGER NOT NULL, created_at TEXT NOT NULL);
        INSERT INTO checkpoints (${columns}) SELECT ${columns} FROM checkpoints_before;
        DROP TABLE checkpoints_before;`);
      const name = column === "run" ? "run_id" : "id";
      expect(db.prepare(`SELECT DISTINCT typeof(${name}) FROM checkpoints`).pluck().all()).toEqual(["text"]);
    });
    expect(r.readFlaggedRows).toBe(true);
    expect(bestFlagProblems(r.level.problems).length).toBeGreaterThan(0);
  });
});
