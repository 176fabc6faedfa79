/**
 * Four eyes through lineage, end to end through tRPC callers on a real database:
 * - the attack (a fine-tune from run 1's checkpoint that names run 2 as its parent run) is refused with BAD_REQUEST
 *   naming both runs; the server decides a fine-tune's parent run from its parent checkpoint;
 * - a reviewer who wrote a note on the checkpoint's run cannot approve the fine-tune's promotion (refusal recorded);
 * - the lineage graph shows the checkpoint's run, with no edge to a missing node;
 * - a fork whose config starts from another run's checkpoint keeps its named parent, and ancestry still follows
 *   the checkpoint's run;
 * - a reviewer who wrote or signed (authorship) a datasheet section of a dataset in the lineage, or a model-card
 *   section of the model, cannot approve.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TRPCError } from "@trpc/server";
import { eq } from "drizzle-orm";
import { auditEvents, datasetVersions, runs } from "@/db/schema";
import { lineageAuthors, runAncestry } from "@/server/lineage/ancestry";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;
let run1: number;
let run2: number;
let ck1: { id: number; epoch: number };
let fineTune: number;
let requestId: number;
const MODEL = "iris-finetuned";

async function waitCompleted(id: number) {
  await app.orchestrator.waitFor(id);
  expect((await app.as("engineer").runs.get({ id })).status).toBe("completed");
}

async function train(config = irisConfig(), rationale = "lineage four-eyes test") {
  const { id } = await app.as("engineer").runs.create({ experimentId: app.experimentId, config, rationale });
  await waitCompleted(id);
  return id;
}

const fineTuneConfig = (checkpointId: number) => ({
  ...irisConfig({ epochs: 2, seed: 4 }),
  fineTune: { parentCheckpointId: String(checkpointId), freezeLayers: 0, replaceHead: false },
});
const refusals = () => app.db.select().from(auditEvents).where(eq(auditEvents.action, "promotion.selfApprovalRefused")).all();

beforeAll(async () => {
  app = createTestApp();
  run1 = await train();
  run2 = await train(irisConfig({ seed: 9 }), "an unrelated second run");
  const best = (await app.as("engineer").runs.get({ id: run1 })).checkpoints.find((c) => c.isBest)!;
  ck1 = { id: best.id, epoch: best.epoch };
}, 90_000);
afterAll(() => app.close());

describe("a fine-tune's parent run is decided by the server", () => {
  it("refuses the attack: parentCheckpointId of run 1 with parentRunId = run 2, naming both runs", async () => {
    const before = app.db.select().from(runs).all().length;
    const attempt = app
      .as("engineer")
      .runs.create({ experimentId: app.experimentId, config: fineTuneConfig(ck1.id), rationale: "hide run 1", parentRunId: run2 });
    await expect(attempt).rejects.toThrow(new RegExp(`checkpoint #${ck1.id} belongs to run #${run1}, but parentRunId names run #${run2}`));
    await expect(attempt).rejects.toSatisfy((e: unknown) => e instanceof TRPCError && e.code === "BAD_REQUEST");
    expect(app.db.select().from(runs).all()).toHaveLength(before);
  });

  it("derives the parent run from the checkpoint (and accepts naming that same run)", async () => {
    const { id } = await app.as("engineer").runs.create({
      experimentId: app.experimentId,
      config: fineTuneConfig(ck1.id),
      rationale: "adapt run 1's weights",
      parentRunId: run1,
    });
    fineTune = id;
    await waitCompleted(id);
    const row = app.db.select().from(runs).where(eq(runs.id, id)).get()!;
    expect(row).toMatchObject({ origin: "finetune", parentRunId: run1, parentCheckpointId: ck1.id });
    const event = app.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.action, "run.create"))
      .all()
      .find((e) => e.entityId === String(id))!;
    expect(JSON.parse(event.payload)).toMatchObject({ parentRunId: run1, parentCheckpointId: ck1.id });
  });
});

describe("the checkpoint's run stays in the four-eyes conflict set and in the graph", () => {
  it("a reviewer who wrote a note on the checkpoint's run cannot approve the fine-tune; the refusal is recorded", async () => {
    await app.as("reviewer").decisions.addNote({ runId: run1, rationale: "I picked these layers for the base model" });
    const v = await app.as("engineer").models.register({ runId: fineTune, modelName: MODEL });
    requestId = (
      await app.as("engineer").models.requestPromotion({
        modelName: MODEL,
        version: v.version,
        acknowledgeMissingDocumentation: true,
        rationale: "fine-tune is ready",
      })
    ).id;
    const before = refusals().length;
    await expect(app.as("reviewer").models.sign({ requestId, meaning: "approval", password: "reviewer-demo-pass" })).rejects.toThrow(
      new RegExp(`Rui Reviewer cannot sign .*authored decision #\\d+ \\(note\\) on run #${run1}`),
    );
    const recorded = refusals();
    expect(recorded).toHaveLength(before + 1);
    expect(recorded.at(-1)!).toMatchObject({ actorName: "Rui Reviewer", entityId: String(requestId) });
    expect(JSON.parse(recorded.at(-1)!.payload).reasons.join(" ")).toContain(`on run #${run1}`);
  });

  it("the lineage graph contains run 1, its checkpoint feeding the fine-tune, and no dangling edge", async () => {
    const { graph } = await app.as("auditor").models.lineage({ modelName: MODEL, version: 1 });
    const ids = new Set(graph.nodes.map((n) => n.id));
    expect(ids.has(`run:${run1}`)).toBe(true);
    expect(ids.has(`run:${run2}`)).toBe(false);
    const edge = (s: string, t: string) => graph.edges.some((e) => e.source === s && e.target === t);
    expect(edge(`run:${run1}`, `checkpoint:${ck1.id}`)).toBe(true);
    expect(edge(`checkpoint:${ck1.id}`, `run:${fineTune}`)).toBe(true);
    for (const e of graph.edges) expect(ids.has(e.source) && ids.has(e.target), `edge ${e.id}`).toBe(true);
    expect(graph.nodes.some((n) => n.kind === "decision" && n.lines.join(" ").includes("I picked these layers"))).toBe(true);
  });

  it("a fork whose config starts from run 1's checkpoint keeps its named parent (run 2) while ancestry follows run 1", async () => {
    const parent = await app.as("engineer").runs.get({ id: run2 });
    const { id } = await app.as("engineer").runs.create({
      experimentId: app.experimentId,
      config: { ...parent.config, fineTune: { parentCheckpointId: String(ck1.id), freezeLayers: 0, replaceHead: false } },
      rationale: "start run 2's setup from run 1's weights",
      origin: "fork",
      parentRunId: run2,
    });
    await waitCompleted(id);
    expect(app.db.select().from(runs).where(eq(runs.id, id)).get()).toMatchObject({
      origin: "fork",
      parentRunId: run2,
      parentCheckpointId: ck1.id,
    });
    expect(
      runAncestry(app.db, id)
        .map((r) => r.id)
        .sort(),
    ).toEqual([run1, run2, id].sort());
    const v = await app.as("engineer").models.register({ runId: id, modelName: MODEL });
    const reasons = lineageAuthors(app.db, v.modelVersionId)
      .map((a) => a.why)
      .join("; ");
    expect(reasons).toContain(`authored run #${run1}`);
    expect(reasons).toMatch(new RegExp(`authored decision #\\d+ \\(note\\) on run #${run1}`));
  });
});

describe("datasets and documents in the lineage", () => {
  it("names the dataset, data version and split creators", () => {
    const run = app.db.select().from(runs).where(eq(runs.id, run1)).get()!;
    const dv = app.db.select().from(datasetVersions).where(eq(datasetVersions.id, run.datasetVersionId!)).get()!;
    const reasons = lineageAuthors(app.db, 1).map((a) => a.why);
    expect(reasons.some((r) => r.startsWith(`registered dataset #${dv.datasetId} (`))).toBe(true);
    expect(reasons).toContain(`prepared data version #${dv.id}`);
    expect(reasons).toContain(`prepared split #${run.splitId}`);
  });

  it("a reviewer who wrote a datasheet section of the run's dataset cannot approve", async () => {
    const datasetId = app.db
      .select()
      .from(datasetVersions)
      .where(eq(datasetVersions.id, app.db.select().from(runs).where(eq(runs.id, run1)).get()!.datasetVersionId!))
      .get()!.datasetId;
    await app.as("reviewer2").documents.update({
      subjectType: "dataset",
      subjectId: datasetId,
      section: "data_collection",
      body: "Collected by Anderson, 1935.",
      baseVersion: 0,
    });
    const before = refusals().length;
    await expect(app.as("reviewer2").models.sign({ requestId, meaning: "approval", password: "reviewer2-demo-pass" })).rejects.toThrow(
      new RegExp(`Rita Second-Reviewer cannot sign .*wrote datasheet of dataset #${datasetId} section "data_collection" v1`),
    );
    expect(refusals()).toHaveLength(before + 1);
  });

  it("a model-card section's author, and its authorship signer, are in the conflict set; a review signature is not", async () => {
    const registered = await app.as("engineer").models.register({ runId: run2, modelName: "card-test" });
    const modelId = registered.modelId;
    const doc = await app.as("engineer").documents.update({
      subjectType: "model",
      subjectId: modelId,
      section: "intended_use",
      body: "Sorting irises in teaching labs.",
      baseVersion: 0,
    });
    await app.as("engineer").documents.sign({ documentId: doc.id, meaning: "authorship", password: "engineer-demo-pass" });
    await app.as("reviewer").documents.sign({ documentId: doc.id, meaning: "review", password: "reviewer-demo-pass" });
    const whys = lineageAuthors(app.db, registered.modelVersionId).map((a) => a.why);
    expect(whys).toContain('wrote model card section "intended_use" v1');
    expect(whys).toContain('signed authorship of model card section "intended_use" v1');
    expect(whys.some((w) => w.includes("review"))).toBe(false);
  });
});
