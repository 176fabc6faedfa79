/**
 * Audit ledger benchmark: builds 100k- and 1M-event databases (valid hash chain, signed checkpoints every
 * 100k events with their "audit.checkpoint" events, as the server writes them) and times full verification.
 *
 * The databases are built with raw prepared statements in one transaction for speed; their hashes come from
 * the same functions the verifier is tested against ledger.ts with, and a clean verification is asserted,
 * so a fast-but-wrong build cannot pass. Temp directories are removed afterwards.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase } from "@/db/client";
import { canonicalJson } from "@/server/audit/canonical";
import { appendAuditEvent, GENESIS_CHAIN_HASH, SYSTEM_ACTOR } from "@/server/audit/ledger";
import { ChainHasher, recomputeLeafHash } from "@/server/audit/event-hashing";
import { MerkleAccumulator } from "@/server/audit/merkle";
import { type AuditKeys, createKeyInDir, writePublicKeyFile } from "@/server/audit/keys";
import { createAuditCheckpoint, signTreeHead, type TreeHead } from "@/server/audit/checkpoints";
import { verifyDatabase } from "@/server/audit/verify";

export type { Figure as BenchFigure } from "./figures";
import type { Figure as BenchFigure } from "./figures";

const ACTIONS = ["run.create", "decision.create", "run.start", "checkpoint.create", "evaluation.create", "run.complete"];
const CHECKPOINT_EVERY = 100_000;

/** Writes `count` events (including one checkpoint event after every CHECKPOINT_EVERY) straight into the tables. */
export function buildAuditDatabase(dir: string, count: number, keys: AuditKeys): void {
  const db = openDatabase(dir);
  const sqlite = db.$client;
  const insertEvent = sqlite.prepare(
    "INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
  );
  const insertCheckpoint = sqlite.prepare(
    "INSERT INTO audit_checkpoints (id, tree_size, root_hash, at, reason, key_fingerprint, signature) VALUES (?,?,?,?,?,?,?)",
  );
  const t0 = Date.UTC(2025, 0, 1);
  sqlite.transaction(() => {
    const chain = new ChainHasher();
    chain.reset(GENESIS_CHAIN_HASH);
    const tree = new MerkleAccumulator();
    let checkpointId = 0;
    let pendingCheckpoint: (TreeHead & { checkpointId: number; signature: string; reason: string; frontier: string[] }) | null = null;
    for (let seq = 1; seq <= count; seq++) {
      const at = new Date(t0 + seq * 1000).toISOString();
      let row;
      if (pendingCheckpoint) {
        row = { seq, at, actorId: null, actorName: "Runledger server", role: "system", action: "audit.checkpoint", entityType: "auditCheckpoint", entityId: String(pendingCheckpoint.checkpointId), payload: canonicalJson(pendingCheckpoint) };
        pendingCheckpoint = null;
      } else {
        const payload = canonicalJson({
          after: { learningRate: 0.001 * (seq % 17), epochs: seq % 50, optimizer: "adam" },
          before: seq % 2 === 0 ? null : { learningRate: 0.01 },
          configSha256: (seq % 256).toString(16).padStart(2, "0").repeat(32),
          rationale: "validation loss plateaued; halve the learning rate",
        });
        row = { seq, at, actorId: 1 + (seq % 7), actorName: `User ${seq % 7}`, role: "engineer", action: ACTIONS[seq % ACTIONS.length]!, entityType: "run", entityId: String(seq % 5000), payload };
      }
      const leaf = recomputeLeafHash(row)!;
      const chainHex = chain.next(leaf);
      chain.advance(chainHex);
      insertEvent.run(row.seq, row.at, row.actorId, row.actorName, row.role, row.action, row.entityType, row.entityId, row.payload, leaf, chainHex);
      tree.pushHex(leaf);
      if (seq % CHECKPOINT_EVERY === 0 && seq < count) {
        checkpointId++;
        const head: TreeHead = { treeSize: seq, rootHash: tree.root().toString("hex"), at, keyFingerprint: keys.fingerprint };
        const signature = signTreeHead(keys, head);
        insertCheckpoint.run(checkpointId, head.treeSize, head.rootHash, head.at, "bench interval", head.keyFingerprint, signature);
        const frontier = tree.frontier().map((b) => b.toString("hex"));
        pendingCheckpoint = { checkpointId, ...head, signature, reason: "bench interval", frontier };
      }
    }
  })();
  sqlite.close();
}

function seconds(ms: number): number {
  return Math.round(ms) / 1000;
}

export async function benchAudit(sizes: readonly number[] = [100_000, 1_000_000]): Promise<BenchFigure[]> {
  const figures: BenchFigure[] = [];
  for (const size of sizes) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-audit-"));
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-audit-keys-"));
    try {
      const keys = createKeyInDir(keyDir);
      writePublicKeyFile(dir, keys);
      buildAuditDatabase(dir, size, keys);
      const label = size >= 1_000_000 ? `${size / 1_000_000}m` : `${size / 1000}k`;
      // The headline figure is what `npm run cli -- audit verify` does by default ("auto": parallel range workers
      // from 200,000 events, one pass below); the one-pass figures follow for comparison.
      const auto = await verifyDatabase(dir, { workers: "auto" });
      if (!auto.ok || auto.eventsChecked !== size) throw new Error(`bench audit: the ${size}-event ledger did not verify: ${auto.problem}`);
      figures.push({ name: `audit_verify_${label}_events_s`, value: seconds(auto.durationMs), unit: "s", target: "< 10 s" });
      figures.push({ name: `audit_verify_${label}_events_per_s`, value: Math.round(size / (auto.durationMs / 1000)), unit: "events/s" });
      const cpu0 = process.cpuUsage();
      const onePass = await verifyDatabase(dir, { workers: 0 });
      const cpu = process.cpuUsage(cpu0);
      if (!onePass.ok) throw new Error(`bench audit: one-pass verification failed: ${onePass.problem}`);
      figures.push({ name: `audit_verify_${label}_events_one_pass_s`, value: seconds(onePass.durationMs), unit: "s" });
      // CPU time of the one-pass run: what its wall time would be on an otherwise idle core.
      figures.push({ name: `audit_verify_${label}_events_one_pass_cpu_s`, value: seconds((cpu.user + cpu.system) / 1000), unit: "s" });

      // A routine checkpoint on a log this size: 100 new events since the last one (the server's default interval).
      const db = openDatabase(dir);
      createAuditCheckpoint(db, keys, "bench baseline");
      for (let i = 0; i < 100; i++) {
        db.transaction((tx) => {
          appendAuditEvent(tx, { actor: SYSTEM_ACTOR, action: "run.tag", entityType: "run", entityId: i, payload: { tag: `bench-${i}` } });
        });
      }
      const started = performance.now();
      createAuditCheckpoint(db, keys, "bench");
      figures.push({ name: `audit_checkpoint_${label}_events_s`, value: seconds(performance.now() - started), unit: "s", target: "< 0.5 s" });
      db.$client.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(keyDir, { recursive: true, force: true });
    }
  }
  return figures;
}

// Run directly: `npx tsx bench/audit.ts [size ...]`
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(__filename)) {
  const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
  benchAudit(sizes.length > 0 ? sizes : undefined).then((figures) => {
    for (const f of figures) console.log(`${f.name.padEnd(40)} ${String(f.value).padStart(12)} ${f.unit}  (target ${f.target})`);
  });
}
