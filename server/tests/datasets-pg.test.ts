/**
 * The datasets service on the store (issue 16): uploads (checked in the worker and put in the file artifact store
 * before the transaction), the list and the detail give the same rows, refusals and ledger rows (payloads, seq, chain
 * hashes, under one fixed clock) on SQLite and PostgreSQL; on PostgreSQL the same bytes uploaded at once through two
 * pools give one dataset and one event (looked up again inside the transaction, under the ledger lock), and seq stays
 * gapless.
 */
import { describe, expect, it, vi } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { exec, pgStore, rows, transact, type Store } from "@/db/store";
import type { SignedInActor } from "@/server/app-context/service-context";
import { fileArtifactStore, type ArtifactStore } from "@/server/artifacts/store";
import { getDatasetDetail, listDatasets, uploadDatasetFile, type UploadDatasetMeta } from "@/server/datasets/service";
import { describePg } from "./pg-test-env";
import { fixedDateForEachTest, refusal, sqliteForSuite, twoPgServersForSuite, tempDirForSuite } from "./store-test-env";

/**
 * Holds each finished CSV check until `expected` uploads have finished theirs, then releases them together, so the
 * concurrent test's uploads reach their transactions at the same moment (the worker checks alone would stagger them
 * enough to hide a race). `expected` 0: no hold.
 */
const scanBarrier = await vi.hoisted(async () => (await import("./release-together")).releaseTogether());
vi.mock("@/server/datasets/upload/scan-client", async (importOriginal) => {
  const real = await importOriginal<typeof import("@/server/datasets/upload/scan-client")>();
  return {
    ...real,
    scanCsvInWorker: async (...args: Parameters<typeof real.scanCsvInWorker>) => {
      const profile = await real.scanCsvInWorker(...args);
      await scanBarrier.arrive();
      return profile;
    },
  };
});

const AT = "2026-12-04T12:00:00.000Z";
const engineer: SignedInActor = { id: 1, name: "Erin Engineer", role: "engineer", email: "erin@example.com" };
const reviewer: SignedInActor = { id: 2, name: "Rey Reviewer", role: "reviewer", email: "rey@example.com" };

const IRIS_LIKE = "sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n4.9,1.5,setosa\n";
const TEXT_ROWS = "review,label\ngreat film,pos\ndull plot,neg\nwould watch again,pos\n";

async function seedUsers(store: Store): Promise<void> {
  const { users } = store.tables;
  await transact(store, function* (tx) {
    for (const a of [engineer, reviewer])
      yield* exec(
        tx
          .insert(users)
          .values({ id: a.id, email: a.email, name: a.name, role: a.role, passwordHash: "x", createdAt: AT })
          .onConflictDoNothing(),
      );
  });
}

/** Uploads `text` as received in its own temp file (the artifact store moves the file away on success). */
function uploader(store: Store, artifacts: ArtifactStore, dir: string) {
  return (actor: SignedInActor, text: string, meta: Partial<UploadDatasetMeta> = {}, sha256?: string) => {
    const file = path.join(dir, `upload-${randomBytes(6).toString("hex")}.csv`);
    fs.writeFileSync(file, text);
    return uploadDatasetFile(
      { db: store, actor, artifacts },
      { file, sha256: sha256 ?? createHash("sha256").update(text).digest("hex"), meta: { name: "data", ...meta } },
    ).finally(() => fs.rmSync(file, { force: true }));
  };
}

async function scenario(store: Store, dataDir: string) {
  await seedUsers(store);
  const upload = uploader(store, fileArtifactStore(dataDir), dataDir);
  const iris = await upload(engineer, IRIS_LIKE, { name: "Iris-like", labelColumn: "species", licence: "CC0", origin: "hand made" });
  const again = await upload(engineer, IRIS_LIKE, { name: "the same bytes again" });
  const reviews = await upload(engineer, TEXT_ROWS, { name: "Reviews", kind: "text", textColumn: "review", labelColumn: "label" });
  const refusals = [
    await refusal(upload(reviewer, IRIS_LIKE, { name: "not mine to upload" })),
    await refusal(upload(engineer, IRIS_LIKE, { name: "shape", imageShape: [1, 1, 1] })),
    await refusal(upload(engineer, "a,b\n1\n", { name: "ragged" })),
    await refusal(upload(engineer, IRIS_LIKE, { name: "wrong hash" }, "0".repeat(64))),
    await refusal(getDatasetDetail(store, 999)),
  ];
  const { auditEvents } = store.tables;
  return {
    uploaded: [iris, again, reviews],
    refusals,
    listed: await listDatasets(store),
    detail: await getDatasetDetail(store, reviews.id),
    ledger: await transact(store, (tx) => rows(tx.select().from(auditEvents).orderBy(auditEvents.seq))),
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function behaviourCases(storeOf: () => Store, dataDirOf: () => string): void {
  fixedDateForEachTest(AT);

  it("uploads, finds the same bytes again, refuses what it must, lists and details, and writes the ledger", async () => {
    const store = storeOf();
    const outcome = await scenario(store, dataDirOf());
    outcomes[store.dialect] = outcome;
    const [iris, again, reviews] = outcome.uploaded;
    expect(again).toEqual(iris);
    expect(iris).toMatchObject({ name: "Iris-like", source: "upload", rowCount: 4, licence: "CC0", origin: "hand made" });
    expect(JSON.parse(reviews!.schemaJson)).toMatchObject({ kind: "text", labelColumn: "label" });
    expect(outcome.refusals.map((r) => r.kind)).toEqual(["forbidden", "invalid_input", "invalid_input", "other", "not_found"]);
    expect(outcome.refusals[3]!.message).toMatch(/nothing was stored/);
    expect(outcome.listed.map((d) => d.name)).toEqual(["Iris-like", "Reviews"]);
    expect(outcome.detail).toMatchObject({ name: "Reviews", versions: [] });
    expect(outcome.ledger.map((e) => [e.seq, e.action, e.entityId])).toEqual([
      [1, "dataset.create", String(iris!.id)],
      [2, "dataset.create", String(reviews!.id)],
    ]);
  });
}

describe("datasets on SQLite", () => {
  const sqlite = sqliteForSuite("rl-datasets-store-");
  behaviourCases(
    () => sqlite.store(),
    () => sqlite.dir(),
  );
});

describePg("datasets on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  const dir = tempDirForSuite("rl-datasets-pg-");

  behaviourCases(() => pgStore(pg.a()), dir);

  it("gives the same rows, refusals and ledger rows (payloads, seq, chain hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg).toEqual(outcomes.sqlite);
  });

  it("the same bytes uploaded at once through two pools give one dataset and one event; seq stays gapless", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())];
    await seedUsers(servers[0]!);
    const artifacts = fileArtifactStore(dir());
    const { auditEvents, datasets } = servers[0]!.tables;
    const before = (await transact(servers[0]!, (tx) => rows(tx.select({ seq: auditEvents.seq }).from(auditEvents)))).length;
    const same = "x,y\n1,a\n2,b\n3,a\n";
    scanBarrier.arm(16);
    const uploads = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => uploader(servers[i % 2]!, artifacts, dir())(engineer, same, { name: `same ${i}` })),
      ...Array.from({ length: 6 }, (_, i) =>
        uploader(servers[i % 2]!, artifacts, dir())(engineer, `${same}${i},b\n`, { name: `distinct ${i}` }),
      ),
    ]);
    expect(new Set(uploads.slice(0, 10).map((d) => d.id)).size).toBe(1);
    expect(new Set(uploads.slice(10).map((d) => d.id)).size).toBe(6);
    const seqs = (
      await transact(servers[1]!, (tx) => rows(tx.select({ seq: auditEvents.seq }).from(auditEvents).orderBy(auditEvents.seq)))
    ).map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: before + 7 }, (_, i) => i + 1));
    const stored = await transact(servers[0]!, (tx) => rows(tx.select({ id: datasets.id }).from(datasets)));
    expect(stored).toHaveLength(2 + 7);
  });
});
