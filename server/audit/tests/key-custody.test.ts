/**
 * Key custody on real files: the signing key is created in the key directory (0700/0600), never in the data
 * directory, so a copy of the data directory carries no private key; a private key found in the data directory is
 * refused at start (allowed only with RUNLEDGER_ALLOW_KEY_IN_DATA_DIR=1) and `audit move-key` moves it; a ledger
 * whose key is not in the key directory is refused with a message naming the fingerprint and the directory; the
 * real CLI creates the key under the default path on a fresh machine.
 */
import { afterEach, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { openDatabase } from "@/db/client";
import { createAppServices } from "@/server/app-context/app-services";
import { applyCheckpointPolicy } from "../checkpoint-policy";
import { createAuditCheckpoint, latestAuditCheckpoint } from "../checkpoints";
import {
  type AuditKeys,
  generateAuditKeys,
  keyFilePath,
  LEGACY_PRIVATE_KEY_FILE,
  loadKeyFromDir,
  PUBLIC_KEY_FILE,
  privateKeyPem,
  writePublicKeyFile,
} from "../keys";
import { verifyDatabase } from "../verify";

/** The ledgers here hold synthetic events (no table rows behind them): these tests are about keys and signatures, so the
 * content level (tables and files against the ledger, tested in server/audit/content) is not run. */
const CHAIN_ONLY = { content: false };
import { auditVerifyCommand, type CliIo } from "@/server/cli/audit-verify";
import { tempDir, writeEvents } from "./ledger-fixture";

const ALLOW = "RUNLEDGER_ALLOW_KEY_IN_DATA_DIR";
afterEach(() => {
  delete process.env[ALLOW];
});

/** Files under `dir` that contain any form of the private key (PEM marker, PKCS8 DER, its base64, the raw seed). */
function filesHoldingPrivateKey(dir: string, keys: AuditKeys): string[] {
  const der = keys.privateKey.export({ type: "pkcs8", format: "der" });
  const seed = Buffer.from(keys.privateKey.export({ format: "jwk" }).d!, "base64url");
  const needles = [Buffer.from("PRIVATE KEY"), der, Buffer.from(der.toString("base64")), seed];
  const hits: string[] = [];
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const bytes = fs.readFileSync(file);
    if (needles.some((n) => bytes.includes(n))) hits.push(file);
  }
  return hits;
}

/** A data directory in the old layout: the private key sits next to the database, and has signed a checkpoint. */
function oldLayoutDataDir(): { dir: string; keys: AuditKeys } {
  const dir = tempDir("old-layout");
  const db = openDatabase(dir);
  const keys = generateAuditKeys();
  fs.writeFileSync(path.join(dir, LEGACY_PRIVATE_KEY_FILE), privateKeyPem(keys), { mode: 0o600 });
  writePublicKeyFile(dir, keys);
  writeEvents(db, 5);
  createAuditCheckpoint(db, keys, "signed in the old layout");
  db.$client.close();
  return { dir, keys };
}

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { out: (t) => (out += t), err: (t) => (err += t) };
  return { code: await auditVerifyCommand(argv, io), out, err };
}

describe("key custody", () => {
  it("creates the key in a new key directory, never in the data directory; a copy of the data directory carries no private key", async () => {
    const dataDir = tempDir("custody");
    const keyDir = path.join(tempDir("custody-home"), ".config", "runledger", "keys"); // does not exist yet
    const app = createAppServices(dataDir, { keyDir });
    writeEvents(app.db, 3);
    expect(applyCheckpointPolicy(app)).toMatchObject({ checkpointed: true });
    const fingerprint = app.auditKeys.fingerprint;
    expect(latestAuditCheckpoint(app.db)!.keyFingerprint).toBe(fingerprint);
    app.db.$client.close();

    expect(fs.statSync(keyDir).mode & 0o777).toBe(0o700);
    expect(fs.readdirSync(keyDir)).toEqual([path.basename(keyFilePath(keyDir, fingerprint))]);
    expect(fs.statSync(keyFilePath(keyDir, fingerprint)).mode & 0o777).toBe(0o600);
    const keys = loadKeyFromDir(keyDir, fingerprint)!;
    expect(fs.readdirSync(dataDir)).toContain(PUBLIC_KEY_FILE);
    expect(fs.readdirSync(dataDir)).not.toContain(LEGACY_PRIVATE_KEY_FILE);

    const copy = tempDir("custody-copy");
    fs.cpSync(dataDir, copy, { recursive: true });
    expect(filesHoldingPrivateKey(copy, keys)).toEqual([]);
    expect(filesHoldingPrivateKey(keyDir, keys)).toHaveLength(1); // the needles do find the key where it is
    expect(await verifyDatabase(copy, CHAIN_ONLY)).toMatchObject({ ok: true, keyFingerprint: fingerprint });

    // A restart finds the same key by the fingerprint the ledger records; no second key is made.
    const again = createAppServices(dataDir, { keyDir });
    expect(again.auditKeys.fingerprint).toBe(fingerprint);
    again.db.$client.close();
    expect(fs.readdirSync(keyDir)).toHaveLength(1);
  });

  it("refuses to start with a private key in the data directory, says why and how to move it; starts when explicitly allowed", () => {
    const { dir, keys } = oldLayoutDataDir();
    const keyDir = tempDir("custody-keys");
    let message = "";
    try {
      createAppServices(dir, { keyDir });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(`the audit signing key is inside the data directory (${path.join(dir, LEGACY_PRIVATE_KEY_FILE)})`);
    expect(message).toContain("A copy or backup of the data directory would then carry the key that can rewrite the audit history");
    expect(message).toContain(`npm run cli -- audit move-key --data-dir ${dir} --key-dir ${keyDir}`);
    expect(message).toContain(`${ALLOW}=1`);
    expect(fs.readdirSync(keyDir)).toEqual([]); // nothing created on refusal

    // A key directory inside the data directory is the same risk.
    const inside = tempDir("custody-inside2");
    expect(() => createAppServices(inside, { keyDir: path.join(inside, "keys") })).toThrow(
      /the key directory .* is inside the data directory/,
    );

    process.env[ALLOW] = "1";
    const app = createAppServices(dir, { keyDir });
    expect(app.auditKeys.fingerprint).toBe(keys.fingerprint);
    expect(createAuditCheckpoint(app.db, app.auditKeys, "still in the old layout").checkpoint.keyFingerprint).toBe(keys.fingerprint);
    app.db.$client.close();
  });

  it("audit move-key moves the old key into the key directory under its fingerprint; the app then continues the signed history", async () => {
    const { dir, keys } = oldLayoutDataDir();
    const keyDir = path.join(tempDir("custody-move"), "keys");
    const legacyPem = fs.readFileSync(path.join(dir, LEGACY_PRIVATE_KEY_FILE), "utf8");
    const moved = await cli(["move-key", "--data-dir", dir, "--key-dir", keyDir, "--json"]);
    expect(moved.code, moved.err).toBe(0);
    const target = keyFilePath(keyDir, keys.fingerprint);
    expect(JSON.parse(moved.out)).toMatchObject({ moved: true, fingerprint: keys.fingerprint, to: target });
    expect(fs.existsSync(path.join(dir, LEGACY_PRIVATE_KEY_FILE))).toBe(false);
    expect(fs.readFileSync(target, "utf8")).toBe(legacyPem);
    expect(fs.statSync(target).mode & 0o777).toBe(0o600);
    expect(filesHoldingPrivateKey(dir, keys)).toEqual([]);

    const again = await cli(["move-key", "--data-dir", dir, "--key-dir", keyDir]);
    expect(again).toMatchObject({ code: 1 });
    expect(again.err).toMatch(/no private key to move: .* does not exist \(already moved\?\)/);

    const app = createAppServices(dir, { keyDir });
    expect(app.auditKeys.fingerprint).toBe(keys.fingerprint);
    createAuditCheckpoint(app.db, app.auditKeys, "after the move");
    app.db.$client.close();
    expect(await verifyDatabase(dir, { ...CHAIN_ONLY, publicKeyPem: keys.publicKeyPem })).toMatchObject({
      ok: true,
      checkpointsChecked: 2,
    });
  });

  it("refuses to start when the ledger's key is not in the key directory, naming the fingerprint, the directory and the fix", () => {
    const dataDir = tempDir("custody-missing");
    const keyDir = tempDir("custody-missing-keys");
    const app = createAppServices(dataDir, { keyDir });
    writeEvents(app.db, 2);
    const { checkpoint } = createAuditCheckpoint(app.db, app.auditKeys, "signed");
    app.db.$client.close();

    const elsewhere = tempDir("custody-other-keys");
    const expected = new RegExp(
      `the audit ledger in ${dataDir} is signed with key ${checkpoint.keyFingerprint}, but the key directory ${elsewhere} has no ${path.basename(keyFilePath(elsewhere, checkpoint.keyFingerprint))}\\.\\nRestore that file from your key backup`,
    );
    expect(() => createAppServices(dataDir, { keyDir: elsewhere })).toThrow(expected);
    expect(fs.readdirSync(elsewhere)).toEqual([]); // no new key made for a ledger that already has one
  });

  it("the real CLI creates the key under ~/.config/runledger/keys on a fresh machine, and refuses on a machine without it", () => {
    const home = tempDir("custody-fresh-home");
    const dataDir = path.join(tempDir("custody-fresh"), "data");
    const env: NodeJS.ProcessEnv = { NODE_ENV: "test", PATH: process.env.PATH, HOME: home }; // no VITEST, RUNLEDGER_KEY_DIR or XDG_CONFIG_HOME
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [path.join("node_modules", "tsx", "dist", "cli.mjs"), "server/cli/main.ts", ...args], {
        encoding: "utf8",
        timeout: 60_000,
        env,
      });
    const seeded = run("seed", "--no-demo-run", "--data-dir", dataDir);
    expect(seeded.status, seeded.stderr).toBe(0);
    const keyDir = path.join(home, ".config", "runledger", "keys");
    expect(fs.statSync(keyDir).mode & 0o777).toBe(0o700);
    const [keyFile, ...others] = fs.readdirSync(keyDir);
    expect(others).toEqual([]);
    expect(keyFile).toMatch(/^ed25519-[0-9a-f]{64}\.key$/);
    expect(fs.statSync(path.join(keyDir, keyFile!)).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dataDir)).not.toContain(LEGACY_PRIVATE_KEY_FILE);

    const signed = run("audit", "checkpoint-export", "--new", "--data-dir", dataDir, "--out", path.join(home, "trusted.json"));
    expect(signed.status, signed.stderr).toBe(0);
    env.HOME = tempDir("custody-other-machine");
    const refused = run("seed", "--no-demo-run", "--data-dir", dataDir);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`has no ${keyFile}`);
    expect(refused.stderr).toContain(path.join(env.HOME, ".config", "runledger", "keys"));
  });
});
