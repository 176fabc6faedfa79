/**
 * The shared hash definitions and the "older event" rule: the streamed metric digest equals sha256Canonical of the
 * whole array; an event written before a payload field existed is reported as not covered, never as a failure.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "@/db/client";
import { sha256Canonical } from "@/contracts/canonical";
import { appendAuditEvent, SYSTEM_ACTOR } from "@/server/audit/ledger";
import { metricSeriesDigest } from "../records";
import { checkContent } from "../verify-content";
import { buildContentFixture, snapshot, type ContentFixture } from "./content-fixture";

let fx: ContentFixture;
beforeAll(async () => {
  fx = await buildContentFixture();
}, 180_000);
afterAll(() => fx?.app.close());

describe("shared record hashes", () => {
  it("streams the metric digests exactly as sha256Canonical of the full arrays", () => {
    const sqlite = fx.app.db.$client;
    const rows = sqlite.prepare("SELECT key, step, value, epoch FROM metrics WHERE run_id = ? ORDER BY key, step").all(fx.runId) as {
      key: string;
      step: number;
      value: number;
      epoch: number;
    }[];
    expect(rows.length).toBeGreaterThan(20);
    const d = metricSeriesDigest(sqlite, fx.runId);
    expect(d.points).toBe(rows.length);
    expect(d.sha256).toBe(sha256Canonical(rows.map(({ key, step, value }) => ({ key, step, value }))));
    expect(d.pointsSha256).toBe(sha256Canonical(rows.map(({ key, step, value, epoch }) => ({ epoch, key, step, value }))));
    expect(metricSeriesDigest(sqlite, 987654).sha256).toBe(sha256Canonical([]));
  });
});

describe("events older than a payload field", () => {
  it("are reported as not covered, not as failures", () => {
    const s = snapshot(fx.app);
    try {
      s.db.close();
      const db = openDatabase(s.dir);
      // A checkpoint and a note recorded the way the app recorded them before createdAt / sha256 were in the payload.
      db.transaction((tx) => {
        const ck = db.$client
          .prepare(
            "INSERT INTO checkpoints (run_id, epoch, step, sha256, bytes, metrics_json, is_best, created_at) VALUES (?, 99, 999, ?, 4, '{\"loss\":1}', 0, '2024-01-01T00:00:00.000Z')",
          )
          .run(fx.runId, "cd".repeat(32));
        appendAuditEvent(tx, {
          actor: SYSTEM_ACTOR,
          action: "checkpoint.create",
          entityType: "checkpoint",
          entityId: Number(ck.lastInsertRowid),
          payload: { runId: fx.runId, epoch: 99, step: 999, sha256: "cd".repeat(32), bytes: 4, metrics: { loss: 1 } },
        });
        const d = db.$client
          .prepare(
            "INSERT INTO decisions (run_id, kind, path, old_value_json, new_value_json, rationale, corrects_decision_id, author_id, created_at) VALUES (?, 'note', '', NULL, NULL, 'an old note', NULL, 2, '2024-01-01T00:00:00.000Z')",
          )
          .run(fx.runId);
        appendAuditEvent(tx, {
          actor: { id: 2, name: "Erin Engineer", role: "engineer" },
          action: "decision.create",
          entityType: "decision",
          entityId: Number(d.lastInsertRowid),
          payload: { runId: fx.runId, kind: "note", path: "", correctsDecisionId: null, rationale: "an old note" },
        });
      });
      const maxSeq = (db.$client.prepare("SELECT max(seq) AS n FROM audit_events").get() as { n: number }).n;
      const r = checkContent(db.$client, { artifactsDir: null, uptoSeq: maxSeq });
      db.$client.close();
      expect(r.level.problems).toEqual([]);
      expect(
        r.level.notCovered.some((l) => /^checkpoint creation time: 1 checkpoint\.create event \(seq \d+\) predates the field/.test(l)),
      ).toBe(true);
      expect(r.level.notCovered.some((l) => l.startsWith("decision time: 1 decision.create event (seq"))).toBe(true);
      expect(r.level.notCovered.some((l) => l.startsWith("decision old/new values: 1 decision.create event (seq"))).toBe(true);
      expect(r.level.notCovered.some((l) => l.includes("not re-hashed: no artifact directory was given"))).toBe(true);
    } finally {
      s.close();
    }
  });

  it("events after the verified range do not make their rows look unrecorded", () => {
    const s = snapshot(fx.app);
    try {
      const last = s.db.prepare("SELECT seq FROM audit_events WHERE action = 'document.update'").get() as { seq: number };
      const r = checkContent(s.db, { artifactsDir: s.artifactsDir, uptoSeq: last.seq - 1 });
      expect(r.level.problems).toEqual([]);
    } finally {
      s.close();
    }
  });
});
