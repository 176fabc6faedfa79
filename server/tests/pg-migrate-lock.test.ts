/**
 * PostgreSQL migrations with several processes starting at once on one empty database (issue 16's deployment):
 * migratePg serialises them with a session advisory lock, so every caller succeeds and each migration is applied
 * once; a lock held too long gives a clear, bounded failure. Each pool below is its own session, as separate web
 * servers and workers are; they are released together.
 */
import { afterAll, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { sql } from "drizzle-orm";
import { migratePg, openPgDatabase, PG_LOCK_KEYS, PG_MIGRATIONS_DIR, type PgDb } from "@/db/pg-client";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";

const SESSIONS = 6;
const ROUNDS = 3;
const journalEntries = (
  JSON.parse(fs.readFileSync(path.join(PG_MIGRATIONS_DIR, "meta", "_journal.json"), "utf8")) as { entries: unknown[] }
).entries.length;

const scratch: ScratchPgDatabase[] = [];
afterAll(async () => {
  for (const s of scratch) await s.drop();
});

describePg("migratePg, several sessions at once on an empty database", () => {
  it(`${SESSIONS} sessions, ${ROUNDS} rounds: all succeed and each migration is applied once`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const s = await createScratchPgDatabase();
      scratch.push(s);
      const dbs: PgDb[] = Array.from({ length: SESSIONS }, () => openPgDatabase(s.url, { max: 3 }));
      try {
        // Every pool connected first, so the migrations start together rather than behind each connect.
        await Promise.all(dbs.map((db) => db.execute(sql`SELECT 1`)));
        const results = await Promise.allSettled(dbs.map((db) => migratePg(db)));
        const failures = results.flatMap((r, i) => (r.status === "rejected" ? [`round ${round}, session ${i}: ${String(r.reason)}`] : []));
        expect(failures).toEqual([]);
        const applied = await dbs[0]!.execute<{ n: string; hashes: string }>(
          sql`SELECT count(*) AS n, count(DISTINCT hash) AS hashes FROM drizzle.__drizzle_migrations`,
        );
        expect(applied.rows[0]).toEqual({ n: String(journalEntries), hashes: String(journalEntries) });
      } finally {
        await Promise.all(dbs.map((db) => db.$client.end()));
      }
    }
  });

  it("waits a bounded time for the migration lock, then fails naming the database (never the password)", async () => {
    const s = await createScratchPgDatabase();
    scratch.push(s);
    const holder = new pg.Client({ connectionString: s.url });
    await holder.connect();
    const db = openPgDatabase(s.url, { max: 2 });
    try {
      await holder.query("SELECT pg_advisory_lock($1)", [PG_LOCK_KEYS.migrate.toString()]);
      const started = Date.now();
      const where = `${new URL(s.url).host}/${s.name}`;
      await expect(migratePg(db, undefined, { lockTimeoutMs: 400 })).rejects.toThrow(
        `cannot apply the PostgreSQL migrations of ${where}: another session held the migration lock`,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(350);
      await holder.query("SELECT pg_advisory_unlock($1)", [PG_LOCK_KEYS.migrate.toString()]);
      await migratePg(db, undefined, { lockTimeoutMs: 400 });
      const applied = await db.execute<{ n: string }>(sql`SELECT count(*) AS n FROM drizzle.__drizzle_migrations`);
      expect(Number(applied.rows[0]!.n)).toBe(journalEntries);
    } finally {
      await holder.end();
      await db.$client.end();
    }
  });
});
