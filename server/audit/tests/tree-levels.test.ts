/**
 * Stored Merkle tree levels (tree-levels.ts): proofs built from them equal the reference proofs computed from
 * every leaf (merkle.ts), they are kept in step by checkpoint signing (including a one-time back-fill and a
 * rebuild after the table was altered), an altered row can only make a proof fail, and on a 100,000-event
 * ledger an inclusion proof reads O(log n) rows (counted on the connection) and verifies against the signed root.
 */
import type Database from "better-sqlite3";
import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { openDatabase, type Db } from "@/db/client";
import { createAuditCheckpoint, inclusionProofForSeq, readLeafHashes, treeHeadOf, verifyTreeHeadSignature } from "../checkpoints";
import { generateAuditKeys, type AuditKeys } from "../keys";
import { consistencyProof, inclusionProof, merkleRoot, verifyConsistency, verifyInclusion } from "../merkle";
import { inclusionProofFromLevels, storedTreeSize, storeTreeLevelsForCheckpoint, TreeLevelReader } from "../tree-levels";
import { tempDir, writeEvents } from "./ledger-fixture";
import { appendRawEvents } from "./raw-events";

const hex = (bs: Buffer[]) => bs.map((b) => b.toString("hex"));

/** Counts the rows every statement prepared on this connection hands back, and keeps the SQL. */
function countRows(sqlite: Database.Database) {
  const seen = { rows: 0, sql: new Set<string>() };
  const prepare = sqlite.prepare.bind(sqlite);
  const spy = vi.spyOn(sqlite, "prepare").mockImplementation(((sql: string) => {
    const stmt = prepare(sql);
    seen.sql.add(sql);
    const get = stmt.get.bind(stmt);
    const all = stmt.all.bind(stmt);
    const iterate = stmt.iterate.bind(stmt);
    Object.assign(stmt, {
      get: (...a: unknown[]) => {
        const r = get(...a);
        if (r !== undefined) seen.rows++;
        return r;
      },
      all: (...a: unknown[]) => {
        const r = all(...a);
        seen.rows += r.length;
        return r;
      },
      iterate: function* (...a: unknown[]) {
        for (const r of iterate(...a)) {
          seen.rows++;
          yield r;
        }
      },
    });
    return stmt;
  }) as typeof sqlite.prepare);
  return { seen, restore: () => spy.mockRestore() };
}

describe("tree levels on a small ledger", () => {
  let dir: string;
  let db: Db;
  let keys: AuditKeys;
  beforeAll(() => {
    dir = tempDir("tree-levels");
    db = openDatabase(dir);
    keys = generateAuditKeys();
    writeEvents(db, 20);
    createAuditCheckpoint(db, keys, "test"); // tree size 20
    writeEvents(db, 26, 20);
    createAuditCheckpoint(db, keys, "test"); // tree size 47
    writeEvents(db, 9, 46); // 57 events, the last 9 unsigned
  });
  afterAll(() => {
    db.$client.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("stores every perfect subtree inside the last checkpoint, and nothing beyond it", () => {
    expect(storedTreeSize(db)).toBe(46); // 47 rounded down to even: leaf 47 is read from audit_events
    const rows = db.$client.prepare("SELECT level, idx FROM audit_tree_nodes").all() as { level: number; idx: number }[];
    expect(rows.every((r) => (r.idx + 1) * 2 ** r.level <= 46)).toBe(true);
    expect(rows.length).toBe(23 + 11 + 5 + 2 + 1); // levels 1..5 inside 46 leaves
  });

  it("gives the same inclusion and consistency proofs as the reference over all leaves, at every size", () => {
    const leaves = readLeafHashes(db, 57);
    for (const size of [1, 2, 3, 20, 31, 32, 33, 46, 47, 57]) {
      const reader = new TreeLevelReader(db);
      expect(reader.root(size).toString("hex")).toBe(merkleRoot(leaves.slice(0, size)).toString("hex"));
      for (let i = 0; i < size; i++) expect(hex(reader.inclusionPath(i, size))).toEqual(hex(inclusionProof(i, leaves.slice(0, size))));
      for (let m = 0; m <= size; m++) expect(hex(reader.consistencyPath(m, size))).toEqual(hex(consistencyProof(m, leaves.slice(0, size))));
    }
  });

  it("proves an event against the latest signed checkpoint, and an unsigned one against the current log", () => {
    const signed = inclusionProofFromLevels(db, 5);
    expect(signed).toMatchObject({ treeSize: 47, verified: true, signedRoot: true });
    expect(signed.checkpoint!.rootHash).toBe(signed.rootHash);
    expect(signed.proof).toEqual(inclusionProofForSeq(db, 5).proof);
    const unsigned = inclusionProofFromLevels(db, 55);
    expect(unsigned).toMatchObject({ treeSize: 57, verified: true, signedRoot: false, checkpoint: null });
    const earlier = inclusionProofFromLevels(db, 5, 20);
    expect(earlier).toMatchObject({ treeSize: 20, verified: true, signedRoot: true });
    expect(() => inclusionProofFromLevels(db, 58)).toThrow(/no event seq 58/);
  });

  it("an altered stored node makes the proof fail against the signed root; an altered frontier node is rebuilt at the next checkpoint", () => {
    const sqlite = db.$client;
    sqlite.prepare("UPDATE audit_tree_nodes SET hash = ? WHERE level = 3 AND idx = 1").run(Buffer.alloc(32, 7));
    const bad = inclusionProofFromLevels(db, 2); // its path uses the altered node (leaves 8..15); the root does not
    expect(bad).toMatchObject({ verified: false, signedRoot: true });
    const signedRoot = bad.checkpoint!.rootHash;
    // An interior node is not re-read when signing (that would cost O(n)); a frontier node is, and its change triggers a rebuild.
    expect(storeTreeLevelsForCheckpoint(db, 47, signedRoot)).toMatchObject({ ok: true, rebuilt: false });
    sqlite.prepare("UPDATE audit_tree_nodes SET hash = ? WHERE level = 5 AND idx = 0").run(Buffer.alloc(32, 9));
    expect(inclusionProofFromLevels(db, 40)).toMatchObject({ verified: false, signedRoot: false });
    expect(storeTreeLevelsForCheckpoint(db, 47, signedRoot)).toMatchObject({ ok: true, rebuilt: true, storedSize: 46 });
    expect(inclusionProofFromLevels(db, 2)).toMatchObject({ verified: true, signedRoot: true });
    expect(inclusionProofFromLevels(db, 40)).toMatchObject({ verified: true, signedRoot: true });
  });

  it("back-fills a database that has events but no stored levels at its next checkpoint", () => {
    db.$client.prepare("DELETE FROM audit_tree_nodes").run();
    expect(storedTreeSize(db)).toBe(0);
    const { checkpoint } = createAuditCheckpoint(db, keys, "after upgrade");
    expect(storedTreeSize(db)).toBe(checkpoint.treeSize - (checkpoint.treeSize % 2));
    const p = inclusionProofFromLevels(db, 30);
    expect(p).toMatchObject({ treeSize: checkpoint.treeSize, verified: true, signedRoot: true });
    expect(p.proof).toEqual(inclusionProofForSeq(db, 30).proof);
  });

  it("reports a failure instead of throwing when the root being signed does not match the leaves", () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const before = db.$client.prepare("SELECT count(*) AS n FROM audit_tree_nodes").get();
    const outcome = storeTreeLevelsForCheckpoint(db, 40, "00".repeat(32));
    error.mockRestore();
    expect(outcome).toMatchObject({ ok: false, error: expect.stringMatching(/not the root being signed/) });
    expect(db.$client.prepare("SELECT count(*) AS n FROM audit_tree_nodes").get()).toEqual(before); // rolled back
  });
});

describe("a 100,000-event ledger", () => {
  const N = 100_000;
  let dir: string;
  let db: Db;
  let keys: AuditKeys;
  beforeAll(() => {
    dir = tempDir("tree-levels-100k");
    db = openDatabase(dir);
    keys = generateAuditKeys();
    appendRawEvents(db, N);
    createAuditCheckpoint(db, keys, "100k"); // signs tree size N and back-fills the levels
  }, 120_000);
  afterAll(() => {
    db.$client.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("proves inclusion of an event reading O(log n) rows, verified against the signed root", () => {
    const logN = Math.ceil(Math.log2(N)); // 17
    for (const seq of [1, 31_337, 65_536, N]) {
      // A fresh connection per proof: statements are prepared once per connection (db/client.ts cachedStatement), so
      // on a reused one the counter would miss the rows of statements an earlier proof prepared.
      const fresh = openDatabase(dir);
      const counter = countRows(fresh.$client);
      let p: ReturnType<typeof inclusionProofFromLevels>;
      try {
        p = inclusionProofFromLevels(fresh, seq);
      } finally {
        counter.restore();
        fresh.$client.close();
      }
      expect(p.treeSize).toBe(N);
      expect(p.proof.length).toBeLessThanOrEqual(logN);
      // leaf + path (each non-perfect right sibling at most once) + root + the checkpoint and the stored size
      expect(counter.seen.rows).toBeLessThanOrEqual(3 * logN + 4);
      expect(counter.seen.rows).toBe(p.rowsRead);
      // No statement walks the events or the stored levels: point lookups only.
      for (const sql of counter.seen.sql) {
        const plan = (
          db.$client.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...Array((sql.match(/\?/g) ?? []).length).fill(1)) as { detail: string }[]
        )
          .map((r) => r.detail)
          .join("; ");
        expect(plan, sql).not.toMatch(/SCAN (audit_events|audit_tree_nodes)/);
      }
      // An independent check: the signed checkpoint is valid for the key, and the proof leads to its root.
      const cp = p.checkpoint!;
      expect(cp.treeSize).toBe(N);
      expect(verifyTreeHeadSignature(keys, treeHeadOf(cp), cp.signature)).toBe(true);
      expect(
        verifyInclusion(
          seq - 1,
          N,
          Buffer.from(p.leafHash, "hex"),
          p.proof.map((h) => Buffer.from(h, "hex")),
          Buffer.from(cp.rootHash, "hex"),
        ),
      ).toBe(true);
      expect(p).toMatchObject({ verified: true, signedRoot: true });
    }
  });

  it("the reference proof, for comparison, reads every leaf; a consistency proof from the levels reads O(log n) rows", () => {
    const counter = countRows(db.$client);
    let reference: ReturnType<typeof inclusionProofForSeq>;
    try {
      reference = inclusionProofForSeq(db, 31_337);
    } finally {
      counter.restore();
    }
    expect(counter.seen.rows).toBeGreaterThanOrEqual(N);
    expect(reference.proof).toEqual(inclusionProofFromLevels(db, 31_337).proof);

    const reader = new TreeLevelReader(db);
    const m = 77_777;
    const proof = reader.consistencyPath(m, N);
    expect(reader.rowsRead).toBeLessThanOrEqual(4 * Math.ceil(Math.log2(N)));
    expect(verifyConsistency(m, N, new TreeLevelReader(db).root(m), Buffer.from(reference.rootHash, "hex"), proof)).toBe(true);
  });
});
