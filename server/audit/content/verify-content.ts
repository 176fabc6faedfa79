/**
 * Content verification of a live database: every table row and artifact file the UI or the auditor's report shows,
 * re-derived and compared with what the audit ledger recorded (see check-*.ts for each entity). Called by
 * server/audit/verify.ts INSIDE the read transaction of the chain pass, so the payloads read here are the ones
 * the chain pass verified (events with seq <= uptoSeq).
 *
 * Usage: verifyContent(sqlite, { artifactsDir: path.join(dataDir, "artifacts"), uptoSeq }) → ContentLevel.
 * checkContent additionally returns which event covers each entity (for the report's per-fact labels).
 *
 * Invariants: reads only; one raw `.iterate()` pass per table, events read by action (index audit_events_action),
 * each artifact file hashed once; an unexpected error (e.g. a table that is not there) is a failed check saying
 * why, never a pass.
 */
import type Database from "better-sqlite3";
import { ContentChecker, type Coverage } from "./checker";
import { ArtifactHasher, storeArtifactPath } from "./artifact-files";
import { sqliteEventSource } from "./ledger-events";
import { loadTables, type Tables } from "./tables";
import { checkPeople } from "./check-people";
import { checkData } from "./check-data";
import { checkRuns, decisionsCreatedWithRuns } from "./check-runs";
import { checkDecisions } from "./check-decisions";
import { checkRunDerivedValues, sqliteRunParams } from "./check-run-params";
import { checkMetrics, sqliteMetricSource } from "./check-metrics";
import { checkCheckpoints } from "./check-checkpoints";
import { checkCheckpointsInSql } from "./check-checkpoints-sql";
import { checkEvaluations } from "./check-evaluations";
import { checkDocuments } from "./check-documents";
import { checkRegistry } from "./check-registry";
import { checkApprovals } from "./check-approvals";
import type { ContentLevel } from "./types";

export type ContentCheckResult = { level: ContentLevel; coverage: Map<string, Coverage>; filesHashed: number; durationMs: number; /** the rows compared (null when they could not be read) */ tables: Tables | null };

export type VerifyContentOptions = { artifactsDir: string | null; uptoSeq: number; /** keep which event covers each entity (the report's labels need it; default false) */ coverage?: boolean };

export function checkContent(sqlite: Database.Database, opts: VerifyContentOptions): ContentCheckResult {
  const started = performance.now();
  const c = new ContentChecker(opts.coverage ?? false);
  const files = opts.artifactsDir === null ? null : new ArtifactHasher(storeArtifactPath(opts.artifactsDir));
  let t: Tables | null = null;
  try {
    // Without coverage (plain verification), checkpoints are checked inside SQLite; the report's export keeps them in memory.
    const checkpointsInSql = !(opts.coverage ?? false);
    const events = sqliteEventSource(sqlite, opts.uptoSeq, checkpointsInSql ? ["checkpoint.create"] : []);
    t = loadTables(sqlite, { checkpoints: checkpointsInSql ? "referenced" : "all" });
    checkPeople(c, events, t);
    checkData(c, events, t, files);
    const withRun = decisionsCreatedWithRuns(t);
    const runs = checkRuns(c, events, t, withRun);
    checkDecisions(c, events, t, runs.createEvents, withRun);
    checkRunDerivedValues(c, t, runs.created, sqliteRunParams(sqlite));
    checkMetrics(c, t, runs, sqliteMetricSource(sqlite));
    if (checkpointsInSql) checkCheckpointsInSql(c, sqlite, events, t, runs, files, opts.uptoSeq);
    else checkCheckpoints(c, events, t, runs, files);
    checkEvaluations(c, events, t);
    checkDocuments(c, events, t);
    checkRegistry(c, events, t, files);
    checkApprovals(c, events, t);
  } catch (err) {
    c.problem({ entityType: "content", entityId: "*", field: "check", recorded: null, found: (err as Error).message, seq: null, message: `the content check could not finish: ${(err as Error).message}` });
  }
  if (!files) c.notCovered("artifact files (checkpoint weights, dataset bytes) were not re-hashed: no artifact directory was given");
  return { level: c.level(), coverage: c.coverage, filesHashed: files?.files ?? 0, durationMs: Math.round((performance.now() - started) * 10) / 10, tables: t };
}

export function verifyContent(sqlite: Database.Database, opts: VerifyContentOptions): ContentLevel {
  return checkContent(sqlite, opts).level;
}
