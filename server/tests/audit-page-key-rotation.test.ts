/**
 * The Audit page's signature check after a key rotation (server/audit/service.ts checkpointSignatureJudge), on both
 * stores: the page's data judges each checkpoint against the key in force at its tree size, following the ledger's
 * valid rotations from the installation's first key (KeyChain, as `audit verify` does), whichever key of that chain
 * the serving process holds. A web server that holds only the OLD key (PostgreSQL: the new key file not copied yet)
 * shows the new key's checkpoints valid; a checkpoint row forged with a random key (claiming the key in force, or
 * naming its own key) is not valid. On PostgreSQL the old-key server is a real one: openAuditSigningKeysOn on a key
 * directory that holds only the old key. The ledgers hold synthetic events (no table rows behind them).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { asc } from "drizzle-orm";
import { openDatabase } from "@/db/client";
import { migratePg, openPgDatabase } from "@/db/pg-client";
import { exec, pgStore, reader, sqliteStore, transact, type Store } from "@/db/store";
import { createAuditCheckpointOn, signTreeHead, treeHeadOf, type AuditCheckpointRow } from "@/server/audit/checkpoints";
import { openAuditSigningKeysOn } from "@/server/audit/key-custody";
import { rotateAuditKeyOn } from "@/server/audit/key-rotation";
import { generateAuditKeys, storeKeyInDir, type AuditKeys } from "@/server/audit/keys";
import { auditStatus, checkpointSignatureJudge, inclusionProof } from "@/server/audit/service";
import { createScratchPgDatabase, describePg } from "./pg-test-env";
import { appendDecisionEvents } from "./ledger-events";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-audit-page-rotation-"));
const dir = (name: string) => {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
};
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const appendEvents = appendDecisionEvents;

async function checkpoints(store: Store): Promise<AuditCheckpointRow[]> {
  const c = store.tables.auditCheckpoints;
  return reader(store).select().from(c).orderBy(asc(c.id));
}

/** A checkpoint row over the latest head, signed by `signer` but naming `claimedFingerprint` (as a forger with the database would write it). */
async function insertForgedCheckpoint(store: Store, signer: AuditKeys, claimedFingerprint: string): Promise<void> {
  const latest = (await checkpoints(store)).at(-1)!;
  const head = treeHeadOf({ ...latest, at: new Date().toISOString(), keyFingerprint: claimedFingerprint });
  const forged = { ...head, reason: "forged", signature: signTreeHead(signer, head) };
  await transact(store, function* (tx) {
    yield* exec(tx.insert(store.tables.auditCheckpoints).values(forged));
  });
}

/** Old key, a checkpoint by it, the rotation (old key's checkpoint, endorsed event, new key's checkpoint), one more by the new key. */
async function rotatedLedger(store: Store, first: AuditKeys, next: AuditKeys): Promise<void> {
  await appendEvents(store, 10, "before");
  await createAuditCheckpointOn(store, first, "first");
  await appendEvents(store, 3, "tail");
  await rotateAuditKeyOn(store, first, { keyDir: dir(`rotation-keys-${store.dialect}`), newKeys: next });
  await appendEvents(store, 4, "after");
  await createAuditCheckpointOn(store, next, "by the new key");
}

/** The page's data from a server holding `serverKeys`: every checkpoint valid, old ones by the old key, new ones by the new key. */
async function expectEveryCheckpointValid(store: Store, serverKeys: AuditKeys, first: AuditKeys, next: AuditKeys): Promise<void> {
  const deps = { db: store, auditKeys: serverKeys, dataDir: tmp };
  const all = await checkpoints(store);
  expect(all.map((c) => c.keyFingerprint)).toEqual([first.fingerprint, first.fingerprint, next.fingerprint, next.fingerprint]);
  const judge = await checkpointSignatureJudge(store, serverKeys);
  expect(all.map((c) => judge(c))).toEqual([true, true, true, true]);
  const status = await auditStatus(deps);
  expect(status.fingerprint).toBe(serverKeys.fingerprint);
  expect(status.latestCheckpoint).toMatchObject({ id: all.at(-1)!.id, keyFingerprint: next.fingerprint, signatureValid: true });
  expect(await inclusionProof(deps, 3)).toMatchObject({ verified: true, signedRoot: true, signatureValid: true });
}

/** Forged rows (random key claiming the key in force; random key naming itself) are not valid, for every holder. */
async function expectForgeriesNotValid(store: Store, holders: AuditKeys[], next: AuditKeys): Promise<void> {
  const rogue = generateAuditKeys();
  await insertForgedCheckpoint(store, rogue, next.fingerprint);
  for (const keys of holders) {
    const status = await auditStatus({ db: store, auditKeys: keys, dataDir: tmp });
    expect(status.latestCheckpoint).toMatchObject({ reason: "forged", keyFingerprint: next.fingerprint, signatureValid: false });
  }
  await insertForgedCheckpoint(store, rogue, rogue.fingerprint);
  for (const keys of [...holders, rogue]) {
    const status = await auditStatus({ db: store, auditKeys: keys, dataDir: tmp });
    expect(status.latestCheckpoint).toMatchObject({ reason: "forged", keyFingerprint: rogue.fingerprint, signatureValid: false });
  }
  // The genuine checkpoints stay valid next to the forged rows.
  const judge = await checkpointSignatureJudge(store, holders[0]!);
  expect((await checkpoints(store)).map((c) => judge(c))).toEqual([true, true, true, true, false, false]);
}

describe("[audit page] checkpoint signatures after a key rotation, SQLite", () => {
  it("judges each checkpoint by the key in force at its size, from the old key or the new, and forged rows not valid", async () => {
    const db = openDatabase(dir("sqlite-data"));
    try {
      const store = sqliteStore(db);
      const [first, next] = [generateAuditKeys(), generateAuditKeys()];
      await rotatedLedger(store, first, next);
      await expectEveryCheckpointValid(store, first, first, next);
      await expectEveryCheckpointValid(store, next, first, next);
      await expectForgeriesNotValid(store, [first, next], next);
    } finally {
      db.$client.close();
    }
  }, 60_000);
});

describePg("[audit page] checkpoint signatures after a key rotation, PostgreSQL", () => {
  it("a web server holding only the old key shows the new key's checkpoints valid, and forged rows not valid", async () => {
    const scratch = await createScratchPgDatabase();
    const db = openPgDatabase(scratch.url, { max: 2 });
    try {
      await migratePg(db);
      const store = pgStore(db);
      const [first, next] = [generateAuditKeys(), generateAuditKeys()];
      await appendEvents(store, 2, "start");
      await createAuditCheckpointOn(store, first, "installation's first key");
      // A web server whose key directory holds only the old key, opened before the rotation as a running one would be.
      const oldKeyDir = dir("pg-old-keys");
      storeKeyInDir(oldKeyDir, first);
      const oldKeyServer = await openAuditSigningKeysOn(store, { localDir: dir("pg-local"), keyDir: oldKeyDir, log: () => undefined });
      await rotatedLedger(store, first, next);
      const all = await checkpoints(store);
      expect(all.map((c) => c.keyFingerprint)).toEqual([
        first.fingerprint,
        first.fingerprint,
        first.fingerprint,
        next.fingerprint,
        next.fingerprint,
      ]);
      const judge = await checkpointSignatureJudge(store, oldKeyServer);
      expect(all.map((c) => judge(c))).toEqual([true, true, true, true, true]);
      const status = await auditStatus({ db: store, auditKeys: oldKeyServer, dataDir: tmp });
      expect(status.fingerprint).toBe(first.fingerprint); // it has not got the new key
      expect(status.latestCheckpoint).toMatchObject({ keyFingerprint: next.fingerprint, signatureValid: true });
      expect(await inclusionProof({ db: store, auditKeys: oldKeyServer, dataDir: tmp }, 3)).toMatchObject({
        verified: true,
        signedRoot: true,
        signatureValid: true,
      });
      // A server that holds the new key sees the same.
      expect((await auditStatus({ db: store, auditKeys: next, dataDir: tmp })).latestCheckpoint).toMatchObject({ signatureValid: true });

      const rogue = generateAuditKeys();
      await insertForgedCheckpoint(store, rogue, next.fingerprint);
      await insertForgedCheckpoint(store, rogue, rogue.fingerprint);
      for (const keys of [oldKeyServer, next, rogue]) {
        const judged = await checkpointSignatureJudge(store, keys);
        expect((await checkpoints(store)).map((c) => judged(c))).toEqual(
          keys === rogue ? [false, false, false, false, false, false, false] : [true, true, true, true, true, false, false],
        );
        expect((await auditStatus({ db: store, auditKeys: keys, dataDir: tmp })).latestCheckpoint).toMatchObject({
          reason: "forged",
          signatureValid: false,
        });
      }
    } finally {
      await db.$client.end();
      await scratch.drop();
    }
  }, 120_000);
});
