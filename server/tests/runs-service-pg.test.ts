/**
 * The runs service on the store (issue 16): creating runs (a new run with planned decisions, a fork with changed
 * settings and their reasons, a re-run, a run by dataset id), tagging, annotating, cancelling, resuming and the run
 * reads (list, detail, metric points, the record `show` prints) give the same rows, refusals and ledger rows (payloads, seq, chain hashes, under
 * one fixed clock) on SQLite and PostgreSQL. On PostgreSQL, through two pools, where a check precedes a write (inside
 * the transaction, under the ledger lock): the same tag added at once gives one row and conflicts, runs created at
 * once without a name get distinct default names, one run renamed at once gives run.annotate events whose from/to
 * chain; seq stays gapless.
 */
import { describe, expect, it, vi } from "vitest";
import { and, eq } from "drizzle-orm";
import { byteOrder, exec, pgStore, reader, rows, transact, type Store } from "@/db/store";
import type { SignedInActor } from "@/server/app-context/service-context";
import { fileArtifactStore, type ArtifactStore } from "@/server/artifacts/store";
import { resolveDatasetRow } from "@/server/datasets/service";
import { createExperiment, createProject } from "@/server/projects/service";
import { annotateRun } from "@/server/runs/annotate";
import { getRun, listRuns, metricPoints } from "@/server/runs/queries";
import { runRecord } from "@/server/runs/run-record";
import { addRunTag, cancelRun, createRunOnStore, launchRun, removeRunTag, resumeInterruptedRun } from "@/server/runs/service";
import { describePg } from "./pg-test-env";
import {
  fixedDateForEachTest,
  refusal,
  seedPeople,
  sqliteForSuite,
  TEST_PEOPLE,
  twoPgServersForSuite,
  tempDirForSuite,
} from "./store-test-env";
import { irisConfig } from "./test-app";

/**
 * Holds each run creation after its dataset check until `expected` creations have reached it, then releases them
 * together, so the race test's creations start their transactions at the same moment. `expected` 0: no hold.
 */
const datasetBarrier = await vi.hoisted(async () => (await import("./release-together")).releaseTogether());
vi.mock("@/server/datasets/service", async (importOriginal) => {
  const real = await importOriginal<typeof import("@/server/datasets/service")>();
  return {
    ...real,
    resolveDatasetRow: async (...args: Parameters<typeof real.resolveDatasetRow>) => {
      const found = await real.resolveDatasetRow(...args);
      await datasetBarrier.arrive();
      return found;
    },
  };
});

const AT = "2026-12-05T01:30:00.000Z";
const { engineer, reviewer, auditor } = TEST_PEOPLE;

/** Stands in for the orchestrator (still SQLite only): records what it is handed. */
function fakeOrchestrator(opts: { trainsHere: boolean }) {
  const launched: number[] = [];
  const cancelled: number[] = [];
  return {
    launched,
    cancelled,
    launch: async (id: number) => (launched.push(id), true),
    cancel: async (id: number) => (cancelled.push(id), opts.trainsHere),
    resumeInterrupted: async () => true,
  };
}

async function scenario(store: Store, artifacts: ArtifactStore) {
  await seedPeople(store, { at: AT, passwordHash: "x" });
  const as = (actor: SignedInActor) => ({ db: store, actor, artifacts });
  const project = await createProject(as(engineer), { name: "Runs" });
  const experiment = await createExperiment(as(engineer), { projectId: project.id, name: "iris" });
  const orchestrator = fakeOrchestrator({ trainsHere: true });

  const planned = {
    ...irisConfig({ epochs: 4 }),
    schedule: [{ atEpoch: 2, set: { "training.learningRate": 0.01 }, rationale: "planned: lower the rate after warm-up" }],
  };
  const first = await launchRun(as(engineer), orchestrator, { experimentId: experiment.id, config: planned, rationale: "a baseline" });
  const fork = await createRunOnStore(as(engineer), {
    experimentId: experiment.id,
    name: "faster",
    config: { ...planned, training: { ...planned.training, learningRate: 0.05, batchSize: 32 } },
    rationale: "try a higher rate",
    changeRationales: { "training.batchSize": "bigger batches for the higher rate" },
    origin: "fork",
    parentRunId: first.id,
  });
  const rerun = await createRunOnStore(as(engineer), {
    experimentId: experiment.id,
    config: planned,
    rationale: "repeat it",
    origin: "rerun",
    parentRunId: first.id,
  });
  const { datasets, runs } = store.tables;
  const [iris] = await transact(store, (tx) => rows(tx.select({ id: datasets.id }).from(datasets)));
  const byId = await createRunOnStore(as(engineer), {
    experimentId: experiment.id,
    config: { ...irisConfig({ seed: 7 }), data: { ...irisConfig().data, dataset: { datasetId: String(iris!.id) } } },
    rationale: "the same data by its id",
  });

  const createRefusals = [
    await refusal(createRunOnStore(as(engineer), { experimentId: experiment.id, config: { model: {} }, rationale: "bad" })),
    await refusal(
      createRunOnStore(as(engineer), {
        experimentId: experiment.id,
        config: { ...irisConfig(), data: { ...irisConfig().data, dataset: { datasetId: "999" } } },
        rationale: "no such data",
      }),
    ),
    await refusal(
      createRunOnStore(as(engineer), {
        experimentId: experiment.id,
        config: { ...irisConfig(), data: { ...irisConfig().data, dataset: { datasetId: "iris" } } },
        rationale: "not an id",
      }),
    ),
    await refusal(createRunOnStore(as(engineer), { experimentId: 999, config: irisConfig(), rationale: "no such experiment" })),
    await refusal(createRunOnStore(as(reviewer), { experimentId: experiment.id, config: irisConfig(), rationale: "not mine" })),
    await refusal(
      createRunOnStore(as(engineer), {
        experimentId: experiment.id,
        config: planned,
        rationale: "same",
        origin: "fork",
        parentRunId: first.id,
      }),
    ),
    await refusal(createRunOnStore(as(engineer), { experimentId: experiment.id, config: irisConfig(), rationale: "x", origin: "fork" })),
    await refusal(
      createRunOnStore(as(engineer), {
        experimentId: experiment.id,
        config: irisConfig(),
        rationale: "x",
        origin: "fork",
        parentRunId: 999,
      }),
    ),
    await refusal(
      createRunOnStore(as(engineer), {
        experimentId: experiment.id,
        config: { ...irisConfig(), fineTune: { parentCheckpointId: "999" } },
        rationale: "no such checkpoint",
      }),
    ),
    await refusal(createRunOnStore(as(engineer), { experimentId: experiment.id, config: irisConfig(), rationale: "   " })),
  ];

  await addRunTag(as(engineer), { runId: first.id, tag: "baseline" });
  await addRunTag(as(engineer), { runId: first.id, tag: "candidate" });
  await addRunTag(as(engineer), { runId: fork.id, tag: "baseline" });
  await removeRunTag(as(engineer), { runId: first.id, tag: "candidate" });
  const tagRefusals = [
    await refusal(addRunTag(as(engineer), { runId: first.id, tag: "baseline" })),
    await refusal(addRunTag(as(engineer), { runId: 999, tag: "baseline" })),
    await refusal(addRunTag(as(reviewer), { runId: first.id, tag: "mine" })),
    await refusal(addRunTag(as(engineer), { runId: first.id, tag: "no/slash" })),
    await refusal(removeRunTag(as(engineer), { runId: first.id, tag: "candidate" })),
    await refusal(removeRunTag(as(auditor), { runId: first.id, tag: "baseline" })),
  ];

  const annotated = [
    await annotateRun(as(engineer), { runId: first.id, name: "baseline run", description: "the first, with a planned step" }),
    await annotateRun(as(engineer), { runId: first.id, name: "baseline run" }),
  ];
  const annotateRefusals = [
    await refusal(annotateRun(as(engineer), { runId: 999, name: "x" })),
    await refusal(annotateRun(as(auditor), { runId: first.id, name: "x" })),
    await refusal(annotateRun(as(engineer), { runId: first.id })),
  ];

  // A finished run and an interrupted one, as the orchestrator (not ported) would leave them.
  await transact(store, function* (tx) {
    yield* exec(tx.update(runs).set({ status: "completed" }).where(eq(runs.id, rerun.id)));
    yield* exec(tx.update(runs).set({ status: "interrupted" }).where(eq(runs.id, byId.id)));
  });
  const cancelled = await cancelRun(as(engineer), orchestrator, fork.id, "lr 0.05 diverges; not needed any more");
  // As the orchestrator leaves it once stopped: the detail then names who asked and why (read from the ledger).
  await transact(store, function* (tx) {
    yield* exec(tx.update(runs).set({ status: "cancelled" }).where(eq(runs.id, fork.id)));
  });
  const elsewhere = fakeOrchestrator({ trainsHere: false });
  const cancelRefusals = [
    await refusal(cancelRun(as(engineer), orchestrator, rerun.id, "not needed any more")),
    await refusal(cancelRun(as(engineer), orchestrator, 999, "not needed any more")),
    await refusal(cancelRun(as(reviewer), orchestrator, first.id, "not needed any more")),
    // Recorded, then refused: no process of this server trains it.
    await refusal(cancelRun(as(engineer), elsewhere, first.id, "not needed any more")),
  ];
  const resumed = await resumeInterruptedRun(as(engineer), orchestrator, byId.id);
  const resumeRefusals = [
    await refusal(resumeInterruptedRun(as(engineer), orchestrator, first.id)),
    await refusal(resumeInterruptedRun(as(engineer), orchestrator, 999)),
    await refusal(resumeInterruptedRun(as(reviewer), orchestrator, byId.id)),
  ];

  const reads = {
    listed: await listRuns(store, experiment.id),
    detail: await getRun(store, fork.id),
    points: await metricPoints(store, first.id, {}),
    unknown: await refusal(getRun(store, 999)),
    record: await runRecord(store, fork.id),
    unknownRecord: await refusal(runRecord(store, 999)),
  };
  const { runParams, decisions, runTags, auditEvents } = store.tables;
  const read = reader(store);
  return {
    created: { first, fork, rerun, byId },
    launched: orchestrator.launched,
    cancelledHere: orchestrator.cancelled,
    createRefusals,
    tagRefusals,
    annotated,
    annotateRefusals,
    cancelled,
    cancelRefusals,
    resumed,
    resumeRefusals,
    reads,
    runs: await read.select().from(runs).orderBy(runs.id),
    params: await read.select().from(runParams).orderBy(runParams.runId, byteOrder(store, runParams.key)),
    decisions: await read.select().from(decisions).orderBy(decisions.id),
    tags: await read.select().from(runTags).orderBy(runTags.runId, byteOrder(store, runTags.tag)),
    datasets: await read.select().from(datasets).orderBy(datasets.id),
    ledger: await read.select().from(auditEvents).orderBy(auditEvents.seq),
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function behaviourCases(storeOf: () => Store, dataDirOf: () => string): void {
  fixedDateForEachTest(AT);

  it("creates, forks, re-runs, tags, cancels and resumes runs, refuses what it must, and writes the ledger", async () => {
    const store = storeOf();
    const outcome = await scenario(store, fileArtifactStore(dataDirOf()));
    outcomes[store.dialect] = outcome;
    const { first, fork, rerun, byId } = outcome.created;
    expect([first.name, fork.name, rerun.name, byId.name]).toEqual(["run 1", "faster", "run 3", "run 4"]);
    expect(outcome.launched).toEqual([first.id]);
    expect(outcome.runs.map((r) => [r.id, r.origin, r.parentRunId, r.status])).toEqual([
      [first.id, "new", null, "queued"],
      [fork.id, "fork", first.id, "cancelled"],
      [rerun.id, "rerun", first.id, "completed"],
      [byId.id, "new", null, "interrupted"],
    ]);
    expect(outcome.decisions.map((d) => [d.runId, d.kind, d.path, d.rationale])).toEqual([
      [first.id, "initial", "", "a baseline"],
      [first.id, "planned", "training.learningRate", "planned: lower the rate after warm-up"],
      [fork.id, "change", "training.batchSize", "bigger batches for the higher rate"],
      [fork.id, "change", "training.learningRate", "try a higher rate"],
      [fork.id, "planned", "training.learningRate", "planned: lower the rate after warm-up"],
      [rerun.id, "initial", "", "repeat it"],
      [rerun.id, "planned", "training.learningRate", "planned: lower the rate after warm-up"],
      [byId.id, "initial", "", "the same data by its id"],
    ]);
    expect(outcome.params.find((p) => p.runId === fork.id && p.key === "training.learningRate")?.valueNum).toBe(0.05);
    expect(outcome.createRefusals.map((r) => r.kind)).toEqual([
      "invalid_input",
      "not_found",
      "not_found",
      "not_found",
      "forbidden",
      "invalid_input",
      "invalid_input",
      "not_found",
      "invalid_input",
      "other",
    ]);
    expect(outcome.createRefusals[1]!.message).toBe("dataset 999 was not found");
    expect(outcome.createRefusals[3]!.message).toBe("experiment 999 was not found");
    expect(outcome.createRefusals[5]!.message).toMatch(/a fork must change at least one setting/);
    expect(outcome.tags.map((t) => [t.runId, t.tag])).toEqual([
      [first.id, "baseline"],
      [fork.id, "baseline"],
    ]);
    expect(outcome.tagRefusals.map((r) => r.kind)).toEqual(["conflict", "not_found", "forbidden", "other", "not_found", "forbidden"]);
    expect(outcome.tagRefusals[0]!.message).toBe(`run ${first.id} already has the tag "baseline"`);
    expect(outcome.annotated.map((a) => a.changed)).toEqual([["name", "description"], []]);
    expect(outcome.annotateRefusals.map((r) => r.kind)).toEqual(["not_found", "forbidden", "other"]);
    expect(outcome.runs[0]).toMatchObject({ name: "baseline run", description: "the first, with a planned step" });
    expect(outcome.cancelled).toEqual({ ok: true });
    expect(outcome.cancelledHere).toEqual([fork.id]);
    expect(outcome.cancelRefusals.map((r) => r.kind)).toEqual(["wrong_state", "not_found", "forbidden", "conflict"]);
    expect(outcome.resumed).toEqual({ ok: true });
    expect(outcome.resumeRefusals.map((r) => r.kind)).toEqual(["wrong_state", "not_found", "forbidden"]);
    expect(outcome.reads.listed.map((r) => [r.name, r.tags, r.params?.learningRate])).toEqual([
      ["run 4", [], 0.03],
      ["run 3", [], 0.03],
      ["faster", ["baseline"], 0.05],
      ["baseline run", ["baseline"], 0.03],
    ]);
    expect(outcome.reads.detail).toMatchObject({
      name: "faster",
      origin: "fork",
      parentRunId: first.id,
      tags: ["baseline"],
      experimentName: "iris",
    });
    expect(outcome.reads.detail.decisions.map((d) => d.kind)).toEqual(["change", "change", "planned"]);
    expect(outcome.reads.detail.cancellation).toEqual({
      by: "Erin Engineer",
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      reason: "lr 0.05 diverges; not needed any more",
    });
    expect(outcome.reads.record.decisions.map((d) => [d.kind, d.atEpoch, d.changes.map((c) => c.path), d.reached ?? null])).toEqual([
      ["change", 0, ["training.batchSize"], null],
      ["change", 0, ["training.learningRate"], null],
      ["planned", 2, ["training.learningRate"], false],
    ]);
    expect(outcome.reads.unknownRecord.kind).toBe("not_found");
    expect(outcome.reads.points).toEqual({ series: {}, maxStep: 0 });
    expect(outcome.reads.unknown).toEqual({ kind: "not_found", message: "run 999 was not found" });
    expect(outcome.datasets.map((d) => [d.name, d.source])).toEqual([["Iris flowers", "builtin"]]);
    expect(outcome.ledger.map((e) => [e.seq, e.action, e.entityId])).toEqual([
      [1, "project.create", "1"],
      [2, "experiment.create", "1"],
      [3, "dataset.create", String(outcome.datasets[0]!.id)],
      [4, "run.create", String(first.id)],
      [5, "run.create", String(fork.id)],
      [6, "run.create", String(rerun.id)],
      [7, "run.create", String(byId.id)],
      [8, "run.tag", String(first.id)],
      [9, "run.tag", String(first.id)],
      [10, "run.tag", String(fork.id)],
      [11, "run.untag", String(first.id)],
      [12, "run.annotate", String(first.id)],
      [13, "run.annotate", String(first.id)],
      [14, "run.cancelRequest", String(fork.id)],
      [15, "run.cancelRequest", String(first.id)],
    ]);
    const forkCreate = JSON.parse(outcome.ledger[4]!.payload) as { decisions: { id: number; kind: string }[]; origin: string };
    expect(forkCreate.origin).toBe("fork");
    expect(forkCreate.decisions.map((d) => d.kind)).toEqual(["change", "change", "planned"]);
  });
}

describe("the runs service on SQLite", () => {
  const sqlite = sqliteForSuite("rl-runs-store-");
  behaviourCases(
    () => sqlite.store(),
    () => sqlite.dir(),
  );
});

describePg("the runs service on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  const dir = tempDirForSuite("rl-runs-pg-");

  behaviourCases(() => pgStore(pg.a()), dir);

  it("gives the same rows, refusals and ledger rows (payloads, seq, chain hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg).toEqual(outcomes.sqlite);
  });

  it("two servers at once: one tag added 12 times gives one row and 11 conflicts; 12 unnamed runs get 12 names; 12 renames chain; seq gapless", async () => {
    const servers = pg.stores();
    const artifacts = fileArtifactStore(dir());
    const as = (i: number) => ({ db: servers[i % 2]!, actor: engineer, artifacts });
    const { auditEvents, runs, runTags } = servers[0].tables;
    const seqs = async () =>
      (await transact(servers[1], (tx) => rows(tx.select({ seq: auditEvents.seq }).from(auditEvents).orderBy(auditEvents.seq)))).map(
        (e) => e.seq,
      );
    // People and the built-in dataset first (this test also runs alone, with -t), so the race writes only runs and tags.
    await seedPeople(servers[0], { at: AT, passwordHash: "x" });
    await resolveDatasetRow(servers[0], artifacts, engineer, { builtin: "iris" });
    const project = await createProject(as(0), { name: "Concurrent runs" });
    const experiment = await createExperiment(as(1), { projectId: project.id, name: "race" });
    const before = (await seqs()).length;

    datasetBarrier.arm(12);
    const created = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        createRunOnStore(as(i), { experimentId: experiment.id, config: irisConfig({ seed: i }), rationale: `run ${i}` }),
      ),
    );
    datasetBarrier.arm(0);
    expect(created.map((c) => (c.status === "rejected" ? String(c.reason) : "ok"))).toEqual(Array(12).fill("ok"));
    const names = await transact(servers[0], (tx) =>
      rows(tx.select({ name: runs.name }).from(runs).where(eq(runs.experimentId, experiment.id))),
    );
    expect(new Set(names.map((n) => n.name)).size).toBe(12);

    const runId = (created[0] as PromiseFulfilledResult<{ id: number }>).value.id;
    const tagged = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => addRunTag(as(i), { runId, tag: "same" })));
    expect(tagged.filter((t) => t.status === "fulfilled")).toHaveLength(1);
    const refused = tagged.flatMap((t) => (t.status === "rejected" ? [t.reason as Error] : []));
    expect(refused.map((e) => e.message)).toEqual(Array(11).fill(`run ${runId} already has the tag "same"`));
    const stored = await transact(servers[1], (tx) => rows(tx.select().from(runTags).where(eq(runTags.runId, runId))));
    expect(stored.map((t) => t.tag)).toEqual(["same"]);

    // One run renamed 12 times at once: each run.annotate names the name it replaced, so the events chain.
    const renamed = await Promise.all(Array.from({ length: 12 }, (_, i) => annotateRun(as(i), { runId, name: `name ${i}` })));
    expect(renamed.every((r) => r.changed.length === 1)).toBe(true);
    const renames = (
      await transact(servers[0], (tx) =>
        rows(
          tx
            .select({ payload: auditEvents.payload })
            .from(auditEvents)
            .where(and(eq(auditEvents.action, "run.annotate"), eq(auditEvents.entityId, String(runId))))
            .orderBy(auditEvents.seq),
        ),
      )
    ).map((e) => JSON.parse(e.payload) as { from: string; to: string });
    const [last] = await transact(servers[1], (tx) => rows(tx.select({ name: runs.name }).from(runs).where(eq(runs.id, runId))));
    expect(renames).toHaveLength(12);
    for (let i = 1; i < renames.length; i++) expect(renames[i]!.from).toBe(renames[i - 1]!.to);
    expect(renames.at(-1)!.to).toBe(last!.name);

    expect(await seqs()).toEqual(Array.from({ length: before + 12 + 1 + 12 }, (_, i) => i + 1));
  });
});
