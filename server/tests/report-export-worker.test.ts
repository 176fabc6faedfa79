/**
 * The browser's report export keeps the server responsive on a large ledger: with ~200k events, a POST export
 * (tar) runs the content check, writes events.jsonl and the archive in a worker thread, while this thread only
 * records "audit.export" and the checkpoint over it (in that order) and streams the file. A 5 ms timer on the main
 * thread measures its longest busy stretch (< 500 ms) during the whole request, download included (the synchronous
 * export held it for seconds). The bound guards against that regression, not against scheduling noise: the stretch is
 * wall time while the thread is active, so on a loaded 2-core machine a descheduled thread counts too (135 ms seen at
 * load 11.7 in a CI run). The downloaded bundle verifies.
 * Also: the preview (html), a third concurrent export refused with 429, a missing version 404 with nothing recorded.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count, eq } from "drizzle-orm";
import { auditCheckpoints, auditEvents } from "@/db/schema";
import { createAuditCheckpoint } from "@/server/audit/checkpoints";
import { untarInto } from "@/server/audit/report/tar";
import { verifyReportBundle } from "@/server/audit/report/verify-report";
import { reportExportPost } from "@/server/http/report-export";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { actorFor } from "./upload-helpers";
import { padLedger } from "./pad-ledger";

const PADDING = 200_000;
const SITE = "http://127.0.0.1:3000";
let app: TestApp;
let modelVersionId: number;
let tmp: string;

beforeAll(async () => {
  app = createTestApp();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-export-worker-"));
  const { id } = await app
    .as("engineer")
    .runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 2 }), rationale: "large-ledger export" });
  await app.orchestrator.waitFor(id);
  modelVersionId = (await app.as("engineer").models.register({ runId: id, modelName: "big-ledger" })).modelVersionId;
  const t0 = performance.now();
  padLedger(app.db, app.auditKeys, PADDING);
  // What the server keeps current as it goes (stored tree levels): bring it up to date before measuring.
  createAuditCheckpoint(app.db, app.auditKeys, "test: padded ledger");
  console.log(`padded the ledger with ${PADDING} events in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}, 300_000);
afterAll(() => {
  app.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const post = (format: string, id = modelVersionId) =>
  new Request(`${SITE}/api/report/${id}?format=${format}`, { method: "POST", headers: { host: "127.0.0.1:3000", origin: SITE } });
const eventCount = () => app.db.select({ n: count() }).from(auditEvents).get()!.n;

/**
 * Runs `fn` while a 5 ms timer watches this thread. Between two ticks, the event loop's active time (Node's
 * eventLoopUtilization) is how long this thread was busy running code; the wall-clock gap also includes time the
 * OS did not schedule an idle thread (this 2-core machine is shared), so both are reported and the busy time is
 * what is asserted.
 */
async function withStallMonitor<T>(fn: () => Promise<T>): Promise<{ value: T; maxBusyMs: number; maxGapMs: number; wallMs: number }> {
  let last = performance.now();
  let lastElu = performance.eventLoopUtilization();
  let maxGap = 0;
  let maxBusy = 0;
  const tick = () => {
    const t = performance.now();
    const elu = performance.eventLoopUtilization();
    maxBusy = Math.max(maxBusy, performance.eventLoopUtilization(elu, lastElu).active);
    maxGap = Math.max(maxGap, t - last);
    last = t;
    lastElu = elu;
  };
  const timer = setInterval(tick, 5);
  const t0 = performance.now();
  try {
    const value = await fn();
    tick();
    return { value, maxBusyMs: maxBusy, maxGapMs: maxGap, wallMs: performance.now() - t0 };
  } finally {
    clearInterval(timer);
  }
}

describe("[report export] off the main thread on a ~200k-event ledger", () => {
  it("keeps the event loop responsive (max stall < 500 ms) through export and download; records export then checkpoint; the bundle verifies", async () => {
    const events = eventCount();
    expect(events).toBeGreaterThan(PADDING);
    const tarPath = path.join(tmp, "big.tar");
    const {
      value: res,
      maxBusyMs,
      maxGapMs,
      wallMs,
    } = await withStallMonitor(async () => {
      const r = await reportExportPost(app, post("tar"), actorFor(app, "auditor"), String(modelVersionId));
      await pipeline(Readable.fromWeb(r.body! as WebReadableStream<Uint8Array>), fs.createWriteStream(tarPath));
      return r;
    });
    console.log(
      `export of ${events} events: ${(wallMs / 1000).toFixed(1)} s, ${(fs.statSync(tarPath).size / 1e6).toFixed(1)} MB; main thread: longest busy stretch ${maxBusyMs.toFixed(0)} ms, longest gap between 5 ms ticks ${maxGapMs.toFixed(0)} ms (load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores)`,
    );
    expect(res.status).toBe(200);
    expect(maxBusyMs).toBeLessThan(500);

    // The write stayed here, in today's order: audit.export, then the checkpoint that covers it.
    const exportSeq = Number(res.headers.get("x-runledger-export-seq"));
    const next = app.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.seq, exportSeq + 1))
      .get()!;
    expect(app.db.select().from(auditEvents).where(eq(auditEvents.seq, exportSeq)).get()!.action).toBe("audit.export");
    expect(next.action).toBe("audit.checkpoint");
    const checkpoint = app.db
      .select()
      .from(auditCheckpoints)
      .where(eq(auditCheckpoints.id, Number(next.entityId)))
      .get()!;
    expect(checkpoint.treeSize).toBe(exportSeq);

    const dir = path.join(tmp, "unpacked");
    untarInto(fs.readFileSync(tarPath), dir);
    expect(fs.readFileSync(path.join(dir, "events.jsonl"), "utf8").split("\n").filter(Boolean).length).toBeGreaterThanOrEqual(exportSeq);
    const verified = await verifyReportBundle(dir);
    expect(verified.ok, JSON.stringify(verified).slice(0, 500)).toBe(true);
    expect(
      fs
        .readdirSync(os.tmpdir())
        .filter((f) => f.startsWith("runledger-report-"))
        .map((f) => path.join(os.tmpdir(), f))
        .filter((f) => fs.existsSync(path.join(f, "bundle.tar"))),
    ).toEqual([]);
  }, 600_000);

  it("a third export while two run is refused with 429 and Retry-After; a missing version is 404 and records nothing", async () => {
    const running = [
      reportExportPost(app, post("html"), actorFor(app, "auditor"), String(modelVersionId)),
      reportExportPost(app, post("html"), actorFor(app, "engineer"), String(modelVersionId)),
    ];
    const third = await reportExportPost(app, post("html"), actorFor(app, "reviewer"), String(modelVersionId));
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBe("5");
    for (const r of await Promise.all(running)) {
      expect(r.status).toBe(200);
      expect(await r.text()).toContain("big-ledger");
    }
    const before = eventCount();
    const missing = await reportExportPost(app, post("html", 999_999), actorFor(app, "auditor"), "999999");
    expect(missing.status).toBe(404);
    expect(eventCount()).toBe(before);
  }, 600_000);
});
