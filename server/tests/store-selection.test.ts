/**
 * DATABASE_URL=postgres://… asks for the PostgreSQL store (issue 16). The web server (getAppServices →
 * createPgAppServices), `npm run worker` and every CLI command that reads or changes the record run on it (`audit
 * verify` and `backup` included: cli-pg-default-store.test.ts); what works on a SQLite data directory only (`audit
 * move-key`; the SQLite services of createAppServices) refuses to start with a message saying so, instead of quietly
 * working on a SQLite file; it creates nothing in the data directory and never prints the URL (it may hold a
 * password). Another tool's DATABASE_URL (not PostgreSQL) changes nothing. Those that run on PostgreSQL are not
 * refused: given an unreachable database they fail opening it, naming host, port and database but not the password,
 * with nothing created in the data directory; given a SQLite data directory (or key directory, for those that hold no
 * key) they refuse it with exit 2.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { resolveDataDir } from "@/db/client";
import { createAppServices } from "@/server/app-context/app-services";

const PG_URL = "postgres://runledger:s3cret-password@db.internal:5432/runledger";
/** Nothing listens on port 1: connecting fails at once. */
const UNREACHABLE_PG_URL = "postgres://runledger:s3cret-password@127.0.0.1:1/runledger";

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "runledger-store-selection-"));
}

describe("store selection by DATABASE_URL", () => {
  it("refuses a PostgreSQL URL with a message that says why and what to do, without the URL", () => {
    for (const url of [PG_URL, "postgresql://u@h/db", " POSTGRES://u@h/db "]) {
      let message = "";
      try {
        resolveDataDir("/tmp/x", { DATABASE_URL: url });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/DATABASE_URL names a PostgreSQL database/);
      expect(message).toMatch(/Unset DATABASE_URL/);
      expect(message).toMatch(/--database URL/);
      expect(message).toMatch(/migrate-store/);
      expect(message).not.toContain("s3cret");
    }
  });

  it("leaves an unset, empty or non-PostgreSQL DATABASE_URL alone", () => {
    for (const env of [{}, { DATABASE_URL: "" }, { DATABASE_URL: "mysql://u@h/db" }, { DATABASE_URL: "file:./dev.db" }]) {
      expect(resolveDataDir("/tmp/x", env)).toBe("/tmp/x");
    }
    expect(resolveDataDir(undefined, { RUNLEDGER_DATA_DIR: "/tmp/y" })).toBe("/tmp/y");
  });

  it("the SQLite services (createAppServices) refuse to open, and create no database", () => {
    const dataDir = tmpDir();
    const before = process.env.DATABASE_URL;
    process.env.DATABASE_URL = PG_URL;
    try {
      expect(() => createAppServices(dataDir, { keyDir: tmpDir() })).toThrow(/DATABASE_URL names a PostgreSQL database/);
      expect(fs.readdirSync(dataDir)).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = before;
    }
  });

  it.each([["`audit move-key`", ["server/cli/main.ts", "audit", "move-key", "--data-dir"]]])(
    "%s exits 1 with the message and leaves the data directory empty",
    (_name, args) => {
      const dataDir = tmpDir();
      const out = spawnSync(process.execPath, ["--import", "tsx", ...args, dataDir], {
        cwd: process.cwd(),
        env: { ...process.env, DATABASE_URL: PG_URL, RUNLEDGER_KEY_DIR: tmpDir() },
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(out.status, out.stderr).toBe(1);
      expect(out.stderr).toMatch(/DATABASE_URL names a PostgreSQL database/);
      expect(out.stderr).toMatch(/this command works on a SQLite data directory only/);
      expect(out.stderr + out.stdout).not.toContain("s3cret");
      expect(fs.readdirSync(dataDir)).toEqual([]);
    },
  );

  it.each([
    ["`cli train`", ["server/cli/main.ts", "train", "--config", "examples/iris-mlp.json", "--json"]],
    ["a training worker", ["server/worker/main.ts"]],
    ["`cli seed`", ["server/cli/main.ts", "seed"]],
  ])("%s is not refused: it runs on PostgreSQL, and an unreachable database fails it without the password", (_name, args) => {
    const dataDir = tmpDir();
    const out = spawnSync(process.execPath, ["--import", "tsx", ...args], {
      cwd: process.cwd(),
      env: { ...process.env, DATABASE_URL: UNREACHABLE_PG_URL, RUNLEDGER_DATA_DIR: dataDir, RUNLEDGER_KEY_DIR: tmpDir() },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(out.status, out.stderr).toBe(1);
    expect(out.stderr).not.toMatch(/DATABASE_URL names a PostgreSQL database/);
    expect(out.stderr).toContain("cannot open the PostgreSQL store 127.0.0.1:1/runledger");
    expect(out.stderr + out.stdout).not.toContain("s3cret");
    expect(fs.readdirSync(dataDir)).toEqual([]);
  });

  it.each([
    [
      "`cli train`",
      ["server/cli/main.ts", "train", "--config", "examples/iris-mlp.json"],
      "train: DATABASE_URL selects the PostgreSQL store; --data-dir and --key-dir name a SQLite installation",
    ],
    [
      "`cli compress`",
      ["server/cli/main.ts", "compress", "--run", "1", "--method", "int8"],
      "compress: DATABASE_URL selects the PostgreSQL store; --data-dir and --key-dir name a SQLite installation",
    ],
    [
      "`cli rerun`",
      ["server/cli/main.ts", "rerun", "--run", "1"],
      "rerun: DATABASE_URL selects the PostgreSQL store; --data-dir and --key-dir name a SQLite installation",
    ],
    [
      "a training worker",
      ["server/worker/main.ts"],
      "worker: --data-dir and --key-dir name a SQLite installation; with DATABASE_URL=postgres://… leave them out",
    ],
  ])("%s with DATABASE_URL refuses --data-dir and --key-dir (a SQLite installation and its key), exit 2", (_name, args, message) => {
    for (const flag of ["--data-dir", "--key-dir"]) {
      const dir = tmpDir();
      const out = spawnSync(process.execPath, ["--import", "tsx", ...args, flag, dir], {
        cwd: process.cwd(),
        env: { ...process.env, DATABASE_URL: UNREACHABLE_PG_URL },
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(out.status, out.stderr).toBe(2);
      expect(out.stderr).toContain(message);
      expect(out.stderr + out.stdout).not.toContain("s3cret");
      expect(fs.readdirSync(dir)).toEqual([]);
    }
  });

  it.each([
    ["seed", ["seed"]],
    ["show", ["show", "--run", "1"]],
    ["export", ["export", "--model", "m", "--version", "1", "--out", path.join(os.tmpdir(), "never-written")]],
    ["audit checkpoint-export", ["audit", "checkpoint-export", "--out", path.join(os.tmpdir(), "never-written.json")]],
    ["audit verify", ["audit", "verify", "--public-key", "examples/iris-mlp.json"]],
    ["backup", ["backup", "--out", path.join(os.tmpdir(), "never-written.tar")]],
  ])("`cli %s` with DATABASE_URL refuses --data-dir (the record is in PostgreSQL), exit 2", (command, args) => {
    const dir = tmpDir();
    const out = spawnSync(process.execPath, ["--import", "tsx", "server/cli/main.ts", ...args, "--data-dir", dir], {
      cwd: process.cwd(),
      env: { ...process.env, DATABASE_URL: UNREACHABLE_PG_URL },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(out.status, out.stderr).toBe(2);
    expect(out.stderr).toContain(`${command}: --data-dir names a SQLite data directory, but DATABASE_URL names PostgreSQL`);
    expect(out.stderr + out.stdout).not.toContain("s3cret");
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
