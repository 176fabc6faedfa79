/**
 * Read side of lineage: the graph of one model version (found by model name and version number), and the decisions
 * timeline of a run with the measured effect of each fork against its parent.
 */
import { and, asc, eq, inArray } from "drizzle-orm";
import { checkpoints, decisions, evaluations, metrics, runs, users } from "@/db/schema";
import { runAncestry } from "@/server/lineage/ancestry";
import { notFound } from "@/server/errors";
import type { DbOrTx } from "@/db/client";
import { findModelVersion } from "@/server/registry/queries";
import { collectLineage } from "@/server/lineage/collect";
import { lineageGraph } from "@/server/lineage/graph";

export function modelVersionLineage(db: DbOrTx, modelName: string, version: number) {
  const { model, version: v } = findModelVersion(db, modelName, version);
  const facts = collectLineage(db, v.id);
  return { model: model.name, version: v.version, modelVersionId: v.id, weightsSha256: v.weightsSha256, graph: lineageGraph(facts) };
}

const EFFECT_KEYS = ["val_loss", "val_accuracy", "val_mae"] as const;
type EpochValue = { epoch: number; value: number };

function epochSeries(db: DbOrTx, runIds: number[]): Map<number, Record<string, EpochValue[]>> {
  const out = new Map<number, Record<string, EpochValue[]>>();
  if (runIds.length === 0) return out;
  const rows = db
    .select({ runId: metrics.runId, key: metrics.key, epoch: metrics.epoch, value: metrics.value })
    .from(metrics)
    .where(and(inArray(metrics.runId, runIds), inArray(metrics.key, [...EFFECT_KEYS])))
    .orderBy(asc(metrics.step))
    .all();
  for (const r of rows) ((out.get(r.runId) ?? out.set(r.runId, {}).get(r.runId)!)[r.key] ??= []).push({ epoch: r.epoch, value: r.value });
  return out;
}

function testAccuracy(db: DbOrTx, runId: number): number | null {
  const e = db
    .select({ m: evaluations.metricsJson })
    .from(evaluations)
    .where(and(eq(evaluations.runId, runId), eq(evaluations.partition, "test")))
    .orderBy(asc(evaluations.id))
    .all()
    .at(-1);
  const v = e ? (JSON.parse(e.m) as { accuracy?: unknown }).accuracy : undefined;
  return typeof v === "number" ? v : null;
}

/** How a child run compares with its parent: each validation metric at the last epoch both reached, and on the test partition. */
function effectOf(series: Map<number, Record<string, EpochValue[]>>, db: DbOrTx, parentId: number, childId: number) {
  const p = series.get(parentId) ?? {},
    c = series.get(childId) ?? {};
  const perMetric = EFFECT_KEYS.flatMap((key) => {
    const ps = p[key] ?? [],
      cs = c[key] ?? [];
    const common = cs.filter((x) => ps.some((y) => y.epoch === x.epoch)).map((x) => x.epoch);
    const at = common.length ? Math.max(...common) : null;
    if (at === null) return [];
    const parentValue = ps.find((y) => y.epoch === at)!.value,
      childValue = cs.find((y) => y.epoch === at)!.value;
    return [{ key, epoch: at, parentValue, childValue, delta: childValue - parentValue }];
  });
  const pa = testAccuracy(db, parentId),
    ca = testAccuracy(db, childId);
  return { metrics: perMetric, testAccuracy: pa !== null && ca !== null ? { parentValue: pa, childValue: ca, delta: ca - pa } : null };
}

/**
 * The decisions that shaped a run, oldest first: its ancestors' (through forks, re-runs, fine-tunes), its own, and
 * its direct children's, each child with the effect of its changes against its parent at the same epoch. The
 * validation curves of this run and its parent come along so the page can overlay them.
 */
export function decisionTimeline(db: DbOrTx, runId: number) {
  const chain = runAncestry(db, runId);
  if (chain.length === 0) notFound(`run ${runId}`);
  const children = db.select().from(runs).where(eq(runs.parentRunId, runId)).orderBy(asc(runs.id)).all();
  const ordered = [...chain].reverse().concat(children);
  const ids = ordered.map((r) => r.id);
  const ds = db
    .select({ d: decisions, author: users.name })
    .from(decisions)
    .innerJoin(users, eq(users.id, decisions.authorId))
    .where(inArray(decisions.runId, ids))
    .orderBy(asc(decisions.id))
    .all();
  const authors = new Map(
    db
      .select({ id: users.id, name: users.name })
      .from(users)
      .where(inArray(users.id, [...new Set(ordered.map((r) => r.createdBy))]))
      .all()
      .map((u) => [u.id, u.name]),
  );
  const series = epochSeries(db, ids);
  const self = chain[0]!;
  // A branch continues a checkpoint of its parent: the timeline names the epoch it continues from.
  const branchCkIds = ordered.flatMap((r) => (r.origin === "branch" && r.parentCheckpointId !== null ? [r.parentCheckpointId] : []));
  const branchEpochs = new Map(
    branchCkIds.length
      ? db
          .select({ id: checkpoints.id, epoch: checkpoints.epoch })
          .from(checkpoints)
          .where(inArray(checkpoints.id, branchCkIds))
          .all()
          .map((c) => [c.id, c.epoch])
      : [],
  );
  // A planned decision pairs with its run's schedule entry by order (createRun writes one per entry, in schedule order).
  const scheduleEpochs = new Map<number, number[]>();
  const plannedEpoch = (r: (typeof ordered)[number], own: { d: { id: number; kind: string } }[], decisionId: number) => {
    let epochs = scheduleEpochs.get(r.id);
    if (!epochs) {
      epochs = ((JSON.parse(r.configJson) as { schedule?: { atEpoch: number }[] }).schedule ?? []).map((e) => e.atEpoch);
      scheduleEpochs.set(r.id, epochs);
    }
    return epochs[own.filter((x) => x.d.kind === "planned").findIndex((x) => x.d.id === decisionId)] ?? null;
  };
  return {
    runId,
    parentRunId: self.parentRunId,
    entries: ordered.map((r) => ({
      runId: r.id,
      runName: r.name,
      origin: r.origin,
      relation: r.id === runId ? ("this run" as const) : chain.some((a) => a.id === r.id) ? ("ancestor" as const) : ("child" as const),
      parentRunId: r.parentRunId,
      author: authors.get(r.createdBy) ?? "?",
      createdAt: r.createdAt,
      status: r.status,
      effect: r.parentRunId !== null && ids.includes(r.parentRunId) ? effectOf(series, db, r.parentRunId, r.id) : null,
      branchedFromEpoch: r.origin === "branch" && r.parentCheckpointId !== null ? (branchEpochs.get(r.parentCheckpointId) ?? null) : null,
      decisions: ds
        .filter(({ d }) => d.runId === r.id)
        .map(({ d, author }, _i, own) => ({
          id: d.id,
          kind: d.kind,
          path: d.path,
          /** A planned decision: the epoch boundary its schedule entry is planned at. */
          atEpoch: d.kind === "planned" ? plannedEpoch(r, own, d.id) : null,
          oldValue: d.kind === "initial" || d.oldValueJson === null ? null : (JSON.parse(d.oldValueJson) as unknown),
          newValue: d.kind === "initial" || d.newValueJson === null ? null : (JSON.parse(d.newValueJson) as unknown),
          rationale: d.rationale,
          author,
          createdAt: d.createdAt,
          correctsDecisionId: d.correctsDecisionId,
          correctedBy: ds.filter((x) => x.d.correctsDecisionId === d.id).map((x) => x.d.id),
        })),
    })),
    curves: { self: series.get(runId) ?? {}, parent: self.parentRunId !== null ? (series.get(self.parentRunId) ?? {}) : null },
  };
}
export type DecisionTimeline = ReturnType<typeof decisionTimeline>;
