/**
 * The ledger on PostgreSQL (issue 16), against a real cluster (scripts/pg-cluster.sh; server/tests/pg-test-env.ts):
 * - the committed migrations (db/migrations-pg) build db/schema-pg's tables and the protective triggers on an empty
 *   database, and applying them again changes nothing;
 * - the same event appended to SQLite (ledger.ts) and to PostgreSQL (ledger-pg.ts) has identical stored bytes and
 *   hashes;
 * - several processes appending at once, some transactions rolling back, leave a gapless seq and a chain that
 *   verifies with the verifier SQLite's ledger uses (verifyAuditEvents);
 * - UPDATE, DELETE and TRUNCATE on the append-only tables are rejected; decisions are immutable; a run intervention
 *   changes once, out of pending, leaving its request columns as they were (the SQLite triggers' rules).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { asc, sql } from "drizzle-orm";
import { getTableConfig, PgTable } from "drizzle-orm/pg-core";
import { is } from "drizzle-orm";
import { describePg, createScratchPgDatabase, type ScratchPgDatabase } from "@/server/tests/pg-test-env";
import { migratePg, openPgDatabase, PG_LOCK_KEYS, PG_MIGRATIONS_DIR, type PgDb } from "@/db/pg-client";
import * as pgSchema from "@/db/schema-pg";
import * as pgOnlySchema from "@/db/schema-pg/cluster-artifacts";
import * as pgVerifyJobsSchema from "@/db/schema-pg/audit-verify-jobs";
import { openDatabase, type Db } from "@/db/client";
import { auditEvents as sqliteAuditEvents } from "@/db/schema";
import { appendAuditEvent, type AuditEventRow, type NewAuditEvent } from "../ledger";
import { appendAuditEventPg } from "../ledger-pg";
import { verifyAuditEvents } from "../verify";
import { generateAuditKeys } from "../keys";

const APPEND_ONLY_TABLES = ["audit_events", "audit_checkpoints", "decisions", "signatures", "documents", "witness_cosignatures"];

async function withScratch(fn: (db: PgDb, scratch: ScratchPgDatabase) => Promise<void>): Promise<void> {
  const scratch = await createScratchPgDatabase();
  const db = openPgDatabase(scratch.url);
  try {
    await migratePg(db);
    await fn(db, scratch);
  } finally {
    await db.$client.end();
    await scratch.drop();
  }
}

async function pgEvents(db: PgDb): Promise<AuditEventRow[]> {
  return db.select().from(pgSchema.auditEvents).orderBy(asc(pgSchema.auditEvents.seq));
}

/** Resolves with the error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected the statement to be rejected, but it succeeded");
}

/** node-postgres' error (drizzle wraps it in a DrizzleQueryError whose cause it is). */
const pgMessage = (e: Error) => ((e as Error & { cause?: Error }).cause ?? e).message;

describePg("PostgreSQL ledger (ledger-pg.ts)", () => {
  let sqliteDir: string;
  let sqliteDb: Db;
  beforeAll(() => {
    sqliteDir = fs.mkdtempSync(path.join(os.tmpdir(), "rl-ledger-pg-"));
    sqliteDb = openDatabase(sqliteDir);
  });
  afterAll(() => {
    sqliteDb?.$client.close();
    if (sqliteDir) fs.rmSync(sqliteDir, { recursive: true, force: true });
  });

  it("migrations build every table, column and trigger on an empty database; a second run changes nothing", async () => {
    await withScratch(async (db) => {
      // db/schema-pg's tables and the PostgreSQL-only ones (the cluster artifact store, the "Verify now" jobs).
      const tables = (
        [...Object.values(pgSchema), ...Object.values(pgOnlySchema), ...Object.values(pgVerifyJobsSchema)] as unknown[]
      ).filter((t): t is PgTable => is(t, PgTable));
      // The migrations and db/schema-pg describe the same database: columns with their SQL types and nullability,
      // and every index (primary keys, unique constraints, declared indexes) by name.
      const expected = tables.flatMap((t) => {
        const cfg = getTableConfig(t);
        return cfg.columns.map((c) => `${cfg.name}.${c.name} ${c.getSQLType()} ${c.notNull ? "NOT NULL" : "NULL"}`);
      });
      const live = await db.execute<{ c: string }>(
        sql`SELECT table_name || '.' || column_name || ' ' || (CASE WHEN data_type = 'USER-DEFINED' THEN udt_name ELSE data_type END)
              || (CASE WHEN is_nullable = 'NO' THEN ' NOT NULL' ELSE ' NULL' END) AS c
            FROM information_schema.columns WHERE table_schema = 'public'`,
      );
      expect(live.rows.map((r) => r.c).sort()).toEqual(expected.sort());
      const expectedIndexes = tables.flatMap((t) => {
        const cfg = getTableConfig(t);
        return [
          ...cfg.columns.filter((c) => c.primary).map(() => `${cfg.name}_pkey`),
          ...cfg.primaryKeys.map((pk) => pk.getName()),
          ...cfg.columns.filter((c) => c.isUnique).map((c) => c.uniqueName!),
          ...cfg.indexes.map((i) => i.config.name!),
        ];
      });
      const liveIndexes = await db.execute<{ name: string }>(sql`SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public'`);
      expect(liveIndexes.rows.map((r) => r.name).sort()).toEqual(expectedIndexes.sort());

      const triggers = await db.execute<{ name: string }>(sql`SELECT tgname AS name FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`);
      const names = triggers.rows.map((r) => r.name);
      for (const t of APPEND_ONLY_TABLES)
        expect(names).toEqual(expect.arrayContaining([`${t}_no_update`, `${t}_no_delete`, `${t}_no_truncate`]));
      expect(names).toEqual(expect.arrayContaining(["run_interventions_no_delete", "run_interventions_one_transition"]));

      const journal = JSON.parse(fs.readFileSync(path.join(PG_MIGRATIONS_DIR, "meta", "_journal.json"), "utf8")) as { entries: unknown[] };
      await migratePg(db);
      const applied = await db.execute<{ n: string }>(sql`SELECT count(*) AS n FROM drizzle.__drizzle_migrations`);
      expect(Number(applied.rows[0]!.n)).toBe(journal.entries.length);
    });
  });

  it("the same events get the same stored bytes and hashes on SQLite and on PostgreSQL", async () => {
    const events: NewAuditEvent[] = [
      {
        actor: { id: 3, name: "Ada Lovelace", role: "engineer" },
        action: "run.create",
        entityType: "run",
        entityId: 17,
        payload: { z: [1, 2.5, -0, 1e21, 1e-7], a: 'ünïcödé ✓ \u2028 "quoted" \\ \u0007', nested: { b: null, a: true } },
        at: "2026-12-04T10:00:00.000Z",
      },
      {
        actor: { id: 4, name: "Grace Hopper", role: "reviewer", tokenId: 9 },
        action: "signature.create",
        entityType: "promotionRequest",
        entityId: "5",
        payload: { meaning: "approval", recordSha256: "ab".repeat(32), emoji: "🧪" },
        at: "2026-12-04T10:00:01.000Z",
      },
      {
        actor: { id: null, name: "Runledger server", role: "system" },
        action: "audit.checkpoint",
        entityType: "auditCheckpoint",
        entityId: 1,
        payload: {},
        at: "2026-12-04T10:00:02.000Z",
      },
    ];
    const onSqlite = sqliteDb.transaction((tx) => events.map((e) => appendAuditEvent(tx, e)));
    expect(sqliteDb.select().from(sqliteAuditEvents).orderBy(asc(sqliteAuditEvents.seq)).all()).toEqual(onSqlite);

    await withScratch(async (db) => {
      const returned: AuditEventRow[] = [];
      for (const e of events) returned.push(await db.transaction((tx) => appendAuditEventPg(tx, e)));
      expect(returned).toEqual(onSqlite);
      const stored = await pgEvents(db);
      expect(stored).toEqual(onSqlite);
      // Byte for byte, as PostgreSQL holds them (not only as JS strings after decoding).
      const bytes = await db.execute<{ seq: string; payload: Buffer }>(
        sql`SELECT seq, convert_to(payload, 'UTF8') AS payload FROM audit_events ORDER BY seq`,
      );
      expect(bytes.rows.map((r) => Buffer.from(r.payload).toString("hex"))).toEqual(
        onSqlite.map((r) => Buffer.from(r.payload, "utf8").toString("hex")),
      );
    });
  });

  it("processes appending at once, with rollbacks, leave a gapless seq whose chain verifies", async () => {
    const CHILDREN = 4;
    const PER_CHILD = 30; // every fifth rolls back: 24 committed each
    const PARALLEL = 3;
    await withScratch(async (db, scratch) => {
      // Hold the ledger lock while the children start, so their appends all queue on it and then race.
      const gate = await db.$client.connect();
      await gate.query("BEGIN");
      await gate.query("SELECT pg_advisory_xact_lock($1)", [PG_LOCK_KEYS.ledger.toString()]);
      const children = Array.from({ length: CHILDREN }, (_, k) => runChild(scratch.url, `c${k}`, PER_CHILD, PARALLEL));
      const deadline = Date.now() + 60_000;
      let queued = 0;
      for (;;) {
        const waiting = await db.execute<{ n: string }>(
          sql`SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
              WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()`,
        );
        queued = Number(waiting.rows[0]!.n);
        if (queued >= CHILDREN * PARALLEL || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // Every transaction of every child is waiting on the lock: they contend from the first append on.
      expect(queued).toBe(CHILDREN * PARALLEL);
      await gate.query("COMMIT");
      gate.release();
      const released = Date.now();
      const outputs = await Promise.all(children);
      console.log(
        `ledger-pg: ${CHILDREN} processes x ${PARALLEL} connections appended ${CHILDREN * PER_CHILD} events in ${Date.now() - released} ms`,
      );

      const committed = outputs.flatMap((o) => o.committed).sort((a, b) => a - b);
      const total = CHILDREN * (PER_CHILD - PER_CHILD / 5);
      expect(committed).toEqual(Array.from({ length: total }, (_, i) => i + 1));

      const rows = await pgEvents(db);
      expect(rows.map((r) => r.seq)).toEqual(committed);
      // Exactly the committed events, each once; the rolled-back ones are not there.
      const expectedIds = outputs.flatMap((o) =>
        Array.from({ length: PER_CHILD }, (_, i) => i)
          .filter((i) => i % 5 !== 4)
          .map((i) => `${o.label}-${i}`),
      );
      expect(rows.map((r) => r.entityId).sort()).toEqual(expectedIds.sort());

      const key = generateAuditKeys();
      const result = verifyAuditEvents(rows, [], key);
      expect(result.levels.chain).toMatchObject({ ok: true, events: total, problem: null });
      expect(result.firstBadSeq).toBeNull();
      // The same verifier finds an edit in rows read from PostgreSQL.
      const tampered = rows.map((r) => (r.seq === 40 ? { ...r, payload: r.payload.replace(/"i":\d+/, '"i":999') } : r));
      expect(verifyAuditEvents(tampered, [], key).firstBadSeq).toBe(40);
    });
  });

  it("rejects UPDATE, DELETE and TRUNCATE on the append-only tables, and an append outside READ COMMITTED", async () => {
    await withScratch(async (db) => {
      await db.transaction((tx) =>
        appendAuditEventPg(tx, {
          actor: { id: null, name: "t", role: "system" },
          action: "run.log",
          entityType: "run",
          entityId: 1,
          payload: {},
        }),
      );
      await db.execute(
        sql`INSERT INTO audit_checkpoints (tree_size, root_hash, at, reason, key_fingerprint, signature) VALUES (1, 'r', 'now', 'test', 'fp', 's')`,
      );
      await db.execute(
        sql`INSERT INTO witness_cosignatures (checkpoint_id, origin, tree_size, root_hash, witness_name, key_id, timestamp, signature, received_at)
            VALUES (1, 'o', 1, 'r', 'w', '00000000', 1, 's', 'now')`,
      );
      for (const table of ["audit_events", "audit_checkpoints", "witness_cosignatures"]) {
        const column = table === "audit_events" ? "payload" : "tree_size";
        const update = await rejection(db.execute(sql.raw(`UPDATE ${table} SET ${column} = ${column}`)));
        expect(pgMessage(update)).toBe(`${table} is append-only: UPDATE rejected`);
        const del = await rejection(db.execute(sql.raw(`DELETE FROM ${table}`)));
        expect(pgMessage(del)).toBe(`${table} is append-only: DELETE rejected`);
      }
      for (const table of APPEND_ONLY_TABLES) {
        const truncate = await rejection(db.execute(sql.raw(`TRUNCATE ${table} CASCADE`)));
        expect(pgMessage(truncate)).toMatch(
          new RegExp(`^${table === "documents" ? "document versions" : table} (is append-only|are immutable): TRUNCATE rejected$`),
        );
      }
      expect((await pgEvents(db)).length).toBe(1);

      const stale = await rejection(
        db.transaction(
          (tx) =>
            appendAuditEventPg(tx, {
              actor: { id: null, name: "t", role: "system" },
              action: "run.log",
              entityType: "run",
              entityId: 2,
              payload: {},
            }),
          { isolationLevel: "repeatable read" },
        ),
      );
      expect(stale.message).toMatch(/needs a READ COMMITTED transaction \(this one is repeatable read\)/);
      expect((await pgEvents(db)).length).toBe(1);
    });
  });

  it("keeps decisions immutable and lets a run intervention change only once, out of pending", async () => {
    await withScratch(async (db) => {
      const run = async (text: string) => db.execute(sql.raw(text));
      await run(`INSERT INTO users (id, email, name, role, password_hash, created_at) VALUES (1, 'e@x', 'E', 'engineer', 'h', 't')`);
      await run(`INSERT INTO projects (id, name, created_by, created_at) VALUES (1, 'p', 1, 't')`);
      await run(`INSERT INTO experiments (id, project_id, name, created_by, created_at) VALUES (1, 1, 'x', 1, 't')`);
      await run(`INSERT INTO runs (id, experiment_id, name, status, config_json, config_sha256, seed, created_by, created_at)
                 VALUES (1, 1, 'r', 'running', '{}', 's', 1, 1, 't')`);
      await run(
        `INSERT INTO decisions (id, run_id, kind, path, rationale, author_id, created_at) VALUES (1, 1, 'note', '', 'why', 1, 't')`,
      );
      expect(pgMessage(await rejection(run(`UPDATE decisions SET rationale = 'other'`)))).toBe(
        "decisions are immutable: UPDATE rejected (add a correction instead)",
      );
      expect(pgMessage(await rejection(run(`DELETE FROM decisions`)))).toBe("decisions are immutable: DELETE rejected");

      await run(`INSERT INTO run_interventions (id, run_id, kind, changes_json, rationale, requested_by, requested_at)
                 VALUES (1, 1, 'pause', '[]', 'look', 1, 't')`);
      const transition = "run interventions change only once, from pending to applied, cancelled or rejected: UPDATE rejected";
      // The request columns never change, not even with the transition.
      expect(pgMessage(await rejection(run(`UPDATE run_interventions SET status = 'applied', rationale = 'edited'`)))).toBe(transition);
      await run(`UPDATE run_interventions SET status = 'applied', applied_at_epoch = 3, applied_at = 't2'`);
      expect(pgMessage(await rejection(run(`UPDATE run_interventions SET status = 'cancelled'`)))).toBe(transition);
      expect(pgMessage(await rejection(run(`DELETE FROM run_interventions`)))).toBe("run interventions are records: DELETE rejected");
      const rows = await db.execute<{ status: string; rationale: string }>(sql`SELECT status, rationale FROM run_interventions`);
      expect(rows.rows).toEqual([{ status: "applied", rationale: "look" }]);
    });
  });
});

type ChildOutput = { label: string; committed: number[] };

function runChild(url: string, label: string, count: number, parallel: number): Promise<ChildOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "server/audit/tests/pg-append-child.ts", url, label, String(count), String(parallel)],
      { cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`append child ${label} exited with ${code}: ${err}`));
      else resolve(JSON.parse(out) as ChildOutput);
    });
  });
}
