/**
 * Committed migrations upgrade an existing database without losing or misreading what it holds. Here: 0002 adds
 * evaluations.source and backfills it from the audit log ("requested" where the evaluation.create event says so),
 * checked on a database that was really written by the app and then put back to its pre-0002 shape.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import path from "node:path";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
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
    const { id } = await engineer.runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 2 }), rationale: "migration test" });
    await app.orchestrator.waitFor(id);
    const run = await engineer.runs.get({ id });
    expect(run.status).toBe("completed");
    const requested = await app.as("reviewer").runs.evaluate({ runId: id, checkpointId: run.checkpoints[0]!.id });

    // Back to the shape before 0002: no column, and the migration not yet recorded as applied.
    const sqlite = app.db.$client;
    sqlite.exec("ALTER TABLE evaluations DROP COLUMN source");
    sqlite.prepare("DELETE FROM __drizzle_migrations WHERE created_at = (SELECT MAX(created_at) FROM __drizzle_migrations)").run();
    expect(sqlite.prepare("SELECT COUNT(*) AS n FROM pragma_table_info('evaluations') WHERE name = 'source'").get()).toEqual({ n: 0 });

    migrate(app.db, { migrationsFolder: path.join(process.cwd(), "db", "migrations") });
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
