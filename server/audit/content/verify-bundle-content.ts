/**
 * Content verification of an auditor's bundle: facts.json's records (the rows the report prints) checked against
 * the events of events.jsonl, with the same entity checks as the live database (check-*.ts), plus the model
 * version's weights file re-hashed from its bytes when the bundle carries it, the metric points of the report's
 * runs re-digested, and each record's `seq` compared with the event that really created it.
 *
 * Usage: verifyBundleContent(bundleDir, events) where events is an iterable of event rows (e.g. events.jsonl
 * parsed line by line) or a lookup by seq. Run it on a bundle whose chain verified (server/audit/bundle.ts):
 * this check trusts the events it is given.
 * Invariants: a record whose event is missing is a failure; what the bundle does not carry (other artifact files,
 * metric points of very long runs, run_params) is stated in notCovered, never passed silently.
 */
import fs from "node:fs";
import path from "node:path";
import { ContentChecker, couldNotFinish } from "./checker";
import { ArtifactHasher } from "./artifact-files";
import { iterableEventSource } from "./ledger-events";
import { emptyTables, type Tables } from "./tables";
import { FACTS_FILE, FACTS_FORMAT, RECORD_TABLES, type FactsFile, type RecordType } from "./facts-file";
import { REPORT_FILES } from "@/server/audit/report/bundle-layout";
import { checkPeople } from "./check-people";
import { checkData } from "./check-data";
import { checkRuns, decisionsCreatedWithRuns } from "./check-runs";
import { checkDecisions } from "./check-decisions";
import { checkRunDerivedValues } from "./check-run-params";
import { checkMetrics, type MetricPoint } from "./check-metrics";
import { checkCheckpoints } from "./check-checkpoints";
import { checkEvaluations } from "./check-evaluations";
import { checkDocuments } from "./check-documents";
import { checkRegistry } from "./check-registry";
import { checkApprovals } from "./check-approvals";
import type { ContentLevel } from "./types";
import { provLineageProblems } from "@/server/audit/report/verify-bundle.mjs";

export type BundleEventRow = { seq: number; at: string; actorId: number | null; action: string; entityId: string; payload: string };
export type BundleEvents = Iterable<BundleEventRow> | ((seq: number) => BundleEventRow | undefined);

export function readFactsFile(bundleDir: string): FactsFile | null {
  const file = path.join(bundleDir, FACTS_FILE);
  if (!fs.existsSync(file)) return null;
  const facts = JSON.parse(fs.readFileSync(file, "utf8")) as FactsFile;
  if (facts?.format !== FACTS_FORMAT) throw new Error(`${FACTS_FILE} has format ${String(facts?.format)}, expected ${FACTS_FORMAT}`);
  return facts;
}

function tablesOf(facts: FactsFile): Tables {
  const t = emptyTables(false);
  for (const [type, list] of Object.entries(facts.records) as [RecordType, { row: { id: number } }[]][]) {
    const table = t[RECORD_TABLES[type]] as Map<number, unknown>;
    for (const { row } of list ?? []) table.set(row.id, row);
  }
  return t;
}

export function verifyBundleContent(bundleDir: string, events: BundleEvents): ContentLevel {
  const c = new ContentChecker(true);
  let facts: FactsFile | null;
  try {
    facts = readFactsFile(bundleDir);
  } catch (err) {
    c.problem({
      entityType: "bundle",
      entityId: FACTS_FILE,
      field: "file",
      recorded: null,
      found: (err as Error).message,
      seq: null,
      message: `${FACTS_FILE} cannot be read: ${(err as Error).message}`,
    });
    return c.level();
  }
  if (!facts)
    return {
      ok: true,
      checked: 0,
      problems: [],
      notCovered: [],
      skipped: `this bundle has no ${FACTS_FILE} (exported before content facts existed): its content was not checked`,
    };

  const wanted = new Set(facts.relatedSeqs);
  const rows: BundleEventRow[] = [];
  if (typeof events === "function") {
    for (const seq of wanted) {
      const e = events(seq);
      if (e) rows.push(e);
    }
  } else for (const e of events) if (wanted.has(e.seq)) rows.push(e);
  const found = new Set(rows.map((r) => r.seq));
  for (const seq of wanted)
    if (!found.has(seq))
      c.problem({
        entityType: "bundle",
        entityId: String(seq),
        field: "event",
        recorded: `seq ${seq}`,
        found: null,
        seq,
        message: `${FACTS_FILE} relies on event #${seq}, which is not in the bundle's ledger`,
      });

  const source = iterableEventSource(rows.map((r) => ({ ...r, actorId: r.actorId ?? null })));
  const t = tablesOf(facts);
  const weights = facts.weights;
  const files = new ArtifactHasher(
    (sha) => (weights.file && sha === weights.sha256 ? path.join(bundleDir, weights.file) : null),
    (sha) => weights.file !== null && sha === weights.sha256,
  );
  const metricRuns = new Set(Object.keys(facts.metrics).map(Number));
  const points = function* (): Generator<MetricPoint> {
    for (const runId of [...metricRuns].sort((a, b) => a - b))
      for (const [key, step, value, epoch] of facts!.metrics[String(runId)]!) yield [runId, key, step, value, epoch];
  };
  try {
    checkPeople(c, source, t);
    checkData(c, source, t, files);
    const withRun = decisionsCreatedWithRuns(t);
    const runs = checkRuns(c, source, t, withRun);
    checkDecisions(c, source, t, runs.createEvents, withRun);
    checkRunDerivedValues(c, t, runs.created, null);
    checkMetrics(c, t, runs, { points, holds: (runId) => metricRuns.has(runId) });
    checkCheckpoints(c, source, t, runs, files);
    checkEvaluations(c, source, t);
    checkDocuments(c, source, t);
    checkRegistry(c, source, t, files);
    checkApprovals(c, source, t);
  } catch (err) {
    couldNotFinish(c, err);
  }
  checkProvLineage(c, bundleDir, facts);
  // Each record names the event that created it: it must be the one the check found.
  for (const [type, list] of Object.entries(facts.records) as [RecordType, { seq: number | null; row: { id: number } }[]][]) {
    for (const { seq, row } of list ?? []) {
      const covered = c.coverage.get(`${type}:${row.id}`)?.seq ?? null;
      if (seq !== null && covered !== null && covered !== seq) c.compare(type, row.id, "covering event", seq, covered, seq);
    }
  }
  if (weights.file === null)
    c.notCovered(
      `the model version's weights file is not in this bundle (${weights.omitted ?? "not included"}); only its sha256 was compared`,
    );
  for (const [runId, why] of Object.entries(facts.metricsOmitted))
    c.notCovered(`metric points of run ${runId} are not in this bundle (${why})`);
  c.notCovered(
    "dataset bytes and checkpoint files other than the version's weights are not in the bundle: their sha256 were compared with the ledger, their bytes were not re-hashed",
  );
  return c.level();
}

/**
 * lineage.prov.json against facts.json's records (checked against the ledger above), with the standalone verifier's
 * own check (verify-bundle.mjs provLineageProblems), so both verifiers judge the PROV document alike. A missing or
 * unreadable file is reported by the export check that compares its sha256 (verify-report.ts), not here.
 */
function checkProvLineage(c: ContentChecker, bundleDir: string, facts: FactsFile): void {
  let prov: unknown;
  try {
    prov = JSON.parse(fs.readFileSync(path.join(bundleDir, REPORT_FILES.prov), "utf8")) as unknown;
  } catch {
    return;
  }
  const r = provLineageProblems(prov, facts);
  c.checked += r.checked;
  const text = (v: unknown) => (v === null || v === undefined ? null : typeof v === "string" ? v : JSON.stringify(v));
  for (const p of r.problems)
    c.problem({
      entityType: "lineage",
      entityId: p.entityId,
      field: p.field,
      recorded: text(p.recorded),
      found: text(p.found),
      seq: null,
      message: p.message,
    });
}
