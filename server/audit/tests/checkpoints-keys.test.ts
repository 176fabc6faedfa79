/**
 * Keys (key directory, files, modes, fingerprint, reuse), checkpoint creation and policy, and proofs read from the database
 * checked against signed roots, including malformed proofs.
 */
import { describe, expect, it } from "vitest";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { openDatabase } from "@/db/client";
import {
  createKeyInDir,
  generateAuditKeys,
  keyFilePath,
  loadAuditPublicKey,
  loadKeyFromDir,
  PUBLIC_KEY_FILE,
  publicKeyFingerprint,
  storeKeyInDir,
  verifyBytes,
  writePublicKeyFile,
} from "../keys";
import {
  consistencyProofBetween,
  createAuditCheckpoint,
  inclusionProofForSeq,
  maybeCheckpoint,
  parseTrustedCheckpoint,
  treeHeadBytes,
  treeHeadOf,
  trustedCheckpointFromRow,
  verifyTreeHeadSignature,
} from "../checkpoints";
import { listAuditCheckpoints, iterateAuditEvents } from "../ledger-reads";
import { verifyConsistency, verifyInclusion } from "../merkle";
import { verifyDatabase } from "../verify";
import { tempDir, testKeys, writeEvents } from "./ledger-fixture";

const hex = (s: string) => Buffer.from(s, "hex");

describe("audit keys", () => {
  it("creates a key in the key directory (0700), file 0600 named by its fingerprint, and reloads the same key", () => {
    const keyDir = path.join(tempDir("keys"), "nested", "keys");
    const keys = createKeyInDir(keyDir);
    expect(fs.statSync(keyDir).mode & 0o777).toBe(0o700);
    const file = keyFilePath(keyDir, keys.fingerprint);
    expect(path.basename(file)).toBe(`ed25519-${keys.fingerprint.slice("SHA256:".length)}.key`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, "utf8")).toContain("BEGIN PRIVATE KEY");
    expect(keys.fingerprint).toMatch(/^SHA256:[0-9a-f]{64}$/);
    const der = keys.publicKey.export({ type: "spki", format: "der" });
    expect(keys.fingerprint).toBe("SHA256:" + crypto.createHash("sha256").update(der).digest("hex"));
    expect(loadKeyFromDir(keyDir, keys.fingerprint)?.fingerprint).toBe(keys.fingerprint);
    expect(loadKeyFromDir(keyDir, generateAuditKeys().fingerprint)).toBeNull();
    // Never overwritten: storing the same key again keeps the file as it is.
    const before = fs.statSync(file).ino;
    storeKeyInDir(keyDir, keys);
    expect(fs.statSync(file).ino).toBe(before);
    expect(fs.readdirSync(keyDir)).toEqual([path.basename(file)]);
  });

  it("refuses a key file whose content is not the key its name says, or that others can read", () => {
    const keyDir = tempDir("keys-bad");
    const a = createKeyInDir(keyDir);
    const b = generateAuditKeys();
    fs.copyFileSync(keyFilePath(keyDir, a.fingerprint), keyFilePath(keyDir, b.fingerprint));
    expect(() => loadKeyFromDir(keyDir, b.fingerprint)).toThrow(`holds key ${a.fingerprint}, not ${b.fingerprint}`);
    fs.chmodSync(keyFilePath(keyDir, a.fingerprint), 0o644);
    expect(() => loadKeyFromDir(keyDir, a.fingerprint)).toThrow(/readable by others \(mode 644\); run: chmod 600/);
  });

  it("signs with Ed25519; the data directory's public key file is replaced atomically when the key changes", () => {
    const dir = tempDir("keys-pub");
    const keys = testKeys(dir);
    const sig = crypto.sign(null, Buffer.from("hello"), keys.privateKey).toString("base64");
    expect(verifyBytes(keys.publicKey, "hello", sig)).toBe(true);
    expect(verifyBytes(keys.publicKey, "hellO", sig)).toBe(false);
    expect(verifyBytes(keys.publicKey, "hello", "not base64!")).toBe(false);
    const other = generateAuditKeys();
    expect(publicKeyFingerprint(other.publicKey)).not.toBe(keys.fingerprint);
    expect(fs.readdirSync(dir)).toEqual([PUBLIC_KEY_FILE]);
    expect(loadAuditPublicKey(dir).fingerprint).toBe(keys.fingerprint);
    writePublicKeyFile(dir, other);
    expect(loadAuditPublicKey(dir).fingerprint).toBe(other.fingerprint);
    expect(fs.readdirSync(dir)).toEqual([PUBLIC_KEY_FILE]);
  });
});

describe("audit checkpoints", () => {
  it("signs a tree head over seq 1..N and records it as event N+1 in the same transaction", () => {
    const dir = tempDir("cp");
    const db = openDatabase(dir);
    const keys = testKeys(dir);
    writeEvents(db, 7);
    const { checkpoint, event } = createAuditCheckpoint(db, keys, "manual");
    expect(checkpoint).toMatchObject({ id: 1, treeSize: 7, reason: "manual", keyFingerprint: keys.fingerprint });
    expect(event).toMatchObject({ seq: 8, action: "audit.checkpoint", entityType: "auditCheckpoint", entityId: "1" });
    expect(JSON.parse(event.payload)).toMatchObject({
      checkpointId: 1,
      treeSize: 7,
      rootHash: checkpoint.rootHash,
      signature: checkpoint.signature,
    });
    expect(verifyTreeHeadSignature(keys, treeHeadOf(checkpoint), checkpoint.signature)).toBe(true);
    expect(treeHeadBytes(treeHeadOf(checkpoint))).toBe(
      `{"at":"${checkpoint.at}","keyFingerprint":"${keys.fingerprint}","rootHash":"${checkpoint.rootHash}","treeSize":7}`,
    );
    // A failure inside the transaction leaves neither row behind.
    const before = listAuditCheckpoints(db).length;
    expect(() =>
      db.transaction(() => {
        createAuditCheckpoint(db, keys, "rolled back");
        throw new Error("caller fails after checkpointing");
      }),
    ).toThrow(/caller fails/);
    expect(listAuditCheckpoints(db).length).toBe(before);
    expect([...iterateAuditEvents(db)].length).toBe(8);
    db.$client.close();
  });

  it("maybeCheckpoint follows the event-count and time policy and does not count its own events", async () => {
    const dir = tempDir("cp-policy");
    const db = openDatabase(dir);
    const keys = testKeys(dir);
    const t0 = new Date("2025-03-01T10:00:00.000Z");
    expect(maybeCheckpoint(db, keys, { now: t0 })).toBeNull(); // empty log
    writeEvents(db, 1);
    expect(maybeCheckpoint(db, keys, { everyEvents: 10, now: t0 })?.checkpoint.treeSize).toBe(1); // the first events
    writeEvents(db, 9, 1);
    const at1 = new Date(t0.getTime() + 60_000);
    expect(maybeCheckpoint(db, keys, { everyEvents: 10, everyMinutes: 10, now: at1 })).toBeNull(); // 9 new < 10
    writeEvents(db, 1, 10);
    expect(maybeCheckpoint(db, keys, { everyEvents: 10, everyMinutes: 10, now: at1 })?.checkpoint.treeSize).toBe(12);
    // Only the checkpoint event since: nothing to sign, however long we wait.
    expect(maybeCheckpoint(db, keys, { everyEvents: 10, everyMinutes: 10, now: new Date(t0.getTime() + 3_600_000) })).toBeNull();
    writeEvents(db, 1, 11);
    expect(maybeCheckpoint(db, keys, { everyEvents: 10, everyMinutes: 10, now: new Date(t0.getTime() + 5 * 60_000) })).toBeNull();
    const late = maybeCheckpoint(db, keys, { everyEvents: 10, everyMinutes: 10, now: new Date(t0.getTime() + 12 * 60_000) });
    expect(late?.checkpoint).toMatchObject({ treeSize: 14, reason: "every 10 minutes" });
    expect(await verifyDatabase(dir, { content: false })).toMatchObject({ ok: true, checkpointsChecked: 3, eventsChecked: 15 }); // synthetic events: chain only
    db.$client.close();
  });

  it("inclusion and consistency proofs from the database verify against the signed roots; malformed ones do not", () => {
    const dir = tempDir("cp-proofs");
    const db = openDatabase(dir);
    const keys = testKeys(dir);
    writeEvents(db, 13);
    const c1 = createAuditCheckpoint(db, keys, "one").checkpoint;
    writeEvents(db, 22, 13);
    const c2 = createAuditCheckpoint(db, keys, "two").checkpoint;

    for (const seq of [1, 7, 13, 14, 30, 36]) {
      const p = inclusionProofForSeq(db, seq);
      expect(p.treeSize).toBe(c2.treeSize);
      expect(p.rootHash).toBe(c2.rootHash);
      expect(p.checkpoint?.id).toBe(c2.id);
      const proof = p.proof.map(hex);
      expect(verifyInclusion(seq - 1, p.treeSize, hex(p.leafHash), proof, hex(c2.rootHash))).toBe(true);
      // Malformed: wrong index, flipped byte, missing step, extra step, truncated hash.
      expect(verifyInclusion(seq % p.treeSize, p.treeSize, hex(p.leafHash), proof, hex(c2.rootHash))).toBe(false);
      const flipped = proof.map((b) => Buffer.from(b));
      flipped[0]![5]! ^= 0x40;
      expect(verifyInclusion(seq - 1, p.treeSize, hex(p.leafHash), flipped, hex(c2.rootHash))).toBe(false);
      expect(verifyInclusion(seq - 1, p.treeSize, hex(p.leafHash), proof.slice(1), hex(c2.rootHash))).toBe(false);
      expect(verifyInclusion(seq - 1, p.treeSize, hex(p.leafHash), [...proof, proof[0]!], hex(c2.rootHash))).toBe(false);
      expect(verifyInclusion(seq - 1, p.treeSize, hex(p.leafHash), [proof[0]!.subarray(0, 31), ...proof.slice(1)], hex(c2.rootHash))).toBe(
        false,
      );
    }
    const early = inclusionProofForSeq(db, 5, c1.treeSize);
    expect(early.rootHash).toBe(c1.rootHash);
    expect(verifyInclusion(4, c1.treeSize, hex(early.leafHash), early.proof.map(hex), hex(c1.rootHash))).toBe(true);

    const cons = consistencyProofBetween(db, c1.treeSize, c2.treeSize);
    expect(cons.rootM).toBe(c1.rootHash);
    expect(cons.rootN).toBe(c2.rootHash);
    const cp = cons.proof.map(hex);
    expect(verifyConsistency(c1.treeSize, c2.treeSize, hex(c1.rootHash), hex(c2.rootHash), cp)).toBe(true);
    const bad = cp.map((b) => Buffer.from(b));
    bad[bad.length - 1]![0]! ^= 1;
    expect(verifyConsistency(c1.treeSize, c2.treeSize, hex(c1.rootHash), hex(c2.rootHash), bad)).toBe(false);
    expect(verifyConsistency(c1.treeSize, c2.treeSize, hex(c1.rootHash), hex(c2.rootHash), cp.slice(0, -1))).toBe(false);
    expect(verifyConsistency(c1.treeSize + 1, c2.treeSize, hex(c1.rootHash), hex(c2.rootHash), cp)).toBe(false);
    expect(() => inclusionProofForSeq(db, 999)).toThrow();
    db.$client.close();
  });

  it("round-trips a trusted checkpoint file and rejects malformed ones", () => {
    const keys = generateAuditKeys();
    const row = {
      id: 3,
      treeSize: 10,
      rootHash: "ab".repeat(32),
      at: "2025-01-01T00:00:00.000Z",
      reason: "x",
      keyFingerprint: keys.fingerprint,
      signature: "c2lnbmF0dXJl",
    };
    const t = trustedCheckpointFromRow(row, keys.publicKeyPem);
    expect(parseTrustedCheckpoint(JSON.parse(JSON.stringify(t)))).toEqual(t);
    expect(() => parseTrustedCheckpoint({ ...t, format: "other" })).toThrow(/not a trusted checkpoint/);
    expect(() => parseTrustedCheckpoint({ ...t, treeHead: { ...t.treeHead, rootHash: "XYZ" } })).toThrow(/rootHash/);
  });
});
