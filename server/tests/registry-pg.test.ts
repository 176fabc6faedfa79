/**
 * The model registry and promotions on the store (issue 16): one scenario on SQLite and PostgreSQL under one fixed
 * clock (register versions from a run's checkpoints, request a promotion, the four-eyes refusal of one's own work,
 * approvals and a rejection, a withdrawal, alias moves, the documentation requirement, the reviewer's inbox and the
 * registry reads) gives the same rows, refusals and ledger events (seq, payload, leaf and chain hashes). On PostgreSQL,
 * through two pools ("two web servers"), writes whose check precedes their write run at once: two reviewers approving
 * one request, one alias moved many times to one version, one promotion requested many times, one model registered
 * many times. Runs, checkpoints and evaluations are seeded as rows (runs are not on the store yet); real scrypt
 * password hashes (the signer's password check is part of what is ported).
 */
import { describe, expect, it, vi } from "vitest";
import { and, eq } from "drizzle-orm";
import { exec, pgStore, reader, rows, transact, type Store } from "@/db/store";
import type { SignedInActor } from "@/server/app-context/service-context";
import { generateAuditKeys } from "@/server/audit/keys";
import { hashPasswordSync } from "@/server/auth/password";
import { updateDocument } from "@/server/documents/service";
import { documentationChecklistOf } from "@/server/registry/documentation";
import { reviewerInbox } from "@/server/registry/inbox";
import { requestPromotion, signPromotion, withdrawPromotion } from "@/server/registry/promotions";
import { aliasAt, aliasTimeline, getModel, listModels } from "@/server/registry/queries";
import { moveAlias, registerModelVersion, setApprovalsRequired } from "@/server/registry/service";
import { describePg } from "./pg-test-env";
import { fixedDateForEachTest, refusal, seedPeopleAndDataset, sqliteForSuite, TEST_PEOPLE, twoPgServersForSuite } from "./store-test-env";

/**
 * Holds each finished password check until `expected` signers have finished theirs, then releases them together, so
 * the concurrent approvals reach their transactions at the same moment (the hasher would stagger them enough to hide a
 * race). `expected` 0: no hold.
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
const secondReviewer = { id: 4, name: "Rita Reviewer", role: "reviewer", email: "rita@example.com" } satisfies SignedInActor;
const admin = { id: 5, name: "Ada Admin", role: "admin", email: "ada@example.com" } satisfies SignedInActor;
const DATASET_ID = 1;
/** Run 1: completed, two checkpoints (1: epoch 0; 2: epoch 1, best), evaluations of checkpoint 2 on test (1) and validation (2). Run 2: running. */
const COMPLETED_RUN = 1;
const RUNNING_RUN = 2;
const MODEL = "iris-classifier";
const auditKeys = generateAuditKeys();

/** TEST_PEOPLE, a second reviewer, an admin, the dataset, and the run rows the registry reads. Idempotent. */
async function seed(store: Store): Promise<void> {
  await seedPeopleAndDataset(store, { at: AT, passwordHash: PASSWORD_HASH, datasetId: DATASET_ID });
  const { users, projects, experiments, runs, checkpoints, evaluations } = store.tables;
  const config = JSON.stringify({ data: { dataset: { datasetId: String(DATASET_ID) } } });
  await transact(store, function* (tx) {
    for (const a of [secondReviewer, admin])
      yield* exec(
        tx
          .insert(users)
          .values({ id: a.id, email: a.email, name: a.name, role: a.role, passwordHash: PASSWORD_HASH, createdAt: AT })
          .onConflictDoNothing(),
      );
    yield* exec(tx.insert(projects).values({ id: 1, name: "Flowers", createdBy: engineer.id, createdAt: AT }).onConflictDoNothing());
    yield* exec(
      tx.insert(experiments).values({ id: 1, projectId: 1, name: "Baseline", createdBy: engineer.id, createdAt: AT }).onConflictDoNothing(),
    );
    for (const [id, status] of [
      [COMPLETED_RUN, "completed"],
      [RUNNING_RUN, "running"],
    ] as const)
      yield* exec(
        tx
          .insert(runs)
          .values({
            id,
            experimentId: 1,
            name: `run ${id}`,
            status,
            configJson: config,
            configSha256: "c".repeat(64),
            seed: 7,
            createdBy: engineer.id,
            createdAt: AT,
          })
          .onConflictDoNothing(),
      );
    for (const [id, epoch, isBest] of [
      [1, 0, false],
      [2, 1, true],
    ] as const)
      yield* exec(
        tx
          .insert(checkpoints)
          .values({
            id,
            runId: COMPLETED_RUN,
            epoch,
            step: (epoch + 1) * 10,
            sha256: String(id).repeat(64),
            bytes: 100,
            metricsJson: "{}",
            isBest,
            createdAt: AT,
          })
          .onConflictDoNothing(),
      );
    for (const [id, partition] of [
      [1, "test"],
      [2, "validation"],
    ] as const)
      yield* exec(
        tx
          .insert(evaluations)
          .values({
            id,
            runId: COMPLETED_RUN,
            checkpointId: 2,
            partition,
            dataSha256: "d".repeat(64),
            metricsJson: JSON.stringify({ accuracy: 0.9 }),
            createdBy: engineer.id,
            createdAt: AT,
          })
          .onConflictDoNothing(),
      );
  });
}

const services = (store: Store, actor: SignedInActor) => ({ db: store, actor, auditKeys });

const register = (store: Store, actor: SignedInActor, checkpoint: "best" | { epoch: number }, runId = COMPLETED_RUN, modelName = MODEL) =>
  registerModelVersion(services(store, actor), { runId, modelName, checkpoint, description: "sepal and petal" });

const request = (
  store: Store,
  actor: SignedInActor,
  version: number,
  more: { alias?: string; evaluationId?: number; ack?: boolean; model?: string } = {},
) =>
  requestPromotion(services(store, actor), {
    modelName: more.model ?? MODEL,
    version,
    alias: more.alias,
    evaluationId: more.evaluationId,
    rationale: "best test accuracy",
    acknowledgeMissingDocumentation: more.ack ?? false,
  });

const sign = (store: Store, actor: SignedInActor, requestId: number, meaning: "approval" | "rejection" | "review", password = PASSWORD) =>
  signPromotion(services(store, actor), { requestId, meaning, password, comment: `${meaning} by ${actor.name}` });

const move = (store: Store, actor: SignedInActor, alias: string, version: number | null, modelName = MODEL) =>
  moveAlias(services(store, actor), { modelName, alias, version, rationale: `move ${alias}` });

/** The seed and a model of its own for a race test (versions 1: the best checkpoint, 2: epoch 0), on a store that may already hold others. */
async function seedModel(store: Store, modelName: string): Promise<void> {
  await seed(store);
  await register(store, engineer, "best", COMPLETED_RUN, modelName);
  await register(store, engineer, { epoch: 0 }, COMPLETED_RUN, modelName);
}

async function scenario(store: Store) {
  await seed(store);
  const refusals: Awaited<ReturnType<typeof refusal>>[] = [];
  const expectRefusal = async (p: Promise<unknown>) => void refusals.push(await refusal(p));

  await expectRefusal(register(store, auditor, "best"));
  await expectRefusal(register(store, engineer, "best", 999));
  await expectRefusal(register(store, engineer, "best", RUNNING_RUN));
  await expectRefusal(register(store, engineer, { epoch: 7 }));
  const registered = [await register(store, engineer, "best"), await register(store, engineer, { epoch: 0 })];

  await expectRefusal(request(store, engineer, 2, { ack: true }));
  await expectRefusal(request(store, engineer, 1, { evaluationId: 2, ack: true }));
  await expectRefusal(request(store, engineer, 1));
  await expectRefusal(request(store, reviewer, 1, { ack: true }));
  await updateDocument(
    { db: store, actor: engineer },
    { subjectType: "model", subjectId: 1, section: "intended_use", body: "Sorting irises.", baseVersion: 0 },
  );
  const checklist = await documentationChecklistOf(store, MODEL, 1);
  const production = await request(store, engineer, 1, { ack: true });
  await expectRefusal(request(store, engineer, 1, { ack: true }));
  const inboxes = [await reviewerInbox(store, reviewer), await reviewerInbox(store, engineer)];

  await expectRefusal(sign(store, engineer, production.id, "approval"));
  await expectRefusal(sign(store, auditor, production.id, "approval"));
  await expectRefusal(sign(store, reviewer, production.id, "approval", "not the password"));
  await expectRefusal(sign(store, reviewer, 999, "approval"));
  await expectRefusal(setApprovalsRequired({ db: store, actor: engineer }, { modelName: MODEL, approvalsRequired: 2 }));
  const rule = await setApprovalsRequired({ db: store, actor: admin }, { modelName: MODEL, approvalsRequired: 2 });
  const signed = [await sign(store, reviewer, production.id, "review"), await sign(store, reviewer, production.id, "approval")];
  inboxes.push(await reviewerInbox(store, reviewer), await reviewerInbox(store, secondReviewer));
  await expectRefusal(sign(store, reviewer, production.id, "approval"));
  signed.push(await sign(store, secondReviewer, production.id, "approval"));
  await expectRefusal(sign(store, secondReviewer, production.id, "rejection"));

  await expectRefusal(move(store, engineer, "production", 2));
  await expectRefusal(move(store, reviewer, "staging", 2));
  await expectRefusal(move(store, engineer, "staging", 9));
  const moves = [await move(store, engineer, "staging", 2)];
  await expectRefusal(move(store, engineer, "staging", 2));
  moves.push(await move(store, engineer, "staging", null));
  await expectRefusal(move(store, engineer, "staging", null));

  const canary = await request(store, engineer, 1, { alias: "canary", ack: true });
  signed.push(await sign(store, reviewer, canary.id, "rejection"));
  const shadow = await request(store, engineer, 1, { alias: "shadow", ack: true });
  await expectRefusal(withdrawPromotion({ db: store, actor: reviewer }, { requestId: shadow.id, reason: "not mine" }));
  const withdrawn = await withdrawPromotion({ db: store, actor: engineer }, { requestId: shadow.id, reason: "not needed" });
  await expectRefusal(withdrawPromotion({ db: store, actor: engineer }, { requestId: shadow.id, reason: "again" }));
  await expectRefusal(sign(store, reviewer, shadow.id, "approval"));
  await expectRefusal(aliasAt(store, MODEL, "production", "yesterday-ish"));
  await expectRefusal(getModel(store, "no-such-model"));

  const t = store.tables;
  const db = reader(store);
  return {
    registered,
    refusals,
    checklist,
    inboxes,
    rule,
    answers: signed.map(({ auditCheckpoint: _c, ...answer }) => answer),
    checkpoints: [...signed, ...moves].map((a) => a.auditCheckpoint),
    moves: moves.map(({ auditCheckpoint: _c, ...answer }) => answer),
    withdrawn,
    reads: {
      list: await listModels(store),
      detail: await getModel(store, MODEL, reviewer.id),
      productionNow: await aliasAt(store, MODEL, "production"),
      productionAt: await aliasAt(store, MODEL, "production", AT),
      stagingTimeline: await aliasTimeline(store, MODEL, "staging"),
    },
    stored: {
      models: await db.select().from(t.models).orderBy(t.models.id),
      versions: await db.select().from(t.modelVersions).orderBy(t.modelVersions.id),
      aliasEvents: await db.select().from(t.modelAliasEvents).orderBy(t.modelAliasEvents.id),
      requests: await db.select().from(t.promotionRequests).orderBy(t.promotionRequests.id),
      signatures: await db.select().from(t.signatures).orderBy(t.signatures.id),
    },
    ledger: await db.select().from(t.auditEvents).orderBy(t.auditEvents.seq),
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function behaviourCases(storeOf: () => Store): void {
  fixedDateForEachTest(AT);

  it("registers, requests, refuses own work and roles, approves at the rule, rejects, withdraws and moves aliases", async () => {
    const store = storeOf();
    const outcome = await scenario(store);
    outcomes[store.dialect] = outcome;
    expect(outcome.registered.map((r) => [r.model, r.version, r.checkpointId, r.epoch])).toEqual([
      [MODEL, 1, 2, 1],
      [MODEL, 2, 1, 0],
    ]);
    expect(outcome.refusals).toEqual([
      { kind: "forbidden", message: "a auditor cannot register model versions (needs: engineer)" },
      { kind: "not_found", message: "run 999 was not found" },
      { kind: "wrong_state", message: "run 2 is running: only checkpoints of completed runs can be registered" },
      { kind: "invalid_input", message: "run 1 has no checkpoint at epoch 7 (it has epochs 0, 1)" },
      {
        kind: "wrong_state",
        message: expect.stringMatching(/^version 2 of "iris-classifier" cannot be promoted: .* no evaluation on the test partition/),
      },
      { kind: "invalid_input", message: 'evaluation 2 is on the "validation" partition; a promotion relies on the test partition' },
      { kind: "wrong_state", message: expect.stringMatching(/^\d+ of \d+ documentation sections of version 1 are not written/) },
      { kind: "forbidden", message: "a reviewer cannot request promotions (needs: engineer)" },
      { kind: "conflict", message: 'promotion request #1 for version 1 to "production" is already pending' },
      {
        kind: "forbidden",
        message: expect.stringMatching(
          /^Erin Engineer cannot sign promotion request #1: they requested this promotion; registered model version 1; .*Four eyes/,
        ),
      },
      { kind: "forbidden", message: "a auditor cannot sign promotion requests (needs: reviewer)" },
      { kind: "forbidden", message: "the password does not match: the signature was not recorded" },
      { kind: "not_found", message: "promotion request 999 was not found" },
      { kind: "forbidden", message: "a engineer cannot change how many approvals a promotion needs (needs: admin)" },
      { kind: "conflict", message: "Rey Reviewer has already signed promotion request #1" },
      { kind: "wrong_state", message: "promotion request #1 is approved; only a pending request can be signed" },
      { kind: "invalid_input", message: '"production" moves only through a promotion request approved by independent reviewers' },
      { kind: "forbidden", message: "a reviewer cannot move model aliases (needs: engineer)" },
      { kind: "not_found", message: 'version 9 of model "iris-classifier" was not found' },
      { kind: "conflict", message: '"staging" already points at version 2' },
      { kind: "conflict", message: '"staging" already is unset' },
      { kind: "forbidden", message: "a reviewer cannot withdraw promotion requests (needs: engineer)" },
      { kind: "wrong_state", message: "promotion request #3 is withdrawn" },
      { kind: "wrong_state", message: "promotion request #3 is withdrawn; only a pending request can be signed" },
      { kind: "invalid_input", message: '"yesterday-ish" is not a time: use ISO-8601, e.g. 2026-01-31T12:00:00Z' },
      { kind: "not_found", message: 'model "no-such-model" was not found' },
    ]);
    expect(outcome.inboxes.map((i) => [i.count, i.requests.map((r) => [r.id, r.approvals, r.approvalsRequired])])).toEqual([
      [1, [[1, 0, 1]]],
      [0, []],
      [0, []],
      [1, [[1, 1, 2]]],
    ]);
    expect(outcome.answers.map((a) => [a.status, a.aliasMoved])).toEqual([
      ["pending", false],
      ["pending", false],
      ["approved", true],
      ["rejected", false],
    ]);
    expect(outcome.checklist.missing.some((m) => m.section === "intended_use")).toBe(false);
    expect(outcome.reads.productionNow).toMatchObject({ version: 1, movedBy: secondReviewer.name, promotionRequestId: 1 });
    expect(outcome.reads.stagingTimeline.map((e) => e.version)).toEqual([2, null]);
    expect(outcome.stored.requests.map((r) => [r.alias, r.status, r.approvalsRequired])).toEqual([
      ["production", "approved", 1],
      ["canary", "rejected", 2],
      ["shadow", "withdrawn", 2],
    ]);
    expect(outcome.ledger.filter((e) => e.action !== "audit.checkpoint").map((e) => e.action)).toEqual([
      "model.create",
      "modelVersion.create",
      "modelVersion.create",
      "document.update",
      "promotion.request",
      "promotion.selfApprovalRefused",
      "signature.refused",
      "model.update",
      "signature.create",
      "signature.create",
      "promotion.approve",
      "signature.create",
      "promotion.approve",
      "alias.move",
      "alias.move",
      "alias.move",
      "promotion.request",
      "signature.create",
      "promotion.reject",
      "promotion.request",
      "promotion.withdraw",
    ]);
  });
}

describe("the registry and promotions on SQLite", () => {
  const sqlite = sqliteForSuite("rl-registry-store-");
  behaviourCases(() => sqlite.store());

  it("a signed audit checkpoint follows each signature and alias move", () => {
    expect(outcomes.sqlite!.checkpoints.map((c) => c.ok)).toEqual([true, true, true, true, true, true]);
    expect(outcomes.sqlite!.ledger.filter((e) => e.action === "audit.checkpoint")).toHaveLength(6);
  });
});

describePg("the registry and promotions on PostgreSQL", () => {
  const pg = twoPgServersForSuite();

  behaviourCases(() => pgStore(pg.a()));

  it("gives the same rows, answers, refusals, signed checkpoints and ledger (seq, payloads, hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg).toEqual(outcomes.sqlite);
    expect(outcomes.pg!.checkpoints.map((c) => c.ok)).toEqual([true, true, true, true, true, true]);
    expect(outcomes.pg!.ledger.filter((e) => e.action === "audit.checkpoint")).toHaveLength(6);
  });

  /** Every event's seq, 1, 2, 3… without a gap. */
  async function expectGaplessLedger(store: Store): Promise<void> {
    const { auditEvents } = store.tables;
    const seqs = (await reader(store).select({ seq: auditEvents.seq }).from(auditEvents).orderBy(auditEvents.seq)).map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  }

  it("two reviewers approving one request at once: at one approval, one moves the alias and the other is refused; at two, both count", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())] as const;
    await seedModel(servers[0], "race-approvals");
    const { modelAliasEvents, promotionRequests, signatures } = servers[0].tables;
    for (const [round, approvalsRequired] of [1, 2, 1, 2].entries()) {
      await setApprovalsRequired({ db: servers[0], actor: admin }, { modelName: "race-approvals", approvalsRequired });
      const made = await request(servers[0], engineer, 1, { alias: `race-${round}`, ack: true, model: "race-approvals" });
      passwordBarrier.arm(2);
      const settled = await Promise.allSettled([
        sign(servers[0], reviewer, made.id, "approval"),
        sign(servers[1], secondReviewer, made.id, "approval"),
      ]);
      passwordBarrier.arm(0);
      const fulfilled = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
      if (approvalsRequired === 1) {
        expect(fulfilled.map((a) => a.status)).toEqual(["approved"]);
        expect(settled.find((s) => s.status === "rejected")).toMatchObject({
          reason: { kind: "wrong_state", message: `promotion request #${made.id} is approved; only a pending request can be signed` },
        });
      } else expect(fulfilled.map((a) => a.status).sort()).toEqual(["approved", "pending"]);
      const [stored] = await transact(servers[1], (tx) =>
        rows(tx.select().from(promotionRequests).where(eq(promotionRequests.id, made.id))),
      );
      expect(stored!.status).toBe("approved");
      const approvals = await transact(servers[1], (tx) =>
        rows(
          tx
            .select()
            .from(signatures)
            .where(and(eq(signatures.recordType, "promotion_request"), eq(signatures.recordId, made.id))),
        ),
      );
      expect(approvals).toHaveLength(approvalsRequired);
      const moved = await transact(servers[1], (tx) =>
        rows(tx.select().from(modelAliasEvents).where(eq(modelAliasEvents.promotionRequestId, made.id))),
      );
      expect(moved).toHaveLength(1);
    }
    await expectGaplessLedger(servers[1]);
  });

  it("one alias moved to one version many times at once: one move, the rest conflicts", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())] as const;
    await seedModel(servers[0], "race-aliases");
    const { modelAliasEvents } = servers[0].tables;
    for (const [round, version] of [2, 1, 2].entries()) {
      const settled = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) => move(servers[i % 2]!, engineer, "nightly", version, "race-aliases")),
      );
      expect(settled.filter((s) => s.status === "fulfilled")).toHaveLength(1);
      for (const s of settled.filter((s) => s.status === "rejected"))
        expect(s.reason).toMatchObject({ kind: "conflict", message: `"nightly" already points at version ${version}` });
      const moves = await transact(servers[1], (tx) =>
        rows(tx.select().from(modelAliasEvents).where(eq(modelAliasEvents.alias, "nightly"))),
      );
      expect(moves).toHaveLength(round + 1);
    }
    await expectGaplessLedger(servers[1]);
  });

  it("one promotion requested many times at once: one pending request, the rest conflicts", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())] as const;
    await seedModel(servers[0], "race-requests");
    const { promotionRequests } = servers[0].tables;
    const settled = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => request(servers[i % 2]!, engineer, 1, { alias: "edge", ack: true, model: "race-requests" })),
    );
    expect(settled.filter((s) => s.status === "fulfilled")).toHaveLength(1);
    for (const s of settled.filter((s) => s.status === "rejected"))
      expect(s.reason).toMatchObject({ kind: "conflict", message: expect.stringMatching(/to "edge" is already pending$/) });
    const stored = await transact(servers[1], (tx) => rows(tx.select().from(promotionRequests).where(eq(promotionRequests.alias, "edge"))));
    expect(stored).toHaveLength(1);
    await expectGaplessLedger(servers[1]);
  });

  it("one new model registered many times at once: one model, versions 1 to N", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())] as const;
    await seed(servers[0]);
    const { models, modelVersions } = servers[0].tables;
    const registered = await Promise.all(
      Array.from({ length: 12 }, (_, i) => register(servers[i % 2]!, engineer, "best", COMPLETED_RUN, "raced-model")),
    );
    expect(registered.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    const model = await transact(servers[1], (tx) => rows(tx.select().from(models).where(eq(models.name, "raced-model"))));
    expect(model).toHaveLength(1);
    const versions = await transact(servers[1], (tx) =>
      rows(tx.select().from(modelVersions).where(eq(modelVersions.modelId, model[0]!.id))),
    );
    expect(versions).toHaveLength(12);
    await expectGaplessLedger(servers[1]);
  });
});
