/**
 * `audit verify` and `backup` take the store from DATABASE_URL=postgres://… as every other command does (issue 16),
 * as real processes: with no --data-dir, --bundle or --database they read the PostgreSQL store it names.
 * - `audit verify --public-key FILE` verifies it (the same result as `--database URL`); without a key held outside the
 *   store it is refused as `--database` is (exit 2, "give --public-key FILE …").
 * - `backup --out FILE` archives one snapshot of it; the archive restores to a data directory that verifies with the
 *   same number of events.
 * (--data-dir with DATABASE_URL=postgres://… is refused with exit 2: store-selection.test.ts.)
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { count } from "drizzle-orm";
import { openPgDatabase } from "@/db/pg-client";
import { pgStore, reader } from "@/db/store";
import { keyFingerprintsInDir } from "@/server/audit/key-custody";
import { loadKeyFromDir } from "@/server/audit/keys";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";
import { runCli, type EnvChanges } from "./cli-process";

vi.mock("server-only", () => ({}));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-cli-pg-default-store-"));
const keyDir = path.join(tmp, "keys");
const publicKeyFile = path.join(tmp, "audit-ed25519.pub");

type VerifyJson = { target: string; ok: boolean; levels: { chain: { ok: boolean; events: number } } };

describePg("audit verify and backup on the PostgreSQL store DATABASE_URL names", () => {
  let scratch: ScratchPgDatabase;
  const pgEnv = (): EnvChanges => ({ DATABASE_URL: scratch.url, RUNLEDGER_DATA_DIR: path.join(tmp, "local"), RUNLEDGER_KEY_DIR: keyDir });
  const onPg = (args: string[]) => runCli(args, pgEnv(), 180_000);
  const withoutUrl = (args: string[]) => runCli(args, { RUNLEDGER_KEY_DIR: keyDir }, 180_000);

  async function pgEventCount(): Promise<number> {
    const db = openPgDatabase(scratch.url, { max: 1 });
    try {
      const e = pgStore(db).tables.auditEvents;
      return (await reader(pgStore(db)).select({ n: count() }).from(e))[0]!.n;
    } finally {
      await db.$client.end();
    }
  }

  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    const seeded = await onPg(["seed", "--no-demo-run"]);
    expect(seeded.code, seeded.stderr).toBe(0);
    const [fingerprint] = keyFingerprintsInDir(keyDir);
    fs.writeFileSync(publicKeyFile, loadKeyFromDir(keyDir, fingerprint!)!.publicKeyPem);
  }, 180_000);

  afterAll(async () => {
    await scratch?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("audit verify with no target verifies the PostgreSQL store, with a key held outside it", async () => {
    const events = await pgEventCount();
    expect(events).toBeGreaterThan(0);
    const [byEnv, byFlag, keyless] = await Promise.all([
      onPg(["audit", "verify", "--public-key", publicKeyFile, "--json"]),
      withoutUrl(["audit", "verify", "--database", scratch.url, "--public-key", publicKeyFile, "--json"]),
      onPg(["audit", "verify"]),
    ]);
    expect(byEnv.code, byEnv.stderr).toBe(0);
    const result = JSON.parse(byEnv.stdout) as VerifyJson;
    expect(result.target).toMatch(/^postgres:\/\//);
    expect(result.ok).toBe(true);
    expect(result.levels.chain).toMatchObject({ ok: true, events });
    expect(byFlag.code, byFlag.stderr).toBe(0);
    expect((JSON.parse(byFlag.stdout) as VerifyJson).levels.chain).toEqual(result.levels.chain);

    expect(keyless.code, keyless.stderr).toBe(2);
    expect(keyless.stderr).toContain("a PostgreSQL store is verified against a key you hold, never one read from the store");
    expect(keyless.stderr).not.toContain("DATABASE_URL names a PostgreSQL database");
  }, 300_000);

  it("backup with no target archives the PostgreSQL store; the archive restores to a data directory that verifies", async () => {
    const archive = path.join(tmp, "pg-store.tar");
    const events = await pgEventCount();
    const backup = await onPg(["backup", "--out", archive, "--public-key", publicKeyFile, "--json"]);
    expect(backup.code, backup.stderr).toBe(0);
    expect((JSON.parse(backup.stdout) as { ledger: { events: number } }).ledger.events).toBe(events);

    const restored = path.join(tmp, "restored");
    const restore = await withoutUrl(["restore", "--from", archive, "--data-dir", restored, "--json"]);
    expect(restore.code, restore.stderr).toBe(0);
    const verified = await withoutUrl(["audit", "verify", "--data-dir", restored, "--public-key", publicKeyFile, "--json"]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect((JSON.parse(verified.stdout) as VerifyJson).levels.chain).toMatchObject({ ok: true, events });
  }, 300_000);
});
