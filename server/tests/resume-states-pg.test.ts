/**
 * What the orchestrator reads and writes to assemble a training job, on the store (issue 16): exact-resume pointers
 * (resume-states.ts, table resume_states), a fine-tune parent's and a dataset's job input (trainer-tasks.ts,
 * datasets/service.ts resolveDatasetOn), and a rollback branch's job (branch-job.ts). One scenario runs on SQLite
 * with the file artifact store and on PostgreSQL with the PostgreSQL artifact store, under a fixed clock, and the
 * answers, refusals, pointer rows and ledger rows are compared. The runs, checkpoints and the branch are written
 * directly as rows (their services are tested elsewhere). SQLite only: an older installation's pointer file is loaded when the table has
 * no row, and dropped with the table's rows. PostgreSQL only: two pools linking one checkpoint at once agree.
 */
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { eq } from "drizzle-orm";
import { exec, pgStore, reader, rows, transact, type Store } from "@/db/store";
import type { Db } from "@/db/client";
import { trainingConfigSchema, type TrainingConfig, type TrainingConfigInput } from "@/contracts/training-config";
import { canonicalJson, sha256Hex } from "@/contracts/canonical";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { awaitedArtifacts } from "@/server/artifacts/async-store";
import { fileArtifactStore } from "@/server/artifacts/store";
import { pgArtifactStore } from "@/server/artifacts/pg-store";
import { resolveDatasetOn } from "@/server/datasets/service";
import {
  dropResumeStatesAfter,
  dropResumeStatesAfterOn,
  loadResumeState,
  loadResumeStateOn,
  storeResumeState,
  storeResumeStateOn,
} from "@/server/runs/resume-states";
import { datasetForJobOn, parentForJobOn, runDatasetForJobOn } from "@/server/runs/trainer-tasks";
import { branchJobOfOn } from "@/server/runs/branch-job";
import { describePg } from "./pg-test-env";
import {
  fixedDateForEachTest,
  refusal,
  seedPeople,
  sqliteForSuite,
  TEST_PEOPLE,
  tempDirForSuite,
  twoPgServersForSuite,
} from "./store-test-env";

const AT = "2026-12-05T04:00:00.000Z";
const engineer = TEST_PEOPLE.engineer;

const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const bytesOf = (label: string) => new TextEncoder().encode(`${label}: ${"x".repeat(64)}`);
const UPLOADED_CSV = "a,b,label\n1,2,x\n3,4,y\n5,6,x\n";

function config(overrides: Partial<TrainingConfigInput> & { learningRate?: number } = {}): TrainingConfig {
  const { learningRate, ...rest } = overrides;
  return trainingConfigSchema.parse({
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 3 },
    },
    model: { layers: [{ type: "dense", units: 12, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: learningRate ?? 0.03, batchSize: 16, epochs: 5, seed: 1 },
    ...rest,
  });
}

/** A job input with its bytes as their hash, so the two stores' answers compare as plain data. */
function jobInput(x: { bytes?: Uint8Array; weights?: Uint8Array; state?: Uint8Array } & Record<string, unknown>) {
  const { bytes, weights, state, ...rest } = x;
  return {
    ...rest,
    ...(bytes ? { bytes: hex(bytes) } : {}),
    ...(weights ? { weights: hex(weights) } : {}),
    ...(state ? { state: hex(state) } : {}),
  };
}

function branchInput(b: Awaited<ReturnType<typeof branchJobOfOn>>) {
  if (!b) return b;
  return {
    parent: b.parent ? jobInput(b.parent) : b.parent,
    resume: b.resume ? jobInput(b.resume) : b.resume,
    resumeApply: b.resumeApply,
  };
}

type Ids = {
  experimentId: number;
  uploadedId: number;
  grand: number;
  source: number;
  branch: number;
  plain: number;
  cks: Record<string, number>;
};

/** The rows the scenario reads: a grandparent run with a checkpoint, its fine-tune (the source) with three, a branch. */
async function seedRuns(store: Store, artifacts: AnyArtifactStore): Promise<Ids> {
  await seedPeople(store, { at: AT, passwordHash: "x" });
  const art = awaitedArtifacts(artifacts);
  const uploaded = await art.put(new TextEncoder().encode(UPLOADED_CSV));
  const weights = await Promise.all([0, 1, 2, 3].map((i) => art.put(bytesOf(`weights ${i}`))));
  const t = store.tables;
  const grandConfig = config();
  const sourceConfig = config({
    fineTune: { parentCheckpointId: "1" },
    schedule: [{ atEpoch: 4, set: { "training.learningRate": 0.001 }, rationale: "a lower rate late" }],
  });
  // The branch continues the source's epoch-2 checkpoint with a lower learning rate (the schedule entry after it kept).
  const branchConfig = trainingConfigSchema.parse({ ...sourceConfig, training: { ...sourceConfig.training, learningRate: 0.005 } });
  return transact(store, function* (tx) {
    const [project] = yield* rows(tx.insert(t.projects).values({ name: "p", createdBy: engineer.id, createdAt: AT }).returning());
    const [experiment] = yield* rows(
      tx.insert(t.experiments).values({ projectId: project!.id, name: "e", createdBy: engineer.id, createdAt: AT }).returning(),
    );
    const [dataset] = yield* rows(
      tx
        .insert(t.datasets)
        .values({
          name: "uploaded",
          source: "upload",
          origin: "",
          licence: "",
          sha256: uploaded.sha256,
          byteSize: uploaded.bytes,
          schemaJson: JSON.stringify({ kind: "tabular", labelColumn: "label", columns: [] }),
          rowCount: 3,
          createdBy: engineer.id,
          createdAt: AT,
        })
        .returning(),
    );
    const run = function* (name: string, c: TrainingConfig, extra: Partial<typeof t.runs.$inferInsert> = {}) {
      const configJson = canonicalJson(c);
      const [r] = yield* rows(
        tx
          .insert(t.runs)
          .values({
            experimentId: experiment!.id,
            name,
            status: "completed",
            configJson,
            configSha256: sha256Hex(configJson),
            seed: 1,
            createdBy: engineer.id,
            createdAt: AT,
            ...extra,
          })
          .returning(),
      );
      return r!.id;
    };
    const checkpoint = function* (runId: number, epoch: number, w: { sha256: string; bytes: number }) {
      const [ck] = yield* rows(
        tx
          .insert(t.checkpoints)
          .values({ runId, epoch, step: epoch * 7, sha256: w.sha256, bytes: w.bytes, metricsJson: "{}", createdAt: AT })
          .returning(),
      );
      return ck!.id;
    };
    const grand = yield* run("grandparent", grandConfig);
    const cks: Record<string, number> = { grand1: yield* checkpoint(grand, 1, weights[0]!) };
    if (cks.grand1 !== 1) throw new Error("the scenario's fine-tune names checkpoint 1");
    const source = yield* run("source", sourceConfig, { origin: "finetune", parentCheckpointId: cks.grand1 });
    for (const epoch of [1, 2, 3]) cks[`source${epoch}`] = yield* checkpoint(source, epoch, weights[epoch]!);
    const branch = yield* run("branch", branchConfig, {
      origin: "branch",
      status: "queued",
      parentRunId: source,
      parentCheckpointId: cks.source2,
    });
    const plain = yield* run("plain", config({ data: { ...grandConfig.data, dataset: { datasetId: String(dataset!.id) } } }));
    return { experimentId: experiment!.id, uploadedId: dataset!.id, grand, source, branch, plain, cks };
  });
}

async function scenario(store: Store, artifacts: AnyArtifactStore, dataDir: string) {
  const ids = await seedRuns(store, artifacts);
  const deps = { db: store, artifacts, dataDir };
  const runRow = async (id: number) =>
    (await reader(store).select().from(store.tables.runs).where(eq(store.tables.runs.id, id)).limit(1))[0]!;
  const states = [1, 2, 3].map((epoch) => bytesOf(`state of epoch ${epoch}`));
  for (const [i, state] of states.entries()) await storeResumeStateOn(deps, { runId: ids.source, epoch: i + 1 }, state, hex(state));
  // Again with the same state: nothing changes; another state for a linked checkpoint, or bytes not matching their
  // reported hash: refused.
  await storeResumeStateOn(deps, { runId: ids.source, epoch: 2 }, states[1]!, hex(states[1]!));
  const refusals = [
    await refusal(storeResumeStateOn(deps, { runId: ids.source, epoch: 2 }, states[0]!, hex(states[0]!))),
    await refusal(storeResumeStateOn(deps, { runId: ids.source, epoch: 4 }, states[0]!, hex(states[1]!))),
    await refusal(parentForJobOn(deps, 9999)),
    await refusal(parentForJobOn(deps, "not a number", "run 7's parent checkpoint")),
    await refusal(datasetForJobOn(deps, { datasetId: "9999" })),
    await refusal(datasetForJobOn(deps, { datasetId: "x" })),
  ];
  const loaded = (epoch: number) => loadResumeStateOn(deps, { runId: ids.source, epoch }).then((s) => s && jobInput(s));
  const beforeDrop = [await loaded(1), await loaded(2), await loaded(3), await loaded(4)];
  const branchJob = branchInput(await branchJobOfOn(deps, await runRow(ids.branch)));
  const notBranch = await branchJobOfOn(deps, await runRow(ids.source));

  await dropResumeStatesAfterOn(deps, ids.source, 1);
  const afterDrop = [await loaded(1), await loaded(2), await loaded(3)];
  // The branch's parent checkpoint lost its state: it cannot start from it.
  const branchWithoutState = await refusal(branchJobOfOn(deps, await runRow(ids.branch)));
  // An epoch retrained after the drop links its (new) state again.
  const retrained = bytesOf("state of epoch 2, retrained");
  await storeResumeStateOn(deps, { runId: ids.source, epoch: 2 }, retrained, hex(retrained));
  const afterRetrain = await loaded(2);
  // Once the branch has a checkpoint of its own it resumes like any run: only its fine-tune parent is given.
  const t = store.tables;
  await transact(store, function* (tx) {
    yield* exec(
      tx
        .insert(t.checkpoints)
        .values({ runId: ids.branch, epoch: 3, step: 21, sha256: "0".repeat(64), bytes: 1, metricsJson: "{}", createdAt: AT }),
    );
  });
  const branchWithOwnCheckpoint = branchInput(await branchJobOfOn(deps, await runRow(ids.branch)));

  const builtin = await resolveDatasetOn(store, artifacts, engineer, { builtin: "iris" });
  const builtinAgain = await resolveDatasetOn(store, artifacts, engineer, { builtin: "iris" });
  const uploaded = await resolveDatasetOn(store, artifacts, engineer, { datasetId: String(ids.uploadedId) });
  const resolved = async (r: typeof builtin) => ({ row: r.row, schema: r.schema, bytes: hex(await r.bytes()) });
  const jobInputs = {
    parent: jobInput(await parentForJobOn(deps, ids.cks.source2!)),
    parentById: jobInput(await parentForJobOn(deps, String(ids.cks.grand1))),
    builtin: jobInput(await datasetForJobOn(deps, { builtin: "iris" })),
    uploaded: jobInput(await datasetForJobOn(deps, { datasetId: String(ids.uploadedId) })),
    runDataset: jobInput(await runDatasetForJobOn(deps, await runRow(ids.plain))),
    resolved: [await resolved(builtin), await resolved(builtinAgain), await resolved(uploaded)],
    unknownBuiltin: await refusal(datasetForJobOn(deps, { builtin: "nope" } as unknown as { builtin: "iris" })),
  };
  const { auditEvents, resumeStates } = store.tables;
  return {
    ids,
    refusals,
    beforeDrop,
    afterDrop,
    afterRetrain,
    branchJob,
    notBranch,
    branchWithoutState,
    branchWithOwnCheckpoint,
    jobInputs,
    pointers: await reader(store).select().from(resumeStates).orderBy(resumeStates.runId, resumeStates.epoch),
    ledger: await reader(store).select().from(auditEvents).orderBy(auditEvents.seq),
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function behaviourCases(storeOf: () => Store, artifactsOf: () => AnyArtifactStore, dataDirOf: () => string): void {
  fixedDateForEachTest(AT);

  it("links, loads, refuses, drops and relinks resume states; assembles parents, datasets and a branch's job", async () => {
    const store = storeOf();
    const outcome = await scenario(store, artifactsOf(), dataDirOf());
    outcomes[store.dialect] = outcome;
    const { ids } = outcome;
    const state = (label: string) => ({ state: hex(bytesOf(label)), sha256: hex(bytesOf(label)) });
    expect(outcome.beforeDrop).toEqual([state("state of epoch 1"), state("state of epoch 2"), state("state of epoch 3"), null]);
    expect(outcome.afterDrop).toEqual([state("state of epoch 1"), null, null]);
    expect(outcome.afterRetrain).toEqual(state("state of epoch 2, retrained"));
    expect(outcome.pointers.map((p) => [p.runId, p.epoch])).toEqual([
      [ids.source, 1],
      [ids.source, 2],
    ]);
    expect(outcome.refusals.map((r) => r.kind)).toEqual(["other", "other", "invalid_input", "invalid_input", "not_found", "not_found"]);
    expect(outcome.refusals[0]!.message).toMatch(/a different state .* is already linked/);
    expect(outcome.refusals[1]!.message).toMatch(/trainer reported sha256 .* but the bytes hash to/);
    expect(outcome.refusals[3]!.message).toMatch(/^run 7's parent checkpoint: checkpoint not a number does not exist/);
    // The branch starts from the source's epoch-2 state with its lower learning rate on top, its model built like
    // the source's (the grandparent's weights).
    expect(outcome.branchJob).toEqual({
      parent: expect.objectContaining({ sha256: hex(bytesOf("weights 0")), weights: hex(bytesOf("weights 0")) }),
      resume: state("state of epoch 2"),
      resumeApply: { learningRate: 0.005 },
    });
    expect(outcome.notBranch).toBeNull();
    expect(outcome.branchWithoutState.message).toMatch(/\(run \d+, epoch 2\) has no resume state/);
    expect(outcome.branchWithOwnCheckpoint).toEqual({ parent: outcome.branchJob!.parent, resume: undefined, resumeApply: undefined });
    const j = outcome.jobInputs;
    expect(j.parent).toMatchObject({ sha256: hex(bytesOf("weights 2")), config: { fineTune: { parentCheckpointId: "1" } } });
    expect(j.uploaded).toEqual(j.runDataset);
    expect(j.uploaded.bytes).toBe(hex(new TextEncoder().encode(UPLOADED_CSV)));
    expect(j.resolved[0]).toEqual(j.resolved[1]);
    expect(j.resolved[0]!.bytes).toBe(j.builtin.bytes);
    expect(j.resolved[2]!.row.id).toBe(ids.uploadedId);
    expect(j.unknownBuiltin.kind).toBe("invalid_input");
    // The built-in dataset was registered once, on first use, with its dataset.create event.
    expect(outcome.ledger.map((e) => [e.seq, e.action, e.entityId])).toEqual([[1, "dataset.create", String(j.resolved[0]!.row.id)]]);
  });
}

describe("job inputs and resume states on SQLite", () => {
  const sqlite = sqliteForSuite("rl-resume-states-");
  behaviourCases(
    () => sqlite.store(),
    () => fileArtifactStore(sqlite.dir()),
    () => sqlite.dir(),
  );

  it("a second branch's job starts from its own parent checkpoint's state; the synchronous pointer forms read the same table", async () => {
    const db: Db = sqlite.db();
    const deps = { db, artifacts: fileArtifactStore(sqlite.dir()), dataDir: sqlite.dir() };
    const { ids } = outcomes.sqlite!;
    const { runs } = sqlite.store().tables;
    const plain = db.select().from(runs).where(eq(runs.id, ids.plain)).get()!;
    // A second branch, from the epoch-1 checkpoint (which still has its state), for both forms.
    const other = db
      .insert(runs)
      .values({
        ...plain,
        id: undefined,
        name: "branch 2",
        origin: "branch",
        parentRunId: ids.source,
        parentCheckpointId: ids.cks.source1!,
      })
      .returning()
      .get();
    expect((await branchJobOfOn(deps, other))?.resume?.sha256).toBe(hex(bytesOf("state of epoch 1")));
    expect(loadResumeState(deps, { runId: ids.source, epoch: 2 })).toEqual(await loadResumeStateOn(deps, { runId: ids.source, epoch: 2 }));
    const state = bytesOf("stored synchronously");
    storeResumeState(deps, { runId: ids.plain, epoch: 5 }, state, hex(state));
    expect((await loadResumeStateOn(deps, { runId: ids.plain, epoch: 5 }))?.sha256).toBe(hex(state));
    dropResumeStatesAfter(deps, ids.plain, 4);
    expect(await loadResumeStateOn(deps, { runId: ids.plain, epoch: 5 })).toBeNull();
  });

  it("an older installation's pointer file is loaded when the table has no row, and dropped with the rows after an epoch", async () => {
    const deps = { db: sqlite.store(), artifacts: fileArtifactStore(sqlite.dir()), dataDir: sqlite.dir() };
    const { ids } = outcomes.sqlite!;
    const state = bytesOf("state written before the table");
    fileArtifactStore(sqlite.dir()).put(state);
    const dir = path.join(sqlite.dir(), "resume-states");
    fs.mkdirSync(dir, { recursive: true });
    for (const epoch of [6, 7]) fs.writeFileSync(path.join(dir, `${ids.plain}-${epoch}.json`), JSON.stringify({ stateSha256: hex(state) }));
    // A file beside a row: the row wins.
    fs.writeFileSync(path.join(dir, `${ids.source}-1.json`), JSON.stringify({ stateSha256: hex(state) }));
    expect(await loadResumeStateOn(deps, { runId: ids.plain, epoch: 6 })).toEqual({ state, sha256: hex(state) });
    expect(loadResumeState({ ...deps, db: sqlite.db() }, { runId: ids.plain, epoch: 7 })?.sha256).toBe(hex(state));
    expect((await loadResumeStateOn(deps, { runId: ids.source, epoch: 1 }))?.sha256).toBe(hex(bytesOf("state of epoch 1")));
    await dropResumeStatesAfterOn(deps, ids.plain, 6);
    expect(fs.readdirSync(dir).sort()).toEqual([`${ids.plain}-6.json`, `${ids.source}-1.json`].sort());
    expect(await loadResumeStateOn(deps, { runId: ids.plain, epoch: 7 })).toBeNull();
    // A pointer naming bytes the artifact store does not hold is no state.
    fs.writeFileSync(path.join(dir, `${ids.plain}-8.json`), JSON.stringify({ stateSha256: "f".repeat(64) }));
    expect(await loadResumeStateOn(deps, { runId: ids.plain, epoch: 8 })).toBeNull();
  });
});

describePg("job inputs and resume states on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  const dir = tempDirForSuite("rl-resume-states-pg-");
  behaviourCases(
    () => pgStore(pg.a()),
    () => pgArtifactStore(pg.a().$client),
    dir,
  );

  it("gives the same answers, refusals, pointer rows and ledger rows (payloads, seq, chain hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg).toEqual(outcomes.sqlite);
  });

  it("ignores pointer files (a cluster's machines share only PostgreSQL); the synchronous forms refuse the store", async () => {
    const store = pgStore(pg.a());
    const deps = { db: store, artifacts: pgArtifactStore(pg.a().$client), dataDir: dir() };
    const { ids } = outcomes.pg!;
    const state = bytesOf("a file pointer");
    await deps.artifacts.put(state);
    fs.mkdirSync(path.join(dir(), "resume-states"), { recursive: true });
    fs.writeFileSync(path.join(dir(), "resume-states", `${ids.plain}-1.json`), JSON.stringify({ stateSha256: hex(state) }));
    expect(await loadResumeStateOn(deps, { runId: ids.plain, epoch: 1 })).toBeNull();
    expect(() => loadResumeState({ ...deps, artifacts: fileArtifactStore(dir()) }, { runId: ids.plain, epoch: 1 })).toThrow(
      /runs on SQLite only; on PostgreSQL use loadResumeStateOn/,
    );
  });

  it("one checkpoint linked at once through two pools: the same state from all, or exactly one of two states", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())];
    const artifacts = pgArtifactStore(pg.a().$client);
    const { ids } = outcomes.pg!;
    const same = bytesOf("the same state");
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        storeResumeStateOn({ db: servers[i % 2]!, artifacts }, { runId: ids.plain, epoch: 10 }, same, hex(same)),
      ),
    );
    const a = bytesOf("state A");
    const b = bytesOf("state B");
    await artifacts.put(a);
    await artifacts.put(b);
    const results = await Promise.allSettled(
      [a, b].map((s, i) => storeResumeStateOn({ db: servers[i]!, artifacts }, { runId: ids.plain, epoch: 11 }, s, hex(s))),
    );
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const linked = await loadResumeStateOn({ db: servers[1]!, artifacts, dataDir: dir() }, { runId: ids.plain, epoch: 11 });
    expect(linked?.sha256).toBe(hex(results[0]!.status === "fulfilled" ? a : b));
    expect((await loadResumeStateOn({ db: servers[0]!, artifacts, dataDir: dir() }, { runId: ids.plain, epoch: 10 }))?.sha256).toBe(
      hex(same),
    );
  });
});
