/**
 * The auditor's report exported from the PostgreSQL store (issue 16), through the browser's path (reportExportPost:
 * the worker thread, the one write on this thread). A test app's record (a trained run, its version promoted with a
 * reviewer's signature, a signed model card) is copied into a scratch database with migrate-store; then:
 * - the same version exported from SQLite and from PostgreSQL gives the same facts (sha256), the same export event seq
 *   and the same cited events; the PostgreSQL bundle passes the report verifier and the standalone verify-bundle.mjs,
 *   and the store holds the "audit.export" event and the checkpoint signed over it; no copy is left behind;
 * - with a real witness configured, the export waits for its checkpoint's cosignature (stored on PostgreSQL after the
 *   worker's copy was made) and the bundle carries it: verify-bundle.mjs --witness-key anchors the export's checkpoint;
 * - a row changed on PostgreSQL behind the ledger's back (a run's name) gives a bundle both verifiers fail;
 * - an event edited after the latest checkpoint (its hashes left as they were) gets no export: the checkpoint over the
 *   export event is refused, so no bundle is written, and the worker's copy of the store is removed;
 * - a ledger event under an earlier checkpoint rewritten on PostgreSQL (chain recomputed, trigger disabled by the
 *   owner) gives a bundle whose signed Merkle roots both verifiers fail. (The export's own checkpoint is signed over
 *   the forged log: the signer checks the events since the previous checkpoint, not those under it, as on SQLite.)
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { users } from "@/db/schema";
import { openPgDatabase, type PgDb } from "@/db/pg-client";
import { pgStore, type Store } from "@/db/store";
import type { ReportJson } from "@/server/audit/report/bundle-layout";
import { untarInto } from "@/server/audit/report/tar";
import { verifyReportBundle } from "@/server/audit/report/verify-report";
import { auditEventsWithActionPg, listAuditCheckpointsPg } from "@/server/audit/ledger-pg-reads";
import { migrateStore } from "@/server/backup/migrate-store";
import { DEMO_USERS } from "@/server/demo/seed";
import { reportExportPost } from "@/server/http/report-export";
import { actorOf } from "@/server/users/service";
import { createScratchPgDatabase, describePg, withPgClient, type ScratchPgDatabase } from "./pg-test-env";
import { forgeEventOnPg } from "./pg-forged-event";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { logOrigin, logVerifierKey } from "@/server/audit/witness/checkpoint-note";
import { startWitnessProcess } from "@/server/audit/witness/witness-process";

const MODEL = "iris-report-pg";
const SITE = "http://127.0.0.1:3000";

describePg("auditor's report exported from PostgreSQL", () => {
  let app: TestApp;
  let scratch: ScratchPgDatabase;
  let pgDb: PgDb;
  let store: Store;
  let tmp: string;
  let versionId: number;
  let modelId: number;

  const auditor = () => actorOf(app.db.select().from(users).where(eq(users.email, DEMO_USERS[3]!.email)).get()!);
  const post = () =>
    new Request(`${SITE}/api/report/${versionId}?format=tar`, { method: "POST", headers: { host: "127.0.0.1:3000", origin: SITE } });

  /** POSTs an export on `db` and unpacks the downloaded tar into a new folder; the response when it is not a tar. */
  async function exportFrom(
    db: Store | TestApp["db"],
    name: string,
  ): Promise<{ dir: string; seq: number } | { status: number; text: string }> {
    const res = await reportExportPost({ db, auditKeys: app.auditKeys, dataDir: app.dataDir }, post(), auditor(), String(versionId));
    if (res.status !== 200) return { status: res.status, text: await res.text() };
    const dir = path.join(tmp, name);
    untarInto(Buffer.from(await res.arrayBuffer()), dir);
    return { dir, seq: Number(res.headers.get("x-runledger-export-seq")) };
  }

  function runScript(dir: string): { code: number | null; out: string } {
    const r = spawnSync(process.execPath, ["verify-bundle.mjs", "--json"], {
      cwd: dir,
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", NODE_ENV: "production" },
    });
    return { code: r.status, out: r.stdout + r.stderr };
  }

  const reportJson = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, "report.json"), "utf8")) as ReportJson;
  const pgCopiesLeft = () => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("runledger-report-pg-"));

  beforeAll(async () => {
    app = createTestApp();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-pg-report-test-"));
    const { id: runId } = await app
      .as("engineer")
      .runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 3 }), rationale: "report on PostgreSQL" });
    await app.orchestrator.waitFor(runId);
    const v = await app.as("engineer").models.register({ runId, modelName: MODEL });
    versionId = v.modelVersionId;
    const req = await app.as("engineer").models.requestPromotion({
      modelName: MODEL,
      version: 1,
      acknowledgeMissingDocumentation: true,
      rationale: "v1: good test accuracy",
    });
    await app.as("reviewer").models.sign({ requestId: req.id, meaning: "approval", password: DEMO_USERS[2]!.password });
    modelId = (await app.as("engineer").models.get({ name: MODEL })).id;
    const doc = await app.as("engineer").documents.update({
      subjectType: "model",
      subjectId: modelId,
      section: "intended_use",
      body: "Classifies iris flowers from four measurements. Teaching use only.",
      baseVersion: 0,
    });
    await app.as("engineer").documents.sign({ documentId: doc.id, meaning: "authorship", password: DEMO_USERS[1]!.password });

    scratch = await createScratchPgDatabase();
    await migrateStore({ dataDir: app.dataDir, url: scratch.url });
    pgDb = openPgDatabase(scratch.url, { max: 4 });
    store = pgStore(pgDb);
  }, 240_000);
  afterAll(async () => {
    await pgDb?.$client.end();
    await scratch?.drop();
    app?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("gives the facts SQLite gives, and a bundle both verifiers pass", async () => {
    const copiesBefore = pgCopiesLeft();
    let t0 = performance.now();
    const fromPg = await exportFrom(store, "from-pg");
    const pgMs = performance.now() - t0;
    t0 = performance.now();
    const fromSqlite = await exportFrom(app.db, "from-sqlite");
    console.log(
      `report export (tar, through the worker): PostgreSQL ${pgMs.toFixed(0)} ms, SQLite ${(performance.now() - t0).toFixed(0)} ms`,
    );
    if (!("dir" in fromPg) || !("dir" in fromSqlite)) throw new Error(`export failed: ${JSON.stringify([fromPg, fromSqlite])}`);

    const pgReport = reportJson(fromPg.dir);
    const sqliteReport = reportJson(fromSqlite.dir);
    expect(fromPg.seq).toBe(fromSqlite.seq);
    expect(pgReport.integrity.exportEventSeq).toBe(fromPg.seq);
    expect(pgReport.facts).toEqual(sqliteReport.facts);
    expect(pgReport.facts.modelCard.map((s) => s.latest?.body)).toContain(
      "Classifies iris flowers from four measurements. Teaching use only.",
    );
    expect(pgReport.facts.citedEvents.length).toBeGreaterThan(5);
    expect(pgReport.integrity.checkpoint.treeSize).toBe(fromPg.seq); // signed right after the export event

    const verdict = await verifyReportBundle(fromPg.dir, { publicKeyPem: app.auditKeys.publicKeyPem });
    expect(verdict.problems).toEqual([]);
    expect(verdict.ok).toBe(true);
    const script = runScript(fromPg.dir);
    expect(script.code, script.out).toBe(0);

    // The store holds the export event (its payload binds the facts) and the checkpoint signed over it.
    const exports = await withPgClient(scratch.url, (c) => auditEventsWithActionPg(c, "audit.export"));
    expect(exports.map((e) => [e.seq, e.entityType, e.entityId])).toEqual([[fromPg.seq, "modelVersion", String(versionId)]]);
    expect(JSON.parse(exports[0]!.payload)).toMatchObject({ model: MODEL, version: 1, modelVersionId: versionId });
    const checkpoints = await withPgClient(scratch.url, (c) => listAuditCheckpointsPg(c));
    expect(checkpoints.at(-1)).toMatchObject({
      id: pgReport.integrity.checkpoint.id,
      treeSize: fromPg.seq,
      rootHash: pgReport.integrity.checkpoint.rootHash,
    });
    expect(pgCopiesLeft()).toEqual(copiesBefore);
  }, 180_000);

  it("waits for a real witness to cosign the export's checkpoint on PostgreSQL; the bundle carries it and anchors", async () => {
    const w = await startWitnessProcess({
      logKey: logVerifierKey(logOrigin(app.auditKeys.fingerprint), app.auditKeys.publicKey).vkey,
      name: "witness.test/report-pg",
    });
    const saved = process.env.RUNLEDGER_WITNESSES;
    process.env.RUNLEDGER_WITNESSES = `${w.url}=${w.vkey}`;
    try {
      const exported = await exportFrom(store, "witnessed");
      if (!("dir" in exported)) throw new Error(`export failed: ${JSON.stringify(exported)}`);
      const cos = JSON.parse(fs.readFileSync(path.join(exported.dir, "cosignatures.json"), "utf8")) as {
        cosignatures: { treeSize: number; witnessName: string }[];
        exportCheckpoint: { treeSize: number; witnesses: { cosigned: boolean }[] };
      };
      // The cosignature stored on PostgreSQL after the worker's copy was made reached the bundle (the catch-up).
      expect(cos.exportCheckpoint).toMatchObject({ treeSize: exported.seq, witnesses: [{ cosigned: true }] });
      expect(cos.cosignatures.map((c) => [c.witnessName, c.treeSize])).toEqual([["witness.test/report-pg", exported.seq]]);
      const vkeyFile = path.join(tmp, "witness.vkey");
      fs.writeFileSync(vkeyFile, `${w.vkey}\n`);
      const script = spawnSync(process.execPath, ["verify-bundle.mjs", "--witness-key", vkeyFile, "--json"], {
        cwd: exported.dir,
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "", NODE_ENV: "production" },
      });
      expect(script.status, script.stdout + script.stderr).toBe(0);
      expect(JSON.parse(script.stdout)).toMatchObject({ ok: true, levels: { anchor: { anchored: true, treeSize: exported.seq } } });
    } finally {
      if (saved === undefined) delete process.env.RUNLEDGER_WITNESSES;
      else process.env.RUNLEDGER_WITNESSES = saved;
      await w.stop();
      fs.rmSync(w.keyDir, { recursive: true, force: true });
    }
  }, 180_000);

  it("a record changed on PostgreSQL behind the ledger's back makes the bundle fail both verifiers", async () => {
    const renamed = "renamed behind the ledger's back";
    const original = await withPgClient(scratch.url, async (c) => {
      const r = await c.query<{ id: string; name: string }>("SELECT id, name FROM runs ORDER BY id LIMIT 1");
      await c.query("UPDATE runs SET name = $1 WHERE id = $2", [renamed, r.rows[0]!.id]);
      return r.rows[0]!;
    });
    try {
      const tampered = await exportFrom(store, "tampered-row");
      if (!("dir" in tampered)) throw new Error(`export failed: ${JSON.stringify(tampered)}`);
      expect(JSON.stringify(reportJson(tampered.dir).facts)).toContain(renamed);
      const verdict = await verifyReportBundle(tampered.dir, { publicKeyPem: app.auditKeys.publicKeyPem });
      expect(verdict.ok).toBe(false);
      expect(verdict.problems.join("\n")).toMatch(/run/i);
      expect(runScript(tampered.dir).code).not.toBe(0);
    } finally {
      await withPgClient(scratch.url, (c) => c.query("UPDATE runs SET name = $1 WHERE id = $2", [original.name, original.id]));
    }
  }, 180_000);

  it("a ledger event rewritten on PostgreSQL (chain recomputed) gives a bundle whose signed roots fail both verifiers", async () => {
    const forged = await forgeEventOnPg(scratch.url, 3, { leaveTriggerDisabled: false });
    try {
      const exported = await exportFrom(store, "tampered-ledger");
      if (!("dir" in exported)) throw new Error(`export failed: ${JSON.stringify(exported)}`);
      const verdict = await verifyReportBundle(exported.dir, { publicKeyPem: app.auditKeys.publicKeyPem });
      expect(verdict.ok).toBe(false);
      expect(verdict.ledger.ok).toBe(false);
      expect(verdict.problems.join("\n")).toMatch(/root/i);
      expect(runScript(exported.dir).code).not.toBe(0);
    } finally {
      await forged.restore();
    }
  }, 180_000);

  it("an event edited on PostgreSQL after the latest checkpoint gets no export: the checkpoint is refused, no bundle", async () => {
    const copiesBefore = pgCopiesLeft();
    const restore = await withPgClient(scratch.url, async (c) => {
      const last = (await c.query<{ seq: string; payload: string }>("SELECT seq, payload FROM audit_events ORDER BY seq DESC LIMIT 1"))
        .rows[0]!;
      await c.query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update");
      await c.query("UPDATE audit_events SET payload = $1 WHERE seq = $2", ['{"edited":true}', last.seq]);
      return async () =>
        withPgClient(scratch.url, async (r) => {
          await r.query("UPDATE audit_events SET payload = $1 WHERE seq = $2", [last.payload, last.seq]);
          await r.query("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update");
        });
    });
    try {
      const refused = await exportFrom(store, "edited-ledger");
      expect(refused).toMatchObject({ status: 500 });
      expect((refused as { text: string }).text).toMatch(/refusing to sign/);
      expect(fs.existsSync(path.join(tmp, "edited-ledger"))).toBe(false);
      expect(pgCopiesLeft()).toEqual(copiesBefore);
    } finally {
      await restore();
    }
  }, 180_000);
});
