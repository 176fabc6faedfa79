/**
 * What `audit verify` proves, level by level, against real databases tampered with for real:
 * - anchor: without one the result says so (anchored: false) and --require-anchor exits 1; a trusted checkpoint
 *   anchors up to its size; an anchor over another history (split view) or beyond the log (truncation) fails;
 * - coverage: a long run whose writer applies the checkpoint policy verifies at every step (fake times); deleting
 *   every checkpoint row and event (and re-chaining) fails, as does a writer that never signs;
 * - triggers: a dropped or altered protective trigger fails; a trigger added by a later migration is expected;
 * - content: a table edited behind the ledger's back fails, naming entity, recorded and found values.
 * The fixture's events are synthetic (no table rows behind them), so chain-level cases run with content off.
 */
import { beforeAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import fs from "node:fs";
import path from "node:path";
import { openDatabase } from "@/db/client";
import { auditVerifyCommand, type CliIo } from "@/server/cli/audit-verify";
import { createTestApp } from "@/server/tests/test-app";
import { appendAuditEvent } from "../ledger";
import { loadAuditPublicKey } from "../keys";
import { listAuditCheckpoints, trustedCheckpointFromRow } from "../checkpoints";
import { applyCheckpointPolicy, CHECKPOINT_EVERY_MINUTES } from "../checkpoint-policy";
import { verifyAuditEvents, verifyDatabase, type VerifyDatabaseOptions } from "../verify";
import { checkTriggers } from "../verify-triggers";
import { merkleRoot } from "../merkle";
import { ALICE, buildFixture, copyFixture, readRows, rechain, tamper, tempDir, testKeys, type Fixture } from "./ledger-fixture";

let f: Fixture;
beforeAll(() => {
  f = buildFixture();
});

const chainOnly = (dir: string, opts: VerifyDatabaseOptions = {}) => verifyDatabase(dir, { content: false, ...opts });

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { out: (t) => (out += t), err: (t) => (err += t) };
  return { code: await auditVerifyCommand(argv, io), out, err };
}

describe("anchor level", () => {
  it("without an anchor: everything is checked, the result says plainly what that means, --require-anchor exits 1", async () => {
    const r = await chainOnly(f.dir);
    expect(r).toMatchObject({
      ok: true,
      anchored: false,
      levels: {
        chain: { ok: true, events: 52, checkpoints: 2, problem: null },
        anchor: { anchored: false, treeSize: 0, by: [], problem: null },
      },
    });
    expect(r.notes.join(" ")).toMatch(/NOT anchored: .*a holder of the signing key could have rewritten or truncated history/);

    const text = await cli(["verify", "--data-dir", f.dir, "--no-content"]);
    expect(text.code).toBe(0);
    expect(text.out).toContain("chain intact: 52 events, 2 signed checkpoints");
    expect(text.out).toContain("NOT anchored: no trusted checkpoint or witness cosignature was given");
    expect(text.out).toContain("protective triggers intact");
    const required = await cli(["verify", "--data-dir", f.dir, "--no-content", "--require-anchor", "--json"]);
    expect(required.code).toBe(1);
    expect(JSON.parse(required.out)).toMatchObject({
      ok: false,
      anchored: false,
      levels: { anchor: { anchored: false, problem: expect.stringMatching(/^not anchored, and an anchor is required/) } },
    });
  });

  it("a trusted checkpoint anchors the log up to its tree size", async () => {
    const file = path.join(tempDir("auditor"), "trusted.json");
    fs.writeFileSync(file, JSON.stringify(trustedCheckpointFromRow(f.checkpoints[1]!, loadAuditPublicKey(f.dir).publicKeyPem)));
    const { code, out } = await cli(["verify", "--data-dir", f.dir, "--no-content", "--trusted-checkpoint", file, "--require-anchor"]);
    expect(code).toBe(0);
    expect(out).toContain("anchored up to tree size 41 by the trusted checkpoint (trusted checkpoint, tree size 41)");
    const json = JSON.parse((await cli(["verify", "--data-dir", f.dir, "--no-content", "--trusted-checkpoint", file, "--json"])).out);
    expect(json).toMatchObject({
      ok: true,
      anchored: true,
      levels: {
        anchor: {
          anchored: true,
          treeSize: 41,
          by: [{ kind: "trusted checkpoint", name: "the trusted checkpoint", treeSize: 41 }],
          problem: null,
        },
      },
    });
  });

  it("an anchor over another history is a split view; an anchor beyond the log is truncation; a matching one anchors", () => {
    const sqlite = new Database(path.join(f.dir, "runledger.sqlite"), { readonly: true });
    const rows = readRows(sqlite);
    const checkpoints = listAuditCheckpoints(sqlite);
    sqlite.close();
    const key = loadAuditPublicKey(f.dir);
    const leaves = rows.map((r) => Buffer.from(r.leafHash, "hex"));
    const otherHistory = merkleRoot([...leaves.slice(0, 19), Buffer.alloc(32, 7)]).toString("hex");
    const split = verifyAuditEvents(rows, checkpoints, key, {
      anchors: [{ kind: "witness", name: "witness w1", treeSize: 20, rootHash: otherHistory }],
    });
    expect(split).toMatchObject({ ok: false, anchored: false, levels: { chain: { ok: true }, anchor: { anchored: false } } });
    expect(split.levels.anchor.problem).toBe("witness w1 (tree size 20) root does not match the events (split view or rewritten history?)");

    const beyond = verifyAuditEvents(rows, checkpoints, key, {
      anchors: [{ kind: "witness", name: "witness w1", treeSize: 60, rootHash: otherHistory }],
    });
    expect(beyond).toMatchObject({ ok: false, problem: "log has 52 events but witness w1 covers 60 (truncated?)" });

    const good = verifyAuditEvents(rows, checkpoints, key, {
      anchors: [{ kind: "witness", name: "witness w1", treeSize: 30, rootHash: merkleRoot(leaves.slice(0, 30)).toString("hex") }],
      requireAnchor: true,
    });
    expect(good).toMatchObject({
      ok: true,
      anchored: true,
      levels: { anchor: { treeSize: 30, by: [{ kind: "witness", name: "witness w1", treeSize: 30 }] } },
    });
  });
});

/** A data directory whose events are written at fake times `minutesApart` apart, optionally applying the policy. */
function longRun(opts: { minutes: number; minutesApart: number; policy: boolean }) {
  const dir = tempDir("long-run");
  const db = openDatabase(dir);
  const keys = testKeys(dir);
  const t0 = Date.UTC(2025, 5, 1, 9, 0, 0);
  for (let m = 0; m <= opts.minutes; m += opts.minutesApart) {
    const now = new Date(t0 + m * 60_000);
    db.transaction((tx) => {
      appendAuditEvent(tx, {
        actor: ALICE,
        action: m === 0 ? "run.start" : "checkpoint.create",
        entityType: "run",
        entityId: 1,
        payload: { epoch: m / opts.minutesApart },
        at: now.toISOString(),
      });
    });
    if (opts.policy || m === 0) applyCheckpointPolicy({ db, auditKeys: keys }, { now });
  }
  db.$client.close();
  return { dir };
}

describe("coverage: every event older than the checkpoint interval is covered by a checkpoint", () => {
  it("a 20-minute run whose writer applies the policy verifies at every step; a writer that never signs does not", async () => {
    const dir = tempDir("long-run-steps");
    const db = openDatabase(dir);
    const keys = testKeys(dir);
    const t0 = Date.UTC(2025, 5, 1, 9, 0, 0);
    for (let m = 0; m <= 20; m += 2) {
      const now = new Date(t0 + m * 60_000);
      db.transaction((tx) => {
        appendAuditEvent(tx, {
          actor: ALICE,
          action: "checkpoint.create",
          entityType: "run",
          entityId: 1,
          payload: { minute: m },
          at: now.toISOString(),
        });
      });
      applyCheckpointPolicy({ db, auditKeys: keys }, { now }); // what the orchestrator does after each persisted trainer event
      const r = await verifyDatabase(db, { dataDir: dir, content: false });
      expect(r.ok, `minute ${m}: ${r.problem}`).toBe(true);
    }
    expect(listAuditCheckpoints(db).length).toBeGreaterThanOrEqual(3); // the first events, then every 10 minutes
    db.$client.close();

    const unsigned = longRun({ minutes: 20, minutesApart: 2, policy: false });
    const r = await chainOnly(unsigned.dir);
    expect(r.ok).toBe(false);
    expect(r.problem).toMatch(
      new RegExp(
        `^events from seq 3 \\(2025-06-01T09:02:00.000Z\\) on are covered by no checkpoint, yet 18 minutes older than the newest event .* at least every ${CHECKPOINT_EVERY_MINUTES} minutes \\(checkpoints deleted\\?\\)$`,
      ),
    );
  });

  it("a server that simply stopped (its last events unsigned, verified much later) passes: time is the newest event's", async () => {
    const run = longRun({ minutes: 8, minutesApart: 2, policy: false }); // 8 minutes: within the interval
    expect(await chainOnly(run.dir)).toMatchObject({ ok: true, unsignedTail: 5 });
  });

  it("deleting every checkpoint row and event (triggers dropped, log renumbered and re-chained) fails", async () => {
    const run = longRun({ minutes: 30, minutesApart: 3, policy: true });
    expect((await chainOnly(run.dir)).ok).toBe(true);
    tamper(run.dir, (db) => {
      const kept = readRows(db).filter((r) => r.action !== "audit.checkpoint");
      db.prepare("DELETE FROM audit_checkpoints").run();
      db.prepare("DELETE FROM audit_events").run();
      const insert = db.prepare(
        "INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash) VALUES (?,?,?,?,?,?,?,?,?,'','')",
      );
      kept.forEach((r, i) => insert.run(i + 1, r.at, r.actorId, r.actorName, r.role, r.action, r.entityType, r.entityId, r.payload));
      rechain(db, 1);
    });
    const r = await chainOnly(run.dir);
    expect(r).toMatchObject({ ok: false, checkpointsChecked: 0, levels: { chain: { ok: false, events: 11 }, triggers: { ok: true } } });
    expect(r.problems).toHaveLength(1);
    expect(r.problem).toMatch(
      /^events from seq 1 \(2025-06-01T09:00:00.000Z\) on are covered by no checkpoint, yet 30 minutes older than the newest event/,
    );
  });
});

describe("triggers level (live database)", () => {
  it("a dropped protective trigger fails, naming it", async () => {
    const dir = copyFixture(f, "trigger-dropped");
    const sqlite = new Database(path.join(dir, "runledger.sqlite"));
    sqlite.exec("DROP TRIGGER decisions_no_update");
    sqlite.close();
    const r = await chainOnly(dir);
    expect(r).toMatchObject({
      ok: false,
      levels: { chain: { ok: true }, triggers: { ok: false, missing: ["decisions_no_update"], altered: [] } },
    });
    expect(r.problem).toBe(
      "protective trigger decisions_no_update is missing (dropped?): the table it guards can be changed without the app refusing",
    );
    const { code, out } = await cli(["verify", "--data-dir", dir, "--no-content"]);
    expect(code).toBe(1);
    expect(out).toContain("protective triggers DAMAGED: missing decisions_no_update;");
  });

  it("an altered protective trigger fails, naming it", async () => {
    const dir = copyFixture(f, "trigger-altered");
    const sqlite = new Database(path.join(dir, "runledger.sqlite"));
    sqlite.exec("DROP TRIGGER audit_events_no_delete");
    sqlite.exec(
      "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events WHEN 0 BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE rejected'); END",
    );
    sqlite.prepare("DELETE FROM audit_events WHERE seq = 52").run(); // the trigger no longer protects anything
    sqlite.close();
    const r = await chainOnly(dir);
    expect(r.levels.triggers).toEqual({ ok: false, missing: [], altered: ["audit_events_no_delete"] });
    expect(r.problems.some((p) => p.startsWith("protective trigger audit_events_no_delete differs from its migration (altered?)"))).toBe(
      true,
    );
  });

  it("expects the triggers a later migration adds", () => {
    const migrations = tempDir("migrations");
    fs.cpSync(path.join(process.cwd(), "db", "migrations"), migrations, { recursive: true });
    const journalFile = path.join(migrations, "meta", "_journal.json");
    const journal = JSON.parse(fs.readFileSync(journalFile, "utf8")) as {
      entries: { idx: number; version: string; when: number; tag: string; breakpoints: boolean }[];
    };
    const last = journal.entries.at(-1)!;
    journal.entries.push({ ...last, idx: last.idx + 1, when: last.when + 1, tag: "9999_models_frozen" });
    fs.writeFileSync(journalFile, JSON.stringify(journal));
    fs.writeFileSync(
      path.join(migrations, "9999_models_frozen.sql"),
      "CREATE TRIGGER models_no_delete BEFORE DELETE ON models\nBEGIN SELECT RAISE(ABORT, 'no'); END;\n",
    );
    const sqlite = new Database(path.join(f.dir, "runledger.sqlite"), { readonly: true });
    const r = checkTriggers(sqlite, migrations);
    sqlite.close();
    expect(r.level).toEqual({ ok: false, missing: ["models_no_delete"], altered: [] });
  });
});

describe("content level (live database)", () => {
  it("a table edited behind the ledger's back fails, naming the entity, the recorded value and the value found", async () => {
    const app = createTestApp();
    try {
      const clean = await verifyDatabase(app.dataDir, { publicKeyPem: app.auditKeys.publicKeyPem });
      expect(clean.ok, clean.problem ?? "").toBe(true);
      expect(clean.levels.content.checked).toBeGreaterThan(0);
      const sqlite = new Database(path.join(app.dataDir, "runledger.sqlite"));
      sqlite.prepare("UPDATE experiments SET name = 'forged' WHERE id = ?").run(app.experimentId);
      sqlite.close();
      const r = await verifyDatabase(app.dataDir, { publicKeyPem: app.auditKeys.publicKeyPem, workers: 0 });
      expect(r).toMatchObject({ ok: false, levels: { chain: { ok: true }, content: { ok: false }, triggers: { ok: true } } });
      expect(r.levels.content.problems).toContainEqual(
        expect.objectContaining({ entityType: "experiment", entityId: String(app.experimentId), found: '"forged"' }),
      );
      expect(r.problems.some((p) => p.includes("forged"))).toBe(true);
      const keyFile = path.join(tempDir("key"), "server.pem");
      fs.writeFileSync(keyFile, app.auditKeys.publicKeyPem);
      const { code, out } = await cli(["verify", "--data-dir", app.dataDir, "--public-key", keyFile]);
      expect(code).toBe(1);
      expect(out).toContain("content DAMAGED");
      expect(out).toMatch(new RegExp(`content: experiment ${app.experimentId} .*: ledger recorded "iris-mlp", found "forged"`));
    } finally {
      app.close();
    }
  });
});
