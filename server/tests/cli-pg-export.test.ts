/**
 * The auditor's exports from the command line on PostgreSQL (issue 16): `export` (the report bundle), `export-prov`
 * (W3C PROV-JSON) and `audit checkpoint-export`, as real processes (`node --import tsx server/cli/main.ts`), once on
 * a SQLite data directory and once with DATABASE_URL naming a new scratch database, both seeded with
 * `seed --no-demo-run`, then a tiny run trained and registered as iris-cli v1 (as cli-pg.test.ts does).
 *
 * Checked:
 * - export of the version to a directory exits 0 on both stores and `export --verify` says VERIFIED; on PostgreSQL the
 *   bundle's public key is the installation's key from the key directory, the ledger ends with audit.export and the
 *   checkpoint signed over it, and a .tar export verifies too. An unknown model exits 2 on both with the same message.
 *   On PostgreSQL: a key directory without the ledger's key is refused (exit 1, nothing recorded, no key created);
 *   --data-dir is refused (exit 2).
 * - export-prov prints PROV-JSON with the run, the checkpoint and the model version, the same records on both stores,
 *   and records lineage.export; an unknown version exits 2.
 * - checkpoint-export writes the latest checkpoint, which `audit verify --database URL --trusted-checkpoint FILE`
 *   accepts (as `--data-dir` does on SQLite); --new signs a fresh one with the key directory's key, and is refused
 *   (exit 1, no key created) without it; without the key and without --new the file carries no public key and says so.
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { asc } from "drizzle-orm";
import { openPgDatabase } from "@/db/pg-client";
import { pgStore, reader } from "@/db/store";
import { keyFingerprintsInDir } from "@/server/audit/key-custody";
import { loadKeyFromDir } from "@/server/audit/keys";
import type { ProvJson } from "@/server/lineage/prov";
import { irisConfig } from "./test-app";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";

import { runCli, type CliExit as Exit, type EnvChanges } from "./cli-process";

vi.mock("server-only", () => ({}));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-cli-pg-export-"));
const sqliteDir = path.join(tmp, "sqlite-data");
const sqliteKeys = path.join(tmp, "sqlite-keys");
const pgKeys = path.join(tmp, "pg-keys");
const pgLocal = path.join(tmp, "pg-local");
const emptyKeys = path.join(tmp, "no-keys");
fs.mkdirSync(emptyKeys);

const cli = (args: string[], env: EnvChanges): Promise<Exit> => runCli(args, env, 120_000);

describePg("the auditor's exports on PostgreSQL (cli export, export-prov, audit checkpoint-export)", () => {
  let scratch: ScratchPgDatabase;
  const onSqlite = (args: string[]) => cli([...args, "--data-dir", sqliteDir], { RUNLEDGER_KEY_DIR: sqliteKeys, RUNLEDGER_BACKEND: "cpu" });
  const onPg = (args: string[], keyDir = pgKeys) =>
    cli(args, { DATABASE_URL: scratch.url, RUNLEDGER_DATA_DIR: pgLocal, RUNLEDGER_KEY_DIR: keyDir, RUNLEDGER_BACKEND: "cpu" });
  const both = (args: string[]) => Promise.all([onSqlite(args), onPg(args)]);

  async function pgLedger(): Promise<{ seq: number; action: string }[]> {
    const db = openPgDatabase(scratch.url, { max: 1 });
    try {
      const e = pgStore(db).tables.auditEvents;
      return await reader(pgStore(db)).select({ seq: e.seq, action: e.action }).from(e).orderBy(asc(e.seq));
    } finally {
      await db.$client.end();
    }
  }

  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    const configFile = path.join(tmp, "iris.json");
    fs.writeFileSync(configFile, JSON.stringify(irisConfig({ epochs: 2, seed: 7 })));
    for (const args of [
      ["seed", "--no-demo-run"],
      ["train", "--config", configFile, "--backend", "cpu", "--json"],
      ["register", "--run", "1", "--model", "iris-cli", "--json"],
    ]) {
      // seed and train refuse --data-dir on PostgreSQL, so only SQLite gets it
      for (const out of await both(args)) expect(out.code, `${args.join(" ")}: ${out.stderr}`).toBe(0);
    }
    expect(keyFingerprintsInDir(pgKeys), "seed on PostgreSQL made the installation's key").toHaveLength(1);
  }, 300_000);

  afterAll(async () => {
    await scratch?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("exports the report bundle of a version, which verifies offline; unknown model exit 2; refusals on PostgreSQL", async () => {
    const sqliteBundle = path.join(tmp, "sqlite-bundle");
    const pgBundle = path.join(tmp, "pg-bundle");
    const [s, p] = await Promise.all([
      onSqlite(["export", "--model", "iris-cli", "--version", "1", "--out", sqliteBundle]),
      onPg(["export", "--model", "iris-cli", "--version", "1", "--out", pgBundle]),
    ]);
    for (const [out, dir] of [
      [s, sqliteBundle],
      [p, pgBundle],
    ] as const) {
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toContain(`Wrote the auditor's report of iris-cli v1 (weights `);
      expect(out.stdout).toContain(`to ${dir} (directory, `);
      expect(out.stdout).toMatch(/recorded as ledger event #\d+; signed checkpoint #\d+/);
    }
    const [ledgerKey] = keyFingerprintsInDir(pgKeys);
    expect(p.stdout).toContain(`key ${ledgerKey}`);
    expect(fs.readFileSync(path.join(pgBundle, "public-key.pem"), "utf8").trim()).toBe(
      loadKeyFromDir(pgKeys, ledgerKey!)!.publicKeyPem.trim(),
    );
    const seqOf = (out: Exit) => Number(/ledger event #(\d+)/.exec(out.stdout)![1]);
    const ledger = await pgLedger();
    expect(ledger.slice(-2).map((e) => e.action)).toEqual(["audit.export", "audit.checkpoint"]);
    expect(ledger.at(-2)!.seq).toBe(seqOf(p));

    // `export --verify` is offline: no store, the same on both
    for (const dir of [sqliteBundle, pgBundle]) {
      const verified = await cli(["export", "--verify", dir], {});
      expect(verified.code, verified.stdout + verified.stderr).toBe(0);
      expect(verified.stdout).toContain(`Auditor's report bundle ${dir}: VERIFIED`);
    }

    const tar = path.join(tmp, "pg-report.tar");
    const tarred = await onPg(["export", "--model", "iris-cli", "--out", tar, "--json"]);
    expect(tarred.code, tarred.stderr).toBe(0);
    expect(JSON.parse(tarred.stdout)).toMatchObject({ model: "iris-cli", version: 1, kind: "tar", out: tar, witnessing: null });
    const tarVerified = await cli(["export", "--verify", tar], {});
    expect(tarVerified.code, tarVerified.stdout).toBe(0);
    expect(tarVerified.stdout).toContain("VERIFIED");

    const unknown = await both(["export", "--model", "nope", "--out", path.join(tmp, "never")]);
    for (const out of unknown) {
      expect(out.code).toBe(2);
      expect(out.stderr).toBe('export: model "nope" was not found\n');
    }
    const unknownVersion = await onPg(["export", "--model", "iris-cli", "--version", "9", "--out", path.join(tmp, "never")]);
    expect(unknownVersion.code).toBe(2);
    expect(unknownVersion.stderr).toMatch(/version 9 of model "iris-cli" was not found/);

    const before = (await pgLedger()).length;
    const keyless = await onPg(["export", "--model", "iris-cli", "--out", path.join(tmp, "keyless")], emptyKeys);
    expect(keyless.code).toBe(1);
    expect(keyless.stderr).toMatch(
      /^export: the report's checkpoint is signed with the installation's audit key, but the ledger is signed by SHA256:/,
    );
    expect(keyless.stderr).toContain(`the key directory ${emptyKeys} has no ed25519-`);
    expect(fs.readdirSync(emptyKeys), "the command created no key").toEqual([]);
    expect(fs.existsSync(path.join(tmp, "keyless"))).toBe(false);
    const refused = await onPg(["export", "--model", "iris-cli", "--out", path.join(tmp, "refused"), "--data-dir", sqliteDir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^export: --data-dir names a SQLite data directory, but DATABASE_URL names PostgreSQL/);
    expect((await pgLedger()).length, "the refusals recorded nothing").toBe(before);
  }, 600_000);

  it("export-prov prints the version's lineage as PROV-JSON on both stores and records it", async () => {
    const [s, p] = await both(["export-prov", "--model", "iris-cli", "--version", "1"]);
    expect(s.code, s.stderr).toBe(0);
    expect(p.code, p.stderr).toBe(0);
    const [fromSqlite, fromPg] = [JSON.parse(s.stdout) as ProvJson, JSON.parse(p.stdout) as ProvJson];
    const types = (doc: ProvJson, part: "entity" | "activity") =>
      Object.entries(doc[part]).map(([id, v]) => `${id} ${(v["prov:type"] as { $: string }).$}`);
    expect(types(fromPg, "activity")).toContain("rl:run-1 runledger:TrainingRun");
    expect(types(fromPg, "entity")).toEqual(expect.arrayContaining(["rl:modelVersion-1 runledger:ModelVersion"]));
    expect(types(fromPg, "entity").some((t) => t.endsWith(" runledger:Checkpoint"))).toBe(true);
    expect(types(fromPg, "entity")).toEqual(types(fromSqlite, "entity"));
    expect(types(fromPg, "activity")).toEqual(types(fromSqlite, "activity"));
    expect((await pgLedger()).map((e) => e.action)).toContain("lineage.export");

    const missing = await both(["export-prov", "--model", "iris-cli", "--version", "7"]);
    for (const out of missing) {
      expect(out.code).toBe(2);
      expect(out.stderr).toBe('export-prov: version 7 of model "iris-cli" was not found\n');
    }
  }, 300_000);

  it("checkpoint-export writes a checkpoint that audit verify --database accepts as trusted; --new needs the key", async () => {
    // SQLite, unchanged: the latest checkpoint, accepted by audit verify --data-dir
    const sqliteCp = path.join(tmp, "sqlite-cp.json");
    const s = await onSqlite(["audit", "checkpoint-export", "--out", sqliteCp]);
    expect(s.code, s.stderr).toBe(0);
    const sqliteVerified = await cli(["audit", "verify", "--data-dir", sqliteDir, "--trusted-checkpoint", sqliteCp], {});
    expect(sqliteVerified.code, sqliteVerified.stdout).toBe(0);

    const latestCp = path.join(tmp, "pg-cp.json");
    const p = await onPg(["audit", "checkpoint-export", "--out", latestCp, "--json"]);
    expect(p.code, p.stderr).toBe(0);
    const exported = JSON.parse(fs.readFileSync(latestCp, "utf8")) as {
      checkpointId: number;
      publicKeyPem?: string;
      treeHead: { keyFingerprint: string };
    };
    expect(JSON.parse(p.stdout)).toMatchObject({ out: latestCp, ...exported });
    const [ledgerKey] = keyFingerprintsInDir(pgKeys);
    expect(exported.treeHead.keyFingerprint).toBe(ledgerKey);
    expect(exported.publicKeyPem).toBe(loadKeyFromDir(pgKeys, ledgerKey!)!.publicKeyPem);
    const verifyTrusting = (file: string) => cli(["audit", "verify", "--database", scratch.url, "--trusted-checkpoint", file], {});
    const verified = await verifyTrusting(latestCp);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/trusted checkpoint: +matched/);

    const before = (await pgLedger()).length;
    const refused = await onPg(["audit", "checkpoint-export", "--out", path.join(tmp, "never.json"), "--new"], emptyKeys);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^error: --new signs a checkpoint with the installation's audit key, but the ledger is signed by SHA256:/,
    );
    expect(refused.stderr).toContain("or drop --new to export the latest signed checkpoint");
    expect(fs.existsSync(path.join(tmp, "never.json"))).toBe(false);
    expect(fs.readdirSync(emptyKeys), "the command created no key").toEqual([]);
    expect((await pgLedger()).length).toBe(before);

    const freshCp = path.join(tmp, "pg-cp-new.json");
    const fresh = await onPg(["audit", "checkpoint-export", "--out", freshCp, "--new"]);
    expect(fresh.code, fresh.stderr).toBe(0);
    const ledger = await pgLedger();
    expect(ledger.at(-1)!.action).toBe("audit.checkpoint");
    const freshTree = JSON.parse(fs.readFileSync(freshCp, "utf8")) as {
      reason: string;
      checkpointId: number;
      treeHead: { treeSize: number };
    };
    expect(freshTree).toMatchObject({ reason: "checkpoint export", treeHead: { treeSize: ledger.length - 1 } });
    expect(freshTree.checkpointId).toBeGreaterThan(exported.checkpointId);
    expect(fresh.stdout).toContain(`Wrote checkpoint #${freshTree.checkpointId} (tree size ${ledger.length - 1}`);
    const freshVerified = await verifyTrusting(freshCp);
    expect(freshVerified.code, freshVerified.stdout + freshVerified.stderr).toBe(0);

    // Without the key and without --new: the latest checkpoint, without a public key, and a note saying so
    const keylessCp = path.join(tmp, "pg-cp-keyless.json");
    const keyless = await onPg(["audit", "checkpoint-export", "--out", keylessCp], emptyKeys);
    expect(keyless.code, keyless.stderr).toBe(0);
    expect(keyless.stderr).toMatch(/^note: the key directory .* does not hold the key SHA256:\S+ that signed this checkpoint/);
    expect(JSON.parse(fs.readFileSync(keylessCp, "utf8"))).not.toHaveProperty("publicKeyPem");

    const dataDirRefused = await onPg(["audit", "checkpoint-export", "--out", keylessCp, "--data-dir", sqliteDir]);
    expect(dataDirRefused.code).toBe(2);
    expect(dataDirRefused.stderr).toMatch(/^audit checkpoint-export: --data-dir names a SQLite data directory/);
  }, 300_000);
});
