/**
 * After an audit key rotation, on both stores:
 * - "Download latest checkpoint" (audit.trustedCheckpoint) carries the public key that signed that checkpoint (the key
 *   in force at its tree size in the ledger's key chain), not the serving process's own key: a web server that has
 *   not got the new key yet still hands out a file whose key matches its signature; a forged latest row gets no key.
 * - The Audit page's status does not fail when the ledger names a key this server lacks (SQLite: the live keys throw
 *   then): it says so in signingKeyProblem, still judges the checkpoints, and Verify now still runs; once the key file
 *   is copied, the problem is gone and the server shows the new key.
 * - `audit checkpoint-export` writes the signer's public key likewise (SQLite: from the data directory's public key
 *   through the chain; PostgreSQL: from a key directory that holds only the old key).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { desc } from "drizzle-orm";
import { openDatabase } from "@/db/client";
import { migratePg, openPgDatabase } from "@/db/pg-client";
import { exec, pgStore, reader, sqliteStore, transact, type Store } from "@/db/store";
import {
  createAuditCheckpoint,
  createAuditCheckpointOn,
  signTreeHead,
  treeHeadOf,
  verifyTreeHeadSignature,
  type TrustedCheckpoint,
} from "@/server/audit/checkpoints";
import { openAuditSigningKeys, openAuditSigningKeysOn, type SigningKeys } from "@/server/audit/key-custody";
import { rotateAuditKey, rotateAuditKeyOn } from "@/server/audit/key-rotation";
import { generateAuditKeys, keyFilePath, loadKeyFromDir, parseAuditPublicKey, storeKeyInDir, type AuditKeys } from "@/server/audit/keys";
import { auditStatus, trustedCheckpoint } from "@/server/audit/service";
import { waitForVerifyJob } from "@/server/audit/verify-jobs";
import { checkpointExportCommand } from "@/server/cli/audit-checkpoint-export";
import { createTestApp } from "./test-app";
import { appendDecisionEvents } from "./ledger-events";
import { createScratchPgDatabase, describePg } from "./pg-test-env";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-signer-key-"));
const dir = (name: string) => {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
};
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The file's public key is the key its tree head names, and the head's signature verifies under it. */
function expectSelfConsistent(file: TrustedCheckpoint, signer: AuditKeys): void {
  expect(file.publicKeyPem).toBe(signer.publicKeyPem);
  const key = parseAuditPublicKey(file.publicKeyPem!);
  expect(key.fingerprint).toBe(file.treeHead.keyFingerprint);
  expect(verifyTreeHeadSignature(key, file.treeHead, file.signature)).toBe(true);
}

/** A checkpoint row over the latest head, signed by a random key but claiming `claimedFingerprint` (a forger's row). */
async function insertForgedCheckpoint(store: Store, claimedFingerprint: string): Promise<void> {
  const c = store.tables.auditCheckpoints;
  const [latest] = await reader(store).select().from(c).orderBy(desc(c.id)).limit(1);
  const head = treeHeadOf({ ...latest!, at: new Date().toISOString(), keyFingerprint: claimedFingerprint });
  const forged = { ...head, reason: "forged", signature: signTreeHead(generateAuditKeys(), head) };
  await transact(store, function* (tx) {
    yield* exec(tx.insert(c).values(forged));
  });
}

/** Runs `audit checkpoint-export` in this process; `env` is set for the call only. */
async function checkpointExport(args: string[], env: Record<string, string | undefined>) {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const set = (vars: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(vars)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  let stdout = "";
  let stderr = "";
  set(env);
  try {
    const code = await checkpointExportCommand(args, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
    return { code, stdout, stderr };
  } finally {
    set(saved);
  }
}

const readCheckpointFile = (file: string) => JSON.parse(fs.readFileSync(file, "utf8")) as TrustedCheckpoint;

describe("[audit page] a SQLite server whose key directory lacks the ledger's new key", () => {
  it("status says what is missing instead of failing, the checkpoint file carries the new key, Verify now runs", async () => {
    const app = createTestApp();
    try {
      const first = (app.auditKeys as SigningKeys).current();
      createAuditCheckpoint(app.db, app.auditKeys, "first");
      // The rotation made with another key directory (as `audit rotate-key --key-dir` elsewhere): this server lacks the new key.
      const elsewhere = dir("sqlite-elsewhere-keys");
      const rotation = rotateAuditKey(app.db, first, { keyDir: elsewhere });
      const next = loadKeyFromDir(elsewhere, rotation.newFingerprint)!;
      const auditor = app.as("auditor");

      const status = await auditor.audit.status();
      expect(status.fingerprint).toBe(first.fingerprint);
      expect(status.signingKeyProblem).toContain(`This server does not hold the ledger's signing key ${rotation.newFingerprint}`);
      expect(status.signingKeyProblem).toContain("checkpoints cannot be signed until it does");
      expect(status.signingKeyProblem).toContain(path.basename(keyFilePath(app.keyDir, rotation.newFingerprint)));
      // The key an auditor needs for the newest checkpoints, which this server's key endorsed by the rotation.
      expect(status.keyInForce).toEqual({ publicKeyPem: next.publicKeyPem, fingerprint: rotation.newFingerprint });
      expect(status.latestCheckpoint).toMatchObject({
        id: rotation.after.id,
        keyFingerprint: rotation.newFingerprint,
        signatureValid: true,
      });

      const file = (await auditor.audit.trustedCheckpoint())!;
      expect(file.checkpointId).toBe(rotation.after.id);
      expect(file.publicKeyPem).toBe(next.publicKeyPem);
      expect(parseAuditPublicKey(file.publicKeyPem!).fingerprint).toBe(file.treeHead.keyFingerprint);
      expect(verifyTreeHeadSignature(next, file.treeHead, file.signature)).toBe(true);

      expect((await auditor.audit.verify()).job.status).toBe("running");
      expect((await waitForVerifyJob(app.dataDir))!.summary).toMatchObject({ ok: true, problem: null });

      // The key file copied: the server signs with the new key and the warning is gone.
      fs.copyFileSync(keyFilePath(elsewhere, rotation.newFingerprint), keyFilePath(app.keyDir, rotation.newFingerprint));
      const after = await auditor.audit.status();
      expect(after).toMatchObject({ fingerprint: rotation.newFingerprint, signingKeyProblem: null, keyInForce: null });
    } finally {
      app.close();
    }
  }, 120_000);

  it("audit checkpoint-export writes the signer's key after a rotation, and none for a forged latest row", async () => {
    const dataDir = dir("cli-sqlite-data");
    const keyDir = dir("cli-sqlite-keys");
    const db = openDatabase(dataDir);
    const store = sqliteStore(db);
    const keys = openAuditSigningKeys(db, { dataDir, keyDir });
    const first = keys.current();
    await appendDecisionEvents(store, 5, "before");
    createAuditCheckpoint(db, keys, "first");
    const rotation = rotateAuditKey(db, first, { keyDir, dataDir });
    const next = keys.current();
    expect(next.fingerprint).toBe(rotation.newFingerprint);
    db.$client.close();

    // The latest checkpoint (the new key's, after the rotation) carries the new key.
    const out = path.join(tmp, "cli-sqlite-cp.json");
    const r = await checkpointExport(["--out", out, "--data-dir", dataDir], { DATABASE_URL: undefined });
    expect(r.code, r.stderr).toBe(0);
    expect(readCheckpointFile(out).checkpointId).toBe(rotation.after.id);
    expectSelfConsistent(readCheckpointFile(out), next);

    // A forged latest row (a random key claiming the new key's fingerprint) gets no public key, and a note says why.
    const again = openDatabase(dataDir);
    await insertForgedCheckpoint(sqliteStore(again), next.fingerprint);
    again.$client.close();
    const forged = path.join(tmp, "cli-sqlite-cp-forged.json");
    const f = await checkpointExport(["--out", forged, "--data-dir", dataDir], { DATABASE_URL: undefined });
    expect(f.code, f.stderr).toBe(0);
    expect(readCheckpointFile(forged)).toMatchObject({ reason: "forged" });
    expect(readCheckpointFile(forged)).not.toHaveProperty("publicKeyPem");
    expect(f.stderr).toMatch(/^note: checkpoint #\d+ signature is not valid .*so the file carries no public key/);
  }, 60_000);
});

describePg("[audit page] PostgreSQL: the checkpoint file of a web server that has not got the new key", () => {
  it("carries the key that signed the latest checkpoint; status says the key is missing; the CLI does the same", async () => {
    const scratch = await createScratchPgDatabase();
    const db = openPgDatabase(scratch.url, { max: 2 });
    try {
      await migratePg(db);
      const store = pgStore(db);
      const [first, next] = [generateAuditKeys(), generateAuditKeys()];
      await appendDecisionEvents(store, 3, "start");
      await createAuditCheckpointOn(store, first, "first");
      const oldKeyDir = dir("pg-old-keys");
      storeKeyInDir(oldKeyDir, first);
      const server = await openAuditSigningKeysOn(store, { localDir: dir("pg-local"), keyDir: oldKeyDir, log: () => undefined });
      await rotateAuditKeyOn(store, first, { keyDir: dir("pg-rotation-keys"), newKeys: next });
      await appendDecisionEvents(store, 2, "after");
      await createAuditCheckpointOn(store, next, "by the new key");
      const deps = { db: store, auditKeys: server, dataDir: tmp };

      expectSelfConsistent((await trustedCheckpoint(deps))!, next);
      const status = await auditStatus(deps);
      expect(status).toMatchObject({ fingerprint: first.fingerprint, latestCheckpoint: { signatureValid: true } });
      expect(status.signingKeyProblem).toContain(`This server does not hold the ledger's signing key ${next.fingerprint}`);
      expect(status.keyInForce).toEqual({ publicKeyPem: next.publicKeyPem, fingerprint: next.fingerprint });

      const out = path.join(tmp, "cli-pg-cp.json");
      const r = await checkpointExport(["--out", out, "--key-dir", oldKeyDir], { DATABASE_URL: scratch.url });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe("");
      expectSelfConsistent(readCheckpointFile(out), next);

      await insertForgedCheckpoint(store, next.fingerprint);
      expect(await trustedCheckpoint(deps)).not.toHaveProperty("publicKeyPem");

      // The key file copied: the server follows the rotation at its next status read.
      storeKeyInDir(oldKeyDir, next);
      expect(await auditStatus(deps)).toMatchObject({ fingerprint: next.fingerprint, signingKeyProblem: null, keyInForce: null });
    } finally {
      await db.$client.end();
      await scratch.drop();
    }
  }, 120_000);
});
