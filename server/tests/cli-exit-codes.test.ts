/**
 * One exit code for "not found" across the command line (server/cli/exit-codes.ts, main.ts's usage text): an unknown
 * run, user, model, version or token is bad input, exit 2, with "<command>: <what was not found>" on stderr, nothing on
 * stdout and nothing recorded. Checked as real processes on a SQLite data directory and, with DATABASE_URL, on a
 * scratch PostgreSQL database, both made with `seed` (users, project and the trained demo run 1, completed) and a run
 * queued by `train --enqueue --wait-timeout` with no worker (run 2, it stays queued): show, resume, rerun, pilot (an
 * intervention and a rollback), register, compress, export, export-prov, users and token. Before, rerun and register
 * of an unknown run and users/token with an unknown email exited 1 ("error: …" for the first two).
 *
 * And one for a run in the wrong state, a rule of the record: exit 1 with "<command>: run N is <status>; <action>
 * needs …" (resume, pilot --pause/--resume/--stop/--set/--rollback, rerun, register, compress of a completed or a
 * queued run), nothing recorded, the run unchanged; a service's own refusal of the state of the record (a second
 * pending pause) is exit 1 too, said as "<command>: …", not "error: …". Before, resume, pilot and rerun of such a
 * run exited 2 and register and compress 2 with the service's words.
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

/** After seeding and queueing: the demo run completed, the queued run waiting for a worker. */
const STATES: [number, string][] = [
  [1, "completed"],
  [2, "queued"],
];

/** [command line, what stderr says after "<command>: "], each on run 1 (completed) or run 2 (queued). */
const WRONG_STATE: [string[], RegExp][] = [
  [["resume", "--run", "1"], /run 1 is completed; resume needs a run that is interrupted, paused or queued/],
  [["pilot", "--run", "1", "--pause", "--rationale", "x"], /run 1 is completed; pause needs a run that is queued or running/],
  [["pilot", "--run", "2", "--resume", "--rationale", "x"], /run 2 is queued; resume needs a run that is paused/],
  [["pilot", "--run", "1", "--stop", "--rationale", "x"], /run 1 is completed; stop needs a run that is queued, running or paused/],
  [
    ["pilot", "--run", "1", "--set", "training.epochs=9", "--rationale", "x"],
    /run 1 is completed; set needs a run that is queued, running or paused/,
  ],
  [
    ["pilot", "--run", "2", "--rollback", "1", "--rationale", "x"],
    /run 2 is queued; rollback needs a run that is running, paused or completed/,
  ],
  [["rerun", "--run", "2"], /run 2 is queued; rerun needs a run that is completed, failed or cancelled/],
  [["register", "--run", "2", "--model", "m"], /run 2 is queued; register needs a run that is completed/],
  [["compress", "--run", "2", "--method", "int8"], /run 2 is queued; compressing its best checkpoint needs a run that has written it/],
  [
    ["compress", "--run", "2", "--checkpoint", "3", "--method", "int8"],
    /run 2 is queued; compressing its checkpoint of epoch 3 needs a run that has written it/,
  ],
];

async function ledgerSize(store: Store): Promise<number> {
  const e = store.tables.auditEvents;
  const [row] = await reader(store).select({ n: count() }).from(e);
  return row!.n;
}

describePg("an unknown id exits 2 on both stores", () => {
  let scratch: ScratchPgDatabase;
  const sqliteEnv = { RUNLEDGER_KEY_DIR: path.join(tmp, "sqlite-keys") };
  const onSqlite = (args: string[]) => runCli([...args, "--data-dir", sqliteDir], sqliteEnv, 120_000);
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

  /** Both stores' runs, [id, status] by id. */
  async function statuses(): Promise<[[number, string][], [number, string][]]> {
    const sqlite = openDatabase(sqliteDir);
    const pgDb = openPgDatabase(scratch.url, { max: 1 });
    const of = async (store: Store) => {
      const r = store.tables.runs;
      const all = await reader(store).select({ id: r.id, status: r.status }).from(r).orderBy(r.id);
      return all.map((x): [number, string] => [x.id, x.status]);
    };
    try {
      return [await of(sqliteStore(sqlite)), await of(pgStore(pgDb))];
    } finally {
      sqlite.$client.close();
      await pgDb.$client.end();
    }
  }

  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    for (const out of await Promise.all([onSqlite(["seed"]), onPg(["seed"])])) expect(out.code, out.stderr).toBe(0);
    const queue = ["train", "--config", "examples/iris-mlp.json", "--enqueue", "--wait-timeout", "0.5"];
    const [s, p] = await Promise.all([runCli([...queue, "--data-dir", sqliteDir], sqliteEnv, 120_000), onPg(queue)]);
    for (const out of [s, p]) expect(out.code, out.stderr).toBe(3);
    expect(await statuses()).toEqual([STATES, STATES]);
  }, 300_000);

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

  it("resume, pilot, rerun, register and compress of a run in the wrong state: exit 1, '<command>: run N is …', nothing recorded", async () => {
    const before = await ledgers();
    const seen = new Set<string>();
    for (const [args, message] of WRONG_STATE) {
      const [s, p] = await Promise.all([onSqlite(args), onPg(args)]);
      for (const [store, out] of [
        ["SQLite", s],
        ["PostgreSQL", p],
      ] as [string, CliExit][]) {
        const what = `${args.join(" ")} on ${store}: ${out.stderr}`;
        expect(out.code, what).toBe(1);
        expect(out.stderr, what).toMatch(new RegExp(`^${args[0]}: ${message.source}$`, "m"));
        expect(out.stderr, what).not.toMatch(/^error: /m);
        expect(out.stdout, what).toBe("");
      }
      seen.add(args.slice(0, 4).join(" "));
    }
    expect(seen.size).toBe(WRONG_STATE.length);
    expect(await ledgers()).toEqual(before);
    expect(await statuses()).toEqual([STATES, STATES]);
  }, 600_000);

  it("a service's refusal by the state of the record (a second pending pause) exits 1 as '<command>: …', recording nothing more", async () => {
    const pause = ["pilot", "--run", "2", "--pause", "--rationale", "hold it"];
    for (const out of await Promise.all([onSqlite(pause), onPg(pause)])) expect(out.code, out.stderr).toBe(0);
    const before = await ledgers();
    for (const out of await Promise.all([onSqlite(pause), onPg(pause)])) {
      expect(out.code, out.stderr).toBe(1);
      expect(out.stderr).toMatch(/^pilot: run 2 already has a pending pause \(intervention \d+\)$/m);
      expect(out.stderr).not.toMatch(/^error: /m);
      expect(out.stdout).toBe("");
    }
    expect(await ledgers()).toEqual(before);
  }, 300_000);
});
