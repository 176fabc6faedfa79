/**
 * Key rotation on real databases: `audit rotate-key` records an "audit.keyRotate" event endorsed by the old key
 * between a checkpoint of the old key and one of the new key; verification follows the chain from the first key's
 * fingerprint (and from the new one); a forged rotation, a checkpoint signed by a key no rotation introduced, and a
 * retired key extending the log each fail; the running server signs with the new key after a CLI rotation, and
 * refuses to sign when the new key is not in its key directory.
 */
import { describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { openDatabase } from "@/db/client";
import { appendAuditEvent } from "../ledger";
import { applyCheckpointPolicy } from "../checkpoint-policy";
import { createAuditCheckpoint, latestAuditCheckpoint, trustedCheckpointFromRow, type AuditCheckpointRow } from "../checkpoints";
import { type AuditKeys, generateAuditKeys, keyFilePath, loadAuditPublicKey, signBytes, verifyBytes, writePublicKeyFile } from "../keys";
import { endorsementBytes, KEY_ROTATE_ACTION, type KeyRotationPayload, ROTATION_ACTOR } from "../key-rotation";
import { openAuditSigningKeys } from "../key-custody";
import { auditEventsWithAction } from "../ledger-reads";
import { verifyDatabase } from "../verify";

/** The ledgers here hold synthetic events (no table rows behind them): these tests are about keys and signatures, so the
 * content level (tables and files against the ledger, tested in server/audit/content) is not run. */
const CHAIN_ONLY = { content: false };
import { BUNDLE_KEY_ROTATIONS_FILE, verifyBundle, writeBundleAuditFiles } from "../bundle";
import { auditVerifyCommand, type CliIo } from "@/server/cli/audit-verify";
import { createTestApp } from "@/server/tests/test-app";
import { tempDir, testKeys, writeEvents } from "./ledger-fixture";

async function rotateCli(
  dataDir: string,
  keyDir: string,
): Promise<{
  oldFingerprint: string;
  newFingerprint: string;
  keyFile: string;
  rotationSeq: number;
  before: AuditCheckpointRow;
  after: AuditCheckpointRow;
}> {
  let out = "";
  let err = "";
  const io: CliIo = { out: (t) => (out += t), err: (t) => (err += t) };
  const code = await auditVerifyCommand(["rotate-key", "--data-dir", dataDir, "--key-dir", keyDir, "--json"], io);
  expect(code, err).toBe(0);
  return JSON.parse(out);
}

/** 10 events, checkpoint #1 by the first key, 5 more events. */
function signedLedger(): { dir: string; first: AuditKeys & { keyDir: string }; cp1: AuditCheckpointRow } {
  const dir = tempDir("rotation");
  const first = testKeys(dir);
  const db = openDatabase(dir);
  writeEvents(db, 10);
  const cp1 = createAuditCheckpoint(db, first, "first").checkpoint;
  writeEvents(db, 5, 10);
  db.$client.close();
  return { dir, first, cp1 };
}

describe("audit key rotation", () => {
  it("rotate-key records the endorsed rotation between checkpoints of both keys; verification follows the chain from the first key", async () => {
    const { dir, first, cp1 } = signedLedger();
    const r = await rotateCli(dir, first.keyDir);
    expect(r.oldFingerprint).toBe(first.fingerprint);
    expect(r.newFingerprint).not.toBe(first.fingerprint);
    expect(r).toMatchObject({
      rotationSeq: 18,
      before: { treeSize: 16, keyFingerprint: first.fingerprint },
      after: { treeSize: 18, keyFingerprint: r.newFingerprint },
    });
    expect(r.keyFile).toBe(keyFilePath(first.keyDir, r.newFingerprint));
    expect(fs.statSync(r.keyFile).mode & 0o777).toBe(0o600);
    expect(loadAuditPublicKey(dir).fingerprint).toBe(r.newFingerprint); // the data directory shows the current public key
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".key"))).toEqual([]);

    const db = openDatabase(dir);
    const [event, ...more] = auditEventsWithAction(db, KEY_ROTATE_ACTION);
    expect(more).toEqual([]);
    expect(event).toMatchObject({ seq: 18, actorName: ROTATION_ACTOR.name, entityType: "auditKey", entityId: r.newFingerprint });
    const p = JSON.parse(event!.payload) as KeyRotationPayload;
    expect(p).toMatchObject({
      oldFingerprint: first.fingerprint,
      newFingerprint: r.newFingerprint,
      previousTreeSize: 16,
      previousRootHash: r.before.rootHash,
      previousCheckpointId: r.before.id,
    });
    expect(verifyBytes(first.publicKey, endorsementBytes(p), p.endorsement)).toBe(true);
    expect(verifyBytes(loadAuditPublicKey(dir).publicKey, endorsementBytes(p), p.endorsement)).toBe(false);
    db.$client.close();

    const fromFirst = await verifyDatabase(dir, { ...CHAIN_ONLY, publicKeyPem: first.publicKeyPem });
    expect(fromFirst).toMatchObject({ ok: true, problems: [], checkpointsChecked: 3, eventsChecked: 19 });
    expect(fromFirst.notes.join(" ")).toContain("the signing key was rotated once");
    const anchored = await verifyDatabase(dir, { ...CHAIN_ONLY, trustedCheckpoint: trustedCheckpointFromRow(cp1, first.publicKeyPem) });
    expect(anchored).toMatchObject({ ok: true, trustedCheckpointChecked: true, keyFingerprint: first.fingerprint });
    const fromNew = await verifyDatabase(dir, CHAIN_ONLY); // the data directory's public key is now the new one
    expect(fromNew).toMatchObject({ ok: true, keyFingerprint: r.newFingerprint });
    expect(fromNew.notes.join(" ")).toContain(`the trusted key ${r.newFingerprint} came into force at seq 18`);

    const second = await rotateCli(dir, first.keyDir);
    expect(second.oldFingerprint).toBe(r.newFingerprint);
    for (const workers of [0, 2]) {
      const twice = await verifyDatabase(dir, { ...CHAIN_ONLY, publicKeyPem: first.publicKeyPem, workers });
      expect(twice, `workers ${workers}`).toMatchObject({ ok: true, checkpointsChecked: 5 });
      expect(twice.notes.join(" ")).toContain("rotated 2 times");
    }

    // Bundles carry the rotations; without that list the rotation events are reported.
    const bundle = tempDir("rotation-bundle");
    const sqlite = openDatabase(dir);
    const written = writeBundleAuditFiles(sqlite, bundle, loadAuditPublicKey(dir));
    sqlite.$client.close();
    expect(written.files).toContain(path.join(bundle, BUNDLE_KEY_ROTATIONS_FILE));
    expect(await verifyBundle(bundle, { publicKeyPem: first.publicKeyPem })).toMatchObject({ ok: true, checkpointsChecked: 5 });
    fs.rmSync(path.join(bundle, BUNDLE_KEY_ROTATIONS_FILE));
    const unlisted = await verifyBundle(bundle, { publicKeyPem: first.publicKeyPem });
    expect(unlisted.ok).toBe(false);
    expect(unlisted.problems).toContain(
      "seq 18: key rotation event is missing from the key rotations read before the pass (incomplete key-rotations list?)",
    );
  });

  it("a forged rotation (endorsed by a foreign key) fails, and so does every checkpoint its key signs; the server refuses it", async () => {
    const { dir, first, cp1 } = signedLedger();
    const mallory = generateAuditKeys();
    // Someone with the database but not the key appends a rotation to their own key, "endorsed" by that key.
    const db = openDatabase(dir);
    const bound = {
      newFingerprint: mallory.fingerprint,
      newPublicKeyPem: mallory.publicKeyPem,
      previousTreeSize: cp1.treeSize,
      previousRootHash: cp1.rootHash,
    };
    const payload: KeyRotationPayload = {
      ...bound,
      oldFingerprint: first.fingerprint,
      oldPublicKeyPem: first.publicKeyPem,
      previousCheckpointId: cp1.id,
      endorsement: signBytes(mallory, endorsementBytes(bound)),
    };
    const forged = db.transaction((tx) =>
      appendAuditEvent(tx, {
        actor: ROTATION_ACTOR,
        action: KEY_ROTATE_ACTION,
        entityType: "auditKey",
        entityId: mallory.fingerprint,
        payload,
      }),
    );
    const cp = createAuditCheckpoint(db, mallory, "after the forged rotation", { previousKey: first }).checkpoint;
    db.$client.close();

    const r = await verifyDatabase(dir, { ...CHAIN_ONLY, publicKeyPem: first.publicKeyPem });
    expect(r.ok).toBe(false);
    expect(r.firstBadSeq).toBe(forged.seq);
    expect(r.problems).toContain(
      `seq ${forged.seq}: key rotation to ${mallory.fingerprint} is not endorsed by the key in force ${first.fingerprint} (forged rotation?)`,
    );
    expect(r.problems).toContain(
      `checkpoint #${cp.id} (tree size ${cp.treeSize}) was signed with key ${mallory.fingerprint}, which no valid key rotation introduced (the key in force is ${first.fingerprint} (the first key))`,
    );
    // Trusting the forger's key instead (their public key file in the data directory) does not help.
    writePublicKeyFile(dir, mallory);
    const fooled = await verifyDatabase(dir, CHAIN_ONLY);
    expect(fooled.ok).toBe(false);
    expect(fooled.problems).toContain(
      `seq ${forged.seq}: key rotation replaces key ${first.fingerprint}, but the key in force is ${mallory.fingerprint} (forged rotation?)`,
    );
    // The server will not sign for this ledger: the key the ledger names is not in its key directory.
    const db2 = openDatabase(dir);
    expect(() => openAuditSigningKeys(db2, { dataDir: dir, keyDir: first.keyDir })).toThrow(
      `is signed with key ${mallory.fingerprint}, but the key directory ${first.keyDir} has no`,
    );
    db2.$client.close();
  });

  it("a checkpoint signed by a key no rotation introduced fails, and a retired key cannot extend the log", async () => {
    const { dir, first } = signedLedger();
    const r = await rotateCli(dir, first.keyDir);
    const copy = tempDir("rotation-leak");
    fs.cpSync(dir, copy, { recursive: true });
    const newKey = loadAuditPublicKey(dir);

    // A leaked copy of the retired key signs a new checkpoint after the rotation.
    const db = openDatabase(dir);
    writeEvents(db, 2, 100);
    const stale = createAuditCheckpoint(db, first, "signed with the retired key", { previousKey: newKey }).checkpoint;
    db.$client.close();
    const retired = await verifyDatabase(dir, { ...CHAIN_ONLY, publicKeyPem: first.publicKeyPem });
    expect(retired.ok).toBe(false);
    expect(retired.problems).toContain(
      `checkpoint #${stale.id} (tree size ${stale.treeSize}) was signed with key ${first.fingerprint}, but the key in force at that size is ${r.newFingerprint} (introduced at seq ${r.rotationSeq})`,
    );

    // A key that appears out of nowhere, with no rotation event at all.
    const rogue = generateAuditKeys();
    const db2 = openDatabase(copy);
    writeEvents(db2, 2, 200);
    const rogueCp = createAuditCheckpoint(db2, rogue, "rogue", { previousKey: newKey }).checkpoint;
    db2.$client.close();
    const rogueResult = await verifyDatabase(copy, { ...CHAIN_ONLY, publicKeyPem: first.publicKeyPem });
    expect(rogueResult.ok).toBe(false);
    expect(rogueResult.problems).toEqual([
      `checkpoint #${rogueCp.id} (tree size ${rogueCp.treeSize}) was signed with key ${rogue.fingerprint}, which no valid key rotation introduced (the key in force is ${r.newFingerprint} (introduced at seq ${r.rotationSeq}))`,
    ]);
  });

  it("the running server signs with the new key after a CLI rotation, and refuses to sign when the new key is not in its key directory", async () => {
    const app = createTestApp();
    try {
      const firstPem = app.auditKeys.publicKeyPem;
      const firstFingerprint = app.auditKeys.fingerprint;
      writeEvents(app.db, 2);
      expect(applyCheckpointPolicy(app)).toMatchObject({ checkpointed: true });

      const r = await rotateCli(app.dataDir, app.keyDir); // another connection, as a separate CLI process would use
      expect(r.oldFingerprint).toBe(firstFingerprint);
      const status = await app.as("auditor").audit.status();
      expect(status).toMatchObject({
        fingerprint: r.newFingerprint,
        latestCheckpoint: { keyFingerprint: r.newFingerprint, signatureValid: true },
      });
      writeEvents(app.db, 2, 50);
      expect(applyCheckpointPolicy(app, { everyEvents: 1 })).toMatchObject({ checkpointed: true });
      expect(latestAuditCheckpoint(app.db)!.keyFingerprint).toBe(r.newFingerprint);
      expect(await verifyDatabase(app.dataDir, { ...CHAIN_ONLY, publicKeyPem: firstPem })).toMatchObject({ ok: true, problems: [] });

      // Rotated by someone using another key directory: the server has no new key and does not sign with the retired one.
      const elsewhere = tempDir("rotation-elsewhere");
      fs.copyFileSync(keyFilePath(app.keyDir, r.newFingerprint), keyFilePath(elsewhere, r.newFingerprint));
      fs.chmodSync(keyFilePath(elsewhere, r.newFingerprint), 0o600);
      const third = await rotateCli(app.dataDir, elsewhere);
      const before = latestAuditCheckpoint(app.db)!;
      writeEvents(app.db, 2, 60);
      const refused = applyCheckpointPolicy(app, { everyEvents: 1 });
      expect(refused.checkpointed).toBe(false);
      expect(refused).toMatchObject({ error: expect.stringContaining(`refuses to sign with the retired key ${r.newFingerprint}`) });
      expect((refused as { error: string }).error).toContain(`has no ${path.basename(keyFilePath(app.keyDir, third.newFingerprint))}`);
      expect(latestAuditCheckpoint(app.db)!.id).toBe(before.id);
    } finally {
      app.close();
    }
  });
});
