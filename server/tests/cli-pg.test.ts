/**
 * The operator's administration commands on PostgreSQL (issue 16): `users list|create|set-role|disable|enable|
 * reset-password` and `token create|list|revoke`, as real processes (`node --import tsx server/cli/main.ts`), once in
 * a new SQLite data directory and once with DATABASE_URL naming a new scratch database.
 *
 * Checked:
 * - The same script of commands prints the same text and JSON on both stores, once the temporary passwords, token
 *   texts and times are blanked (ids included: both stores start empty), and writes the same ledger actions in order.
 *   The first command creates the first administrator of the new installation.
 * - Refusals on both: the last enabled administrator cannot be disabled (exit 1), an unknown email (exit 1), a missing
 *   --role (exit 2 with the usage).
 * - On PostgreSQL --data-dir is refused with exit 2 (users and token) and nothing is written.
 * - On PostgreSQL the command never creates a signing key: with an empty key directory it signs nothing and says so;
 *   with the installation's key in its key directory it signs the due checkpoint under it.
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { asc } from "drizzle-orm";
import { openDatabase } from "@/db/client";
import { openPgDatabase } from "@/db/pg-client";
import { pgStore, reader, sqliteStore, type Store } from "@/db/store";
import { createKeyInDir } from "@/server/audit/keys";
import { irisConfig } from "./test-app";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";

import { runCli, type CliExit as Exit, type EnvChanges } from "./cli-process";

vi.mock("server-only", () => ({}));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-cli-pg-"));
const sqliteDir = path.join(tmp, "sqlite-data");
const sqliteKeys = path.join(tmp, "sqlite-keys");
const pgLocal = path.join(tmp, "pg-local");
const pgNoKeys = path.join(tmp, "pg-no-keys");
fs.mkdirSync(pgNoKeys);

const cli = (args: string[], env: EnvChanges): Promise<Exit> => runCli(args, env, 60_000);

/** Temporary passwords, token texts and times blanked: what may differ between two installations. */
function blanked(text: string): string {
  return text
    .replace(/"temporaryPassword":"[^"]*"/g, '"temporaryPassword":"<password>"')
    .replace(/(temporary password[^:]*: )\S+/g, "$1<password>")
    .replace(/rlt_[A-Za-z0-9_-]+/g, "<token>")
    .replace(/"prefix":"[^"]*"/g, '"prefix":"<prefix>"')
    .replace(/^(\s*\d+ {2}.{24} )\S+…/gm, "$1<prefix>…")
    .replace(/\d{4}-\d\d-\d\d[T ][\d:.]+(Z|[+-]\d\d(:?\d\d)?)?/g, "<time>");
}

/** The script both stores run: [args, expected exit code]. */
const SCRIPT: [string[], number][] = [
  [["users", "create", "--email", "ops@example.org", "--name", "Olu Ops", "--role", "admin", "--json"], 0],
  [["users", "create", "--email", "Eng@Example.org", "--name", "Eng Two", "--role", "engineer"], 0],
  [["users", "disable", "--email", "eng@example.org"], 0],
  [["users", "enable", "--email", "eng@example.org", "--json"], 0],
  [["users", "set-role", "--email", "eng@example.org", "--role", "reviewer"], 0],
  [["users", "reset-password", "--email", "eng@example.org"], 0],
  [["users", "reset-password", "--email", "eng@example.org", "--json"], 0],
  [["users", "disable", "--email", "ops@example.org"], 1],
  [["users", "set-role", "--email", "nobody@example.org", "--role", "admin"], 2],
  [["users", "create", "--email", "x@example.org", "--name", "X"], 2],
  [["users", "frobnicate"], 2],
  [["users", "list"], 0],
  [["users", "list", "--json"], 0],
  [["token", "create", "--user", "eng@example.org", "--name", "ci"], 0],
  [["token", "create", "--user", "eng@example.org", "--json"], 0],
  [["token", "create", "--user", "nobody@example.org"], 2],
  [["token", "revoke", "--user", "eng@example.org", "--id", "1"], 0],
  [["token", "revoke", "--user", "eng@example.org", "--id", "one"], 2],
  [["token", "list", "--user", "eng@example.org"], 0],
  [["token", "list", "--user", "eng@example.org", "--json"], 0],
];

async function ledgerActions(store: Store): Promise<string[]> {
  const e = store.tables.auditEvents;
  const rows = await reader(store).select({ action: e.action }).from(e).orderBy(asc(e.seq));
  return rows.map((r) => r.action);
}

describePg("the administration commands on PostgreSQL (cli users, token)", () => {
  let scratch: ScratchPgDatabase;
  const pgEnv = (keyDir: string): EnvChanges => ({ DATABASE_URL: scratch.url, RUNLEDGER_DATA_DIR: pgLocal, RUNLEDGER_KEY_DIR: keyDir });

  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
  });
  afterAll(async () => {
    await scratch?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("prints the same on both stores and writes the same ledger actions; signs nothing without a key", async () => {
    const transcripts: { sqlite: string[]; pg: string[] } = { sqlite: [], pg: [] };
    for (const [args, expected] of SCRIPT) {
      const [onSqlite, onPg] = await Promise.all([
        cli([...args, "--data-dir", sqliteDir], { RUNLEDGER_KEY_DIR: sqliteKeys }),
        cli(args, pgEnv(pgNoKeys)),
      ]);
      expect(onSqlite.code, `${args.join(" ")} on SQLite: ${onSqlite.stderr}`).toBe(expected);
      expect(onPg.code, `${args.join(" ")} on PostgreSQL: ${onPg.stderr}`).toBe(expected);
      // stderr: the refusal's message (same on both); on PostgreSQL also the note that no checkpoint was signed
      const pgErrors = onPg.stderr.replace(
        /^note: no audit checkpoint signed after this change \(the key directory .* holds no signing key\).*\n/m,
        "",
      );
      if (expected === 0 && args[1] !== "list") expect(onPg.stderr).toMatch(/note: no audit checkpoint signed/);
      transcripts.sqlite.push(`$ ${args.join(" ")} -> ${onSqlite.code}\n${blanked(onSqlite.stdout)}${onSqlite.stderr}`);
      transcripts.pg.push(`$ ${args.join(" ")} -> ${onPg.code}\n${blanked(onPg.stdout)}${pgErrors}`);
    }
    expect(transcripts.pg.join("\n")).toEqual(transcripts.sqlite.join("\n"));
    const all = transcripts.pg.join("\n");
    expect(all).toMatch(/created user 1 ops@example.org|"id":1,"email":"ops@example.org","name":"Olu Ops","role":"admin"/);
    expect(all).toMatch(/last enabled administrator/);
    expect(all).toMatch(/no user with email nobody@example.org/);
    expect(all).toMatch(/revoked token 1 of eng@example.org/);
    expect(fs.readdirSync(pgNoKeys), "the command created no key").toEqual([]);

    const sqliteDb = openDatabase(sqliteDir);
    const pgDb = openPgDatabase(scratch.url, { max: 1 });
    try {
      const onSqlite = (await ledgerActions(sqliteStore(sqliteDb))).filter((a) => a !== "audit.checkpoint");
      const onPg = await ledgerActions(pgStore(pgDb));
      expect(onPg).toEqual(onSqlite);
      expect(onPg).toContain("user.create");
    } finally {
      sqliteDb.$client.close();
      await pgDb.$client.end();
    }
  }, 600_000);

  it("refuses --data-dir on PostgreSQL with exit 2 and writes nothing", async () => {
    for (const args of [
      ["users", "create", "--email", "late@example.org", "--name", "Late", "--role", "engineer", "--data-dir", sqliteDir],
      ["token", "list", "--user", "eng@example.org", "--data-dir", sqliteDir],
    ]) {
      const out = await cli(args, pgEnv(pgNoKeys));
      expect(out.code).toBe(2);
      expect(out.stderr).toMatch(new RegExp(`^${args[0]}: --data-dir names a SQLite data directory, but DATABASE_URL names PostgreSQL`));
      expect(out.stdout).toBe("");
    }
    const list = await cli(["users", "list", "--json"], pgEnv(pgNoKeys));
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { users: { email: string }[] }).users.map((u) => u.email)).not.toContain("late@example.org");
  }, 120_000);

  it("show and register print the same on both stores for the same trained run", async () => {
    // A second pair of installations with the demo users and project (train needs them), seeded by `seed --no-demo-run`.
    const demo = await createScratchPgDatabase();
    const demoDir = path.join(tmp, "sqlite-demo");
    const demoSqliteKeys = path.join(tmp, "sqlite-demo-keys");
    const demoPgKeys = path.join(tmp, "pg-demo-keys");
    const onSqliteEnv: EnvChanges = { RUNLEDGER_KEY_DIR: demoSqliteKeys, RUNLEDGER_BACKEND: "cpu" };
    const onPgEnv: EnvChanges = {
      DATABASE_URL: demo.url,
      RUNLEDGER_DATA_DIR: pgLocal,
      RUNLEDGER_KEY_DIR: demoPgKeys,
      RUNLEDGER_BACKEND: "cpu",
    };
    try {
      const seeded = await Promise.all([
        cli(["seed", "--no-demo-run", "--data-dir", demoDir], onSqliteEnv),
        cli(["seed", "--no-demo-run"], onPgEnv),
      ]);
      for (const out of seeded) expect(out.code, out.stderr).toBe(0);
      const configFile = path.join(tmp, "iris.json");
      fs.writeFileSync(configFile, JSON.stringify(irisConfig({ epochs: 2, seed: 7 })));
      const steps: [string[], number][] = [
        [["train", "--config", configFile, "--backend", "cpu", "--json"], 0],
        [["show", "--run", "1", "--json"], 0],
        [["show", "--run", "1"], 0],
        [["show", "--run", "99"], 2],
        [["register", "--run", "1", "--model", "iris-cli", "--json"], 0],
        [["register", "--run", "1", "--model", "iris-cli", "--checkpoint", "1"], 0],
        [["register", "--run", "1", "--model", "iris-cli", "--user", "nobody@example.org"], 2],
        [["register", "--run", "1", "--model", "iris-cli", "--checkpoint", "last"], 2],
      ];
      const transcripts: { sqlite: string[]; pg: string[] } = { sqlite: [], pg: [] };
      for (const [args, expected] of steps) {
        // --data-dir after the command name (train refuses it on PostgreSQL, so only SQLite gets it)
        const [onSqlite, onPg] = await Promise.all([cli([...args, "--data-dir", demoDir], onSqliteEnv), cli(args, onPgEnv)]);
        expect(onSqlite.code, `${args.join(" ")} on SQLite: ${onSqlite.stderr}`).toBe(expected);
        expect(onPg.code, `${args.join(" ")} on PostgreSQL: ${onPg.stderr}`).toBe(expected);
        const errors = (e: string) => e.split("\n").filter((l) => /^(show|register|error):/.test(l));
        transcripts.sqlite.push(
          `$ ${args.join(" ")} -> ${onSqlite.code}\n${blanked(onSqlite.stdout)}${errors(onSqlite.stderr).join("\n")}`,
        );
        transcripts.pg.push(`$ ${args.join(" ")} -> ${onPg.code}\n${blanked(onPg.stdout)}${errors(onPg.stderr).join("\n")}`);
      }
      expect(transcripts.pg.join("\n")).toEqual(transcripts.sqlite.join("\n"));
      const all = transcripts.pg.join("\n");
      expect(all).toMatch(/"model":"iris-cli","version":1,"weightsSha256":"[0-9a-f]{64}"/);
      expect(all).toMatch(/registered iris-cli version 2 from run 1 \(epoch 1\)/);
      expect(all).toMatch(/run 1: completed, epoch 2, weights [0-9a-f]{64}/);

      const refused = await cli(["show", "--run", "1", "--data-dir", sqliteDir], pgEnv(pgNoKeys));
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/^show: --data-dir names a SQLite data directory, but DATABASE_URL names PostgreSQL/);
      const refusedRegister = await cli(["register", "--run", "1", "--model", "x", "--data-dir", sqliteDir], pgEnv(pgNoKeys));
      expect(refusedRegister.code).toBe(2);
      expect(refusedRegister.stderr).toMatch(/^register: --data-dir names a SQLite data directory/);
    } finally {
      await demo.drop();
    }
  }, 600_000);

  it("signs the due checkpoint on PostgreSQL when its key directory holds a key", async () => {
    // Nothing is signed yet in this ledger (the script ran without a key), so the first checkpoint is due at once.
    const keyDir = path.join(tmp, "pg-keys");
    const keys = createKeyInDir(keyDir);
    const out = await cli(["users", "create", "--email", "keyed@example.org", "--name", "Keyed", "--role", "engineer"], pgEnv(keyDir));
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toBe("");
    const pgDb = openPgDatabase(scratch.url, { max: 1 });
    try {
      const store = pgStore(pgDb);
      const c = store.tables.auditCheckpoints;
      const signed = await reader(store).select({ fp: c.keyFingerprint, treeSize: c.treeSize }).from(c);
      const actions = await ledgerActions(store);
      expect(signed).toEqual([{ fp: keys.fingerprint, treeSize: actions.length - 1 }]);
      expect(actions.at(-1)).toBe("audit.checkpoint");
    } finally {
      await pgDb.$client.end();
    }
  }, 120_000);
});
