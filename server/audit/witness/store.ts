/**
 * Reading and writing the witness tables (db/schema/witness.ts): the only file of the witness code with SQL.
 * App side (drizzle): record a verified cosignature, update a witness's status, list both for the Audit page.
 * Verifier side (raw better-sqlite3, read-only connections welcome): read every cosignature row.
 * Invariants: a cosignature is stored once per (witness, key ID, tree size, root) (later duplicates are ignored);
 * reads tolerate a database without the witness tables (an older data directory): they return nothing.
 */
import type Database from "better-sqlite3";
import { desc, eq } from "drizzle-orm";
import type { Db } from "@/db/client";
import { witnessCosignatures, witnessStatus } from "@/db/schema";

export type CosignatureRecord = typeof witnessCosignatures.$inferSelect;
export type NewCosignatureRecord = typeof witnessCosignatures.$inferInsert;
export type WitnessStatusRow = typeof witnessStatus.$inferSelect;

export function insertCosignature(db: Db, row: NewCosignatureRecord): void {
  db.insert(witnessCosignatures).values(row).onConflictDoNothing().run();
}

export function hasCosignature(db: Db, witnessName: string, keyId: string, treeSize: number, rootHash: string): boolean {
  return (
    db.$client
      .prepare("SELECT 1 FROM witness_cosignatures WHERE witness_name = ? AND key_id = ? AND tree_size = ? AND root_hash = ?")
      .get(witnessName, keyId, treeSize, rootHash) !== undefined
  );
}

export function readWitnessStatus(db: Db, url: string): WitnessStatusRow | undefined {
  return db.select().from(witnessStatus).where(eq(witnessStatus.url, url)).get();
}

export function upsertWitnessStatus(db: Db, row: WitnessStatusRow): void {
  const { url, ...rest } = row;
  db.insert(witnessStatus).values(row).onConflictDoUpdate({ target: witnessStatus.url, set: rest }).run();
}

export function listWitnessStatus(db: Db): WitnessStatusRow[] {
  return db.select().from(witnessStatus).all();
}

export function recentCosignatures(db: Db, limit: number): CosignatureRecord[] {
  return db.select().from(witnessCosignatures).orderBy(desc(witnessCosignatures.id)).limit(limit).all();
}

function hasTable(sqlite: Database.Database, name: string): boolean {
  return sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

const COLUMNS = "id, checkpoint_id, origin, tree_size, root_hash, witness_name, key_id, timestamp, signature, received_at";
type RawRow = [number, number, string, number, string, string, string, number, string, string];

/** Every stored cosignature, oldest first, from any connection (the verifier's read-only one included). */
export function allCosignatureRecords(sqlite: Database.Database): CosignatureRecord[] {
  if (!hasTable(sqlite, "witness_cosignatures")) return [];
  const rows = sqlite.prepare(`SELECT ${COLUMNS} FROM witness_cosignatures ORDER BY id`).raw(true).all() as RawRow[];
  return rows.map((a) => ({
    id: a[0],
    checkpointId: a[1],
    origin: a[2],
    treeSize: a[3],
    rootHash: a[4],
    witnessName: a[5],
    keyId: a[6],
    timestamp: a[7],
    signature: a[8],
    receivedAt: a[9],
  }));
}

/** The largest tree size a witness (name + key ID) has a stored cosignature for; 0 when none. */
export function largestCosignedSize(sqlite: Database.Database, witnessName: string, keyId: string): number {
  if (!hasTable(sqlite, "witness_cosignatures")) return 0;
  const row = sqlite
    .prepare("SELECT MAX(tree_size) FROM witness_cosignatures WHERE witness_name = ? AND key_id = ?")
    .raw(true)
    .get(witnessName, keyId) as [number | null];
  return row[0] ?? 0;
}

/** The key that signed the log's first checkpoint (the default origin is derived from it, so rotations keep it). */
export function firstCheckpointKeyFingerprint(sqlite: Database.Database): string | null {
  const row = sqlite.prepare("SELECT key_fingerprint FROM audit_checkpoints ORDER BY id LIMIT 1").raw(true).get() as [string] | undefined;
  return row?.[0] ?? null;
}

/** Events after `coveredSize`: how many, and the oldest time among them; and the newest event's time. */
export function uncoveredTail(
  sqlite: Database.Database,
  coveredSize: number,
): { count: number; oldestAt: string | null; firstSeq: number | null; newestAt: string | null } {
  const tail = sqlite.prepare("SELECT COUNT(*), MIN(at), MIN(seq) FROM audit_events WHERE seq > ?").raw(true).get(coveredSize) as [
    number,
    string | null,
    number | null,
  ];
  const newest = sqlite.prepare("SELECT at FROM audit_events ORDER BY seq DESC LIMIT 1").raw(true).get() as [string] | undefined;
  return { count: tail[0], oldestAt: tail[1], firstSeq: tail[2], newestAt: newest?.[0] ?? null };
}
