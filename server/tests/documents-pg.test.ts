/**
 * Model-card and datasheet edits (updateDocument) on the store (issue 16): the same edits on SQLite and PostgreSQL
 * give the same versions, refusals and ledger rows (payloads, seq, chain hashes, under one fixed clock); versions are
 * immutable on both (the triggers reject UPDATE and DELETE); on PostgreSQL, edits of one version sent at once through
 * two pools save one new version and refuse the rest as stale, and seq stays gapless.
 */
import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { exec, pgStore, rows, transact, type Store } from "@/db/store";
import type { SignedInActor } from "@/server/app-context/service-context";
import { updateDocument } from "@/server/documents/service";
import { describePg } from "./pg-test-env";
import {
  failureText,
  fixedDateForEachTest,
  refusal,
  seedPeopleAndDataset,
  sqliteForSuite,
  TEST_PEOPLE,
  twoPgServersForSuite,
} from "./store-test-env";

const AT = "2026-12-04T12:00:00.000Z";
const { engineer, reviewer, auditor } = TEST_PEOPLE;
const DATASET_ID = 1;

const seed = (store: Store) => seedPeopleAndDataset(store, { at: AT, passwordHash: "x", datasetId: DATASET_ID });

const edit = (store: Store, actor: SignedInActor, section: string, body: string, baseVersion: number, subjectId = DATASET_ID) =>
  updateDocument({ db: store, actor }, { subjectType: "dataset", subjectId, section, body, baseVersion });

async function scenario(store: Store) {
  await seed(store);
  const v1 = await edit(store, engineer, "data_collection", "Measured by hand in 1935.", 0);
  const v2 = await edit(store, reviewer, "data_collection", "Measured by hand in 1935 on the Gaspé peninsula.", 1);
  const licence = await edit(store, engineer, "licence", "CC0", 0);
  const refusals = [
    await refusal(edit(store, engineer, "data_collection", "a stale edit", 1)),
    await refusal(edit(store, engineer, "data_collection", "Measured by hand in 1935 on the Gaspé peninsula.", 2)),
    await refusal(edit(store, engineer, "intended_use", "not a datasheet section", 0)),
    await refusal(edit(store, engineer, "licence", "no such dataset", 0, 999)),
    await refusal(edit(store, auditor, "licence", "I only read", 1)),
  ];
  const { auditEvents, documents } = store.tables;
  return {
    versions: [v1, v2, licence],
    refusals,
    stored: await transact(store, (tx) => rows(tx.select().from(documents).orderBy(documents.id))),
    ledger: await transact(store, (tx) => rows(tx.select().from(auditEvents).orderBy(auditEvents.seq))),
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function behaviourCases(storeOf: () => Store): void {
  fixedDateForEachTest(AT);

  it("saves versions that supersede each other, refuses stale, unchanged and misplaced edits, and writes the ledger", async () => {
    const store = storeOf();
    const outcome = await scenario(store);
    outcomes[store.dialect] = outcome;
    const [v1, v2, licence] = outcome.versions;
    expect(v2).toMatchObject({ version: 2, supersedesId: v1!.id, authorId: reviewer.id });
    expect(licence).toMatchObject({ version: 1, supersedesId: null });
    expect(outcome.refusals).toEqual([
      {
        kind: "conflict",
        message: "this section changed while you edited it (you edited version 1, the latest is version 2): reload and edit again",
      },
      { kind: "conflict", message: "version 2 already says exactly this: nothing to save" },
      { kind: "invalid_input", message: 'a dataset has no section "intended_use" (it has: data_collection, licence)' },
      { kind: "not_found", message: "dataset 999 was not found" },
      { kind: "forbidden", message: "a auditor cannot edit model cards and datasheets (needs: engineer or reviewer)" },
    ]);
    expect(outcome.ledger.map((e) => [e.seq, e.action, e.entityId])).toEqual([
      [1, "document.update", String(v1!.id)],
      [2, "document.update", String(v2!.id)],
      [3, "document.update", String(licence!.id)],
    ]);
    expect(JSON.parse(outcome.ledger[1]!.payload)).toMatchObject({ supersedesSha256: v1!.sha256, characters: v2!.body.length });
  });

  it("versions are immutable: the store rejects UPDATE and DELETE of a document version", async () => {
    const store = storeOf();
    const { documents } = store.tables;
    expect(
      await failureText(transact(store, (tx) => exec(tx.update(documents).set({ body: "rewritten" }).where(eq(documents.id, 1))))),
    ).toMatch(/document versions are immutable: UPDATE rejected/);
    expect(await failureText(transact(store, (tx) => exec(tx.delete(documents).where(eq(documents.id, 1)))))).toMatch(
      /document versions are immutable: DELETE rejected/,
    );
  });
}

describe("documents on SQLite", () => {
  const sqlite = sqliteForSuite("rl-documents-store-");
  behaviourCases(() => sqlite.store());
});

describePg("documents on PostgreSQL", () => {
  const pg = twoPgServersForSuite();

  behaviourCases(() => pgStore(pg.a()));

  it("gives the same versions, refusals and ledger rows (payloads, seq, chain hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg).toEqual(outcomes.sqlite);
  });

  it("edits of one version sent at once through two pools: one saved, the rest refused as stale; seq stays gapless", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())];
    await seed(servers[0]!);
    const { auditEvents } = servers[0]!.tables;
    const before = (await transact(servers[0]!, (tx) => rows(tx.select({ seq: auditEvents.seq }).from(auditEvents)))).length;
    const latest = (await transact(servers[0]!, (tx) => rows(tx.select().from(servers[0]!.tables.documents)))).filter(
      (d) => d.section === "licence",
    ).length;
    const settled = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) => edit(servers[i % 2]!, i % 3 ? engineer : reviewer, "licence", `licence text ${i}`, latest)),
    );
    expect(settled.filter((s) => s.status === "fulfilled")).toHaveLength(1);
    for (const s of settled.filter((s) => s.status === "rejected"))
      expect(s.reason).toMatchObject({ kind: "conflict", message: expect.stringMatching(/this section changed while you edited it/) });
    const seqs = (
      await transact(servers[1]!, (tx) => rows(tx.select({ seq: auditEvents.seq }).from(auditEvents).orderBy(auditEvents.seq)))
    ).map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: before + 1 }, (_, i) => i + 1));
  });
});
