/**
 * A PostgreSQL store copied into a new SQLite data directory, from one snapshot (issue 16): every table of
 * store-tables.ts with its ids, and (optionally) every artifact of the cluster artifact store as a file. The reverse
 * of migrate-store. `audit verify` on PostgreSQL (server/audit/verify-pg.ts) verifies such a copy with the one
 * verifier, after store-copy-check.ts has proved it equal to the snapshot it came from.
 *
 * Invariants:
 * - The caller holds `client` inside a REPEATABLE READ transaction: every table and artifact comes from one snapshot.
 * - Values are stored as SQLite stores them (db/schema-pg/README.md, "Types"): int8 → integer (BigInt past 2^53),
 *   boolean → 0/1, float8 → real, text → text, bytea → blob. JSON columns are text on both stores, so every byte the
 *   ledger hashed is copied unchanged.
 * - Artifacts are copied as stored, chunk by chunk, without checking their hash: a damaged artifact must reach the
 *   verifier, which names it (the copy check and the content check both re-hash).
 * - The target directory must not hold a database yet; nothing is written to PostgreSQL.
 */
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { openDatabase } from "@/db/client";
import { pgCursorRows } from "@/db/pg-cursor";
import { artifactPath } from "@/contracts/artifact-layout";
import Database from "better-sqlite3";
import { openPgDatabase } from "@/db/pg-client";
import { listArtifactsPg } from "@/server/artifacts/pg-store";
import { checkStoreCopy } from "./store-copy-check";
import { orderedSelect, quoteIdent, storeTables, type StorageClass } from "./store-tables";

export type PgSnapshotSummary = {
  tables: { name: string; rows: number }[];
  rows: number;
  /** null: artifacts were not copied (they live in a shared directory). */
  artifacts: { count: number; bytes: number } | null;
  copyMs: number;
};

/** A value read from PostgreSQL (node-postgres' default parsing, array rows), as SQLite stores it. */
export function toSqliteValue(storage: StorageClass, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (storage) {
    case "integer": {
      if (typeof v === "number") return v;
      const big = BigInt(v as string);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    case "boolean":
      return v === true || v === "t" ? 1 : 0;
    case "float64":
      return typeof v === "number" ? v : Number(v);
    default:
      return v;
  }
}

export async function snapshotPgIntoDataDir(opts: {
  /** Inside a REPEATABLE READ transaction held by the caller. */
  client: pg.ClientBase;
  /** A directory without a database (created if missing). */
  dataDir: string;
  /** Copy the cluster artifact store's files into dataDir/artifacts (false: the installation keeps them elsewhere). */
  artifacts: boolean;
  onProgress?: (line: string) => void;
}): Promise<PgSnapshotSummary> {
  const started = performance.now();
  const { client, dataDir } = opts;
  if (fs.existsSync(path.join(dataDir, "runledger.sqlite"))) throw new Error(`${dataDir} already holds a database`);
  const db = openDatabase(dataDir); // a fresh file at the latest SQLite migration
  const sqlite = db.$client;
  const tables: PgSnapshotSummary["tables"] = [];
  try {
    // The source enforced its foreign keys; rows referencing a later id of their own table are copied in key order.
    sqlite.pragma("foreign_keys = OFF");
    // A cache for the indexes being built (up to 256 MB instead of 2 MB): the 100k-event bench copy took 4.35 s
    // against 4.62 s (medians of six).
    sqlite.pragma("cache_size = -262144");
    sqlite.prepare("BEGIN").run();
    for (const t of storeTables()) {
      const insert = sqlite.prepare(
        `INSERT INTO ${quoteIdent(t.name)} (${t.columns.map((c) => quoteIdent(c.name)).join(", ")}) VALUES (${t.columns.map(() => "?").join(", ")})`,
      );
      let rows = 0;
      for await (const row of pgCursorRows(client, orderedSelect(t, "postgres"))) {
        insert.run(t.columns.map((c, i) => toSqliteValue(c.storage, row[i])));
        rows++;
      }
      tables.push({ name: t.name, rows });
    }
    sqlite.prepare("COMMIT").run();
  } finally {
    if (sqlite.inTransaction) sqlite.prepare("ROLLBACK").run();
    sqlite.close();
  }
  const rows = tables.reduce((n, t) => n + t.rows, 0);
  opts.onProgress?.(`snapshot: ${rows} row(s) of ${tables.length} tables copied into SQLite`);
  let artifacts: PgSnapshotSummary["artifacts"] = null;
  if (opts.artifacts) {
    artifacts = { count: 0, bytes: 0 };
    const names: string[] = [];
    for await (const a of listArtifactsPg(client)) names.push(a.sha256);
    for (const sha256 of names) artifacts.bytes += await copyArtifactAsStored(client, dataDir, sha256);
    artifacts.count = names.length;
    opts.onProgress?.(`snapshot: ${artifacts.count} artifact(s) copied (${artifacts.bytes} bytes)`);
  }
  return { tables, rows, artifacts, copyMs: Math.round(performance.now() - started) };
}

/** One artifact's chunks, in index order, appended to its file as stored (no hash check here: see the invariants). */
async function copyArtifactAsStored(client: pg.ClientBase, dataDir: string, sha256: string): Promise<number> {
  const file = artifactPath(dataDir, sha256); // checks the name is 64 hex digits, so it is safe in the cursor's SELECT
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, "w");
  let bytes = 0;
  try {
    for await (const [, data] of pgCursorRows(
      client,
      `SELECT idx, data FROM artifact_chunks WHERE sha256 = '${sha256}' ORDER BY idx`,
      16,
    )) {
      fs.writeSync(fd, data as Buffer);
      bytes += (data as Buffer).length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

export class PgSnapshotRefused extends Error {}

export type CheckedPgSnapshot<T> = {
  snapshot: PgSnapshotSummary;
  /** How the copy differs from the snapshot (tables, ledger roots, artifacts); [] when it equals it. */
  copyDifferences: string[];
  copyCheckMs: number;
  /** What `inSnapshot` returned. */
  extra: T;
};

/**
 * Copies the store at `url` into `dataDir` (snapshotPgIntoDataDir) and proves the copy equal to the same snapshot:
 * every table's row count and digest, the ledger's Merkle roots (the ledger streamed from PostgreSQL through the
 * verifier), each artifact re-hashed on PostgreSQL (unless `artifactsDir` names a shared directory, which is linked
 * in as the copy's artifacts). `inSnapshot` runs inside the same transaction (e.g. the trigger check).
 */
export async function checkedPgSnapshot<T>(
  url: string,
  dataDir: string,
  opts: { artifactsDir?: string; inSnapshot: (client: pg.ClientBase) => Promise<T>; onProgress?: (line: string) => void },
): Promise<CheckedPgSnapshot<T>> {
  const pool = openPgDatabase(url, { max: 1 }).$client;
  try {
    const client = await pool.connect();
    try {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const ours = await client.query<{ t: string | null }>("SELECT to_regclass('audit_events')::text AS t");
      if (ours.rows[0]!.t === null) throw new PgSnapshotRefused("the database holds no Runledger store (no audit_events table)");
      const snapshot = await snapshotPgIntoDataDir({ client, dataDir, artifacts: !opts.artifactsDir, onProgress: opts.onProgress });
      if (opts.artifactsDir) fs.symlinkSync(path.resolve(opts.artifactsDir), path.join(dataDir, "artifacts"), "dir");
      const extra = await opts.inSnapshot(client);
      const copy = new Database(path.join(dataDir, "runledger.sqlite"), { readonly: true, fileMustExist: true });
      let copyDifferences: string[];
      let copyCheckMs: number;
      try {
        copy.prepare("BEGIN").run();
        const check = await checkStoreCopy({
          source: copy,
          dataDir,
          client,
          artifacts: !opts.artifactsDir,
          storeIntegrity: false,
          onProgress: opts.onProgress,
        });
        copy.prepare("COMMIT").run();
        copyDifferences = [
          ...check.tables
            .filter((t) => !t.equal)
            .map(
              (t) =>
                `table ${t.name}: ${t.targetRows} row(s) on PostgreSQL, ${t.sourceRows} in the copy (${t.firstDifference ?? "digests differ"})`,
            ),
          ...check.ledger.roots
            .filter((r) => !r.equal)
            .map((r) => `Merkle root at tree size ${r.treeSize}: copy ${r.source}, PostgreSQL ${r.target ?? "none"}`),
          ...check.mismatches.filter((m) => m.startsWith("artifact ")),
        ];
        copyCheckMs = check.durationMs;
      } finally {
        copy.close();
      }
      await client.query("COMMIT");
      opts.onProgress?.(
        `snapshot: the copy ${copyDifferences.length === 0 ? "equals" : "does NOT equal"} PostgreSQL's snapshot (${copyCheckMs} ms)`,
      );
      return { snapshot, copyDifferences, copyCheckMs, extra };
    } finally {
      await client.query("ROLLBACK").catch(() => undefined);
      client.release();
    }
  } finally {
    await pool.end();
  }
}
