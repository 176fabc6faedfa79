/**
 * Read side of lineage: the graph of one model version (found by model name and version number), and the decisions
 * timeline of a run with the measured effect of each fork against its parent.
 *
 * On the store (issue 16, db/store.ts): each is one read part awaited on SQLite or PostgreSQL (registry/on-store.ts
 * readOnStore); rows come in id order, metric points in step order (ties by run and key, in byte order on both).
 */
import { and, asc, eq, inArray, type SQL, type SQLWrapper } from "drizzle-orm";
import { runsAncestryIn } from "@/server/lineage/ancestry";
import { notFound } from "@/server/errors";
import type { Db, Tx } from "@/db/client";
import { asStore, byteOrder, rows, type Store, type StoreTables, type TxBody } from "@/db/store";
import { findModelVersionIn } from "@/server/registry/queries";
import { readOnStore } from "@/server/registry/on-store";
import { collectLineageIn } from "@/server/lineage/collect";
import { lineageGraph } from "@/server/lineage/graph";

export function modelVersionLineage(db: Store | Db, modelName: string, version: number) {
  return readOnStore(asStore(db), function* (q, t) {
    const { model, version: v } = yield* findModelVersionIn(q, t, modelName, version);
    const facts = yield* collectLineageIn(q, t, v.id);
    return { model: model.name, version: v.version, modelVersionId: v.id, weightsSha256: v.weightsSha256, graph: lineageGraph(facts) };
  });
}

type ByteOrder = (text: SQLWrapper) => SQL;
type TxBodyResult<B> = B extends TxBody<infer T> ? T : never;

const EFFECT_KEYS = ["val_loss", "val_accuracy", "val_mae"] as const;
type EpochValue = { epoch: number; value: number };

function* epochSeries(q: Tx, t: StoreTables, byte: ByteOrder, runIds: number[]): TxBody<Map<number, Record<string, EpochValue[]>>> {
  const out = new Map<number, Record<string, EpochValue[]>>();
  if (runIds.length === 0) return out;
  const { metrics } = t;
  // Ties on step broken by run and key, so each run's record lists its keys in the same order on both stores.
  const points = yield* rows(
    q
      .select({ runId: metrics.runId, key: metrics.key, epoch: metrics.epoch, value: metrics.value })
      .from(metrics)
      .where(and(inArray(metrics.runId, runIds), inArray(metrics.key, [...EFFECT_KEYS])))
      .orderBy(asc(metrics.step), asc(metrics.runId), byte(metrics.key)),
  );
  for (const r of points) ((out.get(r.runId) ?? out.set(r.runId, {}).get(r.runId)!)[r.key] ??= []).push({ epoch: r.epoch, value: r.value });
  return out;
}

function* testAccuracy(q: Tx, t: StoreTables, runId: number): TxBody<number | null> {
  const { evaluations } = t;
  const e = (yield* rows(
    q
      .select({ m: evaluations.metricsJson })
      .from(evaluations)
      .where(and(eq(evaluations.runId, runId), eq(evaluations.partition, "test")))
      .orderBy(asc(evaluations.id)),
  )).at(-1);
  const v = e ? (JSON.parse(e.m) as { accuracy?: unknown }).accuracy : undefined;
  return typeof v === "number" ? v : null;
}

/** How a child run compares with its parent: each validation metric at the last epoch both reached, and on the test partition. */
function* effectOf(q: Tx, t: StoreTables, series: Map<number, Record<string, EpochValue[]>>, parentId: number, childId: number) {
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
  const pa = yield* testAccuracy(q, t, parentId),
    ca = yield* testAccuracy(q, t, childId);
  return { metrics: perMetric, testAccuracy: pa !== null && ca !== null ? { parentValue: pa, childValue: ca, delta: ca - pa } : null };
}

/**
 * The decisions that shaped a run, oldest first: its ancestors' (through forks, re-runs, fine-tunes), its own, and
 * its direct children's, each child with the effect of its changes against its parent at the same epoch. The
 * validation curves of this run and its parent come along so the page can overlay them.
 */
export function decisionTimeline(db: Store | Db, runId: number) {
  const store = asStore(db);
  return readOnStore(store, (q, t) => decisionTimelineIn(q, t, (text) => byteOrder(store, text), runId));
}
export type DecisionTimeline = Awaited<ReturnType<typeof decisionTimeline>>;

function* decisionTimelineIn(q: Tx, t: StoreTables, byte: ByteOrder, runId: number) {
  const { checkpoints, decisions, runs, users } = t;
  const chain = yield* runsAncestryIn(q, t, [runId]);
  if (chain.length === 0) notFound(`run ${runId}`);
  const children = yield* rows(q.select().from(runs).where(eq(runs.parentRunId, runId)).orderBy(asc(runs.id)));
  const ordered = [...chain].reverse().concat(children);
  const ids = ordered.map((r) => r.id);
  const ds = yield* rows(
    q
      .select({ d: decisions, author: users.name })
      .from(decisions)
      .innerJoin(users, eq(users.id, decisions.authorId))
      .where(inArray(decisions.runId, ids))
      .orderBy(asc(decisions.id)),
  );
  const authors = new Map(
    (yield* rows(
      q
        .select({ id: users.id, name: users.name })
        .from(users)
        .where(inArray(users.id, [...new Set(ordered.map((r) => r.createdBy))])),
    )).map((u) => [u.id, u.name]),
  );
  const series = yield* epochSeries(q, t, byte, ids);
  const self = chain[0]!;
  // A branch continues a checkpoint of its parent: the timeline names the epoch it continues from.
  const branchCkIds = ordered.flatMap((r) => (r.origin === "branch" && r.parentCheckpointId !== null ? [r.parentCheckpointId] : []));
  const branchEpochs = new Map(
    branchCkIds.length
      ? (yield* rows(
          q.select({ id: checkpoints.id, epoch: checkpoints.epoch }).from(checkpoints).where(inArray(checkpoints.id, branchCkIds)),
        )).map((c) => [c.id, c.epoch])
      : [],
  );
  // Each child's effect against its parent, read before the mapping below (a part reads only through yield*).
  const effects = new Map<number, TxBodyResult<ReturnType<typeof effectOf>>>();
  for (const r of ordered)
    if (r.parentRunId !== null && ids.includes(r.parentRunId)) effects.set(r.id, yield* effectOf(q, t, series, r.parentRunId, r.id));
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
      effect: effects.get(r.id) ?? null,
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
