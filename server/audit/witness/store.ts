/**
 * Reading and writing the witness tables (db/schema/witness.ts): the only file of the witness code with SQL.
 * App side (drizzle): record a verified cosignature, update a witness's status, list both for the Audit page. The
 * `…On` forms take either store (db/store.ts, issue 16) and are awaited: the pusher, the overview and the export's
 * wait use them; the synchronous SQLite forms stay for the CLI and tests.
 * Verifier side (raw better-sqlite3, read-only connections welcome): read every cosignature row.
 * Invariants: a cosignature is stored once per (witness, key ID, tree size, root) (unique index; later duplicates,
 * e.g. two web servers storing the witness's answers to the same checkpoint, are ignored by one atomic INSERT … ON
 * CONFLICT DO NOTHING); a status row is written by one atomic upsert whose cosigned size never goes down for the same
 * witness key (a server that read the status before another one's push cannot set it back); reads tolerate a
 * database without the witness tables (an older data directory): they return nothing.
 */
import type Database from "better-sqlite3";
import { and, desc, eq, max, sql } from "drizzle-orm";
import type { Db } from "@/db/client";
import { asStore, reader, type Store } from "@/db/store";
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

/** Stores a verified cosignature; false when the same one (witness, key ID, tree size, root) was already stored. */
export async function insertCosignatureOn(store: Store | Db, row: NewCosignatureRecord): Promise<boolean> {
  const s = asStore(store);
  const t = s.tables.witnessCosignatures;
  const inserted = await reader(s).insert(t).values(row).onConflictDoNothing().returning({ id: t.id });
  return inserted.length > 0;
}

export async function hasCosignatureOn(
  store: Store | Db,
  witnessName: string,
  keyId: string,
  treeSize: number,
  rootHash: string,
): Promise<boolean> {
  const s = asStore(store);
  const t = s.tables.witnessCosignatures;
  const found = await reader(s)
    .select({ id: t.id })
    .from(t)
    .where(and(eq(t.witnessName, witnessName), eq(t.keyId, keyId), eq(t.treeSize, treeSize), eq(t.rootHash, rootHash)))
    .limit(1);
  return found.length > 0;
}

export async function readWitnessStatusOn(store: Store | Db, url: string): Promise<WitnessStatusRow | undefined> {
  const s = asStore(store);
  const t = s.tables.witnessStatus;
  return (await reader(s).select().from(t).where(eq(t.url, url)).limit(1))[0];
}

/**
 * One atomic upsert of a witness's status. Its cosigned size only grows while the witness and key stay the same: two
 * servers push at once, and the one that read the status before the other's cosignature must not set it back (the
 * size is the next push's old size; a smaller one costs a 409 round trip, never a wrong proof).
 */
export async function upsertWitnessStatusOn(store: Store | Db, row: WitnessStatusRow): Promise<void> {
  const s = asStore(store);
  const t = s.tables.witnessStatus;
  const { url, ...rest } = row;
  const keptSize = sql`CASE WHEN ${t.witnessName} = excluded.witness_name AND ${t.keyId} = excluded.key_id AND ${t.cosignedSize} > excluded.cosigned_size THEN ${t.cosignedSize} ELSE excluded.cosigned_size END`;
  await reader(s)
    .insert(t)
    .values(row)
    .onConflictDoUpdate({ target: t.url, set: { ...rest, cosignedSize: keptSize } });
}

export async function listWitnessStatusOn(store: Store | Db): Promise<WitnessStatusRow[]> {
  const s = asStore(store);
  return reader(s).select().from(s.tables.witnessStatus);
}

export async function recentCosignaturesOn(store: Store | Db, limit: number): Promise<CosignatureRecord[]> {
  const s = asStore(store);
  const t = s.tables.witnessCosignatures;
  return reader(s).select().from(t).orderBy(desc(t.id)).limit(limit);
}

/** largestCosignedSize on either store (the witness tables always exist there: both stores are migrated). */
export async function largestCosignedSizeOn(store: Store | Db, witnessName: string, keyId: string): Promise<number> {
  const s = asStore(store);
  if (s.dialect === "sqlite") return largestCosignedSize(s.db.$client, witnessName, keyId);
  const t = s.tables.witnessCosignatures;
  const [r] = await reader(s)
    .select({ n: max(t.treeSize).mapWith(Number) })
    .from(t)
    .where(and(eq(t.witnessName, witnessName), eq(t.keyId, keyId)));
  return r?.n ?? 0;
}

/** firstCheckpointKeyFingerprint on either store. */
export async function firstCheckpointKeyFingerprintOn(store: Store | Db): Promise<string | null> {
  const s = asStore(store);
  if (s.dialect === "sqlite") return firstCheckpointKeyFingerprint(s.db.$client);
  const t = s.tables.auditCheckpoints;
  const [r] = await reader(s).select({ k: t.keyFingerprint }).from(t).orderBy(t.id).limit(1);
  return r?.k ?? null;
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
