/**
 * `migrate-store` (issue 16): copies a SQLite installation (a data directory: database and artifact files) into an
 * empty PostgreSQL database and its cluster artifact store (server/artifacts/pg-store.ts), then checks that the copy
 * equals the source (store-copy-check.ts) before committing it.
 *
 * Invariants:
 * - The target must be empty: no table of its own, and no row in Runledger's tables (a database migrated by a
 *   previous failed attempt is empty). This is checked before anything is written (a refused target is left exactly
 *   as it was: not even migrated), and again inside the copy transaction under an advisory lock, so two copies
 *   started together cannot both write.
 * - One snapshot of the source (a read transaction held from the first read to the check's last), one PostgreSQL
 *   transaction for every row and artifact: a copy that fails or whose check finds a mismatch is rolled back,
 *   leaving the target migrated and empty. Writes made to the source after its snapshot are not in the copy: stop
 *   the web servers and workers first.
 * - Tables are copied in foreign-key order (store-tables.ts) with their explicit ids; audit_events rows verbatim
 *   (the append-only triggers reject only UPDATE, DELETE and TRUNCATE); then each identity sequence is set past the
 *   largest copied id and past SQLite's AUTOINCREMENT high-water mark, so no id is ever handed out twice.
 * - Resume-state pointer files of installations from before the resume_states table are copied as its rows, and
 *   compared as such by the check (resume-pointer-files.ts: a view of the source, nothing written to it).
 * - Artifacts are streamed into PostgreSQL in chunks and hashed on the way; a source file that does not hash to its
 *   name stops the copy (the source is damaged: nothing is committed).
 */
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import type pg from "pg";
import { migratePg, openPgDatabase, PG_LOCK_KEYS } from "@/db/pg-client";
import { listFileArtifacts } from "@/server/artifacts/async-store";
import { putArtifactFilePg } from "@/server/artifacts/pg-store";
import { artifactPath } from "@/contracts/artifact-layout";
import { checkStoreCopy, sqliteSequence, type StoreCopyCheck } from "./store-copy-check";
import { orderedSelect, quoteIdent, storeTables, toPgValue, type StoreTable } from "./store-tables";
import { shadowResumeStatesWithPointerFiles, type ResumePointerFiles } from "./resume-pointer-files";
import { TRAIN_RUN_TASK } from "@/server/runs/orchestrator/run-queue";
import { QUEUE_OWNER_PREFIX } from "@/server/runs/orchestrator/leases";

/** Tables PostgreSQL has that SQLite does not (db/schema-pg/cluster-artifacts.ts, audit-verify-jobs.ts). */
const PG_ONLY_TABLES = ["artifact_blobs", "artifact_chunks", "audit_verify_jobs"];
const DATABASE_FILE = "runledger.sqlite";

/** A refusal before anything was written (the CLI exits 1 with its message). */
export class StoreMigrationRefused extends Error {}

export type MigrateStoreSummary = {
  from: string;
  /** The target URL without its password. */
  to: string;
  committed: boolean;
  tables: { name: string; rows: number }[];
  rows: number;
  artifacts: { count: number; bytes: number };
  /** Runs queued in the source, each given its training job on PostgreSQL (graphile-worker). */
  queuedJobs: number;
  ledger: { events: number; checkpoints: number; head: string | null };
  /** What the data directory holds besides the database and artifacts, which the copy does not move (and why). */
  notCopied: string[];
  copyMs: number;
  checkMs: number;
  check: StoreCopyCheck;
};

/** Entries of the data directory outside the database and the artifact store: named in the summary, not copied. */
function leftBehind(dataDir: string, pointerFiles: ResumePointerFiles): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dataDir, { withFileTypes: true })) {
    if (e.name === "artifacts" || e.name.startsWith(DATABASE_FILE)) continue;
    if (e.name === "audit-ed25519.pub")
      out.push(
        `${e.name}: the ledger's public key (public); keep it, and the key directory with the private key, for audit verify and signing`,
      );
    else if (e.name === "resume-states") {
      const { files, copied, leftOut } = pointerFiles;
      out.push(
        `resume-states/ (${files} pointer file(s) from before the resume_states table; server/runs/resume-states.ts): ${copied} copied as rows of resume_states, ${files - copied - leftOut.length} already row(s) there` +
          (leftOut.length > 0 ? `; left out: ${leftOut.join("; ")}` : ""),
      );
    } else out.push(`${e.name}${e.isDirectory() ? "/" : ""}: not part of the store; not copied`);
  }
  return out.sort();
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable URL)";
  }
}

/** Opens the source database for reading (read-write open, nothing written: as backup.ts, for a WAL file). */
export function openSource(dataDir: string): Database.Database {
  const file = path.join(dataDir, DATABASE_FILE);
  if (!fs.existsSync(file)) throw new StoreMigrationRefused(`no Runledger database at ${file}`);
  const db = new Database(file, { fileMustExist: true });
  db.pragma("busy_timeout = 5000");
  return db;
}

/** The source has every table and column this version's schema copies (else it needs this version's migrations). */
function checkSourceSchema(source: Database.Database): void {
  const missing: string[] = [];
  for (const t of storeTables()) {
    const cols = new Set((source.prepare(`PRAGMA table_info(${quoteIdent(t.name)})`).all() as { name: string }[]).map((c) => c.name));
    if (cols.size === 0) missing.push(t.name);
    else for (const c of t.columns) if (!cols.has(c.name)) missing.push(`${t.name}.${c.name}`);
  }
  if (missing.length > 0)
    throw new StoreMigrationRefused(
      `the source database is older than this version of Runledger (missing: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}): ` +
        `open it once with this version (npm run cli -- seed --data-dir DIR applies the migrations), then migrate`,
    );
}

/** Why the target is not empty, or null when it is (no foreign table, no row in Runledger's tables). */
export async function targetNotEmpty(client: pg.ClientBase): Promise<string | null> {
  const r = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1`,
  );
  const ours = new Set([...storeTables().map((t) => t.name), ...PG_ONLY_TABLES]);
  const foreign = r.rows.map((x) => x.name).filter((n) => !ours.has(n));
  if (foreign.length > 0)
    return `it has table(s) Runledger does not own: ${foreign.slice(0, 5).join(", ")}${foreign.length > 5 ? ", …" : ""}`;
  const withRows: string[] = [];
  for (const { name } of r.rows) {
    const e = await client.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${quoteIdent(name)}) AS any`);
    if (e.rows[0]!.any) withRows.push(name);
  }
  return withRows.length > 0
    ? `it already holds Runledger data (rows in ${withRows.slice(0, 5).join(", ")}${withRows.length > 5 ? ", …" : ""})`
    : null;
}

const refusal = (why: string) =>
  new StoreMigrationRefused(
    `the target database is not empty: ${why}. migrate-store copies into an empty database only (e.g. createdb --template=template0 --encoding=UTF8 --locale=C.UTF-8 NAME); nothing was written`,
  );

/** PostgreSQL allows 65535 parameters per statement; stay well below, and keep statements a reasonable size. */
function batchRowsFor(t: StoreTable): number {
  return Math.max(1, Math.min(500, Math.floor(20_000 / t.columns.length)));
}

async function copyTable(source: Database.Database, client: pg.ClientBase, t: StoreTable): Promise<number> {
  const cols = t.columns.map((c) => quoteIdent(c.name)).join(", ");
  const per = batchRowsFor(t);
  // AUTOINCREMENT high-water mark, read before iterating (the connection is busy while a statement iterates).
  const highWater = t.identity ? sqliteSequence(source, t.name) : 0;
  let rows = 0;
  let maxId = 0;
  const idIndex = t.identity ? t.columns.findIndex((c) => c.name === t.identity) : -1;
  let batch: unknown[] = [];
  let inBatch = 0;
  const flush = async () => {
    if (inBatch === 0) return;
    const n = t.columns.length;
    const values = Array.from(
      { length: inBatch },
      (_, r) => `(${Array.from({ length: n }, (_, c) => `$${r * n + c + 1}`).join(", ")})`,
    ).join(", ");
    try {
      await client.query(`INSERT INTO ${quoteIdent(t.name)} (${cols}) VALUES ${values}`, batch);
    } catch (err) {
      throw new Error(`copying table ${t.name} (rows ${rows - inBatch + 1}..${rows}): ${(err as Error).message}`);
    }
    batch = [];
    inBatch = 0;
  };
  const it = source.prepare(orderedSelect(t, "sqlite")).raw(true).iterate() as IterableIterator<unknown[]>;
  try {
    for (const row of it) {
      for (let i = 0; i < t.columns.length; i++) batch.push(toPgValue(t.columns[i]!.storage, row[i]));
      if (idIndex >= 0) maxId = Math.max(maxId, Number(row[idIndex]));
      rows++;
      if (++inBatch === per) await flush();
    }
  } finally {
    it.return?.();
  }
  await flush();
  const next = Math.max(maxId, highWater);
  if (t.identity && next > 0) await client.query("SELECT setval(pg_get_serial_sequence($1, $2), $3)", [t.name, t.identity, next]);
  return rows;
}

export async function migrateStore(opts: {
  dataDir: string;
  url: string;
  onProgress?: (line: string) => void;
}): Promise<MigrateStoreSummary> {
  const progress = opts.onProgress ?? (() => undefined);
  const dataDir = path.resolve(opts.dataDir);
  const source = openSource(dataDir);
  const db = openPgDatabase(opts.url, { max: 2 });
  try {
    checkSourceSchema(source);
    // Refuse a non-empty target before writing anything (not even the migrations).
    {
      const c = await db.$client.connect();
      try {
        const why = await targetNotEmpty(c);
        if (why) throw refusal(why);
      } finally {
        c.release();
      }
    }
    progress(`migrating the PostgreSQL schema (db/migrations-pg) on ${redactUrl(opts.url)}`);
    await migratePg(db);

    const client = await db.$client.connect();
    let committed = false;
    try {
      // Source snapshot: a read transaction from here to the end of the check.
      source.prepare("BEGIN").run();
      source.prepare("SELECT count(*) FROM sqlite_master").get();
      // Pointer files of older installations are read as rows of resume_states by the copy and its check.
      const pointerFiles = shadowResumeStatesWithPointerFiles(source, dataDir);
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [PG_LOCK_KEYS.migrateStore.toString()]);
      const why = await targetNotEmpty(client);
      if (why) throw refusal(why);

      const copyStarted = performance.now();
      const tables: MigrateStoreSummary["tables"] = [];
      for (const t of storeTables()) {
        const t0 = performance.now();
        const rows = await copyTable(source, client, t);
        tables.push({ name: t.name, rows });
        progress(`copied ${t.name}: ${rows} row(s) in ${Math.round(performance.now() - t0)} ms`);
      }
      const artifacts = listFileArtifacts(dataDir);
      let bytes = 0;
      let copied = 0;
      let lastReport = performance.now();
      for (const a of artifacts) {
        const r = await putArtifactFilePg(client, artifactPath(dataDir, a.sha256), a.sha256);
        bytes += r.bytes;
        copied++;
        if (performance.now() - lastReport > 2000 || copied === artifacts.length) {
          progress(`copied artifacts: ${copied}/${artifacts.length} (${bytes} bytes)`);
          lastReport = performance.now();
        }
      }
      // Runs queued in the source wait for a training worker: on PostgreSQL each needs its graphile-worker job
      // (run-queue.ts, addTrainJobTx), added in this same transaction so the copy and the jobs commit together.
      const jobs = await client.query(
        `SELECT graphile_worker.add_job($1, json_build_object('runId', run_id), job_key := 'run:' || run_id)
           FROM run_leases WHERE owner LIKE $2 ORDER BY run_id`,
        [TRAIN_RUN_TASK, `${QUEUE_OWNER_PREFIX}%`],
      );
      const queuedJobs = jobs.rowCount ?? 0;
      if (queuedJobs > 0) progress(`queued runs: ${queuedJobs} training job(s) added for the workers`);
      const copyMs = Math.round(performance.now() - copyStarted);
      progress(`copy done in ${copyMs} ms; checking it against the source before committing`);

      const check = await checkStoreCopy({ source, dataDir, client, onProgress: progress });
      if (check.ok) {
        await client.query("COMMIT");
        committed = true;
        progress("committed");
      } else {
        await client.query("ROLLBACK");
        progress(`the check found ${check.mismatches.length} mismatch(es): rolled back, the target is migrated and empty`);
      }
      const head = source.prepare("SELECT chain_hash AS h FROM audit_events ORDER BY seq DESC LIMIT 1").get() as { h: string } | undefined;
      return {
        from: dataDir,
        to: redactUrl(opts.url),
        committed,
        tables,
        rows: tables.reduce((s, t) => s + t.rows, 0),
        artifacts: { count: copied, bytes },
        queuedJobs,
        notCopied: leftBehind(dataDir, pointerFiles),
        ledger: {
          events: tables.find((t) => t.name === "audit_events")?.rows ?? 0,
          checkpoints: tables.find((t) => t.name === "audit_checkpoints")?.rows ?? 0,
          head: head?.h ?? null,
        },
        copyMs,
        checkMs: check.durationMs,
        check,
      };
    } catch (err) {
      if (!committed) await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
      if (source.inTransaction) source.prepare("COMMIT").run();
    }
  } finally {
    source.close();
    await db.$client.end();
  }
}

/** `migrate-store --check`: compares an existing copy with its source, changing nothing on either side. */
export async function checkExistingCopy(opts: {
  dataDir: string;
  url: string;
  onProgress?: (line: string) => void;
}): Promise<StoreCopyCheck> {
  const dataDir = path.resolve(opts.dataDir);
  const source = openSource(dataDir);
  const db = openPgDatabase(opts.url, { max: 1 });
  const client = await db.$client.connect();
  try {
    source.prepare("BEGIN").run();
    source.prepare("SELECT count(*) FROM sqlite_master").get();
    shadowResumeStatesWithPointerFiles(source, dataDir);
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const ours = await client.query<{ t: string | null }>("SELECT to_regclass('public.audit_events')::text AS t");
    if (ours.rows[0]!.t === null)
      throw new StoreMigrationRefused(
        `${redactUrl(opts.url)} holds no Runledger tables: nothing to compare (copy into it with migrate-store without --check first)`,
      );
    const check = await checkStoreCopy({ source, dataDir, client, onProgress: opts.onProgress });
    await client.query("COMMIT");
    return check;
  } finally {
    await client.query("ROLLBACK").catch(() => undefined);
    client.release();
    if (source.inTransaction) source.prepare("COMMIT").run();
    source.close();
    await db.$client.end();
  }
}
