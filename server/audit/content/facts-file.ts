/**
 * facts.json: the records an auditor's report prints, as the tables held them at export, each with the seq of the
 * ledger event that covers it, so the bundle's content can be checked against events.jsonl without the database.
 * Written by export-write.ts (server/audit/report); checked by verify-bundle-content.ts here and by the dependency-free verify-bundle.mjs.
 *
 * Format (FACTS_FORMAT = "runledger-content-facts/1"), one JSON object:
 *   { format, modelVersionId,
 *     records: { <entityType>: [ { seq: number | null, row: <row> }, … ], … },
 *     metrics: { "<runId>": [[key, step, value, epoch], …] (ordered by key, step) },
 *     metricsOmitted: { "<runId>": "why" },
 *     relatedSeqs: [seq, …]  (every event about these records: the check reads only these from events.jsonl),
 *     weights: { sha256, bytes, file: "artifacts/<sha256>" | null, omitted?: "why" } }
 * `seq` is the event that created the record (null: none found, which the check reports). Rows use the column
 * names of server/audit/content/tables.ts (camelCase), values exactly as stored (JSON columns as their text).
 * Entity types and their creating event (action, which id names the row, what is compared):
 *   user            user.create        entityId      email, name, role
 *   dataset         dataset.create     entityId      name, source, builtinName, sha256, bytes=byteSize, rows=rowCount,
 *                                                    columns/labelColumn (from schemaJson), licence, origin,
 *                                                    schemaSha256=sha256(schemaJson text), createdAt, actor=createdBy
 *   datasetVersion  datasetVersion.create entityId   recipeSha256 = sha256(recipeJson text) = recipeSha256, datasetId,
 *                                                    sha256, rowsIn/rowsOut (reportJson), rowCount, reportSha256, createdAt
 *   split           split.create       entityId      sha256 = sha256(manifestJson text) = sha256 column, datasetVersionId,
 *                                                    counts/indicesSha256 (manifest partitions), specSha256, createdAt
 *   run             run.create         entityId      configSha256 = sha256(configJson text) = configSha256 column,
 *                                                    experimentId, name, origin, parentRunId, parentCheckpointId, createdAt,
 *                                                    actor=createdBy, seed = config.training.seed; run.start: backend,
 *                                                    backendReason, environment (= environmentJson), paramCount,
 *                                                    memorySha256, datasetVersionId, splitId, startedAt; the last of
 *                                                    run.complete/run.cancel/run.fail: status, weightsSha256 =
 *                                                    finalWeightsSha256, finishedAt, and metricPointsSha256 =
 *                                                    sha256(canonical [{epoch,key,step,value}…] of metrics[runId]) (older:
 *                                                    metricsSha256 over {key,step,value}), metricPoints, finalMetrics
 *   decision        run.create of its run (payload.decisions[i]: id, path, kind, sha256 = sha256 of the canonical
 *                   row {authorId, correctsDecisionId, createdAt, id, kind, newValueJson, oldValueJson, path,
 *                   rationale, runId}), or decision.create / decision.correct (entityId; the same sha256, rationale)
 *   checkpoint      checkpoint.create  entityId      runId, epoch, step, sha256, bytes, metrics (= metricsJson), createdAt;
 *                                                    isBest = (run end event's bestCheckpointId === id)
 *   evaluation      evaluation.create  entityId      metricsSha256 = sha256(canonical metricsJson object plus "confusion":
 *                                                    confusionJson when not null), runId, checkpointId, partition,
 *                                                    dataSha256, splitId, source, createdAt, actor=createdBy
 *   document        document.update    entityId      sha256 = sha256(canonical {subjectType, subjectId, section, version,
 *                                                    body, supersedesId, authorId, createdAt}) = sha256 column, characters
 *   model           model.create       entityId      name, description, createdAt; approvalsRequired after model.update
 *   modelVersion    modelVersion.create entityId     model (name), modelId, version, runId, checkpointId, weightsSha256,
 *                                                    createdAt; weights file sha256 recomputed when included
 *   aliasMove       alias.move         payload.aliasEventId   alias, toModelVersionId=modelVersionId, promotionRequestId,
 *                                                    createdAt, entityId = modelId, actor = movedBy
 *   promotionRequest promotion.request entityId      modelVersionId, alias, evaluationId, rationale, recordSha256, createdAt;
 *                                                    status/decidedAt after promotion.approve/reject/withdraw
 *   signature       signature.create   entityId      printedName, meaning, recordType, recordId, recordSha256, comment,
 *                                                    createdAt, actor = userId
 * A payload field an older event lacks is "not covered", not a failure.
 */
import fs from "node:fs";
import path from "node:path";
import type Database from "better-sqlite3";
import type { Coverage } from "./checker";
import type { Tables } from "./tables";

export const FACTS_FILE = "facts.json";
export const FACTS_FORMAT = "runledger-content-facts/1";
export const MAX_BUNDLED_WEIGHTS_BYTES = 50 * 1024 * 1024;
export const MAX_BUNDLED_METRIC_POINTS = 200_000;

export type FactRecord<R> = { seq: number | null; row: R };
export type FactsFile = {
  format: typeof FACTS_FORMAT;
  modelVersionId: number;
  records: { [K in RecordType]?: FactRecord<TableRow<K>>[] };
  metrics: Record<string, [string, number, number, number][]>;
  metricsOmitted: Record<string, string>;
  /** Every event about these records (their creation, start/end, approvals, alias moves of the model), ascending. */
  relatedSeqs: number[];
  weights: { sha256: string; bytes: number | null; file: string | null; omitted?: string };
};

/** Entity type → the Tables map holding its rows. */
export const RECORD_TABLES = {
  user: "users",
  dataset: "datasets",
  datasetVersion: "datasetVersions",
  split: "splits",
  run: "runs",
  decision: "decisions",
  checkpoint: "checkpoints",
  evaluation: "evaluations",
  document: "documents",
  model: "models",
  modelVersion: "modelVersions",
  aliasMove: "aliasMoves",
  promotionRequest: "promotionRequests",
  signature: "signatures",
} as const satisfies Record<string, keyof Tables>;
export type RecordType = keyof typeof RECORD_TABLES;
type TableRow<K extends RecordType> = Tables[(typeof RECORD_TABLES)[K]] extends Map<number, infer R> ? R : never;

export type FactIds = { [K in RecordType]?: Iterable<number> };

/** The report's records (by id), their covering events, the metric points of its runs and the weights file. */
export function collectFactsFile(
  sqlite: Database.Database,
  t: Tables,
  coverage: Map<string, Coverage>,
  modelVersionId: number,
  ids: FactIds,
  artifactsDir: string,
  uptoSeq: number,
): FactsFile {
  const records: FactsFile["records"] = {};
  const users = new Set<number>(ids.user ?? []);
  for (const type of Object.keys(RECORD_TABLES) as RecordType[]) {
    if (type === "user") continue;
    const table = t[RECORD_TABLES[type]] as Map<number, Record<string, unknown>>;
    const list: FactRecord<Record<string, unknown>>[] = [];
    for (const id of [...new Set(ids[type] ?? [])].sort((a, b) => a - b)) {
      const row = table.get(id);
      if (!row) continue;
      list.push({ seq: coverage.get(`${type}:${id}`)?.seq ?? null, row });
      for (const k of ["createdBy", "authorId", "requestedBy", "userId", "movedBy"])
        if (typeof row[k] === "number") users.add(row[k] as number);
    }
    (records as Record<string, unknown>)[type] = list;
  }
  records.user = [...users]
    .sort((a, b) => a - b)
    .flatMap((id) => {
      const row = t.users.get(id);
      return row ? [{ seq: coverage.get(`user:${id}`)?.seq ?? null, row }] : [];
    });

  const related = new Set<number>();
  const eventsOf = sqlite.prepare("SELECT seq FROM audit_events WHERE entity_type = ? AND entity_id = ? AND seq <= ?").raw(true);
  for (const [type, list] of Object.entries(records) as [RecordType, FactRecord<{ id: number }>[]][]) {
    if (type === "aliasMove") continue; // alias.move events are about the model
    for (const { row } of list) for (const [seq] of eventsOf.all(type, String(row.id), uptoSeq) as [number][]) related.add(seq);
  }
  // A decision made while its run trained is recorded by its intervention's run.interventionApplied event.
  const appliedOf = sqlite
    .prepare(
      `SELECT e.seq FROM run_interventions i JOIN audit_events e ON e.entity_type = 'intervention' AND e.entity_id = CAST(i.id AS TEXT)
        WHERE i.decision_id = ? AND e.action = 'run.interventionApplied' AND e.seq <= ?`,
    )
    .raw(true);
  for (const { row } of records.decision ?? [])
    if (row.kind === "intervention") for (const [seq] of appliedOf.all(row.id, uptoSeq) as [number][]) related.add(seq);

  const metrics: FactsFile["metrics"] = {};
  const metricsOmitted: FactsFile["metricsOmitted"] = {};
  const count = sqlite.prepare("SELECT count(*) AS n FROM metrics WHERE run_id = ?");
  const points = sqlite.prepare("SELECT key, step, value, epoch FROM metrics WHERE run_id = ? ORDER BY key, step").raw(true);
  let total = 0;
  for (const { row } of records.run ?? []) {
    const n = (count.get(row.id) as { n: number }).n;
    if (total + n > MAX_BUNDLED_METRIC_POINTS) {
      metricsOmitted[String(row.id)] =
        `${n} metric points: more than the bundle carries (${MAX_BUNDLED_METRIC_POINTS} in all); verify them on the live database`;
      continue;
    }
    total += n;
    metrics[String(row.id)] = points.all(row.id) as [string, number, number, number][];
  }

  const version = t.modelVersions.get(modelVersionId);
  const sha = version?.weightsSha256 ?? "";
  const file = path.join(artifactsDir, sha.slice(0, 2), sha);
  const size = /^[0-9a-f]{64}$/.test(sha) && fs.existsSync(file) ? fs.statSync(file).size : null;
  const weights: FactsFile["weights"] =
    size === null
      ? { sha256: sha, bytes: null, file: null, omitted: "the weights file is missing from the artifact store" }
      : size > MAX_BUNDLED_WEIGHTS_BYTES
        ? {
            sha256: sha,
            bytes: size,
            file: null,
            omitted: `${size} bytes: larger than the ${MAX_BUNDLED_WEIGHTS_BYTES / 1048576} MB the bundle carries`,
          }
        : { sha256: sha, bytes: size, file: `artifacts/${sha}` };
  return {
    format: FACTS_FORMAT,
    modelVersionId,
    records,
    metrics,
    metricsOmitted,
    relatedSeqs: [...related].sort((a, b) => a - b),
    weights,
  };
}

/** The exact bytes of facts.json (the export event records their sha256). */
export function factsFileText(facts: FactsFile): string {
  return JSON.stringify(facts) + "\n";
}

/** Writes facts.json and the weights file (when included) into the bundle folder; returns the files written. */
export function writeFactsFile(bundleDir: string, facts: FactsFile, artifactsDir: string): string[] {
  fs.writeFileSync(path.join(bundleDir, FACTS_FILE), factsFileText(facts));
  if (!facts.weights.file) return [FACTS_FILE];
  fs.mkdirSync(path.join(bundleDir, "artifacts"), { recursive: true });
  fs.copyFileSync(
    path.join(artifactsDir, facts.weights.sha256.slice(0, 2), facts.weights.sha256),
    path.join(bundleDir, facts.weights.file),
  );
  return [FACTS_FILE, facts.weights.file];
}
