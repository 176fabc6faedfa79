/**
 * The README's threat-model table, row by row, as tests: each attack is done for real on a copy of a real app
 * database (a trained run, a registered model moved to production after an independent approval, signed
 * checkpoints), by raw SQL and file edits with the protective triggers dropped and put back, as an operator with
 * file access would; then `audit verify` (verifyDatabase, the CLI's engine) must fail with the named problem.
 * The anchor column is checked too: attacks that need an anchor verify INTACT without one and fail against a
 * trusted checkpoint the auditor kept. (Witness anchors for the same attacks: witness/tests/witness-live.test.ts.)
 */
import Database from "better-sqlite3";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuditCheckpoint, latestAuditCheckpoint, trustedCheckpointFromRow, type TrustedCheckpoint } from "../checkpoints";
import { canonicalJson, sha256Canonical } from "@/contracts/canonical";
import { chainHash, eventBody, GENESIS_CHAIN_HASH, leafHash } from "../ledger";
import { verifyDatabase, type VerifyResult } from "../verify";
import { waitForVerifyJob } from "../verify-jobs";
import { rewriteAndResign } from "../witness/tests/forge";
import { createTestApp, irisConfig, type TestApp } from "@/server/tests/test-app";

let app: TestApp;
let base: string;
let trusted: TrustedCheckpoint;
/** The last seq before the final "Verify now" and its checkpoint: a tail with no table rows behind it. */
let beforeTail: number;
const copies: string[] = [];

beforeAll(async () => {
  app = createTestApp();
  const engineer = app.as("engineer");
  const { id } = await engineer.runs.create({
    experimentId: app.experimentId,
    config: irisConfig({ epochs: 3 }),
    rationale: "threat model baseline",
  });
  await app.orchestrator.waitFor(id);
  await engineer.models.register({ runId: id, modelName: "threat-model" });
  const request = await engineer.models.requestPromotion({
    modelName: "threat-model",
    version: 1,
    acknowledgeMissingDocumentation: true,
    rationale: "ready",
  });
  await app.as("reviewer").models.sign({ requestId: request.id, meaning: "approval", password: "reviewer-demo-pass" });
  beforeTail = latestAuditCheckpoint(app.db)!.treeSize + 1; // the alias move's checkpoint event
  await app.as("auditor").audit.verify();
  await waitForVerifyJob(app.dataDir);
  createAuditCheckpoint(app.db, app.auditKeys, "test");
  trusted = trustedCheckpointFromRow(latestAuditCheckpoint(app.db)!, app.auditKeys.publicKeyPem);
  app.db.$client.pragma("wal_checkpoint(TRUNCATE)");
  base = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-threat-base-"));
  fs.cpSync(app.dataDir, base, { recursive: true });
}, 180_000);
afterAll(() => {
  app?.close();
  for (const d of [base, ...copies]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh copy of the base data directory, damaged by `attack`. */
function attacked(attack: (dir: string, db: Database.Database) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-threat-"));
  copies.push(dir);
  fs.cpSync(base, dir, { recursive: true });
  const db = new Database(path.join(dir, "runledger.sqlite"));
  try {
    attack(dir, db);
  } finally {
    if (db.open) db.close();
  }
  return dir;
}

/** Runs `fn` with every trigger dropped, then puts them back exactly as they were (a careful attacker). */
function withoutTriggers(db: Database.Database, fn: () => void): void {
  const triggers = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").all() as { name: string; sql: string }[];
  for (const t of triggers) db.exec(`DROP TRIGGER ${t.name}`);
  fn();
  for (const t of triggers) db.exec(t.sql);
}

const verify = (dir: string, anchored = false) =>
  verifyDatabase(dir, { publicKeyPem: app.auditKeys.publicKeyPem, ...(anchored ? { trustedCheckpoint: trusted } : {}) });
const lastCheckpointFile = (dir: string, db: Database.Database) => {
  const sha = (db.prepare("SELECT sha256 FROM checkpoints ORDER BY id DESC LIMIT 1").get() as { sha256: string }).sha256;
  return path.join(dir, "artifacts", sha.slice(0, 2), sha);
};

/** Caught without an anchor: the named level fails with the named problem. */
async function expectCaught(dir: string, level: "chain" | "content" | "triggers", message: RegExp): Promise<VerifyResult> {
  const r = await verify(dir);
  expect(r.ok).toBe(false);
  expect(r.levels[level]!.ok).toBe(false);
  expect(
    r.problems.some((p) => message.test(p)),
    r.problems.join("\n"),
  ).toBe(true);
  return r;
}

/** Needs an anchor: INTACT (and "not anchored") without one; the trusted checkpoint names the problem. */
async function expectNeedsAnchor(dir: string, message: RegExp): Promise<void> {
  const alone = await verify(dir);
  expect(alone.problems).toEqual([]);
  expect(alone).toMatchObject({ ok: true, anchored: false });
  const withAnchor = await verify(dir, true);
  expect(withAnchor.ok).toBe(false);
  expect(
    withAnchor.problems.some((p) => message.test(p)),
    withAnchor.problems.join("\n"),
  ).toBe(true);
}

describe("the README's threat-model table", () => {
  it("the untouched copy verifies intact, and anchored to the trusted checkpoint", async () => {
    expect(await verify(base)).toMatchObject({ ok: true, anchored: false });
    expect(await verify(base, true)).toMatchObject({
      ok: true,
      anchored: true,
      levels: { anchor: { treeSize: trusted.treeHead.treeSize } },
    });
  });

  it("checkpoint weights file replaced", async () => {
    const dir = attacked((d, db) => fs.writeFileSync(lastCheckpointFile(d, db), Buffer.alloc(64, 1)));
    await expectCaught(
      dir,
      "content",
      /checkpoint \d+: weights file was replaced: the ledger \(event #\d+\) recorded sha256 [0-9a-f]{64}, the file's bytes hash to [0-9a-f]{64}/,
    );
  });

  it("checkpoint weights file deleted", async () => {
    const dir = attacked((d, db) => fs.rmSync(lastCheckpointFile(d, db)));
    await expectCaught(dir, "content", /checkpoint \d+: weights file [0-9a-f]{12}… is missing from the artifact store \(deleted\?\)/);
  });

  it("run config edited in the runs table (learning rate 0.03 → 0.5)", async () => {
    const dir = attacked((_d, db) =>
      db.prepare(`UPDATE runs SET config_json = replace(config_json, '"learningRate":0.03', '"learningRate":0.5')`).run(),
    );
    await expectCaught(dir, "content", /run \d+: config \(sha256 of the stored config\) does not match the ledger \(event #\d+ recorded/);
  });

  it("metric value edited", async () => {
    const dir = attacked((_d, db) =>
      db
        .prepare(
          "UPDATE metrics SET value = value + 0.25 WHERE (run_id, key, step) = (SELECT run_id, key, step FROM metrics ORDER BY step DESC LIMIT 1)",
        )
        .run(),
    );
    await expectCaught(dir, "content", /run \d+: metric points \(epoch, key, step, value\) does not match the ledger/);
  });

  it("evaluation edited (test accuracy)", async () => {
    const dir = attacked((_d, db) => db.prepare(`UPDATE evaluations SET metrics_json = json_set(metrics_json, '$.accuracy', 0.42)`).run());
    await expectCaught(dir, "content", /evaluation \d+: metrics \(incl\. confusion matrix\) does not match the ledger/);
  });

  it("alias moved in the table", async () => {
    const dir = attacked((_d, db) =>
      db
        .prepare(
          "INSERT INTO model_alias_events (model_id, alias, model_version_id, promotion_request_id, moved_by, created_at) SELECT model_id, 'staging', model_version_id, NULL, moved_by, created_at FROM model_alias_events ORDER BY id DESC LIMIT 1",
        )
        .run(),
    );
    await expectCaught(dir, "content", /aliasMove \d+ has no alias\.move event in the ledger \(row written outside the app\?\)/);
  });

  it("protective trigger dropped", async () => {
    const dir = attacked((_d, db) => db.exec("DROP TRIGGER audit_events_no_update"));
    await expectCaught(dir, "triggers", /protective trigger audit_events_no_update is missing \(dropped\?\)/);
  });

  it("an event edited in place", async () => {
    const dir = attacked((_d, db) =>
      withoutTriggers(db, () => db.prepare(`UPDATE audit_events SET payload = '{"n":1}' WHERE seq = 5`).run()),
    );
    await expectCaught(dir, "chain", /seq 5: leaf hash does not match its content \(edited\?\)/);
  });

  it("an event edited and the chain recomputed, without the key", async () => {
    const dir = attacked((_d, db) => withoutTriggers(db, () => rechain(db, 5, (body) => ({ ...body, payload: { n: 1 } }))));
    await expectCaught(dir, "chain", /checkpoint #1 \(tree size \d+\) root does not match the events .*\(rewritten history\?\)/);
  });

  it("all checkpoint rows deleted", async () => {
    const dir = attacked((_d, db) => withoutTriggers(db, () => db.exec("DELETE FROM audit_checkpoints")));
    await expectCaught(dir, "chain", /seq \d+ records checkpoint #1, but there is no such checkpoint row \(deleted\?\)/);
  });

  it("all checkpoints and their events deleted, chain recomputed: caught once the log spans more than 12 minutes, else only by an anchor", async () => {
    const strip = (db: Database.Database, lastAt?: string) =>
      withoutTriggers(db, () => {
        db.exec("DELETE FROM audit_checkpoints; DELETE FROM audit_events WHERE action = 'audit.checkpoint'; DELETE FROM audit_tree_nodes");
        rechain(db, 1, (body, i, rows) => ({ ...body, seq: i + 1, ...(lastAt && i === rows.length - 1 ? { at: lastAt } : {}) }));
      });
    const recent = attacked((_d, db) => strip(db));
    await expectNeedsAnchor(
      recent,
      /the trusted checkpoint \(tree size \d+\) root does not match the events|log has \d+ events but the trusted checkpoint covers/,
    );
    const later = new Date(Date.now() + 13 * 60_000).toISOString(); // the newest event 13 minutes after the others
    const spanning = attacked((_d, db) => strip(db, later));
    await expectCaught(
      spanning,
      "chain",
      /events from seq 1 \(.*\) on are covered by no checkpoint, yet 1[34] minutes older than the newest event .*\(checkpoints deleted\?\)/,
    );
  });

  it("tail truncated with its checkpoints: intact alone, caught by the trusted checkpoint", async () => {
    const dir = attacked((_d, db) =>
      withoutTriggers(db, () => {
        db.prepare("DELETE FROM audit_events WHERE seq > ?").run(beforeTail);
        db.prepare("DELETE FROM audit_checkpoints WHERE tree_size > ?").run(beforeTail);
        db.exec("DELETE FROM audit_tree_nodes");
      }),
    );
    await expectNeedsAnchor(
      dir,
      new RegExp(`log has ${beforeTail} events but the trusted checkpoint covers ${trusted.treeHead.treeSize} \\(truncated\\?\\)`),
    );
  });

  it("rewrite and re-sign with the server's key: intact alone, caught by the trusted checkpoint", async () => {
    const dir = attacked(() => undefined);
    rewriteAndResign(dir, app.auditKeys, { seq: 5, payload: (p) => ({ ...p, rewritten: true }) });
    await expectNeedsAnchor(
      dir,
      /the trusted checkpoint \(tree size \d+\) root does not match the events \(split view or rewritten history\?\)/,
    );
  });

  it("a content attack plus the recorded hash rewritten and re-signed: intact alone, caught by the trusted checkpoint", async () => {
    const dir = attacked((_d, db) => {
      const run = db.prepare("SELECT id, config_json AS config, config_sha256 AS sha FROM runs ORDER BY id LIMIT 1").get() as {
        id: number;
        config: string;
        sha: string;
      };
      const config = run.config.replace('"learningRate":0.03', '"learningRate":0.5');
      const forged = sha256Canonical(JSON.parse(config));
      expect(forged).not.toBe(run.sha);
      db.prepare("UPDATE runs SET config_json = ?, config_sha256 = ? WHERE id = ?").run(config, forged, run.id);
      db.prepare("UPDATE run_params SET value_num = 0.5 WHERE run_id = ? AND key = 'training.learningRate'").run(run.id); // derived from the config
      const seqs = (
        db.prepare("SELECT seq FROM audit_events WHERE instr(payload, ?) > 0 ORDER BY seq").all(run.sha) as { seq: number }[]
      ).map((r) => r.seq);
      expect(seqs.length).toBeGreaterThan(0);
      db.close();
      for (const seq of seqs)
        rewriteAndResign(_d, app.auditKeys, {
          seq,
          payload: (p) => JSON.parse(JSON.stringify(p).split(run.sha).join(forged)) as Record<string, unknown>,
        });
    });
    await expectNeedsAnchor(
      dir,
      /the trusted checkpoint \(tree size \d+\) root does not match the events \(split view or rewritten history\?\)/,
    );
  });
});

type Body = ReturnType<typeof eventBody>;
/** Rewrites events from seq `from` on through `edit` and recomputes every leaf and chain hash from there (no key needed). */
function rechain(db: Database.Database, from: number, edit: (body: Body, index: number, rows: Body[]) => Body): void {
  const rows = (
    db
      .prepare(
        "SELECT seq, at, actor_id AS actorId, actor_name AS actorName, role, action, entity_type AS entityType, entity_id AS entityId, payload FROM audit_events ORDER BY seq",
      )
      .all() as (Omit<Body, "payload"> & { payload: string })[]
  ).map((r) => ({ ...r, payload: JSON.parse(r.payload) as unknown }));
  const firstIndex = rows.findIndex((r) => r.seq >= from);
  let prev =
    firstIndex === 0
      ? GENESIS_CHAIN_HASH
      : (db.prepare("SELECT chain_hash AS h FROM audit_events WHERE seq = ?").get(rows[firstIndex - 1]!.seq) as { h: string }).h;
  const edited = rows.map((r, i) => (i >= firstIndex ? edit(r, i, rows) : r));
  db.prepare("DELETE FROM audit_events WHERE seq >= ?").run(from);
  const insert = db.prepare(
    "INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
  );
  for (const b of edited.slice(firstIndex)) {
    const payload = canonicalJson(b.payload);
    const leaf = leafHash(eventBody({ ...b, payload }));
    prev = chainHash(prev, leaf);
    insert.run(b.seq, b.at, b.actorId, b.actorName, b.role, b.action, b.entityType, b.entityId, payload, leaf, prev);
  }
}
