/**
 * Witnessing on the PostgreSQL store (issue 16): a REAL witness process on loopback (`witness serve`, spawned) and
 * two pools on one scratch database, standing for two web servers that each run a pusher.
 * - The pusher reads the latest checkpoint from PostgreSQL, builds the consistency proof from the stored tree levels
 *   (or from the leaves), gets it cosigned, and stores the verified cosignature; the overview read through the other
 *   pool shows the witness's status and the cosignatures, re-verified.
 * - Two pushers pushing the same checkpoint at once both get a cosignature from the witness; one row is stored per
 *   (witness, key, size, root), by the unique index and the insert that ignores the duplicate. With the index dropped,
 *   the same race stores it twice (the index is what holds).
 * - The witnesses.overview procedure on the web app's own PostgreSQL services (createPgAppServices, createCaller)
 *   shows what that app's pusher stored.
 * - The status upsert keeps the larger cosigned size for the same witness key, on both stores (a stale server cannot
 *   set it back); a different witness key replaces it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { eq, sql } from "drizzle-orm";
import { reader, rows, transact, type Store } from "@/db/store";
import { createPgAppServices, type OwnedAppServices } from "@/server/app-context/app-services";
import { createCaller } from "@/server/trpc/root";
import { actorOf } from "@/server/users/service";
import { createAuditCheckpointOn } from "@/server/audit/checkpoints";
import { generateAuditKeys } from "@/server/audit/keys";
import { consistencyProof, merkleRoot, verifyConsistency } from "@/server/audit/merkle";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "@/server/tests/pg-test-env";
import { seedPeople, sqliteForSuite, TEST_PEOPLE, twoPgServersForSuite } from "@/server/tests/store-test-env";
import { logOrigin, logVerifierKey } from "../checkpoint-note";
import { parseWitnessConfig } from "../client";
import { witnessOverview } from "../overview";
import { consistencyProofFor, WitnessPusher, type PushResult } from "../pusher";
import { largestCosignedSizeOn, readWitnessStatusOn, upsertWitnessStatusOn, type WitnessStatusRow } from "../store";
import { startWitnessProcess, type WitnessProcess } from "../witness-process";
import { appendDecisionEvents } from "@/server/tests/ledger-events";

const auditKeys = generateAuditKeys();
const { engineer } = TEST_PEOPLE;
const quiet = { log: () => undefined };

const appendEvents = (store: Store, n: number, label: string) => appendDecisionEvents(store, n, label, engineer);

async function leafHashes(store: Store, n: number): Promise<Buffer[]> {
  const e = store.tables.auditEvents;
  const found = await transact(store, function* (tx) {
    return yield* rows(tx.select({ h: e.leafHash }).from(e).orderBy(e.seq).limit(n));
  });
  return found.map((r) => Buffer.from(r.h, "hex"));
}

async function cosignatureRows(store: Store): Promise<{ treeSize: number; n: number }[]> {
  const db = store.db as unknown as { execute(q: unknown): Promise<{ rows: { tree_size: string; n: string }[] }> };
  const r = await db.execute(sql`SELECT tree_size, count(*) AS n FROM witness_cosignatures GROUP BY tree_size ORDER BY tree_size`);
  return r.rows.map((x) => ({ treeSize: Number(x.tree_size), n: Number(x.n) }));
}

describePg("witness pusher on PostgreSQL, with a real witness process", () => {
  const pg = twoPgServersForSuite();
  let w: WitnessProcess;
  let savedWitnesses: string | undefined;
  beforeAll(async () => {
    w = await startWitnessProcess({
      logKey: logVerifierKey(logOrigin(auditKeys.fingerprint), auditKeys.publicKey).vkey,
      name: "witness.test/pg",
    });
    savedWitnesses = process.env.RUNLEDGER_WITNESSES;
    process.env.RUNLEDGER_WITNESSES = `${w.url}=${w.vkey}`; // what the overview and start.ts read
  }, 90_000);
  afterAll(async () => {
    if (savedWitnesses === undefined) delete process.env.RUNLEDGER_WITNESSES;
    else process.env.RUNLEDGER_WITNESSES = savedWitnesses;
    await w?.stop();
    if (w) fs.rmSync(w.keyDir, { recursive: true, force: true });
  });
  const config = () => parseWitnessConfig(`${w.url}=${w.vkey}`);

  it("pushes the latest checkpoint, with a consistency proof from the store, and the overview shows the cosignatures", async () => {
    const [a, b] = pg.stores();
    const pusherA = new WitnessPusher({ db: a, auditKeys }, config(), quiet);
    expect(await pusherA.pushNow()).toEqual([]); // no checkpoint yet: nothing to push

    await appendEvents(a, 5, "first");
    const cp1 = (await createAuditCheckpointOn(a, auditKeys, "test 1")).checkpoint;
    expect(await pusherA.pushNow()).toEqual([expect.objectContaining({ outcome: "cosigned", treeSize: cp1.treeSize })]);

    // The other server signs the next checkpoint; this one's pusher proves it consistent with what the witness saw.
    await appendEvents(b, 30, "second");
    const cp2 = (await createAuditCheckpointOn(b, auditKeys, "test 2")).checkpoint;
    const proof = await consistencyProofFor(a, cp1.treeSize, cp2);
    const leaves = await leafHashes(a, cp2.treeSize);
    expect(proof.map((h) => h.toString("hex"))).toEqual(consistencyProof(cp1.treeSize, leaves).map((h) => h.toString("hex")));
    expect(
      verifyConsistency(cp1.treeSize, cp2.treeSize, merkleRoot(leaves.slice(0, cp1.treeSize)), Buffer.from(cp2.rootHash, "hex"), proof),
    ).toBe(true);
    expect(await pusherA.pushNow()).toEqual([expect.objectContaining({ outcome: "cosigned", treeSize: cp2.treeSize })]);
    expect(await pusherA.pushNow()).toEqual([expect.objectContaining({ outcome: "already cosigned", treeSize: cp2.treeSize })]);

    // A proof that does not give the signed root is never sent.
    await expect(
      consistencyProofFor(a, cp1.treeSize, { ...cp2, rootHash: cp1.rootHash.replace(/^./, (c) => (c === "0" ? "1" : "0")) }),
    ).rejects.toThrow(/no longer give checkpoint/);

    const overview = await witnessOverview({ db: b, auditKeys });
    expect(overview.origin).toBe(logOrigin(auditKeys.fingerprint));
    expect(overview.originError).toBeNull();
    expect(overview.witnesses).toEqual([
      expect.objectContaining({
        url: w.url,
        name: "witness.test/pg",
        reachable: true,
        cosignedSize: cp2.treeSize,
        lastError: null,
        failingSince: null,
      }),
    ]);
    expect(overview.cosignatures.map((c) => [c.treeSize, c.rootHash, c.checkpointId, c.verified])).toEqual([
      [cp2.treeSize, cp2.rootHash, cp2.id, true],
      [cp1.treeSize, cp1.rootHash, cp1.id, true],
    ]);
    expect(await largestCosignedSizeOn(b, "witness.test/pg", overview.witnesses[0]!.keyId)).toBe(cp2.treeSize);
  }, 60_000);

  it("two servers pushing the same checkpoint at once store its cosignature once; without the unique index, twice", async () => {
    const [a, b] = pg.stores();
    const race = async (label: string): Promise<{ size: number; outcomes: PushResult["outcome"][] }> => {
      await appendEvents(a, 3, label);
      const cp = (await createAuditCheckpointOn(a, auditKeys, label)).checkpoint;
      const results = await Promise.all([
        new WitnessPusher({ db: a, auditKeys }, config(), quiet).pushNow(),
        new WitnessPusher({ db: b, auditKeys }, config(), quiet).pushNow(),
      ]);
      return { size: cp.treeSize, outcomes: results.flat().map((r) => r.outcome) };
    };
    for (let i = 0; i < 4; i++) {
      const { size, outcomes } = await race(`race ${i}`);
      // Both asked the witness (neither had a stored cosignature when it looked); each got one; one row is kept.
      expect(outcomes).toEqual(["cosigned", "cosigned"]);
      expect((await cosignatureRows(a)).find((r) => r.treeSize === size)).toEqual({ treeSize: size, n: 1 });
      expect((await readWitnessStatusOn(b, w.url))?.cosignedSize).toBe(size);
    }
    const overview = await witnessOverview({ db: a, auditKeys });
    expect(overview.cosignatures.every((c) => c.verified === true)).toBe(true);

    await (a.db as unknown as { execute(q: unknown): Promise<unknown> }).execute(sql`DROP INDEX witness_cosignatures_unique`);
    const { size, outcomes } = await race("without the index");
    expect(outcomes).toEqual(["cosigned", "cosigned"]);
    expect((await cosignatureRows(a)).find((r) => r.treeSize === size)).toEqual({ treeSize: size, n: 2 });
  }, 60_000);
});

describePg("the Audit page's witnesses procedure on the web app's PostgreSQL services", () => {
  let scratch: ScratchPgDatabase | undefined;
  let app: OwnedAppServices | undefined;
  let w: WitnessProcess | undefined;
  let dir = "";
  let savedWitnesses: string | undefined;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rl-witness-app-pg-"));
    scratch = await createScratchPgDatabase();
    app = await createPgAppServices(scratch.url, {
      localDir: path.join(dir, "web"),
      keyDir: path.join(dir, "keys"),
      backend: "cpu",
      poolSize: 4,
    });
    await seedPeople(app.db as Store, { at: "2026-12-05T07:40:00.000Z", passwordHash: "x" });
    w = await startWitnessProcess({
      logKey: logVerifierKey(logOrigin(app.auditKeys.fingerprint), app.auditKeys.publicKey).vkey,
      name: "witness.test/app-pg",
    });
    savedWitnesses = process.env.RUNLEDGER_WITNESSES;
    process.env.RUNLEDGER_WITNESSES = `${w.url}=${w.vkey}`;
  }, 120_000);
  afterAll(async () => {
    if (savedWitnesses === undefined) delete process.env.RUNLEDGER_WITNESSES;
    else process.env.RUNLEDGER_WITNESSES = savedWitnesses;
    await w?.stop();
    if (w) fs.rmSync(w.keyDir, { recursive: true, force: true });
    await app?.close();
    await scratch?.drop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("shows the witness's status and the cosignature the app's pusher stored, re-verified", async () => {
    const store = app!.db as Store;
    await appendEvents(store, 4, "app");
    const cp = (await createAuditCheckpointOn(store, app!.auditKeys, "app checkpoint")).checkpoint;
    expect(await new WitnessPusher(app!, parseWitnessConfig(process.env.RUNLEDGER_WITNESSES), quiet).pushNow()).toEqual([
      expect.objectContaining({ outcome: "cosigned", treeSize: cp.treeSize }),
    ]);
    const [auditor] = await reader(store).select().from(store.tables.users).where(eq(store.tables.users.email, TEST_PEOPLE.auditor.email));
    const overview = await createCaller({ services: app!, user: actorOf(auditor!), sessionToken: undefined }).witnesses.overview();
    expect(overview.origin).toBe(logOrigin(app!.auditKeys.fingerprint));
    expect(overview.witnesses).toEqual([expect.objectContaining({ url: w!.url, reachable: true, cosignedSize: cp.treeSize })]);
    expect(overview.cosignatures.map((c) => [c.treeSize, c.rootHash, c.verified])).toEqual([[cp.treeSize, cp.rootHash, true]]);
  }, 60_000);
});

/** The status upsert's monotonic cosigned size, the same on both stores. */
function statusUpsertCases(store: () => Store): void {
  it("keeps the larger cosigned size for the same witness key; another key replaces it", async () => {
    const row = (over: Partial<WitnessStatusRow>): WitnessStatusRow => ({
      url: "http://witness.example/upsert",
      witnessName: "w.example/one",
      keyId: "0a0b0c0d",
      reachable: true,
      cosignedSize: null,
      lastAttemptAt: "2026-12-05T09:00:00.000Z",
      lastSuccessAt: null,
      lastError: null,
      lastErrorAt: null,
      failingSince: null,
      ...over,
    });
    const s = store();
    await upsertWitnessStatusOn(s, row({ cosignedSize: 40, lastSuccessAt: "2026-12-05T09:00:01.000Z" }));
    // A server that read the status before that push fails now and writes the size it read.
    await upsertWitnessStatusOn(s, row({ cosignedSize: 12, lastError: "unreachable", failingSince: "2026-12-05T09:00:02.000Z" }));
    expect(await readWitnessStatusOn(s, "http://witness.example/upsert")).toMatchObject({ cosignedSize: 40, lastError: "unreachable" });
    await upsertWitnessStatusOn(s, row({ cosignedSize: 55 }));
    expect((await readWitnessStatusOn(s, "http://witness.example/upsert"))?.cosignedSize).toBe(55);
    // The URL now serves another witness key: what the old one cosigned says nothing about it.
    await upsertWitnessStatusOn(s, row({ keyId: "01020304", cosignedSize: null }));
    expect(await readWitnessStatusOn(s, "http://witness.example/upsert")).toMatchObject({ keyId: "01020304", cosignedSize: null });
    await upsertWitnessStatusOn(s, row({ keyId: "01020304", cosignedSize: 3 }));
    expect((await readWitnessStatusOn(s, "http://witness.example/upsert"))?.cosignedSize).toBe(3);
  });
}

describe("witness status upsert on SQLite", () => {
  const lite = sqliteForSuite("runledger-witness-status-");
  statusUpsertCases(() => lite.store());
});

describePg("witness status upsert on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  statusUpsertCases(() => pg.stores()[0]);
});
