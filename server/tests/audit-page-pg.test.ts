/**
 * The Audit page's server side on PostgreSQL (issue 16, server/audit/service.ts and its router): a real installation (a trained Iris
 * run, a registered version with an alias, 40,000 more ledger events, a signed checkpoint) built on SQLite and moved
 * to a scratch PostgreSQL database by migrate-store, then every read of the page asked of both stores with the same
 * answers (events and their filters, status, trusted checkpoint, inclusion proofs, report targets and subjects), the
 * refusals included; and the audit router through the web app's own PostgreSQL services (createPgAppServices).
 *
 * "Verify now" on PostgreSQL (verify-jobs-pg.ts): two pools stand for two web servers. A job started on one is the
 * job the other sees (running, its progress, its end) and returns when asked to start; the worker verifies the store
 * as `audit verify --database` does and the outcome is an "audit.verify" event on PostgreSQL. Two starts at once make
 * one job. A real tamper (the protective trigger disabled as superuser, an event's payload rewritten) is reported; a
 * job whose server stopped is reported failed and does not block the next; a worker that cannot run fails the job and
 * records nothing.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { desc, eq, sql } from "drizzle-orm";
import { describePg, createScratchPgDatabase, withPgClient, type ScratchPgDatabase } from "./pg-test-env";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { migrateStoreCommand } from "@/server/cli/migrate-store";
import { createAuditCheckpoint } from "@/server/audit/checkpoints";
import { appendRawEvents } from "@/server/audit/tests/raw-events";
import { openPgDatabase, type PgDb } from "@/db/pg-client";
import { pgStore, reader, type Store } from "@/db/store";
import { createPgAppServices } from "@/server/app-context/app-services";
import { createCaller } from "@/server/trpc/root";
import { actorOf } from "@/server/users/service";
import { auditEvents as pgAuditEvents } from "@/db/schema-pg";
import { auditVerifyJobs } from "@/db/schema-pg/audit-verify-jobs";
import { canonicalJson } from "@/contracts/canonical";
import {
  auditStatus,
  currentLedgerVerification,
  inclusionProof,
  listAuditEvents,
  reportSubjects,
  reportTargets,
  startLedgerVerification,
  trustedCheckpoint,
  type EventFilter,
} from "@/server/audit/service";
import { startVerifyJobOn, type VerifyJob } from "@/server/audit/verify-jobs";
import { STALE_AFTER_MS, waitForPgVerifyJob } from "@/server/audit/verify-jobs-pg";
import type { Actor } from "@/server/audit/ledger";

const RAW_EVENTS = 40_000;

function io() {
  const err: string[] = [];
  return { io: { out: () => undefined, err: (t: string) => void err.push(t) }, err };
}

/** The error a promise rejects with (its class name and message), or "resolved". */
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "resolved";
  } catch (err) {
    return `${(err as Error).constructor.name}: ${(err as Error).message}`;
  }
}

describePg("[audit page] the Audit page's services on PostgreSQL", () => {
  let app: TestApp;
  let scratch: ScratchPgDatabase;
  let dbA: PgDb;
  let dbB: PgDb;
  let storeA: Store;
  let storeB: Store;
  let runId = 0;
  let versionId = 0;
  const auditor: Actor = { id: null, name: "Alex Auditor", role: "auditor" };
  const onSqlite = () => ({ db: app.db, auditKeys: app.auditKeys, dataDir: app.dataDir });
  const serverA = () => ({ db: storeA, auditKeys: app.auditKeys, dataDir: app.dataDir });
  const serverB = () => ({ db: storeB, auditKeys: app.auditKeys, dataDir: app.dataDir });

  beforeAll(async () => {
    app = createTestApp();
    const engineer = app.as("engineer");
    ({ id: runId } = await engineer.runs.create({
      experimentId: app.experimentId,
      config: irisConfig({ epochs: 2 }),
      rationale: "audit page",
    }));
    await app.orchestrator.waitFor(runId);
    const registered = await engineer.models.register({ runId, modelName: "audit-page-model" });
    versionId = registered.modelVersionId;
    await engineer.models.moveAlias({ modelName: "audit-page-model", alias: "staging", version: registered.version, rationale: "to test" });
    appendRawEvents(app.db, RAW_EVENTS); // a ledger long enough for the job's progress to be seen
    createAuditCheckpoint(app.db, app.auditKeys, "test: before the copy");
    auditor.id = app.db.$client.prepare("SELECT id FROM users WHERE name = 'Alex Auditor'").pluck().get() as number;
    scratch = await createScratchPgDatabase();
    const r = io();
    expect(await migrateStoreCommand(["--from", app.dataDir, "--to", scratch.url], r.io), r.err.join("")).toBe(0);
    dbA = openPgDatabase(scratch.url, { max: 4 });
    dbB = openPgDatabase(scratch.url, { max: 4 });
    storeA = pgStore(dbA);
    storeB = pgStore(dbB);
  }, 180_000);

  afterAll(async () => {
    await dbA?.$client.end();
    await dbB?.$client.end();
    await scratch?.drop();
    app?.close();
  });

  describe("reads: the same answers on both stores", () => {
    it("lists events with every filter, case-insensitive patterns and paging alike", async () => {
      const filters: EventFilter[] = [
        { limit: 50 },
        { actor: "runledger SERVER", limit: 20 },
        { actor: "erin", limit: 500 },
        { action: "run", limit: 100 },
        { action: "RUN.", limit: 100 },
        { action: "alias.move", limit: 10 },
        { entityType: "run", entityId: String(runId), limit: 100 },
        { from: "2000-01-01T00:00:00Z", to: "2100-01-01T00:00:00Z", limit: 7 },
        { from: "2100-01-01T00:00:00Z", limit: 7 },
        { beforeSeq: 100, limit: 30 },
        { actor: "runledger", action: "user.", beforeSeq: RAW_EVENTS, limit: 25 },
      ];
      for (const f of filters) {
        const onPg = await listAuditEvents(storeA, f);
        expect(onPg, JSON.stringify(f)).toEqual(await listAuditEvents(app.db, f));
      }
      // The patterns are not vacuous: they match on both stores whatever the case.
      expect((await listAuditEvents(storeA, { actor: "runledger SERVER", limit: 20 })).events).toHaveLength(20);
      expect((await listAuditEvents(storeA, { action: "RUN.", limit: 100 })).events.every((e) => e.action.startsWith("run."))).toBe(true);
      expect((await listAuditEvents(storeA, { action: "alias.move", limit: 10 })).events).toHaveLength(1);
      // Paging: nextBeforeSeq continues where the page ended.
      const first = await listAuditEvents(storeA, { limit: 10 });
      const next = await listAuditEvents(storeA, { limit: 10, beforeSeq: first.nextBeforeSeq! });
      expect(next.events[0]!.seq).toBe(first.events.at(-1)!.seq - 1);
      // A time that is not one is refused alike.
      const bad = { from: "yesterday", limit: 10 };
      expect(await refusal(listAuditEvents(storeA, bad))).toBe(await refusal(listAuditEvents(app.db, bad)));
      expect(await refusal(listAuditEvents(storeA, bad))).toMatch(/DomainError: from "yesterday" is not a time/);
    });

    it("gives the same status and trusted checkpoint, the signature checked under the server's key", async () => {
      const onPg = await auditStatus(serverA());
      expect(onPg).toEqual(await auditStatus(onSqlite()));
      expect(onPg.events).toBeGreaterThan(RAW_EVENTS);
      expect(onPg.latestCheckpoint).toMatchObject({ signatureValid: true, reason: "test: before the copy" });
      expect(await trustedCheckpoint(serverA())).toEqual(await trustedCheckpoint(onSqlite()));
      expect(await trustedCheckpoint(serverA())).toMatchObject({ treeHead: { treeSize: onPg.latestCheckpoint!.treeSize } });
    });

    it("gives the same inclusion proofs from the stored tree levels, checked against the signed root, and the same refusal", async () => {
      const { events } = await auditStatus(serverA());
      const size = (await trustedCheckpoint(serverA()))!.treeHead.treeSize;
      for (const seq of [1, 2, 5, 1000, 12_345, size - 1, size, events]) {
        const { rowsRead: _pgRows, ...onPg } = await inclusionProof(serverA(), seq);
        const { rowsRead: _sqliteRows, ...onSqliteProof } = await inclusionProof(onSqlite(), seq);
        expect(onPg, `seq ${seq}`).toEqual(onSqliteProof);
        expect(onPg.verified).toBe(true);
        if (seq <= size) expect(onPg).toMatchObject({ treeSize: size, signedRoot: true, signatureValid: true });
      }
      expect(await refusal(inclusionProof(serverA(), events + 5))).toBe(await refusal(inclusionProof(onSqlite(), events + 5)));
      expect(await refusal(inclusionProof(serverA(), events + 5))).toMatch(/DomainError: no event seq/);
    });

    it("gives the same report targets and subjects, and the same refusal of an unknown version", async () => {
      const targets = await reportTargets(storeA);
      expect(targets).toEqual(await reportTargets(app.db));
      expect(targets).toEqual([expect.objectContaining({ modelVersionId: versionId, model: "audit-page-model", aliases: ["staging"] })]);
      const subjects = await reportSubjects(storeA, versionId);
      expect(subjects).toEqual(await reportSubjects(app.db, versionId));
      expect(subjects).toMatchObject({
        model: expect.objectContaining({ name: "audit-page-model" }),
        datasets: [{ name: "Iris flowers" }],
      });
      expect(await refusal(reportSubjects(storeA, 9999))).toBe(await refusal(reportSubjects(app.db, 9999)));
      expect(await refusal(reportSubjects(storeA, 9999))).toMatch(/DomainError: .*model version 9999/);
    });
  });

  it("serves the audit router from the web app's PostgreSQL services as from SQLite, Verify now included", async () => {
    const localDir = fs.mkdtempSync(path.join(os.tmpdir(), "rl-audit-page-pg-"));
    // The key the migrated ledger names is the SQLite installation's, in its key directory.
    const web = await createPgAppServices(scratch.url, { localDir, keyDir: app.keyDir, backend: "cpu", poolSize: 4 });
    try {
      const store = web.db as Store;
      const [user] = await reader(store).select().from(store.tables.users).where(eq(store.tables.users.name, "Alex Auditor"));
      const onPg = createCaller({ services: web, user: actorOf(user!), sessionToken: undefined });
      const onSqliteApp = app.as("auditor");
      expect(await onPg.audit.events({ action: "run.", limit: 20 })).toEqual(await onSqliteApp.audit.events({ action: "run.", limit: 20 }));
      expect(await onPg.audit.status()).toEqual(await onSqliteApp.audit.status());
      expect(await onPg.audit.trustedCheckpoint()).toEqual(await onSqliteApp.audit.trustedCheckpoint());
      const { rowsRead: _a, ...proof } = await onPg.audit.inclusionProof({ seq: 7 });
      const { rowsRead: _b, ...sqliteProof } = await onSqliteApp.audit.inclusionProof({ seq: 7 });
      expect(proof).toEqual(sqliteProof);
      expect(await onPg.audit.reportTargets()).toEqual(await onSqliteApp.audit.reportTargets());
      expect(await onPg.audit.reportSubjects({ modelVersionId: versionId })).toEqual(
        await onSqliteApp.audit.reportSubjects({ modelVersionId: versionId }),
      );
      expect(await refusal(onPg.audit.inclusionProof({ seq: 10_000_000 }))).toMatch(/TRPCError: no event seq 10000000/);

      const started = await onPg.audit.verify();
      expect(started).toMatchObject({ alreadyRunning: false, job: { status: "running", startedBy: "Alex Auditor" } });
      expect(await onPg.audit.verifyJob()).toMatchObject({ id: started.job.id });
      const done = (await waitForPgVerifyJob(store))!;
      expect(done).toMatchObject({ id: started.job.id, status: "finished", summary: { ok: true } });
      expect(await onPg.audit.verifyJob()).toEqual(done);
      expect((await onPg.audit.status()).lastVerification).toMatchObject({ seq: done.seq, by: "Alex Auditor", result: { ok: true } });
    } finally {
      await web.close();
      fs.rmSync(localDir, { recursive: true, force: true });
    }
  }, 180_000);

  describe("Verify now on PostgreSQL", () => {
    const lastVerifyEvent = async () =>
      (await dbA.select().from(pgAuditEvents).where(eq(pgAuditEvents.action, "audit.verify")).orderBy(desc(pgAuditEvents.seq)).limit(1))[0];

    it("runs on one server off the request thread; the other server sees the same job, its progress and its end", async () => {
      const t0 = performance.now();
      const first = await startLedgerVerification(serverA(), auditor);
      const requestMs = performance.now() - t0;
      expect(first.alreadyRunning).toBe(false);
      expect(first.job).toMatchObject({ status: "running", startedBy: "Alex Auditor", checked: 0, summary: null, seq: null });
      expect(first.job.total).toBeGreaterThan(RAW_EVENTS);
      expect(requestMs).toBeLessThan(2000); // the snapshot copy and the verification take much longer

      const second = await startLedgerVerification(serverB(), { ...auditor, name: "Erin Engineer" });
      expect(second).toMatchObject({ alreadyRunning: true, job: { id: first.job.id, startedBy: "Alex Auditor", status: "running" } });

      // Server B polls as the page does, while server A's worker runs.
      const seen: VerifyJob[] = [];
      for (;;) {
        const job = (await currentLedgerVerification(serverB()))!;
        seen.push(job);
        if (job.status !== "running") break;
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(seen.every((j) => j.id === first.job.id)).toBe(true);
      expect(seen.some((j) => j.status === "running" && j.checked > 0 && j.checked < j.total)).toBe(true);

      const done = seen.at(-1)!;
      expect(done).toMatchObject({ status: "finished", error: null });
      expect(done.summary).toMatchObject({ ok: true, problem: null, eventsChecked: done.checked });
      expect(done.summary!.trustedKey).toContain(app.auditKeys.fingerprint);
      expect(done.summary!.levels!.chain).toMatchObject({ ok: true, events: first.job.total });
      expect(done.summary!.levels!.content).toMatchObject({ ok: true, problemsTotal: 0 });
      expect(done.summary!.levels!.content.checked).toBeGreaterThan(0);
      expect(done.summary!.levels!.triggers).toMatchObject({ ok: true, missing: [], altered: [] });

      // The outcome is an audit.verify event on PostgreSQL, by the user who asked, right after the verified log.
      const event = (await lastVerifyEvent())!;
      expect(event).toMatchObject({
        seq: done.seq,
        actorName: "Alex Auditor",
        actorId: auditor.id,
        entityType: "auditLedger",
        entityId: "live",
      });
      expect(event.seq).toBe(first.job.total + 1);
      expect(JSON.parse(event.payload)).toEqual(JSON.parse(canonicalJson(done.summary)));
      expect((await auditStatus(serverB())).lastVerification).toMatchObject({ seq: done.seq, by: "Alex Auditor", result: { ok: true } });
      expect(await currentLedgerVerification(serverA())).toEqual(done);

      // A new start after the end starts a new job.
      const again = await startLedgerVerification(serverB(), auditor);
      expect(again).toMatchObject({ alreadyRunning: false, job: { status: "running" } });
      expect(again.job.id).toBeGreaterThan(first.job.id);
      expect((await waitForPgVerifyJob(storeA))!).toMatchObject({ id: again.job.id, status: "finished", summary: { ok: true } });
    }, 180_000);

    it("makes one job of two starts at once on two servers", async () => {
      const [a, b] = await Promise.all([startLedgerVerification(serverA(), auditor), startLedgerVerification(serverB(), auditor)]);
      expect([a.alreadyRunning, b.alreadyRunning].sort()).toEqual([false, true]);
      expect(a.job.id).toBe(b.job.id);
      await waitForPgVerifyJob(storeA);
      const rows = await dbA.select().from(auditVerifyJobs).where(eq(auditVerifyJobs.id, a.job.id));
      expect(rows).toHaveLength(1);
      expect(
        (
          await dbA
            .select({ n: sql<number>`count(*)`.mapWith(Number) })
            .from(auditVerifyJobs)
            .where(eq(auditVerifyJobs.status, "running"))
        )[0]!.n,
      ).toBe(0);
    }, 180_000);

    it("reports a job whose server stopped as failed, and starts the next one anyway", async () => {
      // A row as a server killed mid-job leaves it: running, its heartbeat long past.
      const [orphan] = await dbA
        .insert(auditVerifyJobs)
        .values({
          status: "running",
          startedAt: "2026-01-01T00:00:00.000Z",
          startedBy: "Gone",
          owner: "elsewhere:1",
          heartbeatAt: 0,
          checked: 3,
          total: 9,
        })
        .returning();
      const seen = (await currentLedgerVerification(serverB()))!;
      expect(seen).toMatchObject({ id: orphan!.id, status: "failed", summary: null, seq: null });
      expect(seen.error).toMatch(new RegExp(`elsewhere:1\\) stopped reporting \\(no heartbeat for over ${STALE_AFTER_MS / 1000} s\\)`));

      const next = await startLedgerVerification(serverA(), auditor);
      expect(next.alreadyRunning).toBe(false);
      expect(next.job.id).toBeGreaterThan(orphan!.id);
      const [marked] = await dbA.select().from(auditVerifyJobs).where(eq(auditVerifyJobs.id, orphan!.id));
      expect(marked).toMatchObject({ status: "failed", error: expect.stringMatching(/stopped reporting/) });
      expect((await waitForPgVerifyJob(storeB))!).toMatchObject({ id: next.job.id, status: "finished" });
    }, 180_000);

    it("ends a job whose worker cannot run as failed, saying why, and records nothing", async () => {
      const before = (await lastVerifyEvent())!.seq;
      // No trusted key: verify-pg.ts refuses (a store is never verified against a key read from itself).
      const { job } = await startVerifyJobOn({ db: storeA, dataDir: app.dataDir }, auditor, { publicKeyPem: "" }, "no key");
      expect(job.status).toBe("running");
      const ended = (await waitForPgVerifyJob(storeB))!;
      expect(ended).toMatchObject({ id: job.id, status: "failed", summary: null, seq: null });
      expect(ended.error).toMatch(/verified against a key you hold/);
      expect((await lastVerifyEvent())!.seq).toBe(before);
    }, 60_000);

    it("reports a real tamper: the protective trigger disabled as superuser and an event's payload rewritten", async () => {
      await withPgClient(scratch.url, async (c) => {
        await c.query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update");
        await c.query("UPDATE audit_events SET payload = $1 WHERE seq = $2", [JSON.stringify({ n: -1 }), 5000]);
        await c.query("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update");
      });
      await startLedgerVerification(serverB(), auditor);
      const job = (await waitForPgVerifyJob(storeA))!;
      expect(job.status).toBe("finished");
      expect(job.summary).toMatchObject({ ok: false, firstBadSeq: 5000 });
      expect(job.summary!.levels!.chain.ok).toBe(false);
      expect(job.summary!.problem).toMatch(/5000/);
      expect(JSON.parse((await lastVerifyEvent())!.payload)).toMatchObject({ ok: false, firstBadSeq: 5000 });
      expect((await auditStatus(serverA())).lastVerification).toMatchObject({ seq: job.seq, result: { ok: false, firstBadSeq: 5000 } });
    }, 180_000);
  });
});
