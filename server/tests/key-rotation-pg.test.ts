/**
 * Audit key rotation and witnessing on the PostgreSQL store (issue 16).
 * - rotateAuditKeyOn writes the same rows on both stores as SQLite's rotation (one body: checkpoint by the old key,
 *   audit.keyRotate endorsed by it, checkpoint by the new key; same bytes, roots and signatures under a fixed clock),
 *   refuses a second rotation from the retired key, and both stores verify from the first key's fingerprint.
 * - `audit rotate-key` on PostgreSQL (a real process, DATABASE_URL): --data-dir refused (exit 2), a key directory
 *   without the ledger's key refused (exit 1, nothing written, no key created), else the rotation and the file to copy.
 *   Two web servers (two pools, each with its own key directory and signing keys from openAuditSigningKeysOn): the one
 *   whose directory got the new key follows the ledger and signs with it without a restart; the other, holding only the
 *   old key, signs nothing, says once which file it lacks, and hands out no private key; once the file is copied into
 *   its directory it signs with the new key. Plain old keys are still refused by the signer (the previous checkpoint
 *   must verify under the signing key). `audit verify` of the store passes from the first key afterwards.
 * - `witness log-key` and `witness push` on PostgreSQL: the log key read from the ledger (the rotation's new key, under
 *   the origin of the first key), and a REAL witness process on loopback cosigns the checkpoint pushed from the store;
 *   the cosignature is stored in PostgreSQL. --data-dir refused (exit 2), a key directory without the key (exit 1).
 * The ledgers hold synthetic events (no table rows behind them), so verification runs without the content level.
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { asc } from "drizzle-orm";
import { migratePg, openPgDatabase, type PgDb } from "@/db/pg-client";
import { openDatabase } from "@/db/client";
import { pgStore, reader, sqliteStore, type Store } from "@/db/store";
import { applyCheckpointPolicyOn } from "@/server/audit/checkpoint-policy";
import { createAuditCheckpointOn, SigningKeyNotHeldError } from "@/server/audit/checkpoints";
import { openAuditSigningKeysOn } from "@/server/audit/key-custody";
import { KEY_ROTATE_ACTION, rotateAuditKeyOn } from "@/server/audit/key-rotation";
import { generateAuditKeys, keyFileName, parseAuditPublicKey, storeKeyInDir } from "@/server/audit/keys";
import { verifyDatabase } from "@/server/audit/verify-database";
import { verifyPgStore } from "@/server/audit/verify-pg";
import { logOrigin, logVerifierKey } from "@/server/audit/witness/checkpoint-note";
import { startWitnessProcess } from "@/server/audit/witness/witness-process";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";

import { runCli, type CliExit as Exit, type EnvChanges } from "./cli-process";
import { appendDecisionEvents } from "./ledger-events";

vi.mock("server-only", () => ({}));

const CHAIN_ONLY = { content: false };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-keyrot-pg-"));
const dir = (name: string) => {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

const cli = (args: string[], env: EnvChanges): Promise<Exit> => runCli(args, env, 90_000);

const appendEvents = appendDecisionEvents;

async function ledger(store: Store) {
  const e = store.tables.auditEvents;
  const c = store.tables.auditCheckpoints;
  const events = await reader(store)
    .select({
      seq: e.seq,
      action: e.action,
      entityId: e.entityId,
      payload: e.payload,
      at: e.at,
      leafHash: e.leafHash,
      chainHash: e.chainHash,
    })
    .from(e)
    .orderBy(asc(e.seq));
  const checkpoints = await reader(store).select().from(c).orderBy(asc(c.id));
  return { events, checkpoints };
}

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describePg("audit key rotation on PostgreSQL", () => {
  it("rotateAuditKeyOn writes the same rows as SQLite's rotation, refuses the retired key, and both stores verify", async () => {
    const first = generateAuditKeys();
    const next = generateAuditKeys();
    const scratch = await createScratchPgDatabase();
    const pgDb = openPgDatabase(scratch.url, { max: 2 });
    const sqliteDir = dir("same-sqlite");
    const sqliteDb = openDatabase(sqliteDir);
    try {
      await migratePg(pgDb);
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(new Date("2026-12-05T10:00:00.000Z"));
      const results = [];
      for (const [name, store] of [
        ["sqlite", sqliteStore(sqliteDb)],
        ["pg", pgStore(pgDb)],
      ] as const) {
        await appendEvents(store, 10, "before");
        await createAuditCheckpointOn(store, first, "first");
        await appendEvents(store, 3, "tail");
        results.push(await rotateAuditKeyOn(store, first, { keyDir: dir(`same-keys-${name}`), newKeys: next }));
      }
      vi.useRealTimers();
      const [onSqlite, onPg] = [await ledger(sqliteStore(sqliteDb)), await ledger(pgStore(pgDb))];
      expect(onPg).toEqual(onSqlite);
      expect(onPg.events.slice(-3).map((e) => e.action)).toEqual(["audit.checkpoint", KEY_ROTATE_ACTION, "audit.checkpoint"]);
      expect(onPg.checkpoints.map((c) => c.keyFingerprint)).toEqual([first.fingerprint, first.fingerprint, next.fingerprint]);
      const { keyFile: _pgFile, ...pgResult } = results[1]!;
      const { keyFile: _sqliteFile, ...sqliteResult } = results[0]!;
      expect(pgResult).toEqual(sqliteResult);
      expect(pgResult.rotationSeq).toBe(16); // 10 events, checkpoint, 3 events, checkpoint by the old key, rotation

      // The retired key cannot rotate again: refused inside the transaction, nothing written.
      await expect(rotateAuditKeyOn(pgStore(pgDb), first, { keyDir: dir("same-keys-again") })).rejects.toThrow(
        `the ledger's signing key is ${next.fingerprint}, not ${first.fingerprint}`,
      );
      expect((await ledger(pgStore(pgDb))).events).toHaveLength(onPg.events.length);

      const fromFirstSqlite = await verifyDatabase(sqliteDb, { ...CHAIN_ONLY, publicKeyPem: first.publicKeyPem });
      expect(fromFirstSqlite.problems).toEqual([]);
      const fromFirstPg = await verifyPgStore(scratch.url, { ...CHAIN_ONLY, publicKeyPem: first.publicKeyPem });
      expect(fromFirstPg.problems).toEqual([]);
      expect(fromFirstPg.ok).toBe(true);
      expect(fromFirstPg.checkpointsChecked).toBe(fromFirstSqlite.checkpointsChecked);
    } finally {
      vi.useRealTimers();
      sqliteDb.$client.close();
      await pgDb.$client.end();
      await scratch.drop();
    }
  }, 120_000);

  let scratch: ScratchPgDatabase;
  let poolA: PgDb;
  let poolB: PgDb;
  const first = generateAuditKeys();
  let newFingerprint = "";
  let pgEnv: Record<string, string>;
  const keyDirA = dir("keys-a");
  const keyDirB = dir("keys-b");
  const emptyKeyDir = dir("keys-none");
  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    poolA = openPgDatabase(scratch.url, { max: 4 });
    poolB = openPgDatabase(scratch.url, { max: 4 });
    await migratePg(poolA);
    storeKeyInDir(keyDirA, first);
    storeKeyInDir(keyDirB, first);
    pgEnv = { DATABASE_URL: scratch.url, RUNLEDGER_KEY_DIR: emptyKeyDir };
  }, 60_000);
  afterAll(async () => {
    await poolA?.$client.end();
    await poolB?.$client.end();
    await scratch?.drop();
  });

  it("audit rotate-key on PostgreSQL; a web server follows it when its key directory has the new key, and signs nothing until then", async () => {
    const [storeA, storeB] = [pgStore(poolA), pgStore(poolB)];
    const logA: string[] = [];
    const logB: string[] = [];
    const serverA = await openAuditSigningKeysOn(storeA, { localDir: dir("local-a"), keyDir: keyDirA, log: (l) => logA.push(l) });
    const serverB = await openAuditSigningKeysOn(storeB, { localDir: dir("local-b"), keyDir: keyDirB, log: (l) => logB.push(l) });
    await appendEvents(storeA, 5, "start");
    expect(await applyCheckpointPolicyOn({ db: storeA, auditKeys: serverA }, { everyEvents: 1 })).toMatchObject({ checkpointed: true });
    const before = await ledger(storeA);

    // Refusals: --data-dir (exit 2); a key directory without the ledger's key (exit 1, names the file, creates nothing).
    const [withDataDir, withoutKey] = await Promise.all([
      cli(["audit", "rotate-key", "--data-dir", dir("some-data"), "--key-dir", keyDirA], pgEnv),
      cli(["audit", "rotate-key", "--key-dir", emptyKeyDir], pgEnv),
    ]);
    expect(withDataDir.code, withDataDir.stderr).toBe(2);
    expect(withDataDir.stderr).toContain("audit rotate-key: --data-dir names a SQLite data directory, but DATABASE_URL names PostgreSQL");
    expect(withoutKey.code, withoutKey.stderr).toBe(1);
    expect(withoutKey.stderr).toContain(
      `the ledger is signed by ${first.fingerprint}, and the key directory ${emptyKeyDir} has no ${keyFileName(first.fingerprint)}`,
    );
    expect(fs.readdirSync(emptyKeyDir)).toEqual([]);
    expect(await ledger(storeA)).toEqual(before);

    const rotated = await cli(["audit", "rotate-key", "--key-dir", keyDirA, "--json"], pgEnv);
    expect(rotated.code, rotated.stderr).toBe(0);
    const r = JSON.parse(rotated.stdout) as {
      oldFingerprint: string;
      newFingerprint: string;
      keyFile: string;
      rotationSeq: number;
      copyToEveryWebServer: string;
    };
    expect(r.oldFingerprint).toBe(first.fingerprint);
    expect(r.keyFile).toBe(path.join(keyDirA, keyFileName(r.newFingerprint)));
    expect(r.copyToEveryWebServer).toBe(r.keyFile);
    expect(fs.statSync(r.keyFile).mode & 0o777).toBe(0o600);
    newFingerprint = r.newFingerprint;
    const afterRotation = await ledger(storeA);
    expect(afterRotation.events.slice(before.events.length).map((e) => [e.seq, e.action])).toEqual([
      [before.events.length + 1, "audit.checkpoint"],
      [before.events.length + 2, KEY_ROTATE_ACTION],
      [before.events.length + 3, "audit.checkpoint"],
    ]);
    expect(r.rotationSeq).toBe(before.events.length + 2);
    expect(afterRotation.checkpoints.map((c) => c.keyFingerprint)).toEqual([first.fingerprint, first.fingerprint, newFingerprint]);

    // Server B holds only the old key: it signs nothing, says once which file it lacks, and hands out no private key.
    await appendEvents(storeB, 3, "on b");
    const refusedB = await applyCheckpointPolicyOn({ db: storeB, auditKeys: serverB }, { everyEvents: 1 });
    expect(refusedB).toEqual({ checkpointed: false, error: expect.stringContaining(`has no ${keyFileName(newFingerprint)}`) });
    expect(await applyCheckpointPolicyOn({ db: storeB, auditKeys: serverB }, { everyEvents: 1 })).toEqual(refusedB);
    expect(logB).toEqual([expect.stringContaining(`the ledger's signing key is now ${newFingerprint}`)]);
    expect(logB[0]).toContain(`never signs with the retired key ${first.fingerprint}`);
    expect(() => serverB.privateKey).toThrow(SigningKeyNotHeldError);
    await expect(createAuditCheckpointOn(storeB, serverB, "explicit")).rejects.toThrow(SigningKeyNotHeldError);
    // The signer's own rule still holds for keys that do not follow the ledger: the old key is refused.
    await expect(createAuditCheckpointOn(storeB, first, "old key")).rejects.toThrow(/is not validly signed by this server's key/);
    expect((await ledger(storeB)).checkpoints).toHaveLength(3);

    // Server A's key directory got the new key from the CLI: it follows the ledger without a restart.
    expect(await applyCheckpointPolicyOn({ db: storeA, auditKeys: serverA }, { everyEvents: 1 })).toMatchObject({ checkpointed: true });
    expect(serverA.fingerprint).toBe(newFingerprint);
    expect(logA).toEqual([expect.stringContaining(`this server signs with ${r.keyFile}`)]);

    // The file copied into B's key directory: B signs with the new key from its next checkpoint.
    fs.copyFileSync(r.keyFile, path.join(keyDirB, keyFileName(newFingerprint)));
    fs.chmodSync(path.join(keyDirB, keyFileName(newFingerprint)), 0o600);
    await appendEvents(storeB, 2, "on b again");
    expect(await applyCheckpointPolicyOn({ db: storeB, auditKeys: serverB }, { everyEvents: 1 })).toMatchObject({ checkpointed: true });
    expect(serverB.fingerprint).toBe(newFingerprint);
    expect(serverB.privateKey).toBeDefined();
    const end = await ledger(storeB);
    expect(end.checkpoints.map((c) => c.keyFingerprint)).toEqual([
      first.fingerprint,
      first.fingerprint,
      newFingerprint,
      newFingerprint,
      newFingerprint,
    ]);

    const verified = await verifyPgStore(scratch.url, { ...CHAIN_ONLY, publicKeyPem: first.publicKeyPem });
    expect(verified.problems).toEqual([]);
    expect(verified.ok).toBe(true);
    expect(verified.checkpointsChecked).toBe(5);
    expect(verified.unsignedTail).toBe(1); // the last checkpoint's own event
  }, 240_000);

  it("witness log-key and witness push on PostgreSQL: a real witness cosigns the checkpoint pushed from the store", async () => {
    expect(newFingerprint).not.toBe(""); // after the rotation above
    const store = pgStore(poolA);
    const logKey = await cli(["witness", "log-key", "--key-dir", keyDirA], pgEnv);
    expect(logKey.code, logKey.stderr).toBe(0);
    const rotation = (await ledger(store)).events.find((e) => e.action === KEY_ROTATE_ACTION)!;
    const newPem = (JSON.parse(rotation.payload) as { newPublicKeyPem: string }).newPublicKeyPem;
    expect(logKey.stdout.trim()).toBe(logVerifierKey(logOrigin(first.fingerprint), parseAuditPublicKey(newPem).publicKey).vkey);

    const w = await startWitnessProcess({ logKey: logKey.stdout.trim(), name: "witness.test/key-rotation-pg" });
    try {
      const env = { ...pgEnv, RUNLEDGER_WITNESSES: `${w.url}=${w.vkey}` };
      const [withDataDir, withoutKey] = await Promise.all([
        cli(["witness", "push", "--data-dir", dir("some-data")], env),
        cli(["witness", "push", "--key-dir", emptyKeyDir], env),
      ]);
      expect(withDataDir.code, withDataDir.stderr).toBe(2);
      expect(withDataDir.stderr).toContain("witness push: --data-dir names a SQLite data directory");
      expect(withoutKey.code, withoutKey.stderr).toBe(1);
      expect(withoutKey.stderr).toContain(`has no ${keyFileName(newFingerprint)}`);

      const pushed = await cli(["witness", "push", "--key-dir", keyDirA, "--json"], env);
      expect(pushed.code, pushed.stderr + pushed.stdout).toBe(0);
      const latest = (await ledger(store)).checkpoints.at(-1)!;
      expect(JSON.parse(pushed.stdout)).toEqual({
        results: [expect.objectContaining({ url: w.url, outcome: "cosigned", treeSize: latest.treeSize })],
      });
      const c = store.tables.witnessCosignatures;
      const stored = await reader(store).select({ treeSize: c.treeSize, rootHash: c.rootHash, checkpointId: c.checkpointId }).from(c);
      expect(stored).toEqual([{ treeSize: latest.treeSize, rootHash: latest.rootHash, checkpointId: latest.id }]);
      const again = await cli(["witness", "push", "--key-dir", keyDirA], env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toBe(`${w.url}: already cosigned (tree size ${latest.treeSize})\n`);
    } finally {
      await w.stop();
      fs.rmSync(w.keyDir, { recursive: true, force: true });
    }
  }, 240_000);
});
