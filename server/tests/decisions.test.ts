/**
 * Decisions: a fork records one decision per changed path (per-path rationale or the change set's), a first run
 * records its whole configuration; notes and corrections are new rows that never edit old ones; the timeline shows
 * ancestors, the run and its children, with the effect of a fork measured against its parent at the same epoch.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { auditEvents, decisions } from "@/db/schema";
import { decisionsRouter } from "@/server/decisions/router";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;
let parentId: number;
let childId: number;

beforeAll(async () => {
  app = createTestApp();
  const eng = app.as("engineer");
  parentId = (await eng.runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 4 }), rationale: "start small" })).id;
  await app.orchestrator.waitFor(parentId);
  const parent = await eng.runs.get({ id: parentId });
  const cfg = { ...parent.config, training: { ...parent.config.training, learningRate: 0.01, batchSize: 8 } };
  childId = (
    await eng.runs.create({
      experimentId: app.experimentId,
      config: cfg,
      rationale: "the loss oscillated",
      changeRationales: { "training.learningRate": "halve the step size: validation loss oscillated" },
      origin: "fork",
      parentRunId: parentId,
    })
  ).id;
  await app.orchestrator.waitFor(childId);
}, 60_000);
afterAll(() => app.close());

describe("decisions from runs", () => {
  it("a first run records its whole configuration as the author's initial decision", async () => {
    const run = await app.as("auditor").runs.get({ id: parentId });
    expect(run.decisions).toHaveLength(1);
    expect(run.decisions[0]).toMatchObject({ kind: "initial", path: "", rationale: "start small", author: "Erin Engineer" });
    expect(run.decisions[0]!.newValue).toEqual(run.config);
  });

  it("a fork records one decision per changed path, with per-path or change-set rationale", async () => {
    const run = await app.as("auditor").runs.get({ id: childId });
    expect(run.decisions.map((d) => [d.kind, d.path, d.oldValue, d.newValue, d.rationale])).toEqual([
      ["change", "training.batchSize", 16, 8, "the loss oscillated"],
      ["change", "training.learningRate", 0.03, 0.01, "halve the step size: validation loss oscillated"],
    ]);
  });

  it("a fork launched without a name of its own is named as the Fork form proposes, not like its parent nor 'run N'", async () => {
    const eng = app.as("engineer");
    const named = { ...irisConfig({ epochs: 1 }), name: "iris baseline" };
    const parent = await eng.runs.create({ experimentId: app.experimentId, config: named, rationale: "a named baseline" });
    const fork = (config: typeof named, name?: string) =>
      eng.runs.create({
        experimentId: app.experimentId,
        config: { ...config, training: { ...config.training, learningRate: 0.01 } },
        rationale: "slower",
        origin: "fork",
        parentRunId: parent.id,
        ...(name ? { name } : {}),
      });
    const unnamed = await fork(named);
    const renamedInConfig = await fork({ ...named, name: "iris slower" });
    const namedByHand = await fork(named, "my own name");
    const { name: _none, ...nameless } = named;
    const noConfigName = await fork(nameless as typeof named);
    const runs = [parent, unnamed, renamedInConfig, namedByHand, noConfigName];
    for (const r of runs) await app.orchestrator.waitFor(r.id);
    const names = await Promise.all(runs.map(async (r) => (await eng.runs.get({ id: r.id })).name));
    expect(names).toEqual([
      "iris baseline",
      `iris baseline · fork of #${parent.id}`,
      "iris slower",
      "my own name",
      `iris baseline · fork of #${parent.id}`,
    ]);
  });

  it("a fork without a change, or a re-run with one, is refused", async () => {
    const parent = await app.as("engineer").runs.get({ id: parentId });
    await expect(
      app
        .as("engineer")
        .runs.create({ experimentId: app.experimentId, config: parent.config, rationale: "same", origin: "fork", parentRunId: parentId }),
    ).rejects.toThrow(/must change at least one setting/);
    await expect(
      app.as("engineer").runs.create({
        experimentId: app.experimentId,
        config: { ...parent.config, training: { ...parent.config.training, seed: 99 } },
        rationale: "x",
        origin: "rerun",
        parentRunId: parentId,
      }),
    ).rejects.toThrow(/re-run repeats/);
  });
});

describe("notes and corrections", () => {
  it("a correction is a new row linked to the old decision, which stays unchanged; both are audited", async () => {
    const child = await app.as("engineer").runs.get({ id: childId });
    const original = child.decisions.find((d) => d.path === "training.learningRate")!;
    const before = app.db.select().from(decisions).where(eq(decisions.id, original.id)).get();
    const corr = await app.as("engineer").decisions.addNote({
      runId: childId,
      correctsDecisionId: original.id,
      rationale: "correction: it was the training loss that oscillated, not validation",
    });
    expect(corr).toMatchObject({ kind: "correction", correctsDecisionId: original.id, path: "training.learningRate" });
    expect(app.db.select().from(decisions).where(eq(decisions.id, original.id)).get()).toEqual(before);
    const note = await app
      .as("reviewer")
      .decisions.addNote({ runId: childId, rationale: "reviewed: the smaller batch is the likelier cause" });
    expect(note.kind).toBe("note");
    const actions = app.db
      .select()
      .from(auditEvents)
      .all()
      .map((e) => e.action);
    expect(actions).toContain("decision.correct");
    expect(actions).toContain("decision.create");
  });

  it("refuses a correction across runs, an empty note, and notes by auditors or admins", async () => {
    const parent = await app.as("engineer").runs.get({ id: parentId });
    await expect(
      app.as("engineer").decisions.addNote({ runId: childId, correctsDecisionId: parent.decisions[0]!.id, rationale: "x" }),
    ).rejects.toThrow(/belongs to run/);
    await expect(app.as("engineer").decisions.addNote({ runId: childId, rationale: "  " })).rejects.toThrow(/write the note/);
    await expect(app.as("auditor").decisions.addNote({ runId: childId, rationale: "I change nothing" })).rejects.toThrow(/auditor cannot/);
    await expect(app.as("admin").decisions.addNote({ runId: childId, rationale: "nor do I" })).rejects.toThrow(/admin cannot/);
  });

  it("decision rows cannot be edited through the API: there is no update procedure", () => {
    expect(Object.keys(decisionsRouter._def.procedures).sort()).toEqual(["addNote", "timeline"]);
  });
});

describe("timeline", () => {
  it("shows the parent's decisions, the child's changes and the measured effect at the same epoch", async () => {
    const t = await app.as("auditor").decisions.timeline({ runId: childId });
    expect(t.entries.map((e) => [e.runId, e.relation])).toEqual([
      [parentId, "ancestor"],
      [childId, "this run"],
    ]);
    const child = t.entries[1]!;
    const corrected = child.decisions.find((d) => d.path === "training.learningRate" && d.kind === "change")!;
    expect(corrected.correctedBy).toHaveLength(1);
    const valLoss = child.effect!.metrics.find((m) => m.key === "val_loss")!;
    expect(valLoss.epoch).toBe(4);
    const points = async (id: number) => (await app.as("auditor").runs.metrics({ runId: id, keys: ["val_loss"] })).series.val_loss!;
    expect(valLoss.parentValue).toBe((await points(parentId)).at(-1)!.value);
    expect(valLoss.childValue).toBe((await points(childId)).at(-1)!.value);
    expect(valLoss.delta).toBeCloseTo(valLoss.childValue - valLoss.parentValue, 12);
    expect(child.effect!.testAccuracy).not.toBeNull();
    expect(t.curves.parent!.val_loss).toHaveLength(4);

    const fromParent = await app.as("auditor").decisions.timeline({ runId: parentId });
    expect(fromParent.entries.map((e) => [e.runId, e.relation])).toEqual([
      [parentId, "this run"],
      [childId, "child"],
    ]);
    expect(fromParent.entries[1]!.effect).not.toBeNull();
  });
});
