/**
 * The one finder of the installation's key for the commands on PostgreSQL (server/cli/cli-pg-keys.ts), on a scratch
 * store, before and after its first checkpoint:
 * - nothing signed yet: by default the key directory's only key (export, audit checkpoint-export --new), with why not
 *   when the directory holds none or several; with whenNothingSigned "refuse" no key, and ledgerKeyForCommandOn
 *   (audit rotate-key, witness push) throws "<doing>: nothing is signed in this ledger yet, so it names no signing key".
 * - once signed: the key the ledger names, whatever else the directory holds; a directory without it says which file
 *   is missing, and ledgerKeyForCommandOn adds where to get it.
 * Nothing is ever created in a key directory.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Store } from "@/db/store";
import { openPgStoreServices, type PgStoreServices } from "@/server/app-context/pg-store-services";
import { createAuditCheckpointOn } from "@/server/audit/checkpoints";
import { KeyCustodyError, createKeyInDir, keyFileName } from "@/server/audit/keys";
import { installationKeyOnPostgres, ledgerKeyForCommandOn } from "@/server/cli/cli-pg-keys";
import { appendDecisionEvents } from "./ledger-events";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";

vi.mock("server-only", () => ({}));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-cli-pg-keys-"));
const dir = (name: string) => {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
};
const oneKey = dir("one");
const twoKeys = dir("two");
const noKey = dir("none");
const installationKey = createKeyInDir(oneKey);
createKeyInDir(twoKeys);
createKeyInDir(twoKeys);
const filesIn = (d: string) => fs.readdirSync(d).sort();
const before = { one: filesIn(oneKey), two: filesIn(twoKeys), none: filesIn(noKey) };

describePg("installationKeyOnPostgres: one finder, two rules for a ledger nothing has signed yet", () => {
  let scratch: ScratchPgDatabase;
  let pg: PgStoreServices;
  let store: Store;

  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    pg = await openPgStoreServices(scratch.url, { poolSize: 2 });
    store = pg.store;
    await appendDecisionEvents(store, 3, "keys");
  });

  afterAll(async () => {
    await pg?.close();
    await scratch?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe("nothing signed yet", () => {
    it("takes the directory's only key by default, and says why not with none or several", async () => {
      expect((await installationKeyOnPostgres(store, oneKey)).keys?.fingerprint).toBe(installationKey.fingerprint);
      expect(await installationKeyOnPostgres(store, noKey)).toEqual({
        keys: null,
        inForce: null,
        missing: `nothing is signed in this ledger yet and the key directory ${noKey} holds no signing key`,
      });
      expect((await installationKeyOnPostgres(store, twoKeys)).missing).toMatch(
        new RegExp(`^nothing is signed in this ledger yet and the key directory ${twoKeys} holds 2 keys \\(SHA256:`),
      );
    });

    it("with whenNothingSigned refuse takes none; ledgerKeyForCommandOn throws naming the command", async () => {
      expect(await installationKeyOnPostgres(store, oneKey, { whenNothingSigned: "refuse" })).toEqual({
        keys: null,
        inForce: null,
        missing:
          "nothing is signed in this ledger yet, so it names no signing key (the first web server makes the key and signs the first checkpoint)",
      });
      const refused = ledgerKeyForCommandOn(store, oneKey, "audit rotate-key");
      await expect(refused).rejects.toBeInstanceOf(KeyCustodyError);
      await expect(refused).rejects.toThrow(/^audit rotate-key: nothing is signed in this ledger yet, so it names no signing key/);
    });
  });

  describe("once the ledger names its key", () => {
    beforeAll(async () => {
      await createAuditCheckpointOn(store, installationKey, "test");
    });

    it("both rules take the key the ledger names from a directory that has it", async () => {
      for (const whenNothingSigned of ["take-the-only-key", "refuse"] as const)
        expect((await installationKeyOnPostgres(store, oneKey, { whenNothingSigned })).keys?.fingerprint).toBe(installationKey.fingerprint);
      expect((await ledgerKeyForCommandOn(store, oneKey, "witness push")).fingerprint).toBe(installationKey.fingerprint);
    });

    it("a directory without it: the missing file named, and for a command where to get it", async () => {
      const missing = `the ledger is signed by ${installationKey.fingerprint}, and the key directory ${twoKeys} has no ${keyFileName(installationKey.fingerprint)}`;
      expect(await installationKeyOnPostgres(store, twoKeys)).toEqual({ keys: null, inForce: installationKey.fingerprint, missing });
      await expect(ledgerKeyForCommandOn(store, twoKeys, "witness push")).rejects.toThrow(
        `witness push: ${missing}. Run this on a machine whose key directory holds it (--key-dir or RUNLEDGER_KEY_DIR), or copy that file there (mode 0600) from a web server's key directory.`,
      );
      expect({ one: filesIn(oneKey), two: filesIn(twoKeys), none: filesIn(noKey) }).toEqual(before);
    });
  });
});
