/**
 * Lineage on the store (issue 16): one model version's ancestry on SQLite and PostgreSQL under one fixed clock gives the
 * same lineage facts and graph, decision timeline (with each child's effect against its parent), PROV-JSON document
 * and sha256, lineage.export ledger event (seq, payload, chain hash) and refusals. The ancestry: a sweep's trial chosen
 * as the winner (run 1), a fork of it with a changed learning rate and a reason (run 2), a fine-tune from run 2's
 * checkpoint (run 3, registered as version 1 through registerModelVersion); decisions including a note and a
 * correction; validation metrics at shared steps (ties on step are broken by run and key in byte order on both
 * stores); evaluations on the test partition; a data version and split; a script's declared dataset inputs. Runs, checkpoints and the rest are seeded as rows (runs are ported by
 * someone else at the same time).
 */
import { describe, expect, it } from "vitest";
import { exec, pgStore, reader, transact, type Store } from "@/db/store";
import type { Db } from "@/db/client";
import { collectLineage, collectLineageOn } from "@/server/lineage/collect";
import { decisionTimeline, modelVersionLineage } from "@/server/lineage/queries";
import { exportLineageProv } from "@/server/lineage/service";
import { registerModelVersion } from "@/server/registry/service";
import { describePg } from "./pg-test-env";
import { fixedDateForEachTest, refusal, seedPeopleAndDataset, sqliteForSuite, TEST_PEOPLE, twoPgServersForSuite } from "./store-test-env";

const AT = "2026-12-05T09:00:00.000Z";
const { engineer, reviewer, auditor } = TEST_PEOPLE;
const DATASET_ID = 1;
const MODEL = "iris-lineage";

const config = (learningRate: number, fineTune?: { parentCheckpointId: number; freezeLayers: number; replaceHead: boolean }) =>
  JSON.stringify({
    data: { dataset: { datasetId: String(DATASET_ID) } },
    model: { layers: [{ type: "dense", units: 8 }] },
    training: { optimizer: { name: "adam" }, learningRate, batchSize: 16, epochs: 2, seed: 7 },
    ...(fineTune ? { fineTune } : {}),
  });

const at = (minute: number) => `2026-12-05T08:${String(minute).padStart(2, "0")}:00.000Z`;

/** The ancestry (see the header), written as rows. */
async function seed(store: Store): Promise<void> {
  await seedPeopleAndDataset(store, { at: AT, passwordHash: "x", datasetId: DATASET_ID });
  const t = store.tables;
  await transact(store, function* (tx) {
    yield* exec(tx.insert(t.projects).values({ id: 1, name: "Flowers", createdBy: engineer.id, createdAt: at(0) }));
    yield* exec(tx.insert(t.experiments).values({ id: 1, projectId: 1, name: "Baseline", createdBy: engineer.id, createdAt: at(0) }));
    const run = (
      id: number,
      origin: "sweep" | "fork" | "finetune",
      configJson: string,
      more: { parentRunId?: number; parentCheckpointId?: number; datasetVersionId?: number; splitId?: number },
    ) =>
      exec(
        tx.insert(t.runs).values({
          id,
          experimentId: 1,
          name: `run ${id}`,
          status: "completed",
          configJson,
          configSha256: String(id).repeat(64),
          seed: 7,
          origin,
          ...more,
          backend: "cpu",
          environmentJson: JSON.stringify({ tfjs: "4.22.0", node: "22" }),
          finalWeightsSha256: `${id}`.repeat(64),
          createdBy: engineer.id,
          createdAt: at(id),
          startedAt: at(id),
          finishedAt: at(id + 10),
        }),
      );
    yield* exec(
      tx.insert(t.datasetVersions).values({
        id: 1,
        datasetId: DATASET_ID,
        recipeJson: '{"steps":[]}',
        recipeSha256: "r".repeat(64),
        reportJson: "{}",
        sha256: "v".repeat(64),
        rowCount: 150,
        createdAt: at(0),
      }),
    );
    yield* exec(
      tx.insert(t.splits).values({
        id: 1,
        datasetVersionId: 1,
        specJson: JSON.stringify({ strategy: "stratified", seed: 7, train: 0.7, validation: 0.15, test: 0.15 }),
        manifestJson: JSON.stringify({ partitions: { train: { count: 105 }, validation: { count: 22 }, test: { count: 23 } } }),
        sha256: "s".repeat(64),
        createdAt: at(0),
      }),
    );
    yield* run(1, "sweep", config(0.01), { datasetVersionId: 1, splitId: 1 });
    yield* exec(
      tx.insert(t.sweeps).values({
        id: 1,
        experimentId: 1,
        name: "learning rates",
        specJson: "{}",
        specSha256: "5".repeat(64),
        method: "random",
        maxTrials: 2,
        status: "completed",
        createdBy: engineer.id,
        createdAt: at(0),
        winnerRunId: 1,
        winnerChosenBy: reviewer.id,
        winnerRationale: "lowest validation loss",
        winnerChosenAt: at(30),
      }),
    );
    yield* exec(tx.insert(t.sweepTrials).values({ sweepId: 1, trialIndex: 0, runId: 1, paramsJson: '{"lr":0.01}' }));
    yield* run(2, "fork", config(0.001), { parentRunId: 1, datasetVersionId: 1, splitId: 1 });
    // A dataset the fork's script declared as an input (MLflow log-inputs): a reference, not a Runledger dataset.
    for (const [id, name] of [
      [1, "iris-extra"],
      [2, "Ärzte-notes"],
    ] as const)
      yield* exec(
        tx.insert(t.runInputs).values({
          id,
          runId: 2,
          name,
          digest: `${id}`.repeat(8),
          sourceType: "local",
          source: `file:///data/${name}.csv`,
          context: "training",
          tagsJson: "{}",
          createdBy: engineer.id,
          createdAt: at(id),
        }),
      );
    const checkpoint = (id: number, runId: number, epoch: number) =>
      exec(
        tx.insert(t.checkpoints).values({
          id,
          runId,
          epoch,
          step: 20,
          sha256: `c${id}`.repeat(32),
          bytes: 100 * id,
          metricsJson: JSON.stringify({ val_loss: 0.5 / id }),
          isBest: true,
          createdAt: at(id + 10),
        }),
      );
    yield* checkpoint(1, 1, 1);
    yield* checkpoint(2, 2, 1);
    yield* run(3, "finetune", config(0.0005, { parentCheckpointId: 2, freezeLayers: 1, replaceHead: true }), {
      parentRunId: 2,
      parentCheckpointId: 2,
    });
    yield* checkpoint(3, 3, 1);
    const decision = (id: number, runId: number, kind: "initial" | "change" | "note" | "correction", more: object) =>
      exec(
        tx.insert(t.decisions).values({
          id,
          runId,
          kind,
          path: "",
          rationale: "",
          authorId: engineer.id,
          createdAt: at(id),
          ...more,
        }),
      );
    yield* decision(1, 1, "initial", { rationale: "sweep trial 0" });
    yield* decision(2, 2, "change", {
      path: "training.learningRate",
      oldValueJson: "0.01",
      newValueJson: "0.001",
      rationale: "the loss oscillates",
    });
    yield* decision(3, 2, "note", { rationale: "Zürich data looked noisy", authorId: reviewer.id });
    yield* decision(4, 2, "correction", { rationale: "it was the Ärzte data, not Zürich", correctsDecisionId: 3, authorId: reviewer.id });
    yield* decision(5, 3, "change", {
      path: "fineTune.freezeLayers",
      oldValueJson: "0",
      newValueJson: "1",
      rationale: "keep the features",
    });
    // Validation curves: both keys at the same steps, so the step order alone leaves ties.
    for (const runId of [1, 2, 3])
      for (const [step, epoch] of [
        [10, 0],
        [20, 1],
      ] as const)
        for (const key of ["val_loss", "val_accuracy", "loss"])
          yield* exec(
            tx.insert(t.metrics).values({
              runId,
              key,
              step,
              epoch,
              value: key === "val_accuracy" ? 0.5 + runId / 10 + epoch / 100 : 1 / (runId + epoch + 1),
              wallTimeMs: 1000 * step,
            }),
          );
    for (const [id, runId, checkpointId, partition, accuracy] of [
      [1, 1, 1, "test", 0.8],
      [2, 2, 2, "test", 0.85],
      [3, 3, 3, "validation", 0.9],
      [4, 3, 3, "test", 0.93],
    ] as const)
      yield* exec(
        tx.insert(t.evaluations).values({
          id,
          runId,
          checkpointId,
          partition,
          dataSha256: "d".repeat(64),
          metricsJson: JSON.stringify({ accuracy }),
          createdBy: engineer.id,
          createdAt: at(40 + id),
        }),
      );
  });
}

async function scenario(store: Store, sqliteDb?: Db) {
  await seed(store);
  const registered = await registerModelVersion(
    { db: store, actor: engineer },
    { runId: 3, modelName: MODEL, checkpoint: "best", description: "" },
  );
  const refusals = [
    await refusal(modelVersionLineage(store, "no-such-model", 1)),
    await refusal(modelVersionLineage(store, MODEL, 9)),
    await refusal(decisionTimeline(store, 999)),
    await refusal(exportLineageProv(store, auditor, MODEL, 9)),
    await refusal(collectLineageOn(store, 999)),
  ];
  const facts = await collectLineageOn(store, registered.modelVersionId);
  const lineage = await modelVersionLineage(store, MODEL, 1);
  const timelines = [await decisionTimeline(store, 2), await decisionTimeline(store, 3), await decisionTimeline(store, 1)];
  const exported = await exportLineageProv(store, auditor, MODEL, 1);
  const { auditEvents } = store.tables;
  return {
    registered,
    refusals,
    facts,
    /** The synchronous SQLite form (the auditor's report) reads the same facts. */
    syncFacts: sqliteDb ? collectLineage(sqliteDb, registered.modelVersionId) : undefined,
    lineage,
    timelines,
    /** Byte for byte, key order included. */
    timelineText: JSON.stringify(timelines),
    exported,
    ledger: await reader(store).select().from(auditEvents).orderBy(auditEvents.seq),
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function behaviourCases(storeOf: () => Store, sqliteDbOf?: () => Db): void {
  fixedDateForEachTest(AT);

  it("reads the lineage, the decision timeline with effects and exports PROV-JSON, recording the export", async () => {
    const store = storeOf();
    const outcome = await scenario(store, sqliteDbOf?.());
    outcomes[store.dialect] = outcome;
    expect(outcome.refusals).toEqual([
      { kind: "not_found", message: 'model "no-such-model" was not found' },
      { kind: "not_found", message: `version 9 of model "${MODEL}" was not found` },
      { kind: "not_found", message: "run 999 was not found" },
      { kind: "not_found", message: `version 9 of model "${MODEL}" was not found` },
      { kind: "not_found", message: "model version 999 was not found" },
    ]);
    expect(outcome.facts.runs.map((r) => [r.id, r.origin, r.sweep?.sweepName ?? null, r.sweep?.chosen?.by ?? null])).toEqual([
      [3, "finetune", null, null],
      [2, "fork", null, null],
      [1, "sweep", "learning rates", reviewer.name],
    ]);
    expect(outcome.facts.decisions.map((d) => [d.id, d.kind, d.correctsDecisionId])).toEqual([
      [1, "initial", null],
      [2, "change", null],
      [3, "note", null],
      [4, "correction", 3],
      [5, "change", null],
    ]);
    expect(outcome.facts.evaluations.map((e) => e.id)).toEqual([3, 4]);
    expect(outcome.facts.datasetInputs.map((i) => i.name)).toEqual(["iris-extra", "Ärzte-notes"]);
    expect(outcome.facts.splits.map((x) => x.counts)).toEqual([{ train: 105, validation: 22, test: 23 }]);
    expect(outcome.facts.datasetVersions.map((v) => v.id)).toEqual([1]);
    expect(outcome.facts.checkpoints.map((c) => c.id)).toEqual([2, 3]);
    if (outcome.syncFacts) expect(outcome.syncFacts).toEqual(outcome.facts);
    const [ofFork] = outcome.timelines;
    expect(ofFork!.entries.map((e) => [e.runId, e.relation, e.effect?.testAccuracy?.delta ?? null])).toEqual([
      [1, "ancestor", null],
      [2, "this run", expect.closeTo(0.05, 10)],
      [3, "child", expect.closeTo(0.08, 10)],
    ]);
    expect(ofFork!.entries[1]!.effect!.metrics.map((m) => [m.key, m.epoch])).toEqual([
      ["val_loss", 1],
      ["val_accuracy", 1],
    ]);
    expect(ofFork!.entries[1]!.decisions.find((d) => d.id === 3)!.correctedBy).toEqual([4]);
    expect(Object.keys(ofFork!.curves.self)).toEqual(["val_accuracy", "val_loss"]);
    expect(outcome.exported.fileName).toBe(`${MODEL}-v1.prov.json`);
    const exportEvent = outcome.ledger.at(-1)!;
    expect(exportEvent).toMatchObject({ action: "lineage.export", entityType: "modelVersion", entityId: "1", actorId: auditor.id });
    expect(JSON.parse(exportEvent.payload)).toMatchObject({
      model: MODEL,
      version: 1,
      format: "PROV-JSON",
      sha256: outcome.exported.sha256,
    });
    expect(outcome.ledger.map((e) => e.action)).toEqual(["model.create", "modelVersion.create", "lineage.export"]);
  });
}

describe("lineage on SQLite", () => {
  const sqlite = sqliteForSuite("rl-lineage-store-");
  behaviourCases(
    () => sqlite.store(),
    () => sqlite.db(),
  );
});

describePg("lineage on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  behaviourCases(() => pgStore(pg.a()));

  it("gives the same facts, graph, timelines, PROV-JSON and sha256, refusals and ledger (seq, payloads, hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    const { syncFacts: _s, ...sqlite } = outcomes.sqlite!;
    const { syncFacts: _p, ...pg } = outcomes.pg!;
    expect(pg).toEqual(sqlite);
    expect(pg.timelineText).toBe(sqlite.timelineText);
    expect(JSON.stringify(pg.exported.document)).toBe(JSON.stringify(sqlite.exported.document));
    expect(pg.ledger.at(-1)!.chainHash).toBe(sqlite.ledger.at(-1)!.chainHash);
  });
});
