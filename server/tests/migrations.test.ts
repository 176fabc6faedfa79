/**
 * Committed migrations upgrade an existing database without losing or misreading what it holds. Here: 0002 adds
 * evaluations.source and backfills it from the audit log ("requested" where the evaluation.create event says so),
 * checked on a database that was really written by the app and then put back to its pre-0002 shape.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import path from "node:path";
import fs from "node:fs";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { waitForVerifyJob } from "@/server/audit/verify-jobs";

let app: TestApp;
beforeAll(() => {
  app = createTestApp({ backend: "wasm" });
});
afterAll(() => app.close());

describe("[migration 0002_evaluation_source]", () => {
  it("marks old requested evaluations as requested and the trainer's own as training", async () => {
    const engineer = app.as("engineer");
    const { id } = await engineer.runs.create({
      experimentId: app.experimentId,
      config: irisConfig({ epochs: 2 }),
      rationale: "migration test",
    });
    await app.orchestrator.waitFor(id);
    const run = await engineer.runs.get({ id });
    expect(run.status).toBe("completed");
    const requested = await app.as("reviewer").runs.evaluate({ runId: id, checkpointId: run.checkpoints[0]!.id });

    // Back to the shape before 0002 (no column), then apply 0002's committed SQL exactly as drizzle's migrator
    // does: its statements in order. Later migrations touch other tables, so they need not be undone.
    const sqlite = app.db.$client;
    sqlite.exec("ALTER TABLE evaluations DROP COLUMN source");
    expect(sqlite.prepare("SELECT COUNT(*) AS n FROM pragma_table_info('evaluations') WHERE name = 'source'").get()).toEqual({ n: 0 });

    const sql = fs.readFileSync(path.join(process.cwd(), "db", "migrations", "0002_evaluation_source.sql"), "utf8");
    sqlite.transaction(() => {
      for (const statement of sql.split("--> statement-breakpoint")) if (statement.trim()) sqlite.exec(statement);
    })();
    const rows = sqlite.prepare("SELECT id, source FROM evaluations WHERE run_id = ? ORDER BY id").all(id);
    expect(rows).toEqual([
      { id: run.evaluations[0]!.id, source: "training" },
      { id: requested.id, source: "requested" },
    ]);
    // The ledger is untouched by the upgrade.
    await app.as("auditor").audit.verify();
    expect((await waitForVerifyJob(app.dataDir))!.summary!.ok).toBe(true);
  });
});

describe("[migration 0016_metrics_without_rowid]", () => {
  it("keeps every metric point and makes the table WITHOUT ROWID on (run_id, key, step)", async () => {
    const engineer = app.as("engineer");
    const { id } = await engineer.runs.create({
      experimentId: app.experimentId,
      config: irisConfig({ epochs: 2 }),
      rationale: "migration 0016 test",
    });
    await app.orchestrator.waitFor(id);
    const sqlite = app.db.$client;
    const all = () => sqlite.prepare("SELECT * FROM metrics ORDER BY run_id, key, step").all();
    const before = all();
    expect(before.length).toBeGreaterThan(0);
    expect(sqlite.prepare("SELECT wr FROM pragma_table_list WHERE name = 'metrics'").get()).toEqual({ wr: 1 });

    // Back to the shape before 0016 (a rowid table with the same rows), then apply 0016's committed SQL as drizzle does.
    sqlite.transaction(() => {
      sqlite.exec("CREATE TABLE metrics_old AS SELECT * FROM metrics");
      sqlite.exec("DROP TABLE metrics");
      sqlite.exec(
        "CREATE TABLE metrics (run_id integer NOT NULL, key text NOT NULL, step integer NOT NULL, epoch real NOT NULL, value real NOT NULL, wall_time_ms integer NOT NULL, PRIMARY KEY(run_id, key, step))",
      );
      sqlite.exec("INSERT INTO metrics SELECT * FROM metrics_old ORDER BY step DESC");
      sqlite.exec("DROP TABLE metrics_old");
    })();
    expect(sqlite.prepare("SELECT wr FROM pragma_table_list WHERE name = 'metrics'").get()).toEqual({ wr: 0 });

    const sql = fs.readFileSync(path.join(process.cwd(), "db", "migrations", "0016_metrics_without_rowid.sql"), "utf8");
    sqlite.transaction(() => {
      for (const statement of sql.split("--> statement-breakpoint")) if (statement.trim()) sqlite.exec(statement);
    })();
    expect(sqlite.prepare("SELECT wr FROM pragma_table_list WHERE name = 'metrics'").get()).toEqual({ wr: 1 });
    expect(all()).toEqual(before);
    // The key still refuses a second point at a stored (run, key, step).
    const p = before[0] as { run_id: number; key: string; step: number };
    expect(() => sqlite.prepare("INSERT INTO metrics VALUES (?, ?, ?, 0, 0, 0)").run(p.run_id, p.key, p.step)).toThrow(
      /UNIQUE constraint failed/,
    );
    // The points still match the digests their runs' end events sealed.
    await app.as("auditor").audit.verify();
    expect((await waitForVerifyJob(app.dataDir))!.summary!.ok).toBe(true);
  });
});
