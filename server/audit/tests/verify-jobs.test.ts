/**
 * "Verify now" as a background job (verify-jobs.ts) through the app's tRPC procedures on a real database: the
 * request returns at once with a running job, a second request returns that same job, progress is visible while
 * the worker thread runs, and the outcome is recorded as an "audit.verify" event (bounded summary with the
 * levels) by the user who asked. A tampered ledger gives a recorded failure; a worker that cannot run gives a
 * failed job and records nothing.
 */
import Database from "better-sqlite3";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { desc, eq } from "drizzle-orm";
import { auditEvents } from "@/db/schema";
import { canonicalJson } from "@/contracts/canonical";
import { createAuditCheckpoint } from "../checkpoints";
import { currentVerifyJob, startVerifyJob, waitForVerifyJob, type VerifyJob } from "../verify-jobs";
import { summarizeVerifyResult, VERIFY_SUMMARY_MAX_BYTES } from "../verify-summary";
import type { VerifyResult } from "../verify";
import { appendRawEvents } from "./raw-events";
import { createTestApp, type TestApp } from "@/server/tests/test-app";

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
  appendRawEvents(app.db, 30_000); // enough for the worker to report progress (every 4,096 events)
  createAuditCheckpoint(app.db, app.auditKeys, "test");
}, 60_000);
afterAll(() => app?.close());

const lastVerifyEvent = () =>
  app.db.select().from(auditEvents).where(eq(auditEvents.action, "audit.verify")).orderBy(desc(auditEvents.seq)).limit(1).get();

describe("Verify now runs off the request thread", () => {
  it("returns a running job at once, returns the same job to a second request, reports progress, then records the outcome", async () => {
    const auditor = app.as("auditor");
    const t0 = performance.now();
    const first = await auditor.audit.verify();
    const requestMs = performance.now() - t0;
    expect(first.alreadyRunning).toBe(false);
    expect(first.job).toMatchObject({ status: "running", startedBy: "Alex Auditor", checked: 0, summary: null });
    expect(first.job.total).toBeGreaterThan(30_000);
    expect(requestMs).toBeLessThan(500); // a one-pass verification of this ledger takes seconds

    const second = await app.as("engineer").audit.verify();
    expect(second).toMatchObject({ alreadyRunning: true, job: { id: first.job.id, startedBy: "Alex Auditor" } });

    // Poll as the page does; meanwhile the event loop stays free (this polling itself is the proof).
    const seen: VerifyJob[] = [];
    while (true) {
      const job = (await auditor.audit.verifyJob())!;
      seen.push(job);
      if (job.status !== "running") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen.some((j) => j.status === "running" && j.checked > 0 && j.checked < j.total)).toBe(true);

    const done = seen.at(-1)!;
    expect(done).toMatchObject({ id: first.job.id, status: "finished", error: null });
    expect(done.summary).toMatchObject({ ok: true, problem: null, eventsChecked: done.checked });
    expect(done.summary!.trustedKey).toContain(app.auditKeys.fingerprint);
    expect(done.summary!.levels!.chain).toMatchObject({ ok: true, events: done.summary!.eventsChecked });
    expect(done.summary!.levels!.content).toMatchObject({ ok: true, problems: [], problemsTotal: 0 });
    expect(done.summary!.levels!.content.checked).toBeGreaterThan(0);
    expect(done.summary!.levels!.triggers).toMatchObject({ ok: true, missing: [], altered: [] });
    expect(done.summary!.levels!.anchor).toMatchObject({ anchored: false, treeSize: 0 }); // no witness configured here

    const event = lastVerifyEvent()!;
    expect(event).toMatchObject({ seq: done.seq, actorName: "Alex Auditor", entityType: "auditLedger", entityId: "live" });
    expect(JSON.parse(event.payload)).toEqual(JSON.parse(canonicalJson(done.summary)));
    const status = await auditor.audit.status();
    expect(status.lastVerification).toMatchObject({ seq: done.seq, by: "Alex Auditor", result: { ok: true } });

    // A new request after the end starts a new job.
    const again = await auditor.audit.verify();
    expect(again).toMatchObject({ alreadyRunning: false, job: { status: "running" } });
    expect(again.job.id).toBeGreaterThan(first.job.id);
    expect((await waitForVerifyJob(app.dataDir))!.status).toBe("finished");
  }, 120_000);

  it("records a content failure naming the entity, the field, the recorded and the found value", async () => {
    const raw = new Database(path.join(app.dataDir, "runledger.sqlite"));
    try {
      raw.prepare("UPDATE users SET role = 'admin' WHERE email = 'auditor@runledger.local'").run();
    } finally {
      raw.close();
    }
    await app.as("engineer").audit.verify();
    const job = (await waitForVerifyJob(app.dataDir))!;
    expect(job.summary).toMatchObject({ ok: false });
    expect(job.summary!.levels!.chain.ok).toBe(true);
    expect(job.summary!.levels!.content.ok).toBe(false);
    expect(job.summary!.levels!.content.problems).toContainEqual(
      expect.objectContaining({ entityType: "user", field: "role", recorded: JSON.stringify("auditor"), found: JSON.stringify("admin") }),
    );
    expect(JSON.parse(lastVerifyEvent()!.payload).levels.content.problemsTotal).toBe(job.summary!.levels!.content.problemsTotal);
  }, 120_000);

  it("records a failure naming the first bad event when the ledger was tampered with", async () => {
    const raw = new Database(path.join(app.dataDir, "runledger.sqlite"));
    try {
      raw.exec("DROP TRIGGER IF EXISTS audit_events_no_update");
      raw.prepare("UPDATE audit_events SET payload = ? WHERE seq = ?").run(JSON.stringify({ n: -1 }), 5000);
    } finally {
      raw.close();
    }
    await app.as("auditor").audit.verify();
    const job = (await waitForVerifyJob(app.dataDir))!;
    expect(job.status).toBe("finished");
    expect(job.summary).toMatchObject({ ok: false, firstBadSeq: 5000 });
    expect(job.summary!.levels!.chain.ok).toBe(false);
    expect(job.summary!.problem).toMatch(/5000/);
    expect(JSON.parse(lastVerifyEvent()!.payload)).toMatchObject({ ok: false, firstBadSeq: 5000 });
  }, 120_000);

  it("ends a job whose worker cannot run as failed, saying why, and records nothing", async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-verify-job-empty-"));
    try {
      const before = lastVerifyEvent()!.seq;
      const { job } = startVerifyJob(
        { db: app.db, dataDir: empty },
        { id: null, name: "Test", role: "auditor" },
        { publicKeyPem: app.auditKeys.publicKeyPem },
        "test key",
      );
      expect(job.status).toBe("running");
      const ended = (await waitForVerifyJob(empty))!;
      expect(ended).toMatchObject({ status: "failed", summary: null, seq: null });
      expect(ended.error).toMatch(/no Runledger database/);
      expect(currentVerifyJob(empty)!.status).toBe("failed");
      expect(lastVerifyEvent()!.seq).toBe(before);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("the recorded summary is bounded", () => {
  it("keeps counts but caps lists and strings, under the byte bound, for a ledger with thousands of problems", () => {
    const long = "x".repeat(10_000);
    const problems = Array.from({ length: 5000 }, (_, i) => ({
      entityType: "run",
      entityId: String(i),
      field: long,
      recorded: long,
      found: long,
      seq: i,
      message: long,
    }));
    const result = {
      ok: false,
      eventsChecked: 10,
      checkpointsChecked: 1,
      firstBadSeq: 3,
      problem: long,
      problems: Array(5000).fill(long),
      notes: Array(5000).fill(long),
      keyFingerprint: "SHA256:ab",
      unsignedTail: 0,
      durationMs: 1,
      levels: {
        chain: { ok: false, events: 10, checkpoints: 1, problem: long },
        content: { ok: false, checked: 5000, problems, notCovered: Array(5000).fill(long) },
        anchor: { anchored: false, treeSize: 0, by: [], problem: long },
        triggers: { ok: false, missing: Array(5000).fill(long), altered: [] },
      },
    } as unknown as VerifyResult;
    const s = summarizeVerifyResult(result, "test key");
    expect(canonicalJson(s).length).toBeLessThanOrEqual(VERIFY_SUMMARY_MAX_BYTES);
    expect(s.problemsTotal).toBe(5000);
    expect(s.levels!.content.problemsTotal).toBe(5000);
    expect(s.levels!.content.problems.length).toBeGreaterThan(0);
    expect(s.levels!.content.problems[0]!.recorded!.length).toBeLessThanOrEqual(100);
    expect(s.levels!.triggers!.missing.length).toBeLessThanOrEqual(20);
  });
});
