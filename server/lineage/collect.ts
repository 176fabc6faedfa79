/**
 * Gathers the facts of one model version's lineage, in one read: the chain of runs (through forks, re-runs and
 * fine-tunes) with their data (dataset → version → split), configuration, decisions and authors; the version's
 * checkpoint and its evaluations; fine-tune parent checkpoints; promotion requests with signatures; alias moves.
 * The graph view (graph.ts) and the PROV-JSON export (prov.ts) are two renderings of these same facts. The chain
 * of runs is the same ancestry the four-eyes rule uses (ancestry.ts), so every run whose weights or configuration
 * the version descends from is present.
 *
 * On the store (issue 16, db/store.ts): the read is one transaction part (collectLineageIn, as registry/on-store.ts
 * describes); collectLineageOn awaits it on SQLite or PostgreSQL, collectLineage runs it synchronously on a SQLite
 * handle for the callers not on the store yet (the auditor's report). Every list is read in id order.
 */
import { and, asc, eq, inArray } from "drizzle-orm";
import type { Db, DbOrTx, Tx } from "@/db/client";
import { asStore, row, rows, type Store, type StoreTables, type TxBody } from "@/db/store";
import type { TrainingConfig } from "@/contracts/training-config";
import { isApiRunConfig } from "@/contracts/mlflow/types";
import { versionRunAncestryIn } from "./ancestry";
import { notFound } from "@/server/errors";
import { sweepOfRunIn, type SweepOfRun } from "@/server/sweeps/queries";
import { onSqlite, readOnStore } from "@/server/registry/on-store";
import { promotionSignaturesIn } from "@/server/registry/queries";

export type Person = { id: number; name: string; role: string };

const parse = <T>(s: string | null): T | null => (s === null ? null : (JSON.parse(s) as T));

/** A git commit as a run records it (the run page's Versions line, app/_components/versions-text.ts, reads the same). */
const COMMIT = /^[0-9a-f]{7,64}$/;
const text = (v: unknown): string | null => (typeof v === "string" && v.trim() ? v : null);

/**
 * The software a run's environment records (server/runs/app-provenance.ts, persist-events.ts recordStartedTx): the
 * Runledger build (appVersion, and appCommit when it was known) and TensorFlow.js. Whatever the environment lacks is
 * null, never a guess: a run logged through the MLflow-compatible API has no environment; a run started before
 * appVersion was recorded has none; a commit an older run recorded as "unknown" (git unavailable) is not a commit.
 */
export function recordedSoftware(env: Record<string, unknown> | null) {
  const commit = text(env?.appCommit);
  return {
    appVersion: text(env?.appVersion),
    appCommit: commit !== null && COMMIT.test(commit) ? commit : null,
    tfjsVersion: text(env?.tfjs),
  };
}

function configSummary(c: TrainingConfig): string {
  // A run logged by a script through the tracking API has no training config: its params are decisions of kind "param".
  if (isApiRunConfig(c)) return "logged through the MLflow-compatible API (its params are decisions)";
  const layers =
    c.model.layers.map((l) => ("units" in l ? `${l.type}(${l.units})` : "filters" in l ? `${l.type}(${l.filters})` : l.type)).join(" → ") ||
    "no hidden layers";
  return `${layers}; ${c.training.optimizer.name}, learning rate ${c.training.learningRate}, batch ${c.training.batchSize}, ${c.training.epochs} epochs, seed ${c.training.seed}`;
}

export function* collectLineageIn(q: Tx, t: StoreTables, modelVersionId: number) {
  const { checkpoints, datasets, datasetVersions, decisions, evaluations, modelAliasEvents, modelVersions, models } = t;
  const { promotionRequests, runInputs, splits, users } = t;
  const version = yield* row(q.select().from(modelVersions).where(eq(modelVersions.id, modelVersionId)));
  if (!version) notFound(`model version ${modelVersionId}`);
  const model = (yield* row(q.select().from(models).where(eq(models.id, version.modelId))))!;
  // The version's run, its checkpoint's run, and their ancestors through parent runs AND parent checkpoints.
  const chain = yield* versionRunAncestryIn(q, t, version);
  const runIds = chain.map((r) => r.id);

  const decisionRows = yield* rows(q.select().from(decisions).where(inArray(decisions.runId, runIds)).orderBy(asc(decisions.id)));
  const dvIds = [...new Set(chain.map((r) => r.datasetVersionId).filter((x): x is number => x !== null))];
  const dvs = dvIds.length
    ? yield* rows(q.select().from(datasetVersions).where(inArray(datasetVersions.id, dvIds)).orderBy(asc(datasetVersions.id)))
    : [];
  const dsIds = [...new Set(dvs.map((v) => v.datasetId))];
  const dss = dsIds.length ? yield* rows(q.select().from(datasets).where(inArray(datasets.id, dsIds)).orderBy(asc(datasets.id))) : [];
  const splitIds = [...new Set(chain.map((r) => r.splitId).filter((x): x is number => x !== null))];
  const splitRows = splitIds.length ? yield* rows(q.select().from(splits).where(inArray(splits.id, splitIds)).orderBy(asc(splits.id))) : [];

  // The version's own checkpoint, plus every fine-tune parent checkpoint on the chain.
  const ckIds = [...new Set([version.checkpointId, ...chain.map((r) => r.parentCheckpointId).filter((x): x is number => x !== null)])];
  const ckRows = yield* rows(q.select().from(checkpoints).where(inArray(checkpoints.id, ckIds)).orderBy(asc(checkpoints.id)));
  const evalRows = yield* rows(
    q.select().from(evaluations).where(eq(evaluations.checkpointId, version.checkpointId)).orderBy(asc(evaluations.id)),
  );
  const requestRows = yield* rows(
    q.select().from(promotionRequests).where(eq(promotionRequests.modelVersionId, version.id)).orderBy(asc(promotionRequests.id)),
  );
  const sigRows = yield* promotionSignaturesIn(
    q,
    t,
    requestRows.map((r) => r.id),
  );
  const aliasRows = yield* rows(
    q
      .select()
      .from(modelAliasEvents)
      .where(and(eq(modelAliasEvents.modelId, model.id), eq(modelAliasEvents.modelVersionId, version.id)))
      .orderBy(asc(modelAliasEvents.id)),
  );
  const inputRows = yield* rows(q.select().from(runInputs).where(inArray(runInputs.runId, runIds)).orderBy(asc(runInputs.id)));
  // Read before the mapping below (a part reads only through yield*, which a map callback cannot do).
  const sweepOf = new Map<number, SweepOfRun | null>();
  for (const r of chain) if (r.origin === "sweep") sweepOf.set(r.id, yield* sweepOfRunIn(q, t, r.id));

  const peopleIds = [
    version.createdBy,
    ...chain.map((r) => r.createdBy),
    ...decisionRows.map((d) => d.authorId),
    ...requestRows.map((r) => r.requestedBy),
    ...sigRows.map((s) => s.userId),
    ...aliasRows.map((a) => a.movedBy),
  ];
  const people = new Map<number, Person>(
    (yield* rows(
      q
        .select({ id: users.id, name: users.name, role: users.role })
        .from(users)
        .where(inArray(users.id, [...new Set(peopleIds)])),
    )).map((u) => [u.id, u]),
  );
  const person = (id: number): Person => people.get(id) ?? { id, name: `user #${id}`, role: "unknown" };

  return {
    model: { id: model.id, name: model.name, approvalsRequired: model.approvalsRequired },
    version: {
      id: version.id,
      version: version.version,
      runId: version.runId,
      checkpointId: version.checkpointId,
      weightsSha256: version.weightsSha256,
      createdAt: version.createdAt,
      createdBy: person(version.createdBy),
    },
    /** Nearest first: the version's run, then its parents (parent run and parent checkpoint's run), and so on. */
    runs: chain.map((r) => {
      const config = JSON.parse(r.configJson) as TrainingConfig;
      const software = recordedSoftware(parse<Record<string, unknown>>(r.environmentJson));
      return {
        id: r.id,
        name: r.name,
        status: r.status,
        origin: r.origin,
        parentRunId: r.parentRunId,
        parentCheckpointId: r.parentCheckpointId,
        configSha256: r.configSha256,
        configSummary: configSummary(config),
        fineTune: config.fineTune,
        seed: r.seed,
        backend: r.backend,
        /** Which build of Runledger trained the run, and with which TensorFlow.js: null when not recorded. */
        appVersion: software.appVersion,
        appCommit: software.appCommit,
        tfjsVersion: software.tfjsVersion,
        datasetVersionId: r.datasetVersionId,
        splitId: r.splitId,
        author: person(r.createdBy),
        createdAt: r.createdAt,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
        finalWeightsSha256: r.finalWeightsSha256,
        /** A sweep's trial: its sweep, the number of trials, and the engineer's choice of it as the winner (if chosen). */
        sweep: r.origin === "sweep" ? (sweepOf.get(r.id) ?? null) : null,
      };
    }),
    decisions: decisionRows.map((d) => ({
      id: d.id,
      runId: d.runId,
      kind: d.kind,
      path: d.path,
      oldValue: d.kind === "initial" ? null : parse<unknown>(d.oldValueJson),
      newValue: d.kind === "initial" ? null : parse<unknown>(d.newValueJson),
      rationale: d.rationale,
      correctsDecisionId: d.correctsDecisionId,
      author: person(d.authorId),
      createdAt: d.createdAt,
    })),
    /** Datasets a script declared as inputs of an API run (MLflow log-inputs): references, not Runledger datasets. */
    datasetInputs: inputRows.map((i) => ({
      id: i.id,
      runId: i.runId,
      name: i.name,
      digest: i.digest,
      sourceType: i.sourceType,
      source: i.source,
      context: i.context,
    })),
    datasets: dss.map((d) => ({
      id: d.id,
      name: d.name,
      source: d.source,
      origin: d.origin,
      licence: d.licence,
      sha256: d.sha256,
      rowCount: d.rowCount,
      createdAt: d.createdAt,
    })),
    datasetVersions: dvs.map((v) => ({
      id: v.id,
      datasetId: v.datasetId,
      recipe: JSON.parse(v.recipeJson) as unknown,
      recipeSha256: v.recipeSha256,
      sha256: v.sha256,
      rowCount: v.rowCount,
      createdAt: v.createdAt,
    })),
    splits: splitRows.map((s) => {
      const manifest = JSON.parse(s.manifestJson) as { partitions?: Record<string, { count?: number }> };
      const counts = Object.fromEntries(Object.entries(manifest.partitions ?? {}).map(([k, p]) => [k, p.count ?? null]));
      return {
        id: s.id,
        datasetVersionId: s.datasetVersionId,
        spec: JSON.parse(s.specJson) as { strategy?: string; seed?: number; train?: number; validation?: number; test?: number },
        counts,
        sha256: s.sha256,
        createdAt: s.createdAt,
      };
    }),
    checkpoints: ckRows.map((c) => ({
      id: c.id,
      runId: c.runId,
      epoch: c.epoch,
      step: c.step,
      sha256: c.sha256,
      bytes: c.bytes,
      isBest: c.isBest,
      metrics: JSON.parse(c.metricsJson) as Record<string, number>,
      createdAt: c.createdAt,
    })),
    evaluations: evalRows.map((e) => ({
      id: e.id,
      runId: e.runId,
      checkpointId: e.checkpointId,
      splitId: e.splitId,
      partition: e.partition,
      dataSha256: e.dataSha256,
      metrics: JSON.parse(e.metricsJson) as Record<string, unknown>,
      createdAt: e.createdAt,
    })),
    promotionRequests: requestRows.map((r) => ({
      id: r.id,
      alias: r.alias,
      status: r.status,
      rationale: r.rationale,
      recordSha256: r.recordSha256,
      evaluationId: r.evaluationId,
      requestedBy: person(r.requestedBy),
      createdAt: r.createdAt,
      decidedAt: r.decidedAt,
      approvalsRequired: r.approvalsRequired,
    })),
    signatures: sigRows.map((s) => ({
      id: s.id,
      requestId: s.recordId,
      meaning: s.meaning,
      printedName: s.printedName,
      signer: person(s.userId),
      recordSha256: s.recordSha256,
      comment: s.comment,
      createdAt: s.createdAt,
    })),
    aliasMoves: aliasRows.map((a) => ({
      id: a.id,
      alias: a.alias,
      promotionRequestId: a.promotionRequestId,
      movedBy: person(a.movedBy),
      at: a.createdAt,
    })),
  };
}

/** collectLineageIn on SQLite or PostgreSQL, awaited. */
export function collectLineageOn(store: Store | Db, modelVersionId: number): Promise<LineageFacts> {
  return readOnStore(asStore(store), (q, t) => collectLineageIn(q, t, modelVersionId));
}

/** collectLineageIn, synchronously on a SQLite handle (the auditor's report, not on the store yet). */
export function collectLineage(db: DbOrTx, modelVersionId: number): LineageFacts {
  return onSqlite(db, (q, t) => collectLineageIn(q, t, modelVersionId));
}
export type LineageFacts = TxBodyResult<ReturnType<typeof collectLineageIn>>;
type TxBodyResult<B> = B extends TxBody<infer T> ? T : never;
