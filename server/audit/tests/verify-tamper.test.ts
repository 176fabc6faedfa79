/**
 * The verifier against a real database: a clean ledger verifies; editing, deleting, swapping, inserting,
 * truncating, re-chaining, foreign-key signing and altering checkpoints are each detected and named.
 */
import { beforeAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import fs from "node:fs";
import path from "node:path";
import { openDatabase } from "@/db/client";
import { chainHash, eventBody, leafHash } from "../ledger";
import { generateAuditKeys, loadAuditPublicKey, PUBLIC_KEY_FILE } from "../keys";
import { signTreeHead, treeHeadOf, trustedCheckpointFromRow, type TrustedCheckpoint } from "../checkpoints";
import { verifyDatabase, type VerifyDatabaseOptions } from "../verify";
import { autoRangeWorkers } from "../verify-database";
import { merkleRoot } from "../merkle";
import { canonicalJson } from "@/contracts/canonical";
import { buildFixture, copyFixture, readRows, rechain, tamper, type Fixture } from "./ledger-fixture";

let f: Fixture;
beforeAll(() => {
  f = buildFixture();
});

/** The auditor's kept copy of checkpoint #2, with the genuine public key. */
function trustedFromFixture(dir: string): TrustedCheckpoint {
  return trustedCheckpointFromRow(f.checkpoints[1]!, loadAuditPublicKey(dir).publicKeyPem);
}

describe("audit ledger verification", () => {
  const workers = 0; // one pass on this thread; the parallel mode is compared with it below
  // The fixture's events are synthetic (no table rows behind them): these tests are about the chain, so content is off.
  const verify = (source: Parameters<typeof verifyDatabase>[0], opts: VerifyDatabaseOptions = {}) =>
    verifyDatabase(source, { workers, content: false, ...opts });

  it("verifies a clean ledger, with and without a trusted checkpoint", async () => {
    const r = await verify(f.dir);
    expect(r).toMatchObject({ ok: true, eventsChecked: 52, checkpointsChecked: 2, firstBadSeq: null, problem: null, unsignedTail: 11 });
    expect(r.latestCheckpoint).toMatchObject({ id: 2, treeSize: 41 });
    expect(r.keySource).toBe("data directory");
    expect(r.workers).toBe(workers);
    const t = await verify(f.dir, { trustedCheckpoint: trustedFromFixture(f.dir) });
    expect(t).toMatchObject({ ok: true, trustedCheckpointChecked: true, keySource: "trusted checkpoint" });
  });

  it("the triggers reject UPDATE and DELETE on events and checkpoints", async () => {
    const dir = copyFixture(f, "triggers");
    const sqlite = new Database(path.join(dir, "runledger.sqlite"));
    expect(() => sqlite.prepare("UPDATE audit_events SET actor_name = 'Mallory' WHERE seq = 3").run()).toThrow(
      /append-only: UPDATE rejected/,
    );
    expect(() => sqlite.prepare("DELETE FROM audit_events WHERE seq = 52").run()).toThrow(/append-only: DELETE rejected/);
    expect(() => sqlite.prepare("UPDATE audit_checkpoints SET reason = 'x' WHERE id = 1").run()).toThrow(/UPDATE rejected/);
    expect(() => sqlite.prepare("DELETE FROM audit_checkpoints WHERE id = 1").run()).toThrow(/DELETE rejected/);
    sqlite.close();
    expect((await verify(dir)).ok).toBe(true);
  });

  it("detects an edited field", async () => {
    const dir = copyFixture(f, "edit");
    tamper(dir, (db) => db.prepare("UPDATE audit_events SET actor_name = 'Mallory' WHERE seq = 17").run());
    const r = await verify(dir);
    expect(r).toMatchObject({ ok: false, firstBadSeq: 17, problem: "seq 17: leaf hash does not match its content (edited?)" });
  });

  it("detects an edited payload whose leaf hash was recomputed (the chain breaks at the next row)", async () => {
    const dir = copyFixture(f, "edit-rehash");
    tamper(dir, (db) => {
      const rows = readRows(db);
      const row = { ...rows[29]!, payload: JSON.stringify({ after: { learningRate: 9 } }) };
      const leaf = leafHash(eventBody(row));
      db.prepare("UPDATE audit_events SET payload = ?, leaf_hash = ?, chain_hash = ? WHERE seq = 30").run(
        row.payload,
        leaf,
        chainHash(rows[28]!.chainHash, leaf),
      );
    });
    const r = await verify(dir);
    expect(r.ok).toBe(false);
    expect(r.firstBadSeq).toBe(31);
    expect(r.problem).toMatch(/^seq 31: chain hash does not follow from seq 30/);
  });

  it("detects a deleted row", async () => {
    const dir = copyFixture(f, "delete");
    tamper(dir, (db) => db.prepare("DELETE FROM audit_events WHERE seq = 17").run());
    const r = await verify(dir);
    expect(r).toMatchObject({ ok: false, firstBadSeq: 17, problem: "seq 17 missing: expected 17, found 18 (deleted row?)" });
  });

  it("detects two rows whose contents were swapped", async () => {
    const dir = copyFixture(f, "swap");
    tamper(dir, (db) => {
      const rows = readRows(db);
      const update = db.prepare(
        "UPDATE audit_events SET at = ?, actor_id = ?, actor_name = ?, role = ?, action = ?, entity_type = ?, entity_id = ?, payload = ?, leaf_hash = ?, chain_hash = ? WHERE seq = ?",
      );
      for (const [from, to] of [
        [9, 10],
        [10, 9],
      ] as const) {
        const r = rows[from]!;
        update.run(r.at, r.actorId, r.actorName, r.role, r.action, r.entityType, r.entityId, r.payload, r.leafHash, r.chainHash, to + 1);
      }
    });
    const r = await verify(dir);
    expect(r).toMatchObject({ ok: false, firstBadSeq: 10 });
    expect(r.problem).toContain("seq 10: leaf hash does not match its content");
  });

  it("detects a forged row inserted in the middle (later rows renumbered)", async () => {
    const dir = copyFixture(f, "insert");
    tamper(dir, (db) => {
      const rows = readRows(db);
      for (let seq = 52; seq >= 25; seq--) db.prepare("UPDATE audit_events SET seq = seq + 1 WHERE seq = ?").run(seq);
      const forged = { ...rows[23]!, seq: 25, actorName: "Mallory", payload: JSON.stringify({ approved: true }) };
      const leaf = leafHash(eventBody(forged));
      db.prepare(
        "INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
      ).run(
        25,
        forged.at,
        forged.actorId,
        forged.actorName,
        forged.role,
        forged.action,
        forged.entityType,
        forged.entityId,
        forged.payload,
        leaf,
        chainHash(rows[23]!.chainHash, leaf),
      );
    });
    const r = await verify(dir);
    expect(r).toMatchObject({ ok: false, firstBadSeq: 26 });
    expect(r.problem).toContain("seq 26: leaf hash does not match its content");
  });

  it("detects a forged row appended with a made-up hash", async () => {
    const dir = copyFixture(f, "append");
    tamper(dir, (db) => {
      db.prepare(
        "INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash) VALUES (53, '2025-02-01T00:00:00.000Z', 1, 'Mallory', 'engineer', 'alias.move', 'model', '1', '{}', ?, ?)",
      ).run("00".repeat(32), "00".repeat(32));
    });
    expect(await verify(dir)).toMatchObject({
      ok: false,
      firstBadSeq: 53,
      problem: "seq 53: leaf hash does not match its content (edited?)",
    });
  });

  it("detects a truncated tail against the signed checkpoints and against a trusted checkpoint", async () => {
    const dir = copyFixture(f, "truncate");
    tamper(dir, (db) => db.prepare("DELETE FROM audit_events WHERE seq > 30").run());
    const r = await verify(dir);
    expect(r.ok).toBe(false);
    expect(r.problems).toContain("checkpoint #2 covers 41 events but the log has 30 (truncated?)");

    // A thorough attacker also deletes the checkpoint row that reveals it: only the auditor's copy can tell.
    const dir2 = copyFixture(f, "truncate2");
    tamper(dir2, (db) => {
      db.prepare("DELETE FROM audit_events WHERE seq > 30").run();
      db.prepare("DELETE FROM audit_checkpoints WHERE id = 2").run();
    });
    expect((await verify(dir2)).ok).toBe(true);
    const t = await verify(dir2, { trustedCheckpoint: trustedFromFixture(f.dir) });
    expect(t).toMatchObject({ ok: false, problem: "log has 30 events but the trusted checkpoint covers 41 (truncated?)" });
  });

  it("detects a log re-chained consistently from an edited event: the root no longer matches the signed checkpoint", async () => {
    const dir = copyFixture(f, "rechain");
    tamper(dir, (db) => {
      db.prepare("UPDATE audit_events SET actor_name = 'Mallory' WHERE seq = 5").run();
      rechain(db, 5);
    });
    const r = await verify(dir);
    expect(r.ok).toBe(false);
    expect(r.firstBadSeq).toBeNull();
    expect(r.problem).toBe("checkpoint #1 (tree size 20) root does not match the events (the change is in seq 1..20) (rewritten history?)");
    expect(r.problems[1]).toMatch(/^checkpoint #2 \(tree size 41\) root does not match/);
  });

  it("detects a rewritten log re-signed with another key, even when the key file was replaced, given the auditor's checkpoint", async () => {
    const dir = copyFixture(f, "resign");
    const mallory = generateAuditKeys();
    tamper(dir, (db) => {
      db.prepare("UPDATE audit_events SET actor_name = 'Mallory' WHERE seq = 5").run();
      rechain(db, 5);
      // Re-sign every checkpoint, rewrite the copy each checkpoint event carries, and re-chain after it.
      for (const cp of f.checkpoints) {
        const leaves = readRows(db).map((r) => Buffer.from(r.leafHash, "hex"));
        const head = {
          ...treeHeadOf(cp),
          rootHash: merkleRoot(leaves.slice(0, cp.treeSize)).toString("hex"),
          keyFingerprint: mallory.fingerprint,
        };
        const signature = signTreeHead(mallory, head);
        db.prepare("UPDATE audit_checkpoints SET root_hash = ?, key_fingerprint = ?, signature = ? WHERE id = ?").run(
          head.rootHash,
          head.keyFingerprint,
          signature,
          cp.id,
        );
        const payload = canonicalJson({ checkpointId: cp.id, ...head, signature, reason: cp.reason });
        db.prepare("UPDATE audit_events SET payload = ? WHERE seq = ?").run(payload, cp.treeSize + 1);
        rechain(db, cp.treeSize + 1);
      }
    });
    // Against the genuine key kept in the data directory: signed with the wrong key.
    const r = await verify(dir);
    expect(r.ok).toBe(false);
    expect(r.problem).toBe(
      `checkpoint #1 was signed with key ${mallory.fingerprint}, not the trusted server key ${loadAuditPublicKey(f.dir).fingerprint}`,
    );

    // The attacker also replaces the public key file: the data alone now looks fine...
    fs.writeFileSync(path.join(dir, PUBLIC_KEY_FILE), mallory.publicKeyPem);
    const fooled = await verify(dir);
    expect(fooled.ok).toBe(true);
    expect(fooled.keyFingerprint).toBe(mallory.fingerprint);
    expect(fooled.notes.join(" ")).toContain("compare its fingerprint");
    // ...but not against the checkpoint and key the auditor kept.
    const caught = await verify(dir, { trustedCheckpoint: trustedFromFixture(f.dir) });
    expect(caught.ok).toBe(false);
    expect(caught.problem).toMatch(/^checkpoint #1 was signed with key/);
    expect(caught.problems).toContain(
      "the trusted checkpoint (tree size 41) root does not match the events (the change is in seq 1..41) (split view or rewritten history?)",
    );
  });

  it("detects a checkpoint signed with another key that claims the server's fingerprint", async () => {
    const dir = copyFixture(f, "foreign-sig");
    const other = generateAuditKeys();
    tamper(dir, (db) => {
      const cp = f.checkpoints[0]!;
      db.prepare("UPDATE audit_checkpoints SET signature = ? WHERE id = ?").run(signTreeHead(other, treeHeadOf(cp)), cp.id);
    });
    const r = await verify(dir);
    expect(r.ok).toBe(false);
    expect(r.problem).toBe("checkpoint #1 signature is not valid for the server key (altered checkpoint?)");
  });

  it("detects an altered checkpoint (root, size or time changed)", async () => {
    for (const [column, value] of [
      ["root_hash", "11".repeat(32)],
      ["tree_size", 19],
      ["at", "2030-01-01T00:00:00.000Z"],
    ] as const) {
      const dir = copyFixture(f, `alter-${column}`);
      tamper(dir, (db) => db.prepare(`UPDATE audit_checkpoints SET ${column} = ? WHERE id = 2`).run(value));
      const r = await verify(dir);
      expect(r.ok, column).toBe(false);
      expect(r.problem, column).toBe("checkpoint #2 signature is not valid for the server key (altered checkpoint?)");
      expect(r.problems, column).toContain("checkpoint #2 differs from the copy recorded at seq 42 (altered checkpoint?)");
    }
  });

  it("detects a deleted checkpoint row through the event that recorded it", async () => {
    const dir = copyFixture(f, "cp-delete");
    tamper(dir, (db) => db.prepare("DELETE FROM audit_checkpoints WHERE id = 1").run());
    const r = await verify(dir);
    expect(r).toMatchObject({
      ok: false,
      firstBadSeq: 21,
      problem: "seq 21 records checkpoint #1, but there is no such checkpoint row (deleted?)",
    });
  });

  it("rejects a trusted checkpoint that was tampered with", async () => {
    const trusted = trustedFromFixture(f.dir);
    const forged = { ...trusted, treeHead: { ...trusted.treeHead, treeSize: 30 } };
    const r = await verify(f.dir, { trustedCheckpoint: forged });
    expect(r).toMatchObject({
      ok: false,
      problem: "the trusted checkpoint signature is not valid for the server key (altered checkpoint?)",
    });
  });

  it("verifies an open Db handle; a new checkpoint refuses a damaged tail and never launders a rewrite", async () => {
    const dir = copyFixture(f, "open-db");
    const db = openDatabase(dir);
    const keys = f.keys;
    expect((await verify(db, { dataDir: dir })).ok).toBe(true);
    db.$client.close();
    tamper(dir, (s) => s.prepare("UPDATE audit_events SET role = 'admin' WHERE seq = 45").run());
    const db2 = openDatabase(dir);
    const { createAuditCheckpoint, AuditIntegrityError } = await import("../checkpoints");
    expect(() => createAuditCheckpoint(db2, keys, "after tamper")).toThrow(AuditIntegrityError);
    expect(() => createAuditCheckpoint(db2, keys, "after tamper")).toThrow(/refusing to sign: seq 45: leaf hash does not match/);
    db2.$client.close();

    // A rewrite under the last signed checkpoint is not laundered: the next checkpoint continues the signed tree
    // from the frontier recorded with checkpoint #2, so it still commits to the original history.
    const dir3 = copyFixture(f, "no-launder");
    tamper(dir3, (s) => {
      s.prepare("UPDATE audit_events SET role = 'admin' WHERE seq = 10").run();
      rechain(s, 10);
    });
    const db3 = openDatabase(dir3);
    const fresh = createAuditCheckpoint(db3, keys, "after rewrite").checkpoint;
    const r3 = await verify(dir3);
    expect(r3.ok).toBe(false);
    expect(r3.problems).toContain(
      `checkpoint #${fresh.id} (tree size 52) root does not match the events (the change is in seq 1..52) (rewritten history?)`,
    );
    db3.$client.close();

    // Without a recorded frontier (say, a checkpoint event from an older version) every leaf is re-read and
    // must reproduce the previous signed root, else signing is refused.
    const dir4 = copyFixture(f, "no-frontier");
    tamper(dir4, (s) => {
      const payload = JSON.parse((s.prepare("SELECT payload FROM audit_events WHERE seq = 42").get() as { payload: string }).payload);
      delete payload.frontier;
      s.prepare("UPDATE audit_events SET payload = ? WHERE seq = 42").run(canonicalJson(payload));
      rechain(s, 42);
    });
    expect((await verify(dir4)).ok).toBe(true);
    const dir5 = copyFixture({ ...f, dir: dir4 }, "no-frontier-rewritten");
    const db4 = openDatabase(dir4);
    expect(createAuditCheckpoint(db4, keys, "recomputed").checkpoint.treeSize).toBe(52);
    db4.$client.close();
    expect((await verify(dir4)).ok).toBe(true);
    tamper(dir5, (s) => {
      s.prepare("UPDATE audit_events SET role = 'admin' WHERE seq = 10").run();
      rechain(s, 10);
    });
    const db5 = openDatabase(dir5);
    expect(() => createAuditCheckpoint(db5, keys, "after rewrite")).toThrow(
      /refusing to sign: events 1\.\.41 no longer match checkpoint #2/,
    );
    db5.$client.close();
  });
});

// Range workers check events [1..26] and [27..52] while the main thread builds the tree: same answers as one pass.
describe("parallel verification gives the same result as one pass", () => {
  const cases: [string, (db: Database.Database) => void][] = [
    ["clean", () => {}],
    ["edit in the first range", (db) => db.prepare("UPDATE audit_events SET role = 'admin' WHERE seq = 17").run()],
    ["edit in the second range", (db) => db.prepare("UPDATE audit_events SET entity_id = '999' WHERE seq = 40").run()],
    ["row deleted at the end of the first range", (db) => db.prepare("DELETE FROM audit_events WHERE seq = 26").run()],
    ["row deleted at the start of the second range", (db) => db.prepare("DELETE FROM audit_events WHERE seq = 27").run()],
    ["checkpoint row deleted", (db) => db.prepare("DELETE FROM audit_checkpoints WHERE id = 1").run()],
    [
      "re-chained from seq 30",
      (db) => {
        db.prepare("UPDATE audit_events SET actor_name = 'Mallory' WHERE seq = 30").run();
        rechain(db, 30);
      },
    ],
    ["checkpoint #1 altered", (db) => db.prepare("UPDATE audit_checkpoints SET at = '2030-01-01T00:00:00.000Z' WHERE id = 1").run()],
    ["protective trigger dropped", (db) => db.exec("DROP TRIGGER signatures_no_delete")],
    [
      "events after seq 30 and checkpoint #2 deleted",
      (db) => {
        db.prepare("DELETE FROM audit_events WHERE seq > 30").run();
        db.prepare("DELETE FROM audit_checkpoints WHERE id = 2").run();
      },
    ],
  ];
  const stillIntact = new Set(["clean", "events after seq 30 and checkpoint #2 deleted"]); // the latter needs an anchor
  it.each(cases)("%s", async (name, damage) => {
    const dir = copyFixture(f, `parallel-${name.replace(/\W+/g, "-")}`);
    tamper(dir, damage);
    const { durationMs: _a, workers: w1, ...onePass } = await verifyDatabase(dir, { workers: 0, content: false });
    const { durationMs: _b, workers: w2, ...parallel } = await verifyDatabase(dir, { workers: 2, content: false });
    expect([w1, w2]).toEqual([0, 2]); // the workers really ran (no silent fallback to one pass)
    expect(parallel).toEqual(onePass);
    expect(onePass.ok).toBe(stillIntact.has(name));
  });
  it("the time it reports includes starting the workers (most of it on a log this small)", async () => {
    const dir = copyFixture(f, "parallel-timed");
    const started = performance.now();
    const r = await verifyDatabase(dir, { workers: 2 });
    const took = performance.now() - started;
    expect(r.workers).toBe(2);
    expect(r.durationMs).toBeGreaterThan(0.6 * took); // (it was ~0.3 when it counted from after the start)
    expect(r.durationMs).toBeLessThanOrEqual(took + 1); // (rounded to 0.1 ms)
  });
});

describe('"auto" range workers', () => {
  it("one per core not busy with content (this thread, the content worker), at least one", () => {
    expect(autoRangeWorkers(2, true, true)).toBe(1);
    expect(autoRangeWorkers(2, true, false)).toBe(1);
    expect(autoRangeWorkers(2, false, false)).toBe(2);
    expect(autoRangeWorkers(8, true, true)).toBe(6);
    expect(autoRangeWorkers(1, true, true)).toBe(1);
  });
});
