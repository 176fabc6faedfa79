/**
 * Several processes opening one brand-new data directory at the same moment (issue 16's deployment: web servers,
 * training workers and the CLI on one data dir, all started together) all get a working database, and the
 * migrations are applied exactly once. Real processes, released together by a barrier file, several rounds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { openDatabase } from "../client";
import { startRaceChildren, type RaceChildren } from "./start-race";

const PROCESSES = 6;
const ROUNDS = Number(process.env.OPEN_RACE_ROUNDS ?? 6);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-open-race-"));
let children: RaceChildren;

const journalEntries = (
  JSON.parse(fs.readFileSync(path.join(process.cwd(), "db", "migrations", "meta", "_journal.json"), "utf8")) as { entries: unknown[] }
).entries.length;

beforeAll(() => {
  children = startRaceChildren("db/tests/open-race-child.ts", PROCESSES, tmp);
});
afterAll(() => {
  children.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("openDatabase, several processes at once on a new data directory", () => {
  it(`${PROCESSES} processes, ${ROUNDS} rounds: every open succeeds and each migration is applied once`, async () => {
    const failures: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const dataDir = path.join(tmp, `data-${round}`);
      const results = await children.round<{ ok: boolean; error?: string }>({ dataDir }, `opening in round ${round}`);
      results.forEach((r, i) => {
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
