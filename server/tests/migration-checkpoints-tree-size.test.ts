/**
 * Migration audit_checkpoints_tree_size (SQLite 0019, PostgreSQL 0006): checkpoints are looked up by tree size (the
 * heads key rotations endorse, inclusion proofs' signed roots, witness anchors), so audit_checkpoints.tree_size gets an
 * index. An existing store, really written (events and signed checkpoints) and put back to its shape before the
 * migration (index dropped, its migration record deleted), gets the index when opened again, keeps every checkpoint, and
 * a lookup by tree size uses the index.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { asc, eq } from "drizzle-orm";
import { openDatabase } from "@/db/client";
import { migratePg, openPgDatabase } from "@/db/pg-client";
import { pgStore, reader, sqliteStore, type Store } from "@/db/store";
import { createAuditCheckpointOn } from "@/server/audit/checkpoints";
import { generateAuditKeys } from "@/server/audit/keys";
import { appendDecisionEvents } from "./ledger-events";
import { createScratchPgDatabase, describePg } from "./pg-test-env";

const INDEX = "audit_checkpoints_tree_size";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-migration-tree-size-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Two signed checkpoints over a few events; returns the checkpoint rows as written. */
async function writeLedger(store: Store) {
  const keys = generateAuditKeys();
  await appendDecisionEvents(store, 4, "before");
  await createAuditCheckpointOn(store, keys, "first");
  await appendDecisionEvents(store, 3, "after");
  await createAuditCheckpointOn(store, keys, "second");
  return checkpointRows(store);
}

function checkpointRows(store: Store) {
  const c = store.tables.auditCheckpoints;
  return reader(store).select().from(c).orderBy(asc(c.id));
}

describe(`[migration ${INDEX}] SQLite`, () => {
  it("an existing data directory gets the index on open, keeps its checkpoints, and lookups by tree size use it", async () => {
    const dataDir = fs.mkdtempSync(path.join(tmp, "sqlite-"));
    let db = openDatabase(dataDir);
    const written = await writeLedger(sqliteStore(db));
    expect(written).toHaveLength(2);
    // Back to the shape before the migration: no index, and the migration not recorded as applied.
    db.$client.exec(`DROP INDEX ${INDEX}`);
    db.$client.exec(`DELETE FROM __drizzle_migrations WHERE created_at = (SELECT max(created_at) FROM __drizzle_migrations)`);
    db.$client.close();

    db = openDatabase(dataDir);
    try {
      const index = db.$client.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?").pluck().get(INDEX);
      expect(index).toMatch(/ON `audit_checkpoints` \(`tree_size`\)/);
      const store = sqliteStore(db);
      expect(await checkpointRows(store)).toEqual(written);
      const plan = db.$client
        .prepare("EXPLAIN QUERY PLAN SELECT * FROM audit_checkpoints WHERE tree_size = ?")
        .all(written[1]!.treeSize) as { detail: string }[];
      expect(plan.map((p) => p.detail).join("\n")).toContain(`USING INDEX ${INDEX}`);
      const c = store.tables.auditCheckpoints;
      expect(await reader(store).select().from(c).where(eq(c.treeSize, written[1]!.treeSize))).toEqual([written[1]]);
    } finally {
      db.$client.close();
    }
  }, 60_000);
});

describePg(`[migration ${INDEX}] PostgreSQL`, () => {
  it("an existing database gets the index from migratePg and keeps its checkpoints", async () => {
    const scratch = await createScratchPgDatabase();
    const db = openPgDatabase(scratch.url, { max: 2 });
    try {
      await migratePg(db);
      const store = pgStore(db);
      const written = await writeLedger(store);
      await db.$client.query(`DROP INDEX ${INDEX}`);
      await db.$client.query(
        `DELETE FROM drizzle.__drizzle_migrations WHERE created_at = (SELECT max(created_at) FROM drizzle.__drizzle_migrations)`,
      );
      const indexes = async () =>
        (await db.$client.query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE indexname = $1", [INDEX])).rows;
      expect(await indexes()).toEqual([]);

      await migratePg(db);
      expect((await indexes()).map((r) => r.indexdef)).toEqual([
        expect.stringMatching(/ON public\.audit_checkpoints USING btree \(tree_size\)/),
      ]);
      expect(await checkpointRows(store)).toEqual(written);
    } finally {
      await db.$client.end();
      await scratch.drop();
    }
  }, 120_000);
});
