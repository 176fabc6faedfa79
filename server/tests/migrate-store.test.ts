/**
 * `migrate-store` (issue 16) against a real throwaway PostgreSQL (server/tests/pg-test-env.ts) and a real source
 * installation built with the services: a trained Iris run, a decision note, a registered model, signed ledger
 * checkpoints. The copy commits only after its check passes; it equals the source table by table, its ledger
 * verifies and its Merkle roots equal the source's (also recomputed here with merkle.ts), every artifact reads back
 * from the cluster store with its hash checked, and the identity sequences hand out new ids. A tampered copy (an
 * event changed with its trigger disabled by the owner, a changed artifact chunk) is named by `--check`; a non-empty
 * target and a second run are refused without writing anything.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describePg, createScratchPgDatabase, withPgClient, type ScratchPgDatabase } from "./pg-test-env";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { migrateStoreCommand } from "@/server/cli/migrate-store";
import type { MigrateStoreSummary } from "@/server/backup/migrate-store";
import type { StoreCopyCheck } from "@/server/backup/store-copy-check";
import { storeTables } from "@/server/backup/store-tables";
import { createAuditCheckpoint } from "@/server/audit/checkpoints";
import { merkleRoot } from "@/server/audit/merkle";
import { forgeEventOnPg } from "./pg-forged-event";
import { listFileArtifacts } from "@/server/artifacts/async-store";
import { CLUSTER_ARTIFACT_CHUNK_BYTES, pgArtifactStore, verifyArtifactPg } from "@/server/artifacts/pg-store";
import { ArtifactIntegrityError, artifactPath } from "@/contracts/artifact-layout";
import { migratePg, openPgDatabase } from "@/db/pg-client";
import { openDatabase } from "@/db/client";
import { fileArtifactStore } from "@/server/artifacts/store";
import { enqueueRunOn } from "@/server/runs/orchestrator/run-queue";

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) }, out, err };
}

async function check(url: string, dataDir: string): Promise<{ code: number; check: StoreCopyCheck }> {
  const r = io();
  const code = await migrateStoreCommand(["--check", "--from", dataDir, "--to", url, "--json"], r.io);
  return { code, check: (JSON.parse(r.out.join("")) as { check: StoreCopyCheck }).check };
}

describePg("[migrate-store] a SQLite installation moved to PostgreSQL", () => {
  let app: TestApp;
  let target: ScratchPgDatabase;
  let summary: MigrateStoreSummary;
  const scratches: ScratchPgDatabase[] = [];

  beforeAll(async () => {
    app = createTestApp();
    const engineer = app.as("engineer");
    const { id: runId } = await engineer.runs.create({
      experimentId: app.experimentId,
      config: irisConfig({ epochs: 3 }),
      rationale: "to migrate",
    });
    await app.orchestrator.waitFor(runId);
    expect((await engineer.runs.get({ id: runId })).status).toBe("completed");
    createAuditCheckpoint(app.db, app.auditKeys, "test: after training");
    await engineer.decisions.addNote({ runId, rationale: "the loss flattens after epoch 2" });
    await engineer.models.register({ runId, modelName: "iris-migrated" });
    createAuditCheckpoint(app.db, app.auditKeys, "test: after registering");
    await engineer.decisions.addNote({ runId, rationale: "an event after the last checkpoint" });
    target = await createScratchPgDatabase();
    scratches.push(target);
  }, 120_000);

  afterAll(async () => {
    app?.close();
    for (const s of scratches) await s.drop();
  });

  it("copies every table, the ledger verbatim and the artifacts; the check passes and the copy equals the source", async () => {
    const r = io();
    const code = await migrateStoreCommand(["--from", app.dataDir, "--to", target.url, "--json"], r.io);
    expect(code, r.err.join("")).toBe(0);
    summary = JSON.parse(r.out.join("")) as MigrateStoreSummary;
    expect(summary.committed).toBe(true);
    expect(summary.check.mismatches).toEqual([]);
    expect(r.err.join("")).toMatch(/copied audit_events: \d+ row\(s\)/);
    expect(r.err.join("")).toContain("committed");

    // Row counts: the summary's, and PostgreSQL's, equal SQLite's, table by table.
    const sqlite = app.db.$client;
    await withPgClient(target.url, async (c) => {
      for (const t of storeTables()) {
        const n = (sqlite.prepare(`SELECT count(*) AS n FROM "${t.name}"`).get() as { n: number }).n;
        expect(summary.tables.find((x) => x.name === t.name)?.rows, t.name).toBe(n);
        expect(Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM "${t.name}"`)).rows[0]!.n), t.name).toBe(n);
      }
      expect(summary.tables.find((t) => t.name === "models")?.rows).toBe(1);
      expect(summary.tables.find((t) => t.name === "decisions")!.rows).toBeGreaterThanOrEqual(2);

      // audit_events byte for byte.
      const cols = "seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash";
      const src = sqlite.prepare(`SELECT ${cols} FROM audit_events ORDER BY seq`).raw(true).all() as unknown[][];
      const dst = (await c.query<unknown[]>({ text: `SELECT ${cols} FROM audit_events ORDER BY seq`, rowMode: "array" })).rows.map((row) =>
        row.map((v, i) => (i === 0 || (i === 2 && v !== null) ? Number(v) : v)),
      );
      expect(dst).toEqual(src);

      // Merkle roots recomputed here from PostgreSQL's leaves equal every signed root of the source.
      const leaves = dst.map((row) => Buffer.from(row[9] as string, "hex"));
      const signed = sqlite.prepare("SELECT tree_size AS size, root_hash AS root FROM audit_checkpoints ORDER BY id").all() as {
        size: number;
        root: string;
      }[];
      expect(signed.length).toBeGreaterThanOrEqual(2);
      for (const cp of signed) expect(merkleRoot(leaves.slice(0, cp.size)).toString("hex")).toBe(cp.root);
      expect(summary.check.ledger.targetVerifies).toBe(true);
      expect(summary.check.ledger.roots.map((x) => x.treeSize)).toEqual(expect.arrayContaining([...signed.map((s) => s.size), src.length]));
      expect(summary.check.ledger.roots.every((x) => x.equal && x.source === x.target)).toBe(true);

      // The identity sequences continue after the copied ids (tried in a transaction that is rolled back).
      await c.query("BEGIN");
      const next = await c.query<{ id: string }>(
        "INSERT INTO audit_checkpoints (tree_size, root_hash, at, reason, key_fingerprint, signature) VALUES (0, 'x', 'x', 'x', 'x', 'x') RETURNING id",
      );
      await c.query("ROLLBACK");
      const maxId = (sqlite.prepare("SELECT max(id) AS m FROM audit_checkpoints").get() as { m: number }).m;
      expect(Number(next.rows[0]!.id)).toBe(maxId + 1);
    });

    // Every artifact reads back from the cluster store, byte for byte.
    const files = listFileArtifacts(app.dataDir);
    expect(files.length).toBeGreaterThanOrEqual(4);
    expect(summary.artifacts.count).toBe(files.length);
    expect(summary.artifacts.bytes).toBe(files.reduce((s, f) => s + f.bytes, 0));
    const db = openPgDatabase(target.url, { max: 2 });
    try {
      const store = pgArtifactStore(db.$client);
      for (const f of files)
        expect(Buffer.from(await store.get(f.sha256)).equals(fs.readFileSync(artifactPath(app.dataDir, f.sha256)))).toBe(true);
      const listed: string[] = [];
      for await (const a of store.list()) listed.push(a.sha256);
      expect(listed).toEqual(files.map((f) => f.sha256));
    } finally {
      await db.$client.end();
    }
  }, 60_000);

  it("refuses to run again: the target is not empty, and nothing changes", async () => {
    const before = await withPgClient(
      target.url,
      async (c) => (await c.query<{ n: string }>("SELECT count(*) AS n FROM audit_events")).rows[0]!.n,
    );
    const r = io();
    expect(await migrateStoreCommand(["--from", app.dataDir, "--to", target.url], r.io)).toBe(1);
    expect(r.err.join("")).toContain("the target database is not empty: it already holds Runledger data (rows in artifact_blobs");
    expect(r.err.join("")).toContain("nothing was written");
    const after = await withPgClient(
      target.url,
      async (c) => (await c.query<{ n: string }>("SELECT count(*) AS n FROM audit_events")).rows[0]!.n,
    );
    expect(after).toBe(before);
    expect((await check(target.url, app.dataDir)).code).toBe(0);
  }, 30_000);

  it("names a rewritten event (changed by the owner with its trigger disabled, hashes recomputed) and a changed artifact chunk", async () => {
    // A careful forger (pg-forged-event.ts): the chain is internally consistent; only the signed roots and the source can tell.
    const seq = 5;
    const forged = await forgeEventOnPg(target.url, seq, { leaveTriggerDisabled: true });
    const tampered = await check(target.url, app.dataDir);
    expect(tampered.code).toBe(1);
    const m = tampered.check.mismatches.join("\n");
    expect(m).toContain(`table audit_events:`);
    expect(m).toContain(`(first difference: row seq=${seq} differs)`);
    expect(m).toMatch(/the ledger on PostgreSQL does not verify: checkpoint #\d+ \(tree size \d+\) root does not match the events/);
    expect(m).toMatch(/Merkle root at tree size \d+ differs: source [0-9a-f]{64}, PostgreSQL [0-9a-f]{64}/);
    expect(m).toContain("protective trigger audit_events_no_update is missing or disabled");
    expect(tampered.check.ledger.roots.filter((r) => r.treeSize >= seq).every((r) => !r.equal)).toBe(true);
    expect(tampered.check.ledger.roots.filter((r) => r.treeSize < seq).every((r) => r.equal)).toBe(true);

    // Put back as it was: the check passes again (it is not a check that always fails).
    await forged.restore();
    expect((await check(target.url, app.dataDir)).check.mismatches).toEqual([]);

    // One byte of one artifact chunk.
    const victim = listFileArtifacts(app.dataDir)[0]!.sha256;
    await withPgClient(target.url, (c) =>
      c.query("UPDATE artifact_chunks SET data = set_byte(data, 0, 255 - get_byte(data, 0)) WHERE sha256 = $1 AND idx = 0", [victim]),
    );
    const corrupted = await check(target.url, app.dataDir);
    expect(corrupted.code).toBe(1);
    expect(corrupted.check.mismatches).toEqual([
      expect.stringMatching(new RegExp(`^artifact ${victim} is corrupted: its content hashes to [0-9a-f]{64}$`)),
    ]);
    const db = openPgDatabase(target.url, { max: 1 });
    try {
      await expect(pgArtifactStore(db.$client).get(victim)).rejects.toBeInstanceOf(ArtifactIntegrityError);
    } finally {
      await db.$client.end();
    }
  }, 60_000);

  it("refuses a database that holds anything else, before writing anything (not even the migrations)", async () => {
    const other = await createScratchPgDatabase();
    scratches.push(other);
    await withPgClient(other.url, (c) => c.query("CREATE TABLE keep (x integer); INSERT INTO keep VALUES (1)"));
    const r = io();
    expect(await migrateStoreCommand(["--from", app.dataDir, "--to", other.url], r.io)).toBe(1);
    expect(r.err.join("")).toContain("the target database is not empty: it has table(s) Runledger does not own: keep");
    await withPgClient(other.url, async (c) => {
      const tables = await c.query<{ name: string }>(
        "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND c.relkind = 'r'",
      );
      expect(tables.rows.map((t) => t.name)).toEqual(["keep"]);
    });
    const nothing = io();
    expect(await migrateStoreCommand(["--check", "--from", app.dataDir, "--to", other.url], nothing.io)).toBe(1);
    expect(nothing.err.join("")).toContain("holds no Runledger tables: nothing to compare");
    const usage = io();
    expect(await migrateStoreCommand(["--from", app.dataDir, "--to", "/tmp/not-a-url"], usage.io)).toBe(2);
    expect(usage.err.join("")).toContain("--to must be a PostgreSQL URL");
  }, 30_000);

  it("two copies started together into one empty database: exactly one commits, the other is refused", async () => {
    const fresh = await createScratchPgDatabase();
    scratches.push(fresh);
    const [a, b] = [io(), io()];
    const codes = await Promise.all([
      migrateStoreCommand(["--from", app.dataDir, "--to", fresh.url, "--json"], a.io),
      migrateStoreCommand(["--from", app.dataDir, "--to", fresh.url, "--json"], b.io),
    ]);
    expect([...codes].sort()).toEqual([0, 1]);
    const loser = codes[0] === 1 ? a : b;
    expect(loser.err.join("")).toContain("the target database is not empty");
    const n = await withPgClient(
      fresh.url,
      async (c) => (await c.query<{ n: string }>("SELECT count(*) AS n FROM audit_events")).rows[0]!.n,
    );
    expect(Number(n)).toBe((app.db.$client.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n);
  }, 60_000);

  it("a copy that fails halfway (a damaged source artifact) commits nothing; once repaired, the same target takes it", async () => {
    const damaged = fs.mkdtempSync(path.join(os.tmpdir(), "rl-migrate-damaged-"));
    try {
      await app.db.$client.backup(path.join(damaged, "runledger.sqlite"));
      fs.cpSync(path.join(app.dataDir, "artifacts"), path.join(damaged, "artifacts"), { recursive: true });
      fs.copyFileSync(path.join(app.dataDir, "audit-ed25519.pub"), path.join(damaged, "audit-ed25519.pub"));
      const victim = listFileArtifacts(damaged).at(-1)!.sha256;
      const file = artifactPath(damaged, victim);
      const good = fs.readFileSync(file);
      const bad = Buffer.from(good);
      bad[0] = bad[0]! ^ 0xff;
      fs.writeFileSync(file, bad);
      const fresh = await createScratchPgDatabase();
      scratches.push(fresh);
      const r = io();
      expect(await migrateStoreCommand(["--from", damaged, "--to", fresh.url], r.io)).toBe(1);
      expect(r.err.join("")).toContain(`artifact ${victim} is corrupted: its content hashes to`);
      expect(r.err.join("")).toContain("nothing was committed to the target");
      await withPgClient(fresh.url, async (c) => {
        for (const t of ["audit_events", "runs", "artifact_blobs", "artifact_chunks"])
          expect((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n, t).toBe("0");
      });
      fs.writeFileSync(file, good);
      const again = io();
      expect(await migrateStoreCommand(["--from", damaged, "--to", fresh.url], again.io), again.err.join("")).toBe(0);
    } finally {
      fs.rmSync(damaged, { recursive: true, force: true });
    }
  }, 60_000);

  it("a run queued in the source gets its training job on PostgreSQL, committed with the copy", async () => {
    const queued = fs.mkdtempSync(path.join(os.tmpdir(), "rl-migrate-queued-"));
    try {
      await app.db.$client.backup(path.join(queued, "runledger.sqlite"));
      fs.cpSync(path.join(app.dataDir, "artifacts"), path.join(queued, "artifacts"), { recursive: true });
      fs.copyFileSync(path.join(app.dataDir, "audit-ed25519.pub"), path.join(queued, "audit-ed25519.pub"));
      const db = openDatabase(queued);
      const runId = (db.$client.prepare("SELECT max(id) AS id FROM runs").get() as { id: number }).id;
      expect(await enqueueRunOn(db, runId)).toBe(true);
      db.$client.close();
      const fresh = await createScratchPgDatabase();
      scratches.push(fresh);
      const r = io();
      expect(await migrateStoreCommand(["--from", queued, "--to", fresh.url, "--json"], r.io), r.err.join("")).toBe(0);
      expect((JSON.parse(r.out.join("")) as MigrateStoreSummary).queuedJobs).toBe(1);
      const jobs = await withPgClient(
        fresh.url,
        async (c) =>
          (
            await c.query(
              "SELECT t.identifier AS task_identifier, j.key, j.payload FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id",
            )
          ).rows,
      );
      expect(jobs).toEqual([{ task_identifier: "train_run", key: `run:${runId}`, payload: { runId } }]);
    } finally {
      fs.rmSync(queued, { recursive: true, force: true });
    }
  }, 60_000);

  it("resume-state pointer files of an older installation become rows of resume_states; the check and --check compare them", async () => {
    const older = fs.mkdtempSync(path.join(os.tmpdir(), "rl-migrate-pointers-"));
    try {
      await app.db.$client.backup(path.join(older, "runledger.sqlite"));
      fs.cpSync(path.join(app.dataDir, "artifacts"), path.join(older, "artifacts"), { recursive: true });
      fs.copyFileSync(path.join(app.dataDir, "audit-ed25519.pub"), path.join(older, "audit-ed25519.pub"));
      const source = openDatabase(older);
      const runId = (source.$client.prepare("SELECT max(id) AS id FROM runs").get() as { id: number }).id;
      const rowsBefore = source.$client
        .prepare("SELECT run_id, epoch, state_sha256 FROM resume_states ORDER BY run_id, epoch")
        .raw(true)
        .all() as [number, number, string][];
      const state = fileArtifactStore(older).put(new TextEncoder().encode("a state stored before the table"));
      source.$client.close();
      const dir = path.join(older, "resume-states");
      fs.mkdirSync(dir);
      const pointer = (name: string, sha: string) => fs.writeFileSync(path.join(dir, name), JSON.stringify({ stateSha256: sha }));
      pointer(`${runId}-40.json`, state.sha256);
      pointer(`${runId}-41.json`, "e".repeat(64));
      pointer(`99999-1.json`, state.sha256);
      // A file beside a row of the table: the row wins (as loading does).
      if (rowsBefore.length > 0) pointer(`${String(rowsBefore[0]![0])}-${String(rowsBefore[0]![1])}.json`, state.sha256);
      const fresh = await createScratchPgDatabase();
      scratches.push(fresh);
      const r = io();
      expect(await migrateStoreCommand(["--from", older, "--to", fresh.url, "--json"], r.io), r.err.join("")).toBe(0);
      const moved = JSON.parse(r.out.join("")) as MigrateStoreSummary;
      expect(moved.check.mismatches).toEqual([]);
      const note = moved.notCopied.find((n) => n.startsWith("resume-states/"));
      expect(note).toContain(`1 copied as rows of resume_states, ${rowsBefore.length > 0 ? 1 : 0} already row(s) there`);
      expect(note).toMatch(
        new RegExp(`${runId}-41\\.json: its state e{64} is not in the artifact store; 99999-1\\.json: run 99999 is not in the database`),
      );
      const pgRows = await withPgClient(fresh.url, async (c) =>
        (
          await c.query({ text: "SELECT run_id, epoch, state_sha256 FROM resume_states ORDER BY run_id, epoch", rowMode: "array" })
        ).rows.map((row: unknown[]) => [Number(row[0]), Number(row[1]), row[2]]),
      );
      const expected = [...rowsBefore, [runId, 40, state.sha256] as [number, number, string]].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      expect(pgRows).toEqual(expected);
      // The source was not changed, and a later --check builds the same view of it.
      expect(fs.readdirSync(dir)).toHaveLength(rowsBefore.length > 0 ? 4 : 3);
      const later = await check(fresh.url, older);
      expect(later.check.mismatches).toEqual([]);
      expect(later.code).toBe(0);
    } finally {
      fs.rmSync(older, { recursive: true, force: true });
    }
  }, 60_000);

  it("the cluster artifact store: chunked, content-addressed, written once, hash checked on read", async () => {
    const scratch = await createScratchPgDatabase();
    scratches.push(scratch);
    const db = openPgDatabase(scratch.url, { max: 4 });
    try {
      await migratePg(db);
      const store = pgArtifactStore(db.$client);
      const bytes = crypto.randomBytes(2 * CLUSTER_ARTIFACT_CHUNK_BYTES + 123);
      const [a, b] = await Promise.all([store.put(bytes), store.put(bytes)]);
      expect(a).toEqual({ sha256: crypto.createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length });
      expect(b).toEqual(a);
      const rows = await db.$client.query<{ idx: number; n: number }>(
        "SELECT idx, length(data) AS n FROM artifact_chunks WHERE sha256 = $1 ORDER BY idx",
        [a.sha256],
      );
      expect(rows.rows).toEqual([
        { idx: 0, n: CLUSTER_ARTIFACT_CHUNK_BYTES },
        { idx: 1, n: CLUSTER_ARTIFACT_CHUNK_BYTES },
        { idx: 2, n: 123 },
      ]);
      expect(Buffer.from(await store.get(a.sha256)).equals(bytes)).toBe(true);
      expect(await store.has(a.sha256)).toBe(true);
      const empty = await store.put(new Uint8Array(0));
      expect((await store.get(empty.sha256)).byteLength).toBe(0);
      await db.$client.query("DELETE FROM artifact_chunks WHERE sha256 = $1 AND idx = 2", [a.sha256]);
      await expect(store.get(a.sha256)).rejects.toThrow(/is corrupted: 2 chunk\(s\) stored \(idx 0,1\), 3 expected/);
      // The check's streaming read (a cursor, chunk by chunk) says the same.
      const c = await db.$client.connect();
      try {
        await c.query("BEGIN READ ONLY");
        await expect(verifyArtifactPg(c, a.sha256)).rejects.toThrow(/is corrupted: 2 chunk\(s\) stored \(idx 0,1\), 3 expected/);
        expect(await verifyArtifactPg(c, empty.sha256)).toBe(0);
      } finally {
        await c.query("ROLLBACK");
        c.release();
      }
    } finally {
      await db.$client.end();
    }
  }, 30_000);
});
