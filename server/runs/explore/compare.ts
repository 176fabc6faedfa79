/**
 * Side-by-side comparison of 2..20 runs: their configs (as flattened params), the data they trained on,
 * the human decisions behind them and their metric summaries.
 *
 * Invariants:
 * - Output arrays follow the order of the ids asked for; `values[i]` belongs to `runs[i]`.
 * - A param path is `differs: true` when any two runs disagree, a run missing the path counting as a
 *   different value (null).
 * - `likeForLike` is true only when every run records a dataset version and a split and all runs share the
 *   same dataset-version sha256 and split sha256: metrics of such runs were measured on the same rows.
 *   `dataNotes` says why not, in words.
 * - `interventions[i]` are the in-flight decisions of `runs[i]` (applied live interventions with their effect),
 *   read for all runs in a fixed number of queries (compare-interventions.ts).
 * - Runs on SQLite or PostgreSQL (store.ts): each query written once over the store's tables. The reads do not
 *   depend on each other, so they go out together (concurrently on PostgreSQL, in turn on SQLite); unknown ids
 *   are reported once all have answered.
 */
import { aliasedTable, asc, eq, inArray } from "drizzle-orm";
import type { RunStatus } from "@/db/schema";
import { paramValueOf, type ParamValue } from "./runs-search";
import { RunsQueryError } from "./errors";
import { compareInterventions, type ComparedIntervention } from "./compare-interventions";
import { compareModels, type ComparedModel } from "./compare-models";
import { asStore, type StoreOrDb } from "./store";
import { together } from "./together";

export const MIN_COMPARE = 2;
export const MAX_COMPARE = 20;

export type ComparedRun = {
  id: number;
  name: string;
  status: RunStatus;
  experimentId: number;
  experimentName: string;
  author: string;
  createdAt: string;
  origin: string;
  parentRunId: number | null;
  configSha256: string;
  data: {
    datasetName: string | null;
    datasetVersionId: number | null;
    datasetVersionSha256: string | null;
    splitId: number | null;
    splitSha256: string | null;
  };
};

export type ComparedDecision = {
  id: number;
  kind: string;
  path: string;
  oldValue: unknown;
  newValue: unknown;
  rationale: string;
  correctsDecisionId: number | null;
  author: string;
  createdAt: string;
};

export type MetricSummary = { last: number; lastStep: number; min: number; max: number; count: number };

export type RunComparison = {
  runs: ComparedRun[];
  params: { path: string; values: ParamValue[]; differs: boolean }[];
  likeForLike: boolean;
  dataNotes: string[];
  /** Per run, in order: its decisions, oldest first. */
  decisions: ComparedDecision[][];
  metrics: { key: string; values: (MetricSummary | null)[] }[];
  /** Per run, in order: its applied live interventions (in-flight decisions), in the order they took effect. */
  interventions: ComparedIntervention[][];
  /** Per run, in order: the model it produced (size, parameters, test accuracy, inference time; compare-models.ts). */
  models: ComparedModel[];
};

export async function compareRuns(storeOrDb: StoreOrDb, runIds: number[]): Promise<RunComparison> {
  const store = asStore(storeOrDb);
  const { db, f } = store;
  const { runs, runParams, metricSummaries, decisions, users, experiments, datasetVersions, datasets, splits } = store.t;
  const ids = [...new Set(runIds)];
  if (ids.length !== runIds.length) throw new RunsQueryError("compare: each run may appear only once");
  if (ids.some((id) => !Number.isInteger(id) || id <= 0)) throw new RunsQueryError("compare: run ids must be positive whole numbers");
  if (ids.length < MIN_COMPARE || ids.length > MAX_COMPARE)
    throw new RunsQueryError(`compare: choose between ${MIN_COMPARE} and ${MAX_COMPARE} runs (got ${ids.length})`);

  const author = aliasedTable(users, "run_author");
  const decisionAuthor = aliasedTable(users, "decision_author");
  const readRuns = () =>
    db
      .select({
        id: runs.id,
        name: runs.name,
        status: runs.status,
        experimentId: runs.experimentId,
        experimentName: experiments.name,
        author: author.name,
        createdAt: runs.createdAt,
        origin: runs.origin,
        parentRunId: runs.parentRunId,
        configSha256: runs.configSha256,
        datasetName: datasets.name,
        datasetVersionId: runs.datasetVersionId,
        datasetVersionSha256: datasetVersions.sha256,
        splitId: runs.splitId,
        splitSha256: splits.sha256,
      })
      .from(runs)
      .innerJoin(experiments, eq(experiments.id, runs.experimentId))
      .innerJoin(author, eq(author.id, runs.createdBy))
      .leftJoin(datasetVersions, eq(datasetVersions.id, runs.datasetVersionId))
      .leftJoin(datasets, eq(datasets.id, datasetVersions.datasetId))
      .leftJoin(splits, eq(splits.id, runs.splitId))
      .where(inArray(runs.id, ids));
  const readDecisions = () =>
    db
      .select({
        id: decisions.id,
        runId: decisions.runId,
        kind: decisions.kind,
        path: decisions.path,
        oldValueJson: decisions.oldValueJson,
        newValueJson: decisions.newValueJson,
        rationale: decisions.rationale,
        correctsDecisionId: decisions.correctsDecisionId,
        author: decisionAuthor.name,
        createdAt: decisions.createdAt,
      })
      .from(decisions)
      .innerJoin(decisionAuthor, eq(decisionAuthor.id, decisions.authorId))
      .where(inArray(decisions.runId, ids))
      .orderBy(asc(f.textKey(decisions.createdAt)), asc(decisions.id));
  const [found, paramRows, decisionRows, summaryRows, interventions, models] = await together(
    store,
    readRuns,
    () => db.select().from(runParams).where(inArray(runParams.runId, ids)),
    readDecisions,
    () => db.select().from(metricSummaries).where(inArray(metricSummaries.runId, ids)),
    () => compareInterventions(store, ids),
    () => compareModels(store, ids),
  );
  const byId = new Map(found.map((r) => [r.id, r]));
  const missing = ids.filter((id) => !byId.has(id));
  if (missing.length) throw new RunsQueryError(`compare: unknown run id${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`);

  const compared: ComparedRun[] = ids.map((id) => {
    const r = byId.get(id)!;
    const { datasetName, datasetVersionId, datasetVersionSha256, splitId, splitSha256, ...rest } = r;
    return { ...rest, data: { datasetName, datasetVersionId, datasetVersionSha256, splitId, splitSha256 } };
  });
  const index = new Map(ids.map((id, i) => [id, i]));

  const paramsByPath = new Map<string, ParamValue[]>();
  for (const p of paramRows) {
    let values = paramsByPath.get(p.key);
    if (!values) paramsByPath.set(p.key, (values = ids.map(() => null)));
    values[index.get(p.runId)!] = paramValueOf(p.valueText, p.valueNum);
  }
  // Present but null (e.g. earlyStopping: null) and absent both show as null; both count as "no value".
  const params = [...paramsByPath.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([path, values]) => ({ path, values, differs: values.some((v) => v !== values[0]) }));

  const perRunDecisions: ComparedDecision[][] = ids.map(() => []);
  for (const { runId, oldValueJson, newValueJson, ...d } of decisionRows) {
    perRunDecisions[index.get(runId)!]!.push({ ...d, oldValue: parseJson(oldValueJson), newValue: parseJson(newValueJson) });
  }

  const metricsByKey = new Map<string, (MetricSummary | null)[]>();
  for (const s of summaryRows) {
    let values = metricsByKey.get(s.key);
    if (!values) metricsByKey.set(s.key, (values = ids.map(() => null)));
    values[index.get(s.runId)!] = { last: s.last, lastStep: s.lastStep, min: s.min, max: s.max, count: s.count };
  }
  const metrics = [...metricsByKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, values]) => ({ key, values }));

  const dataNotes = describeData(compared);
  return {
    runs: compared,
    params,
    likeForLike: dataNotes.length === 0,
    dataNotes,
    decisions: perRunDecisions,
    metrics,
    interventions,
    models,
  };
}

/** Reasons the runs did not train and validate on the same rows; empty when they did. */
function describeData(rs: ComparedRun[]): string[] {
  const notes: string[] = [];
  const noVersion = rs.filter((r) => !r.data.datasetVersionSha256).map((r) => r.id);
  const noSplit = rs.filter((r) => !r.data.splitSha256).map((r) => r.id);
  if (noVersion.length) notes.push(`no recorded dataset version for run${noVersion.length > 1 ? "s" : ""} ${noVersion.join(", ")}`);
  if (noSplit.length) notes.push(`no recorded split for run${noSplit.length > 1 ? "s" : ""} ${noSplit.join(", ")}`);
  const versions = groupIds(rs, (r) => r.data.datasetVersionSha256);
  const used = (g: { key: string; ids: number[] }) => `run${g.ids.length > 1 ? "s" : ""} ${g.ids.join(", ")} used ${g.key.slice(0, 12)}`;
  if (versions.length > 1) notes.push(`different dataset versions: ${versions.map(used).join("; ")}`);
  const splitGroups = groupIds(rs, (r) => r.data.splitSha256);
  if (splitGroups.length > 1) notes.push(`different splits: ${splitGroups.map(used).join("; ")}`);
  return notes;
}

function groupIds(rs: ComparedRun[], key: (r: ComparedRun) => string | null): { key: string; ids: number[] }[] {
  const groups = new Map<string, number[]>();
  for (const r of rs) {
    const k = key(r);
    if (k) groups.set(k, [...(groups.get(k) ?? []), r.id]);
  }
  return [...groups.entries()].map(([k, ids]) => ({ key: k, ids }));
}

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
