/**
 * The cluster artifact store (issue 16): artifacts in PostgreSQL itself, chunked bytea in artifact_blobs +
 * artifact_chunks (db/schema-pg/cluster-artifacts.ts), content-addressed by SHA-256, so a team installation needs
 * nothing but PostgreSQL. Same interface and guarantees as the file store (async-store.ts); the file store stays
 * the default.
 *
 * Invariants:
 * - The blob row and all its chunks are written in one transaction (a reader never sees a partial artifact); a
 *   second writer of the same content finds the row (ON CONFLICT DO NOTHING, after waiting for the first writer's
 *   commit) and writes nothing.
 * - Every read re-hashes the chunks, in idx order, and checks their count and total size against the blob row:
 *   content that does not hash to its name throws ArtifactIntegrityError, as the file store's reads do.
 * - A file put is streamed in CLUSTER_ARTIFACT_CHUNK_BYTES pieces and hashed while it is copied; if it does not hash
 *   to the name it was given, nothing is stored (the transaction rolls back).
 * - `putArtifactFilePg` and `readArtifactPg` take a client inside the caller's transaction (migrate-store copies
 *   every artifact in the transaction that copies the tables).
 */
import fs from "node:fs";
import { createHash } from "node:crypto";
import type pg from "pg";
import { sha256Hex } from "@/contracts/canonical";
import { ArtifactIntegrityError } from "@/contracts/artifact-layout";
import { pgCursorRows } from "@/db/pg-cursor";
import type { AsyncArtifactStore, StoredArtifact } from "./async-store";
import type { ArtifactPrefix } from "./store";

/** 1 MiB per chunk: small enough for a round trip, large enough that a 100 MB dataset is 100 rows. */
export const CLUSTER_ARTIFACT_CHUNK_BYTES = 1 << 20;

const SHA256 = /^[0-9a-f]{64}$/;
function checkName(sha256: string): void {
  if (!SHA256.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
}

/** Inserts the blob row; false when the artifact is already stored (then nothing else is written). */
async function claim(client: pg.ClientBase, sha256: string, bytes: number): Promise<boolean> {
  const chunks = Math.ceil(bytes / CLUSTER_ARTIFACT_CHUNK_BYTES);
  const r = await client.query(
    "INSERT INTO artifact_blobs (sha256, bytes, chunks, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
    [sha256, bytes, chunks, new Date().toISOString()],
  );
  return r.rowCount === 1;
}

async function insertChunk(client: pg.ClientBase, sha256: string, idx: number, data: Buffer): Promise<void> {
  await client.query("INSERT INTO artifact_chunks (sha256, idx, data) VALUES ($1, $2, $3)", [sha256, idx, data]);
}

/** Stores bytes inside the caller's transaction. */
export async function putArtifactPg(client: pg.ClientBase, bytes: Uint8Array): Promise<StoredArtifact & { written: boolean }> {
  const sha256 = sha256Hex(bytes);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const written = await claim(client, sha256, buf.length);
  if (written)
    for (let i = 0, off = 0; off < buf.length; i++, off += CLUSTER_ARTIFACT_CHUNK_BYTES)
      await insertChunk(client, sha256, i, buf.subarray(off, off + CLUSTER_ARTIFACT_CHUNK_BYTES));
  return { sha256, bytes: buf.length, written };
}

/**
 * Copies a file into the store under `sha256` inside the caller's transaction, streaming and hashing it; throws
 * (leaving the transaction to roll back) when its content does not hash to `sha256`. The file is left in place.
 */
export async function putArtifactFilePg(
  client: pg.ClientBase,
  file: string,
  sha256: string,
): Promise<StoredArtifact & { written: boolean }> {
  checkName(sha256);
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    if (!(await claim(client, sha256, size))) return { sha256, bytes: size, written: false };
    const hash = createHash("sha256");
    const buf = Buffer.allocUnsafe(CLUSTER_ARTIFACT_CHUNK_BYTES);
    let total = 0;
    for (let idx = 0; total < size; idx++) {
      let n = 0;
      while (n < buf.length && total + n < size) {
        const got = fs.readSync(fd, buf, n, Math.min(buf.length - n, size - total - n), total + n);
        if (got === 0) break;
        n += got;
      }
      if (n === 0) throw new Error(`${file} is shorter than its size ${size} (changed while copied?)`);
      const chunk = Buffer.from(buf.subarray(0, n));
      hash.update(chunk);
      await insertChunk(client, sha256, idx, chunk);
      total += n;
    }
    const actual = hash.digest("hex");
    if (actual !== sha256) throw new ArtifactIntegrityError(`artifact ${sha256} is corrupted: its content hashes to ${actual} (${file})`);
    return { sha256, bytes: size, written: true };
  } finally {
    fs.closeSync(fd);
  }
}

/** The artifact's bytes after checking chunk count, size and SHA-256; throws when it is missing or corrupted. */
export async function readArtifactPg(client: pg.ClientBase | pg.Pool, sha256: string): Promise<Uint8Array> {
  checkName(sha256);
  const blob = await client.query<{ bytes: string; chunks: number }>("SELECT bytes, chunks FROM artifact_blobs WHERE sha256 = $1", [
    sha256,
  ]);
  const row = blob.rows[0];
  if (!row) throw new Error(`artifact ${sha256} is not in the PostgreSQL artifact store`);
  const chunks = await client.query<{ idx: number; data: Buffer }>("SELECT idx, data FROM artifact_chunks WHERE sha256 = $1 ORDER BY idx", [
    sha256,
  ]);
  const expectedBytes = Number(row.bytes);
  if (chunks.rows.length !== row.chunks || chunks.rows.some((c, i) => c.idx !== i))
    throw new ArtifactIntegrityError(
      `artifact ${sha256} is corrupted: ${chunks.rows.length} chunk(s) stored (idx ${chunks.rows.map((c) => c.idx).join(",") || "none"}), ${row.chunks} expected`,
    );
  const bytes = Buffer.concat(chunks.rows.map((c) => c.data));
  if (bytes.length !== expectedBytes)
    throw new ArtifactIntegrityError(`artifact ${sha256} is corrupted: ${bytes.length} bytes stored, ${expectedBytes} expected`);
  const actual = sha256Hex(bytes);
  if (actual !== sha256) throw new ArtifactIntegrityError(`artifact ${sha256} is corrupted: its content hashes to ${actual}`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * At most `maxBytes` from the start of an artifact: only the chunks that prefix spans, each cut to `maxBytes` in
 * PostgreSQL, so a preview of a large dataset never moves the whole file. Not hash-checked (see ArtifactStore).
 */
export async function readArtifactPrefixPg(client: pg.ClientBase | pg.Pool, sha256: string, maxBytes: number): Promise<ArtifactPrefix> {
  checkName(sha256);
  const blob = await client.query<{ bytes: string }>("SELECT bytes FROM artifact_blobs WHERE sha256 = $1", [sha256]);
  const row = blob.rows[0];
  if (!row) throw new Error(`artifact ${sha256} is not in the PostgreSQL artifact store`);
  const size = Number(row.bytes);
  const want = Math.max(0, Math.min(maxBytes, size));
  const spanned = Math.ceil(want / CLUSTER_ARTIFACT_CHUNK_BYTES);
  if (spanned === 0) return { bytes: new Uint8Array(0), size };
  const chunks = await client.query<{ data: Buffer }>(
    "SELECT substring(data FROM 1 FOR $2) AS data FROM artifact_chunks WHERE sha256 = $1 AND idx < $3 ORDER BY idx",
    [sha256, want, spanned],
  );
  const bytes = Buffer.concat(chunks.rows.map((c) => c.data)).subarray(0, want);
  return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), size };
}

/**
 * Checks a stored artifact without holding it in memory: its chunks streamed through a cursor (inside the caller's
 * transaction) and hashed; the same checks and errors as readArtifactPg. Returns its size.
 */
export async function verifyArtifactPg(client: pg.ClientBase, sha256: string): Promise<number> {
  checkName(sha256);
  const blob = await client.query<{ bytes: string; chunks: number }>("SELECT bytes, chunks FROM artifact_blobs WHERE sha256 = $1", [
    sha256,
  ]);
  const row = blob.rows[0];
  if (!row) throw new Error(`artifact ${sha256} is not in the PostgreSQL artifact store`);
  const hash = createHash("sha256");
  let size = 0;
  let count = 0;
  const idxs: number[] = [];
  // The name is checked above (64 hex digits): safe to inline in the cursor's SELECT.
  for await (const [idx, data] of pgCursorRows(
    client,
    `SELECT idx, data FROM artifact_chunks WHERE sha256 = '${sha256}' ORDER BY idx`,
    16,
  )) {
    idxs.push(idx as number);
    if (idx !== count) break;
    hash.update(data as Buffer);
    size += (data as Buffer).length;
    count++;
  }
  if (count !== row.chunks || idxs.length !== row.chunks)
    throw new ArtifactIntegrityError(
      `artifact ${sha256} is corrupted: ${idxs.length} chunk(s) stored (idx ${idxs.join(",") || "none"}), ${row.chunks} expected`,
    );
  if (size !== Number(row.bytes))
    throw new ArtifactIntegrityError(`artifact ${sha256} is corrupted: ${size} bytes stored, ${row.bytes} expected`);
  const actual = hash.digest("hex");
  if (actual !== sha256) throw new ArtifactIntegrityError(`artifact ${sha256} is corrupted: its content hashes to ${actual}`);
  return size;
}

/** Every stored artifact (name and size) in name order, through a cursor inside the caller's transaction. */
export async function* listArtifactsPg(client: pg.ClientBase): AsyncGenerator<StoredArtifact, void, undefined> {
  for await (const [sha256, bytes] of pgCursorRows(client, `SELECT sha256, bytes FROM artifact_blobs ORDER BY sha256 COLLATE "C"`))
    yield { sha256: sha256 as string, bytes: Number(bytes) };
}

async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    try {
      const out = await fn(client);
      await client.query("COMMIT");
      return out;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
  } finally {
    client.release();
  }
}

/** The cluster artifact store on a pool (its tables come with the PostgreSQL migrations, db/migrations-pg). */
export function pgArtifactStore(pool: pg.Pool): AsyncArtifactStore {
  return {
    kind: "postgres",
    async put(bytes) {
      const { sha256, bytes: n } = await inTransaction(pool, (c) => putArtifactPg(c, bytes));
      return { sha256, bytes: n };
    },
    async putFile(file, sha256) {
      const { bytes } = await inTransaction(pool, (c) => putArtifactFilePg(c, file, sha256));
      fs.rmSync(file, { force: true });
      return { sha256, bytes };
    },
    get: (sha256) => readArtifactPg(pool, sha256),
    readPrefix: (sha256, maxBytes) => readArtifactPrefixPg(pool, sha256, maxBytes),
    async has(sha256) {
      checkName(sha256);
      const r = await pool.query("SELECT 1 FROM artifact_blobs WHERE sha256 = $1", [sha256]);
      return r.rows.length > 0;
    },
    async *list() {
      // A cursor needs a transaction; a read-only one on a client of its own.
      const client = await pool.connect();
      try {
        await client.query("BEGIN READ ONLY");
        yield* listArtifactsPg(client);
        await client.query("COMMIT");
      } finally {
        await client.query("ROLLBACK").catch(() => undefined);
        client.release();
      }
    },
  };
}
