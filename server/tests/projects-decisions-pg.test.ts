/**
 * The projects and decisions services on the store (issue 16): the same calls on SQLite and on PostgreSQL give the
 * same rows, the same errors and the same ledger (actions, payloads, seq and chain hashes, under one fixed clock);
 * decisions stay immutable on both (the triggers reject UPDATE and DELETE); and on PostgreSQL, creations and notes
 * sent from two pools at once (two web servers) leave a gapless seq, and one name created many times at once gives
 * one project and conflicts, never a unique-index error (the name is checked inside the transaction, under the ledger
 * lock).
 */
import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { exec, pgStore, rows, transact, type Store } from "@/db/store";
import type { SignedInActor } from "@/server/app-context/service-context";
import { addDecisionNote } from "@/server/decisions/service";
import { createExperiment, createProject, getExperiment, listProjectsWithExperiments } from "@/server/projects/service";
import { describePg } from "./pg-test-env";
import { failureText, fixedDateForEachTest, refusal, sqliteForSuite, twoPgServersForSuite } from "./store-test-env";

const AT = "2026-12-04T12:00:00.000Z";
const actors = {
  engineer: { id: 1, name: "Erin Engineer", role: "engineer", email: "erin@example.com" },
  reviewer: { id: 2, name: "Rey Reviewer", role: "reviewer", email: "rey@example.com" },
  auditor: { id: 3, name: "Aud Auditor", role: "auditor", email: "aud@example.com" },
  admin: { id: 4, name: "Ada Admin", role: "admin", email: "ada@example.com" },
} satisfies Record<string, SignedInActor>;

/** The users the rows reference (the users domain is not under test here); a second call adds nothing. */
async function seedUsers(store: Store): Promise<void> {
  const { users } = store.tables;
  await transact(store, function* (tx) {
    for (const a of Object.values(actors))
      yield* exec(
        tx
          .insert(users)
          .values({ id: a.id, email: a.email, name: a.name, role: a.role, passwordHash: "x", createdAt: AT })
          .onConflictDoNothing(),
      );
  });
}

/** A run row written directly (the runs domain is not ported yet): decisions reference it. */
async function insertRun(store: Store, experimentId: number, name: string): Promise<number> {
  const { runs } = store.tables;
  const [created] = await transact(store, (tx) =>
    rows(
      tx
        .insert(runs)
        .values({ experimentId, name, status: "completed", configJson: "{}", configSha256: "0", seed: 1, createdBy: 1, createdAt: AT })
        .returning({ id: runs.id }),
    ),
  );
  return created!.id;
}

/** The same calls on either store; returns what a client sees and every ledger row, to compare the stores. */
async function scenario(store: Store) {
  const as = (a: SignedInActor) => ({ db: store, actor: a });
  await seedUsers(store);
  const vision = await createProject(as(actors.engineer), { name: "Vision", description: "images" });
  const audio = await createProject(as(actors.admin), { name: "Audio" });
  const baseline = await createExperiment(as(actors.engineer), { projectId: vision.id, name: "baseline", description: "first" });
  const other = await createExperiment(as(actors.engineer), { projectId: audio.id, name: "baseline" });
  const second = await createExperiment(as(actors.engineer), { projectId: vision.id, name: "Ablation" });
  const projectRefusals = [
    await refusal(createProject(as(actors.reviewer), { name: "Nope" })),
    await refusal(createProject(as(actors.engineer), { name: "Vision" })),
    await refusal(createExperiment(as(actors.admin), { projectId: vision.id, name: "x" })),
    await refusal(createExperiment(as(actors.engineer), { projectId: 999, name: "x" })),
    await refusal(createExperiment(as(actors.engineer), { projectId: vision.id, name: "baseline" })),
    await refusal(getExperiment(store, 999)),
  ];

  const run1 = await insertRun(store, baseline.id, "run 1");
  const run2 = await insertRun(store, other.id, "run 2");
  const note = await addDecisionNote(as(actors.reviewer), { runId: run1, rationale: "  the loss flattens after epoch 2  " });
  const correction = await addDecisionNote(as(actors.engineer), {
    runId: run1,
    rationale: "it flattens after epoch 3",
    correctsDecisionId: note.id,
  });
  const otherNote = await addDecisionNote(as(actors.engineer), { runId: run2, rationale: "another run" });
  const decisionRefusals = [
    await refusal(addDecisionNote(as(actors.auditor), { runId: run1, rationale: "I change nothing" })),
    await refusal(addDecisionNote(as(actors.admin), { runId: run1, rationale: "nor do I" })),
    await refusal(addDecisionNote(as(actors.engineer), { runId: 999, rationale: "no such run" })),
    await refusal(addDecisionNote(as(actors.engineer), { runId: run1, rationale: "x", correctsDecisionId: 999 })),
    await refusal(addDecisionNote(as(actors.engineer), { runId: run1, rationale: "x", correctsDecisionId: otherNote.id })),
  ];
  const blank = await refusal(addDecisionNote(as(actors.engineer), { runId: run1, rationale: "   " }));

  const { auditEvents, decisions } = store.tables;
  const ledger = await transact(store, (tx) => rows(tx.select().from(auditEvents).orderBy(auditEvents.seq)));
  const storedDecisions = await transact(store, (tx) => rows(tx.select().from(decisions).orderBy(decisions.id)));
  return {
    created: [vision, audio, baseline, other, second],
    listed: await listProjectsWithExperiments(store),
    experiment: await getExperiment(store, second.id),
    projectRefusals,
    notes: [note, correction, otherNote],
    decisionRefusals,
    blankRationaleRefused: blank.kind === "other" && /write the note/.test(blank.message),
    storedDecisions,
    ledger,
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

/** The behaviour both stores must show, and the comparison once both have run. */
function behaviourCases(storeOf: () => Store): void {
  fixedDateForEachTest(AT);

  it("creates projects and experiments, records notes and corrections, refuses what it must, and writes the ledger", async () => {
    const store = storeOf();
    const outcome = await scenario(store);
    outcomes[store.dialect] = outcome;
    expect(outcome.listed.map((p) => [p.name, p.experiments.map((e) => [e.name, e.runCount])])).toEqual([
      ["Audio", [["baseline", 1]]],
      [
        "Vision",
        [
          ["Ablation", 0],
          ["baseline", 1],
        ],
      ],
    ]);
    expect(outcome.experiment).toMatchObject({ name: "Ablation", projectName: "Vision" });
    expect(outcome.projectRefusals).toEqual([
      { kind: "forbidden", message: "a reviewer cannot create projects (needs: engineer or admin)" },
      { kind: "conflict", message: 'a project named "Vision" already exists' },
      { kind: "forbidden", message: "a admin cannot create experiments (needs: engineer)" },
      { kind: "not_found", message: "project 999 was not found" },
      { kind: "conflict", message: 'this project already has an experiment named "baseline"' },
      { kind: "not_found", message: "experiment 999 was not found" },
    ]);
    const [note, correction] = outcome.notes;
    expect(note).toMatchObject({ kind: "note", rationale: "the loss flattens after epoch 2", authorId: 2, correctsDecisionId: null });
    expect(correction).toMatchObject({ kind: "correction", correctsDecisionId: note!.id, authorId: 1 });
    expect(outcome.decisionRefusals.map((r) => r.kind)).toEqual(["forbidden", "forbidden", "not_found", "not_found", "invalid_input"]);
    expect(outcome.decisionRefusals[4]!.message).toMatch(/a correction stays on the run of the decision it corrects/);
    expect(outcome.blankRationaleRefused).toBe(true);
    expect(outcome.ledger.map((e) => [e.seq, e.action, e.entityId])).toEqual([
      [1, "project.create", String(outcome.created[0]!.id)],
      [2, "project.create", String(outcome.created[1]!.id)],
      [3, "experiment.create", String(outcome.created[2]!.id)],
      [4, "experiment.create", String(outcome.created[3]!.id)],
      [5, "experiment.create", String(outcome.created[4]!.id)],
      [6, "decision.create", String(note!.id)],
      [7, "decision.correct", String(correction!.id)],
      [8, "decision.create", String(outcome.notes[2]!.id)],
    ]);
  });

  it("decisions are immutable: the store rejects UPDATE and DELETE of a decision", async () => {
    const store = storeOf();
    const { decisions } = store.tables;
    expect(
      await failureText(transact(store, (tx) => exec(tx.update(decisions).set({ rationale: "rewritten" }).where(eq(decisions.id, 1))))),
    ).toMatch(/decisions are immutable: UPDATE rejected \(add a correction instead\)/);
    expect(await failureText(transact(store, (tx) => exec(tx.delete(decisions).where(eq(decisions.id, 1)))))).toMatch(
      /decisions are immutable: DELETE rejected/,
    );
    const [first] = await transact(store, (tx) => rows(tx.select().from(decisions).where(eq(decisions.id, 1))));
    expect(first?.rationale).toBe("the loss flattens after epoch 2");
  });
}

describe("projects and decisions on SQLite", () => {
  const sqlite = sqliteForSuite("rl-projects-store-");
  behaviourCases(() => sqlite.store());
});

describePg("projects and decisions on PostgreSQL", () => {
  const pg = twoPgServersForSuite();

  behaviourCases(() => pgStore(pg.a()));

  it("gives the same rows, refusals and ledger rows (payloads, seq, chain hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg).toEqual(outcomes.sqlite);
  });

  it("two servers creating projects, experiments and notes at once: seq stays gapless, one name gives one project and conflicts", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())];
    const { auditEvents, projects } = servers[0]!.tables;
    const startSeq = (await transact(servers[0]!, (tx) => rows(tx.select({ seq: auditEvents.seq }).from(auditEvents)))).length;
    await seedUsers(servers[0]!);
    const as = (i: number, actor: SignedInActor) => ({ db: servers[i % 2]!, actor });
    const project = await createProject(as(0, actors.engineer), { name: "Concurrent" });
    const experiment = await createExperiment(as(1, actors.engineer), { projectId: project.id, name: "e" });
    const runId = await insertRun(servers[0]!, experiment.id, "concurrent run");

    const settled = await Promise.allSettled([
      ...Array.from({ length: 12 }, (_, i) => createProject(as(i, actors.engineer), { name: "Same name" })),
      ...Array.from({ length: 12 }, (_, i) => createProject(as(i, actors.admin), { name: `Distinct ${i}` })),
      ...Array.from({ length: 12 }, (_, i) => createExperiment(as(i, actors.engineer), { projectId: project.id, name: `exp ${i}` })),
      ...Array.from({ length: 12 }, (_, i) => addDecisionNote(as(i, actors.reviewer), { runId, rationale: `note ${i}` })),
    ]);
    const sameName = settled.slice(0, 12);
    expect(sameName.filter((s) => s.status === "fulfilled")).toHaveLength(1);
    for (const s of sameName.filter((s) => s.status === "rejected"))
      expect(s.reason).toMatchObject({ kind: "conflict", message: 'a project named "Same name" already exists' });
    expect(settled.slice(12).every((s) => s.status === "fulfilled")).toBe(true);

    const seqs = (
      await transact(servers[1]!, (tx) => rows(tx.select({ seq: auditEvents.seq }).from(auditEvents).orderBy(auditEvents.seq)))
    ).map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: startSeq + 2 + 1 + 36 }, (_, i) => i + 1));
    const named = await transact(servers[0]!, (tx) => rows(tx.select().from(projects).where(eq(projects.name, "Same name"))));
    expect(named).toHaveLength(1);
  });
});
