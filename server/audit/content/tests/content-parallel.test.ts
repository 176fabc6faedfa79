/**
 * Content verification split across threads (server/audit/verify-content-parts.ts: run_params and metric series in
 * a content worker, the rest on the main thread, the chain in range workers) gives exactly the result of one pass
 * on this thread, tampered or not; the folded run_params comparison (check-run-params.ts) misses nothing the row by
 * row comparison catches (down to one ulp of a number, a storage type, an extra or missing row); and the parts read
 * one database state even while another connection commits: a commit that falls between the main thread's snapshot
 * and the worker's is detected and both snapshots are taken again, and an appender running during verification
 * never makes the result incoherent.
 */
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "@/db/client";
import { appendAuditEvent, SYSTEM_ACTOR } from "@/server/audit/ledger";
import { verifyDatabase, type VerifyResult } from "@/server/audit/verify";
import { buildContentFixture, snapshot, type ContentFixture, type Snapshot } from "./content-fixture";
import { nextDouble } from "../../tests/next-double";

let fx: ContentFixture;
beforeAll(async () => {
  fx = await buildContentFixture();
}, 180_000);
afterAll(() => fx?.app.close());

const strip = ({ durationMs: _d, workers: _w, ...rest }: VerifyResult) => rest;

/** A tampered WAL copy (as the app runs it), so another connection can commit while verification reads. */
function copy(tamper: (s: Snapshot) => void = () => {}): Snapshot {
  const s = snapshot(fx.app);
  s.db.pragma("journal_mode = WAL");
  tamper(s);
  return s;
}

/** Verifies with range and content workers, and in one pass on this thread; both results, and how many snapshot attempts the content worker took. */
async function both(
  s: Snapshot,
  onAttempt?: (attempt: number) => void,
): Promise<{ parallel: VerifyResult; onePass: VerifyResult; attempts: number; fed: boolean | null }> {
  let attempts = 0;
  let fed: boolean | null = null;
  const publicKeyPem = fx.app.auditKeys.publicKeyPem;
  const parallel = await verifyDatabase(s.dir, {
    publicKeyPem,
    workers: 2,
    onSnapshotAttempt: (a) => {
      attempts++;
      onAttempt?.(a);
    },
    onRunEventsFeed: (used) => (fed = used),
  });
  const onePass = await verifyDatabase(s.dir, { publicKeyPem, workers: 0 });
  return { parallel, onePass, attempts, fed };
}

/** With workers, the main thread's content check starting once the worker is done: every read it made is taken from it. */
async function workerReadsFirst(s: Snapshot): Promise<{ result: VerifyResult; used: number; offered: number }> {
  let used = -1,
    offered = -1;
  const result = await verifyDatabase(s.dir, {
    publicKeyPem: fx.app.auditKeys.publicKeyPem,
    workers: 2,
    contentWorkerFirst: true,
    onLaterReads: (u, o) => ((used = u), (offered = o)),
  });
  return { result, used, offered };
}

/** Rewrites the run's end event as `action` with payload `payloadSql` (of the old payload; the log's trigger dropped on the copy). */
function rewriteEnd(s: Snapshot, action: string, payloadSql: string): void {
  s.db.exec("DROP TRIGGER IF EXISTS audit_events_no_update");
  const n = s.db
    .prepare(`UPDATE audit_events SET action = ?, payload = ${payloadSql} WHERE action = 'run.complete' AND entity_id = ?`)
    .run(action, String(fx.runId)).changes;
  expect(n).toBe(1);
}

const lr = (s: Snapshot) =>
  s.db.prepare("SELECT value_num FROM run_params WHERE run_id = ? AND key = 'training.learningRate'").pluck().get(fx.runId) as number;

describe("content split across threads gives the one-pass result", () => {
  const cases: [string, (s: Snapshot) => void, string[]][] = [
    ["clean", () => {}, []],
    [
      "run_params number one ulp off",
      (s) =>
        s.db
          .prepare("UPDATE run_params SET value_num = ? WHERE run_id = ? AND key = 'training.learningRate'")
          .run(nextDouble(lr(s)), fx.runId),
      ["run_params training.learningRate"],
    ],
    [
      "run_params number stored as text",
      (s) =>
        s.db
          .prepare("UPDATE run_params SET value_num = 'n' || CAST(value_num AS TEXT) WHERE run_id = ? AND key = 'training.learningRate'")
          .run(fx.runId),
      ["run_params training.learningRate"],
    ],
    [
      "run_params text stored as a blob",
      (s) =>
        s.db
          .prepare("UPDATE run_params SET value_text = CAST(value_text AS BLOB) WHERE run_id = ? AND key = 'training.optimizer.name'")
          .run(fx.runId),
      ["run_params training.optimizer.name"],
    ],
    [
      "run_params text with a NUL appended",
      (s) =>
        s.db
          .prepare("UPDATE run_params SET value_text = value_text || char(0) || 'x' WHERE run_id = ? AND key = 'training.optimizer.name'")
          .run(fx.runId),
      ["run_params training.optimizer.name"],
    ],
    [
      "run_params row deleted",
      (s) => s.db.prepare("DELETE FROM run_params WHERE run_id = ? AND key = 'training.epochs'").run(fx.runId),
      ["run_params training.epochs"],
    ],
    [
      "run_params row added",
      (s) =>
        s.db.prepare("INSERT INTO run_params (run_id, key, value_text, value_num) VALUES (?, 'training.extra', 'x', NULL)").run(fx.runId),
      ["run_params training.extra"],
    ],
    [
      "seed and a metric point edited, and an evaluation (problems before, in and after the worker's part)",
      (s) => {
        s.db.prepare("UPDATE runs SET seed = seed + 1 WHERE id = ?").run(fx.runId);
        s.db
          .prepare(
            "UPDATE metrics SET value = value * 0.5 WHERE run_id = ? AND key = 'loss' AND step = (SELECT max(step) FROM metrics WHERE run_id = ? AND key = 'loss')",
          )
          .run(fx.runId, fx.runId);
        s.db.prepare("UPDATE evaluations SET metrics_json = json_set(metrics_json, '$.accuracy', 0.42) WHERE run_id = ?").run(fx.runId);
        s.db.prepare("UPDATE runs SET status = 'failed' WHERE id = ?").run(fx.runId);
      },
      ["seed", "metric points (epoch, key, step, value)", "status"],
    ],
    [
      "metric summary and rollup edited",
      (s) => {
        s.db.prepare("UPDATE metric_summaries SET max = max + 1 WHERE run_id = ?").run(fx.runId);
        s.db.prepare("UPDATE metric_rollups SET max_value = max_value + 1 WHERE run_id = ?").run(fx.runId);
      },
      ["metric summary loss (latest, min, max)"],
    ],
    ["run row deleted", (s) => s.db.prepare("DELETE FROM runs WHERE id = ?").run(fx.runId), ["row"]],
    // With the run-derived part in the worker, the main thread keeps only the end payload's members it checks
    // (bulk-events.ts, CHECKED_END_FIELDS); one pass keeps them all.
    [
      "run end facts edited in the tables (weights hash, end time, best flag)",
      (s) => {
        s.db
          .prepare("UPDATE runs SET final_weights_sha256 = ?, finished_at = ? WHERE id = ?")
          .run("0".repeat(64), "2020-01-01T00:00:00.000Z", fx.runId);
        s.db
          .prepare("UPDATE checkpoints SET is_best = 1 - is_best WHERE id = (SELECT min(id) FROM checkpoints WHERE run_id = ?)")
          .run(fx.runId);
      },
      ["final weights sha256", "end time", "best flag"],
    ],
    [
      "run end payload rewritten: status changed, weights hash dropped",
      (s) => rewriteEnd(s, "run.complete", "json_set(json_remove(payload, '$.weightsSha256'), '$.status', 'cancelled')"),
      ["status"],
    ],
    [
      "run end rewritten as a run.fail with an error",
      (s) =>
        rewriteEnd(s, "run.fail", "json_object('error', 'boom', 'errorSha256', 'x', 'finishedAt', json_extract(payload, '$.finishedAt'))"),
      ["error message", "full error message", "status"],
    ],
    [
      "checkpoint and evaluation rows edited, one of them to a BLOB (the later phases' reads, made by the worker)",
      (s) => {
        s.db
          .prepare("UPDATE checkpoints SET bytes = bytes + 1 WHERE id = (SELECT min(id) FROM checkpoints WHERE run_id = ?)")
          .run(fx.runId);
        s.db.exec("UPDATE checkpoints SET created_at = CAST(created_at AS BLOB) WHERE id = (SELECT max(id) FROM checkpoints)");
        s.db.prepare("UPDATE evaluations SET partition = 'train' WHERE run_id = ?").run(fx.runId);
      },
      ["weights size", "checkpoint creation time", "partition"],
    ],
  ];
  it.each(cases)("%s", async (_name, tamper, fields) => {
    const s = copy(tamper);
    try {
      const { parallel, onePass, attempts, fed } = await both(s);
      expect(attempts).toBe(1); // the content worker really ran, pinned at the first attempt
      expect(parallel.workers).toBe(2);
      // The worker took the run events from this thread's log scan (run-events-feed.ts); workerReadsFirst below has
      // the worker read them itself.
      expect(fed).toBe(true);
      expect(strip(parallel)).toEqual(strip(onePass));
      expect(parallel.ok).toBe(fields.length === 0);
      for (const field of fields) expect(parallel.levels.content.problems.map((p) => p.field)).toContain(field);
      // The same with every decision, checkpoint and evaluation read made by the worker (with the native extension: 3 of them).
      const first = await workerReadsFirst(s);
      expect(strip(first.result)).toEqual(strip(onePass));
      expect(first.offered).toBeGreaterThanOrEqual(1);
      expect(first.used).toBe(first.offered);
    } finally {
      s.close();
    }
  });

  // The feed's two ways of falling back (run-events-feed.ts): the main thread stops before its log scan (it sends
  // nothing but its "read them yourself"), and the worker's early read of the metric series fails (it reads them
  // again where checkMetrics does, meeting the same error there). Neither leaves the worker waiting.
  it.each([
    ["the runs table renamed: this thread's check stops before its log scan", "ALTER TABLE runs RENAME TO runs_gone", false],
    ["the metric summaries renamed: the worker's early read of the series fails", "ALTER TABLE metric_summaries RENAME TO gone", true],
  ] as const)("%s", async (_name, sql, fed) => {
    const s = copy((s) => {
      s.db.exec("PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON");
      s.db.exec(sql);
    });
    try {
      const r = await both(s);
      expect(r.fed).toBe(fed);
      expect(strip(r.parallel)).toEqual(strip(r.onePass));
      expect(r.parallel.levels.content.problems.map((p) => p.field)).toContain("check"); // could not finish
    } finally {
      s.close();
    }
  });

  it("a run.create payload stored as a BLOB of the same bytes reads as its text in either mode", async () => {
    // The worker's own pass used to stop on it ("could not finish: p.charCodeAt is not a function") where one pass
    // read it, as JSON.parse does, as the same text: same bytes, nothing altered that a check could name.
    const s = copy((s) => {
      s.db.exec("DROP TRIGGER IF EXISTS audit_events_no_update");
      s.db
        .prepare("UPDATE audit_events SET payload = CAST(payload AS BLOB) WHERE action = 'run.create' AND entity_id = ?")
        .run(String(fx.runId));
    });
    try {
      const { parallel, onePass, fed } = await both(s);
      expect(fed).toBe(true);
      expect(strip(parallel)).toEqual(strip(onePass));
      expect(parallel.levels.content.problems).toEqual([]);
      expect(strip((await workerReadsFirst(s)).result)).toEqual(strip(onePass)); // the worker's own pass
    } finally {
      s.close();
    }
  });
});

describe("the content worker reads the main thread's database state", () => {
  it("a commit between the two snapshots is detected and both are taken again", async () => {
    const s = copy();
    const writer = new Database(`${s.dir}/runledger.sqlite`);
    try {
      const original = lr(s);
      // Attempt 0: commit a change after the main thread's snapshot began, before the worker's. Had the worker kept
      // that later snapshot, it would have found the changed learning rate while this thread saw the original.
      // Attempt 1: put it back (again in between). Attempt 2: nothing; both read the original.
      const { parallel, onePass, attempts } = await both(s, (attempt) => {
        if (attempt > 1) return;
        writer
          .prepare("UPDATE run_params SET value_num = ? WHERE run_id = ? AND key = 'training.learningRate'")
          .run(attempt === 0 ? 0.5 : original, fx.runId);
      });
      expect(attempts).toBe(3);
      expect(parallel.levels.content.problems).toEqual([]);
      expect(strip(parallel)).toEqual(strip(onePass));
    } finally {
      writer.close();
      s.close();
    }
  });

  it("a writer that commits at every attempt: the content is checked on the main thread's snapshot alone", async () => {
    const s = copy();
    const writer = new Database(`${s.dir}/runledger.sqlite`);
    try {
      const original = lr(s);
      let flip = false;
      const { parallel, onePass, attempts } = await both(s, () => {
        flip = !flip;
        writer
          .prepare("UPDATE run_params SET value_num = ? WHERE run_id = ? AND key = 'training.learningRate'")
          .run(flip ? 0.5 : original, fx.runId);
      });
      expect(attempts).toBe(4); // MAX_PIN_ATTEMPTS, then the fallback: a fresh snapshot with everything on this thread
      // Attempt 3 put the original back before the fallback snapshot began: both results see the original.
      expect(parallel.levels.content.problems).toEqual([]);
      expect(strip(parallel)).toEqual(strip(onePass));
    } finally {
      writer.close();
      s.close();
    }
  });

  it("events appended by another connection while verification runs: one coherent state is verified", async () => {
    const s = copy();
    const db = openDatabase(s.dir);
    const before = s.maxSeq;
    let appended = 0;
    const append = () => {
      db.transaction((tx) => {
        appendAuditEvent(tx, {
          actor: SYSTEM_ACTOR,
          action: "audit.verify",
          entityType: "auditLedger",
          entityId: "live",
          payload: { n: ++appended },
        });
      });
    };
    const timer = setInterval(append, 1);
    try {
      // The timer commits whenever this thread awaits (worker start, pinning): snapshots are retaken or, when
      // commits keep falling between them, the content is checked on the main snapshot; either way one state.
      const r = await verifyDatabase(s.dir, { publicKeyPem: fx.app.auditKeys.publicKeyPem, workers: 2 });
      clearInterval(timer);
      expect(appended).toBeGreaterThan(0);
      expect(r.ok).toBe(true);
      expect(r.levels.content.problems).toEqual([]);
      expect(r.eventsChecked).toBeGreaterThan(before);
      expect(r.eventsChecked).toBeLessThanOrEqual(before + appended);
      const after = await verifyDatabase(s.dir, { publicKeyPem: fx.app.auditKeys.publicKeyPem, workers: 0 });
      expect(after.ok).toBe(true);
      expect(after.levels.content.checked).toBe(r.levels.content.checked);
    } finally {
      clearInterval(timer);
      db.$client.close();
      s.close();
    }
  });
});
