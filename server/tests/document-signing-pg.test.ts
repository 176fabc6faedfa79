/**
 * Model-card and datasheet signatures (signDocument, with the signer's re-entered password) on the store (issue 16):
 * the same signing on SQLite and PostgreSQL gives the same signatures, refusals and ledger events (under one fixed
 * clock); a wrong password is refused, recorded and counted by the per-account throttle on both; on PostgreSQL, one
 * person signing one version with one meaning at once through two pools gives one signature and conflicts. The
 * datasheet read (readDocuments, the documents.get procedure) gives the same sections on both.
 * Real scrypt hashes (the password check is part of what is ported).
 */
import { describe, expect, it, vi } from "vitest";
import { and, eq } from "drizzle-orm";
import { pgStore, rows, transact, type Store } from "@/db/store";
import type { SignedInActor } from "@/server/app-context/service-context";
import { generateAuditKeys } from "@/server/audit/keys";
import { hashPasswordSync } from "@/server/auth/password";
import { identifierDigest } from "@/server/auth/signin-failures";
import { accountBucketKey } from "@/server/auth/throttle";
import { documentsFor, readDocuments } from "@/server/documents/queries";
import { signDocument, updateDocument } from "@/server/documents/service";
import { describePg } from "./pg-test-env";
import { fixedDateForEachTest, refusal, seedPeopleAndDataset, sqliteForSuite, TEST_PEOPLE, twoPgServersForSuite } from "./store-test-env";

/**
 * Holds each finished password check until `expected` signers have finished theirs, then releases them together, so
 * the concurrent test's signatures reach their transactions at the same moment (the hasher's few threads and the
 * throttle would stagger them enough to hide a race). `expected` 0: no hold.
 */
const passwordBarrier = await vi.hoisted(async () => (await import("./release-together")).releaseTogether());
vi.mock("@/server/auth/password", async (importOriginal) => {
  const real = await importOriginal<typeof import("@/server/auth/password")>();
  return {
    ...real,
    checkPassword: async (...args: Parameters<typeof real.checkPassword>) => {
      const ok = await real.checkPassword(...args);
      await passwordBarrier.arrive();
      return ok;
    },
  };
});

const AT = "2026-12-04T12:00:00.000Z";
const PASSWORD = "correct horse battery staple";
const PASSWORD_HASH = hashPasswordSync(PASSWORD);
const { engineer, reviewer, auditor } = TEST_PEOPLE;
const DATASET_ID = 1;
const auditKeys = generateAuditKeys();

const seed = (store: Store) => seedPeopleAndDataset(store, { at: AT, passwordHash: PASSWORD_HASH, datasetId: DATASET_ID });

const edit = (store: Store, actor: SignedInActor, section: string, body: string, baseVersion: number) =>
  updateDocument({ db: store, actor }, { subjectType: "dataset", subjectId: DATASET_ID, section, body, baseVersion });

const sign = (store: Store, actor: SignedInActor, documentId: number, meaning: "authorship" | "review", password = PASSWORD) =>
  signDocument({ db: store, actor, auditKeys }, { documentId, meaning, password, comment: `${meaning} by ${actor.name}` });

/** The per-account throttle's failure count for an actor (shared with sign-in), 0 without a row. */
async function accountFailures(store: Store, actor: SignedInActor): Promise<number> {
  const { throttleBuckets } = store.tables;
  const key = accountBucketKey(identifierDigest(actor.email));
  const found = await transact(store, (tx) => rows(tx.select().from(throttleBuckets).where(eq(throttleBuckets.key, key))));
  return found[0]?.failures ?? 0;
}

async function scenario(store: Store) {
  await seed(store);
  const licence = await edit(store, engineer, "licence", "CC0", 0);
  const collection = await edit(store, reviewer, "data_collection", "Measured by hand in 1935.", 0);
  const refusals = [
    await refusal(sign(store, auditor, licence.id, "authorship")),
    await refusal(sign(store, engineer, licence.id, "review")),
    await refusal(sign(store, engineer, 999, "authorship")),
    await refusal(sign(store, reviewer, collection.id, "review")),
    await refusal(sign(store, reviewer, licence.id, "review", "not the password")),
  ];
  const failuresAfterWrongPassword = await accountFailures(store, reviewer);
  const signed = [await sign(store, engineer, licence.id, "authorship"), await sign(store, reviewer, licence.id, "review")];
  const failuresAfterRightPassword = await accountFailures(store, reviewer);
  refusals.push(await refusal(sign(store, engineer, licence.id, "authorship")));
  await edit(store, engineer, "licence", "CC-BY 4.0", 1);
  refusals.push(await refusal(sign(store, reviewer, licence.id, "review")));
  refusals.push(await refusal(readDocuments(store, "dataset", 999)));
  const { auditEvents, signatures } = store.tables;
  const ledger = await transact(store, (tx) => rows(tx.select().from(auditEvents).orderBy(auditEvents.seq)));
  return {
    datasheet: await readDocuments(store, "dataset", DATASET_ID),
    refusals,
    failuresAfterWrongPassword,
    failuresAfterRightPassword,
    answers: signed.map(({ signatureId, text }) => ({ signatureId, text })),
    checkpoints: signed.map((s) => s.auditCheckpoint),
    stored: await transact(store, (tx) => rows(tx.select().from(signatures).orderBy(signatures.id))),
    // The audit.checkpoint events that follow signatures are counted apart (their payloads: audit-checkpoints-pg.test.ts).
    events: ledger
      .filter((e) => e.action !== "audit.checkpoint")
      .map(({ at, actorId, actorName, role, action, entityType, entityId, payload }) => ({
        at,
        actorId,
        actorName,
        role,
        action,
        entityType,
        entityId,
        payload,
      })),
    checkpointEvents: ledger.filter((e) => e.action === "audit.checkpoint").length,
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function behaviourCases(storeOf: () => Store): void {
  fixedDateForEachTest(AT);

  it("signs with the right password, refuses roles, self-review, a wrong password (recorded and counted), duplicates and superseded versions", async () => {
    const store = storeOf();
    const outcome = await scenario(store);
    outcomes[store.dialect] = outcome;
    expect(outcome.refusals).toEqual([
      { kind: "forbidden", message: 'a auditor cannot sign documents with meaning "authorship" (needs: engineer or reviewer)' },
      { kind: "forbidden", message: 'a engineer cannot sign documents with meaning "review" (needs: reviewer)' },
      { kind: "not_found", message: "document version 999 was not found" },
      {
        kind: "forbidden",
        message: 'Rey Reviewer wrote version 1 of "data_collection" and cannot sign its review: another reviewer must review it',
      },
      { kind: "forbidden", message: "the password does not match: the signature was not recorded" },
      { kind: "conflict", message: "Erin Engineer has already signed version 1 of this section with meaning authorship" },
      { kind: "conflict", message: 'version 1 of "licence" has been superseded by version 2: sign the latest version' },
      { kind: "not_found", message: "dataset 999 was not found" },
    ]);
    const licenceSection = outcome.datasheet.sections.find((s) => s.key === "licence")!;
    expect(licenceSection.history.map((v) => [v.version, v.author, v.signatures.map((g) => [g.printedName, g.meaning])])).toEqual([
      [2, engineer.name, []],
      [
        1,
        engineer.name,
        [
          [engineer.name, "authorship"],
          [reviewer.name, "review"],
        ],
      ],
    ]);
    expect(outcome.failuresAfterWrongPassword).toBe(1);
    expect(outcome.failuresAfterRightPassword).toBe(0);
    expect(outcome.stored.map((s) => [s.userId, s.meaning, s.recordType, s.recordId])).toEqual([
      [engineer.id, "authorship", "document", 1],
      [reviewer.id, "review", "document", 1],
    ]);
    expect(outcome.events.map((e) => [e.action, e.entityType, e.entityId])).toEqual([
      ["document.update", "document", "1"],
      ["document.update", "document", "2"],
      ["document.selfReviewRefused", "document", "2"],
      ["signature.refused", "document", "1"],
      ["signature.create", "signature", "1"],
      ["signature.create", "signature", "2"],
      ["document.update", "document", "3"],
    ]);
    expect(JSON.parse(outcome.events[3]!.payload)).toEqual({
      meaning: "review",
      recordSha256: outcome.stored[0]!.recordSha256,
      reason: "wrong password",
    });
  });
}

describe("document signing on SQLite", () => {
  const sqlite = sqliteForSuite("rl-document-signing-store-");
  behaviourCases(() => sqlite.store());

  it("the store read of a datasheet gives what the report's synchronous read gives", async () => {
    expect(await readDocuments(sqlite.store(), "dataset", DATASET_ID)).toEqual(documentsFor(sqlite.db(), "dataset", DATASET_ID));
  });

  it("a signed audit checkpoint follows each signature", () => {
    expect(outcomes.sqlite!.checkpoints.map((c) => c.ok)).toEqual([true, true]);
    expect(outcomes.sqlite!.checkpointEvents).toBe(2);
  });
});

describePg("document signing on PostgreSQL", () => {
  const pg = twoPgServersForSuite();

  behaviourCases(() => pgStore(pg.a()));

  it("gives the same signatures, refusals, ledger events and signed checkpoints (ids, tree sizes, roots) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg!.checkpoints.map((c) => c.ok)).toEqual([true, true]);
    expect(outcomes.pg!.checkpointEvents).toBe(2);
    expect(outcomes.pg).toEqual(outcomes.sqlite);
  });

  it("one person signing one version at once through two pools: one signature, the rest conflicts", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())];
    const { signatures, auditEvents, documents } = servers[0]!.tables;
    await seed(servers[0]!);
    for (let round = 0; round < 3; round++) {
      const versions = await transact(servers[0]!, (tx) =>
        rows(tx.select().from(documents).where(eq(documents.section, "data_collection"))),
      );
      const doc = await edit(servers[0]!, engineer, "data_collection", `Measured again, round ${round}.`, versions.length);
      // 4 at once: the throttle counts each attempt before its check, so a 6th at once would wait out a backoff (429).
      passwordBarrier.arm(4);
      const settled = await Promise.allSettled(Array.from({ length: 4 }, (_, i) => sign(servers[i % 2]!, reviewer, doc.id, "review")));
      expect(settled.filter((s) => s.status === "fulfilled")).toHaveLength(1);
      for (const s of settled.filter((s) => s.status === "rejected"))
        expect(s.reason).toMatchObject({ kind: "conflict", message: expect.stringMatching(/already signed version/) });
      const stored = await transact(servers[1]!, (tx) =>
        rows(
          tx
            .select()
            .from(signatures)
            .where(and(eq(signatures.recordType, "document"), eq(signatures.recordId, doc.id))),
        ),
      );
      expect(stored).toHaveLength(1);
    }
    const seqs = (
      await transact(servers[1]!, (tx) => rows(tx.select({ seq: auditEvents.seq }).from(auditEvents).orderBy(auditEvents.seq)))
    ).map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  });
});
