/**
 * Report facts, section 8: what changed since the previous production version (what production pointed at before
 * this version's latest move there, or the current production when this version never got there): weights, data
 * version, split, configuration paths (contracts/training-config.ts diffConfigs, the app's one config diff), test
 * metrics before and after, and the decisions new since. Also the entity keys of the previous version's records the
 * section prints, so the content check labels them.
 */
import { eq } from "drizzle-orm";
import { runs } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import { diffConfigs } from "@/contracts/training-config";
import { collectLineage, type LineageFacts } from "@/server/lineage/collect";
import { aliasMoves } from "@/server/registry/aliases";
import type { RunRow } from "./training-runs";

/** The configuration changes between two runs, in the report's shape (before/after). */
function reportConfigChanges(before: unknown, after: unknown): { path: string; before: unknown; after: unknown }[] {
  return diffConfigs(before, after).map((d) => ({ path: d.path, before: d.oldValue, after: d.newValue }));
}

function previousProductionVersionId(db: DbOrTx, modelId: number, versionId: number): number | null {
  const moves = aliasMoves(db, modelId).filter((m) => m.alias === "production");
  const lastHere = moves
    .map((m, i) => ({ m, i }))
    .filter(({ m }) => m.modelVersionId === versionId)
    .at(-1);
  const candidates = lastHere ? moves.slice(0, lastHere.i) : moves;
  for (let i = candidates.length - 1; i >= 0; i--) {
    const v = candidates[i]!.modelVersionId;
    if (v !== null && v !== versionId) return v;
  }
  return null;
}

export type ChangesSincePrevious = {
  previous: { id: number; version: number; weightsSha256: string; runId: number; configSha256: string };
  weightsChanged: boolean;
  configChanges: ReturnType<typeof reportConfigChanges>;
  dataChanged: {
    datasetVersion: boolean;
    split: boolean;
    before: { datasetVersionId: number | null; splitId: number | null };
    after: { datasetVersionId: number | null; splitId: number | null };
  };
  testMetrics: { key: string; before: number | null; after: number | null }[];
  newDecisionIds: number[];
  /** The previous version's evaluations (the "before" test metrics come from its latest test one). */
  previousEvaluationIds: number[];
};

/** `thisRun`: the row of the run that produced this version; `evaluations`: this version's (for the "after" test metrics). */
export function changesSincePreviousProduction(
  db: DbOrTx,
  lineage: LineageFacts,
  thisRun: RunRow,
  evaluations: { partition: string; metrics: Record<string, unknown> }[],
): { changes: ChangesSincePrevious | null; previousKeys: string[] } {
  const prevId = previousProductionVersionId(db, lineage.model.id, lineage.version.id);
  if (prevId === null) return { changes: null, previousKeys: [] };
  const prev = collectLineage(db, prevId);
  const previousKeys = [
    `modelVersion:${prev.version.id}`,
    `run:${prev.version.runId}`,
    ...prev.evaluations.map((e) => `evaluation:${e.id}`),
  ];
  const prevRun = db.select().from(runs).where(eq(runs.id, prev.version.runId)).get()!;
  const testOf = (rows: { partition: string; metrics: Record<string, unknown> }[]) =>
    rows.filter((e) => e.partition === "test").at(-1)?.metrics ?? {};
  const before = testOf(prev.evaluations),
    after = testOf(evaluations);
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((k) => typeof before[k] === "number" || typeof after[k] === "number")
    .sort();
  const prevDecisionIds = new Set(prev.decisions.map((d) => d.id));
  const changes: ChangesSincePrevious = {
    previous: {
      id: prev.version.id,
      version: prev.version.version,
      weightsSha256: prev.version.weightsSha256,
      runId: prev.version.runId,
      configSha256: prevRun.configSha256,
    },
    weightsChanged: prev.version.weightsSha256 !== lineage.version.weightsSha256,
    configChanges: reportConfigChanges(JSON.parse(prevRun.configJson), JSON.parse(thisRun.configJson)),
    dataChanged: {
      datasetVersion: prevRun.datasetVersionId !== thisRun.datasetVersionId,
      split: prevRun.splitId !== thisRun.splitId,
      before: { datasetVersionId: prevRun.datasetVersionId, splitId: prevRun.splitId },
      after: { datasetVersionId: thisRun.datasetVersionId, splitId: thisRun.splitId },
    },
    testMetrics: keys.map((k) => ({
      key: k,
      before: typeof before[k] === "number" ? before[k] : null,
      after: typeof after[k] === "number" ? after[k] : null,
    })),
    newDecisionIds: lineage.decisions.filter((d) => !prevDecisionIds.has(d.id)).map((d) => d.id),
    previousEvaluationIds: prev.evaluations.map((e) => e.id),
  };
  return { changes, previousKeys };
}
