/**
 * One exit code for "not found" across the command line (server/cli/exit-codes.ts, main.ts's usage text): an unknown
 * run, user, model, version or token is bad input, exit 2, with "<command>: <what was not found>" on stderr, nothing on
 * stdout and nothing recorded. Checked as real processes on a SQLite data directory and, with DATABASE_URL, on a
 * scratch PostgreSQL database, both made with `seed --no-demo-run` (users and project, no run): show, resume, rerun,
 * pilot (an intervention and a rollback), register, compress, export, export-prov, users and token. Before, rerun and
 * register of an unknown run and users/token with an unknown email exited 1 ("error: …" for the first two).
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { count } from "drizzle-orm";
import { openDatabase } from "@/db/client";
import { openPgDatabase } from "@/db/pg-client";
import { pgStore, reader, sqliteStore, type Store } from "@/db/store";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";
import { runCli, type CliExit, type EnvChanges } from "./cli-process";

vi.mock("server-only", () => ({}));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-cli-exit-codes-"));
const sqliteDir = path.join(tmp, "sqlite-data");
const never = path.join(tmp, "never-written");

/** [command line, what stderr says after "<command>: "] */
const UNKNOWN: [string[], RegExp][] = [
  [["show", "--run", "999"], /run 999 was not found/],
  [["resume", "--run", "999"], /run 999 does not exist/],
  [["rerun", "--run", "999"], /run 999 was not found/],
  [["pilot", "--run", "999", "--pause", "--rationale", "x"], /run 999 does not exist/],
  [["pilot", "--run", "999", "--rollback", "1", "--rationale", "x"], /run 999 does not exist/],
  [["register", "--run", "999", "--model", "m"], /run 999 was not found/],
  [["compress", "--run", "999", "--method", "int8"], /run 999 was not found/],
  [["export", "--model", "nope", "--out", never], /model "nope" was not found/],
  [["export-prov", "--model", "nope", "--version", "1"], /model "nope" was not found/],
  [["users", "set-role", "--email", "nobody@example.org", "--role", "admin"], /no user with email nobody@example.org/],
  [["token", "create", "--user", "nobody@example.org"], /no user with email nobody@example.org/],
  [["rerun", "--run", "1", "--user", "nobody@example.org"], /no user with email nobody@example.org/],
];

async function ledgerSize(store: Store): Promise<number> {
  const e = store.tables.auditEvents;
  const [row] = await reader(store).select({ n: count() }).from(e);
  return row!.n;
}

describePg("an unknown id exits 2 on both stores", () => {
  let scratch: ScratchPgDatabase;
  const onSqlite = (args: string[]) =>
    runCli([...args, "--data-dir", sqliteDir], { RUNLEDGER_KEY_DIR: path.join(tmp, "sqlite-keys") }, 120_000);
  const pgEnv = (): EnvChanges => ({
    DATABASE_URL: scratch.url,
    RUNLEDGER_DATA_DIR: path.join(tmp, "pg-local"),
    RUNLEDGER_KEY_DIR: path.join(tmp, "pg-keys"),
  });
  const onPg = (args: string[]) => runCli(args, pgEnv(), 120_000);

  async function ledgers(): Promise<[number, number]> {
    const sqlite = openDatabase(sqliteDir);
    const pgDb = openPgDatabase(scratch.url, { max: 1 });
    try {
      return [await ledgerSize(sqliteStore(sqlite)), await ledgerSize(pgStore(pgDb))];
    } finally {
      sqlite.$client.close();
      await pgDb.$client.end();
    }
  }

  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    for (const out of await Promise.all([onSqlite(["seed", "--no-demo-run"]), onPg(["seed", "--no-demo-run"])]))
      expect(out.code, out.stderr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await scratch?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("show, resume, rerun, pilot, register, compress, export, export-prov, users and token: exit 2, nothing recorded", async () => {
    const before = await ledgers();
    const seen: string[] = [];
    for (const [args, message] of UNKNOWN) {
      const [s, p] = await Promise.all([onSqlite(args), onPg(args)]);
      for (const [store, out] of [
        ["SQLite", s],
        ["PostgreSQL", p],
      ] as [string, CliExit][]) {
        const what = `${args.join(" ")} on ${store}: ${out.stderr}`;
        expect(out.code, what).toBe(2);
        expect(out.stderr, what).toMatch(new RegExp(`^${args[0]}: ${message.source}`, "m"));
        expect(out.stderr, what).not.toMatch(/^error: /m);
        expect(out.stdout, what).toBe("");
      }
      seen.push(args[0]!);
    }
    expect(new Set(seen).size).toBe(10);
    expect(await ledgers()).toEqual(before);
    expect(fs.existsSync(never)).toBe(false);
  }, 600_000);
});
