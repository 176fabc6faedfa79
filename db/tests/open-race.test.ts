/**
 * Several processes opening one brand-new data directory at the same moment (issue 16's deployment: web servers,
 * training workers and the CLI on one data dir, all started together) all get a working database, and the
 * migrations are applied exactly once. Real processes, released together by a barrier file, several rounds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { openDatabase } from "../client";

const PROCESSES = 6;
const ROUNDS = Number(process.env.OPEN_RACE_ROUNDS ?? 6);
const STEP_TIMEOUT_MS = 25_000;

type Child = { proc: ChildProcess; lines: string[]; waiters: Array<() => void>; stderr: string; exited: boolean };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-open-race-"));
const children: Child[] = [];

function startChild(): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", "db/tests/open-race-child.ts"], { stdio: ["pipe", "pipe", "pipe"] });
  const c: Child = { proc, lines: [], waiters: [], stderr: "", exited: false };
  let buf = "";
  proc.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      c.lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    for (const w of c.waiters.splice(0)) w();
  });
  proc.stderr!.on("data", (d: Buffer) => (c.stderr += d.toString()));
  proc.on("exit", () => {
    c.exited = true;
    for (const w of c.waiters.splice(0)) w();
  });
  return c;
}

/** The next line the child prints, failing with its stderr if it exits or stays silent too long. */
async function nextLine(c: Child, what: string): Promise<string> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (c.lines.length === 0) {
    if (c.exited) throw new Error(`child pid ${c.proc.pid} exited while ${what}: ${c.stderr}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`child pid ${c.proc.pid} silent for ${STEP_TIMEOUT_MS} ms while ${what}: ${c.stderr}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      c.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  return c.lines.shift()!;
}

const journalEntries = (
  JSON.parse(fs.readFileSync(path.join(process.cwd(), "db", "migrations", "meta", "_journal.json"), "utf8")) as { entries: unknown[] }
).entries.length;

beforeAll(() => {
  for (let i = 0; i < PROCESSES; i++) children.push(startChild());
});
afterAll(() => {
  for (const c of children) if (!c.exited) c.proc.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("openDatabase, several processes at once on a new data directory", () => {
  it(`${PROCESSES} processes, ${ROUNDS} rounds: every open succeeds and each migration is applied once`, async () => {
    const failures: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const dataDir = path.join(tmp, `data-${round}`);
      const goFile = path.join(tmp, `go-${round}`);
      for (const c of children) c.proc.stdin!.write(`${JSON.stringify({ dataDir, goFile })}\n`);
      for (const c of children) expect(await nextLine(c, `getting ready for round ${round}`)).toBe("ready");
      fs.writeFileSync(goFile, "");
      const results = await Promise.all(children.map((c) => nextLine(c, `opening in round ${round}`)));
      results.forEach((line, i) => {
        const r = JSON.parse(line) as { ok: boolean; error?: string };
        if (!r.ok) failures.push(`round ${round}, child ${i}: ${r.error}`);
      });

      const sqlite = new Database(path.join(dataDir, "runledger.sqlite"), { readonly: true });
      try {
        const applied = sqlite.prepare("SELECT hash, created_at FROM __drizzle_migrations ORDER BY id").all() as Array<{ hash: string }>;
        expect(applied.length, `round ${round}: rows in __drizzle_migrations`).toBe(journalEntries);
        expect(new Set(applied.map((r) => r.hash)).size).toBe(journalEntries);
        expect(sqlite.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'audit_events'").get()).toEqual({ n: 1 });
      } finally {
        sqlite.close();
      }
    }
    expect(failures).toEqual([]);
  });

  it("waits a bounded time for the write lock, then fails naming the data directory; an up-to-date file needs no lock", () => {
    const dataDir = path.join(tmp, "locked");
    fs.mkdirSync(dataDir);
    const holder = new Database(path.join(dataDir, "runledger.sqlite"));
    try {
      holder.pragma("journal_mode = WAL");
      holder.exec("BEGIN IMMEDIATE");
      const started = Date.now();
      expect(() => openDatabase(dataDir, { migrationLockTimeoutMs: 300 })).toThrow(
        `cannot apply the database migrations of data directory ${dataDir}: another process held the write lock`,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      holder.exec("ROLLBACK");

      // Migrated once, the file opens while another connection holds the write lock (no migration to apply).
      openDatabase(dataDir).$client.close();
      holder.exec("BEGIN IMMEDIATE");
      const db = openDatabase(dataDir, { migrationLockTimeoutMs: 300 });
      expect(db.$client.prepare("SELECT count(*) AS n FROM __drizzle_migrations").get()).toEqual({ n: journalEntries });
      db.$client.close();
      holder.exec("ROLLBACK");
    } finally {
      holder.close();
    }
  });
});
