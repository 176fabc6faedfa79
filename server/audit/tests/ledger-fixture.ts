/**
 * Test fixture: a real Runledger database in a temp directory with ~50 audit events (written through
 * appendAuditEvent in transactions) and signed checkpoints, plus helpers to tamper with copies of it.
 * Tampering goes through raw SQL after dropping the append-only triggers, as an attacker with file access would.
 * Keys live in a temporary key directory of their own (never in the data directory, as in production); the data
 * directory gets only the public key file.
 */
import Database from "better-sqlite3";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase } from "@/db/client";
import { appendAuditEvent, chainHash, eventBody, leafHash, type Actor } from "../ledger";
import { createAuditCheckpoint, type AuditCheckpointRow } from "../checkpoints";
import { type AuditKeys, createKeyInDir, writePublicKeyFile } from "../keys";
import type { AuditAction } from "../actions";

export const ALICE: Actor = { id: 1, name: "Alice Engineer", role: "engineer" };
export const BOB: Actor = { id: 2, name: "Bob Reviewer", role: "reviewer" };

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `runledger-${prefix}-`));
}

/** Appends `count` varied events, one transaction each (as services do). */
export function writeEvents(db: ReturnType<typeof openDatabase>, count: number, offset = 0): void {
  const actions: AuditAction[] = ["run.create", "decision.create", "dataset.create", "run.start", "promotion.request"];
  for (let i = 0; i < count; i++) {
    const k = offset + i;
    db.transaction((tx) => {
      appendAuditEvent(tx, {
        actor: k % 3 === 0 ? BOB : ALICE,
        action: actions[k % actions.length]!,
        entityType: "run",
        entityId: 100 + k,
        payload: {
          before: k % 2 === 0 ? null : { learningRate: 0.01, note: 'ünïcødé ✓ "quoted"' },
          after: { learningRate: 0.001 * (k + 1), epochs: k, tags: ["a", "b", k], nested: { z: 1, a: [1.5, -2, 1e21] } },
          sha256: "ab".repeat(32),
        },
        at: new Date(Date.UTC(2025, 0, 1, 0, 0, k)).toISOString(),
      });
    });
  }
}

/** A new key in a new temporary key directory, its public key written into `dataDir` (what the server does on first start). */
export function testKeys(dataDir: string): AuditKeys & { keyDir: string } {
  const keyDir = tempDir("keys");
  const keys = createKeyInDir(keyDir);
  writePublicKeyFile(dataDir, keys);
  return Object.assign(keys, { keyDir });
}

export type Fixture = { dir: string; keyDir: string; keys: AuditKeys; events: number; checkpoints: AuditCheckpointRow[] };

/**
 * 20 events, checkpoint #1 (tree size 20), 20 more, checkpoint #2 (size 41), 9 more: 52 events in all
 * (seq 21 and 42 are the checkpoint events), the last 11 not yet covered by a signature.
 */
export function buildFixture(): Fixture {
  const dir = tempDir("audit");
  const db = openDatabase(dir);
  const keys = testKeys(dir);
  writeEvents(db, 20);
  const c1 = createAuditCheckpoint(db, keys, "test interval").checkpoint;
  writeEvents(db, 20, 20);
  const c2 = createAuditCheckpoint(db, keys, "test promotion").checkpoint;
  writeEvents(db, 10, 40);
  db.$client.close(); // checkpoints the WAL into the main file so copies are complete
  return { dir, keyDir: keys.keyDir, keys, events: 52, checkpoints: [c1, c2] };
}

/** A copy of the fixture's data directory that a test may damage freely. */
export function copyFixture(f: Fixture, name: string): string {
  const dir = tempDir(name);
  fs.cpSync(f.dir, dir, { recursive: true });
  return dir;
}

const LEDGER_TRIGGERS = ["audit_events_no_update", "audit_events_no_delete", "audit_checkpoints_no_update", "audit_checkpoints_no_delete"];

/**
 * Raw SQL on a copy, with the append-only triggers dropped (what someone with the file could do), then put back
 * exactly as they were, as a careful attacker would (so only the ledger itself can tell); `restoreTriggers: false`
 * leaves them dropped.
 */
export function tamper(dir: string, fn: (sqlite: Database.Database) => void, opts: { restoreTriggers?: boolean } = {}): void {
  const sqlite = new Database(path.join(dir, "runledger.sqlite"));
  const saved = sqlite
    .prepare(`SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name IN (${LEDGER_TRIGGERS.map(() => "?").join(",")})`)
    .pluck()
    .all(...LEDGER_TRIGGERS) as string[];
  for (const t of LEDGER_TRIGGERS) sqlite.exec(`DROP TRIGGER IF EXISTS ${t}`);
  sqlite.transaction(() => fn(sqlite))();
  if (opts.restoreTriggers !== false) for (const sql of saved) sqlite.exec(sql);
  sqlite.close();
}

type RawEvent = {
  seq: number;
  at: string;
  actorId: number | null;
  actorName: string;
  role: string;
  action: string;
  entityType: string;
  entityId: string;
  payload: string;
  leafHash: string;
  chainHash: string;
};

export function readRows(sqlite: Database.Database): RawEvent[] {
  return sqlite
    .prepare(
      "SELECT seq, at, actor_id AS actorId, actor_name AS actorName, role, action, entity_type AS entityType, entity_id AS entityId, payload, leaf_hash AS leafHash, chain_hash AS chainHash FROM audit_events ORDER BY seq",
    )
    .all() as RawEvent[];
}

/** Recomputes every leaf and chain hash from `fromSeq` on, so the chain is internally consistent again. */
export function rechain(sqlite: Database.Database, fromSeq = 1): void {
  const rows = readRows(sqlite);
  let prev = "0".repeat(64);
  const update = sqlite.prepare("UPDATE audit_events SET leaf_hash = ?, chain_hash = ? WHERE seq = ?");
  for (const r of rows) {
    if (r.seq >= fromSeq) {
      const leaf = leafHash(eventBody(r));
      const chain = chainHash(prev, leaf);
      update.run(leaf, chain, r.seq);
      prev = chain;
    } else {
      prev = r.chainHash;
    }
  }
}
