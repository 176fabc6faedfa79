/**
 * Audit ledger benchmark: builds 100k- and 1M-event data directories that look like a real ledger, then times
 * full verification as `npm run cli -- audit verify` runs it by default (range workers for the chain, a content
 * worker for run_params and metric series on the same read snapshot, the rest of the content on the main thread).
 * Per-part content figures on a kept database: `npx tsx server/audit/content/bench-content.ts --parts DIR`.
 *
 * The ledger: the tables and artifact files the events describe (server/audit/content/bench-ledger.ts: runs with
 * configs and params, checkpoints with small weight files, evaluations, metrics, decisions), so content
 * verification does real work; a signed checkpoint (and its "audit.checkpoint" event with the frontier) after
 * every CHECKPOINT_EVERY_EVENTS events, as the server's policy signs them; events one second apart. Built with raw
 * prepared statements in one transaction (server/audit/raw-ledger-appender.ts, shared with server/tests/pad-ledger.ts);
 * hashes come from the functions the verifier is tested against ledger.ts with, and a clean verification (every
 * level) is asserted, so a fast-but-wrong build cannot pass.
 * Figures: the median of several runs (wall time, and CPU time of all threads), with the load average, since the
 * 2-core machine is shared. Temp directories are removed afterwards.
 */
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase } from "@/db/client";
import { canonicalJson } from "@/contracts/canonical";
import { appendAuditEvent, SYSTEM_ACTOR } from "@/server/audit/ledger";
import { RawLedgerAppender } from "@/server/audit/raw-ledger-appender";
import { type AuditKeys, createKeyInDir, writePublicKeyFile } from "@/server/audit/keys";
import { createAuditCheckpoint } from "@/server/audit/checkpoints";
import { CHECKPOINT_EVERY_EVENTS } from "@/server/audit/checkpoint-policy";
import { buildBenchContentLedger, eventsPerBenchRun, type BenchEvent } from "@/server/audit/content/bench-ledger";
import { verifyDatabase, type VerifyDatabaseOptions, type VerifyResult } from "@/server/audit/verify";
import { auditNativeExtension } from "@/server/audit/native-range";
import { MerkleAccumulator, merkleRoot } from "@/server/audit/merkle";

export type { Figure as BenchFigure } from "./figures";
import { median, type Figure as BenchFigure } from "./figures";
import { benchAuditPg } from "./audit-pg";

const CHECKPOINTS_PER_RUN = 3;
const WEIGHT_FILES = 256;

/**
 * Writes a content-consistent ledger of about `count` events into `dir` (runledger.sqlite + artifacts/), with a
 * signed checkpoint after every CHECKPOINT_EVERY_EVENTS events. Returns the number of events.
 */
export function buildAuditDatabase(dir: string, count: number, keys: AuditKeys): number {
  const db = openDatabase(dir);
  const sqlite = db.$client;
  sqlite.pragma("cache_size = -262144"); // 256 MB: one big transaction keeps every index page in memory
  sqlite.pragma("synchronous = OFF"); // a throwaway bench database
  // The builder writes a run's row after its children; with foreign keys on, each such parent insert scans the
  // children for deferred violations (quadratic). The rows are consistent by construction (content verification).
  sqlite.pragma("foreign_keys = OFF");
  const ledger = RawLedgerAppender.resume(sqlite, keys);
  const append = (e: BenchEvent) => ledger.append({ ...e, payload: canonicalJson(e.payload) });
  const runs = Math.max(
    1,
    Math.round((count * CHECKPOINT_EVERY_EVENTS) / (CHECKPOINT_EVERY_EVENTS + 1) / eventsPerBenchRun(CHECKPOINTS_PER_RUN)),
  );
  sqlite.transaction(() => {
    buildBenchContentLedger(
      sqlite,
      { runs, checkpointsPerRun: CHECKPOINTS_PER_RUN, weightFiles: WEIGHT_FILES, artifactsDir: path.join(dir, "artifacts") },
      append,
    );
  })();
  sqlite.close();
  return ledger.lastSeq;
}

const seconds = (ms: number) => Math.round(ms) / 1000;

type Timed = { result: VerifyResult; wallMs: number; cpuMs: number };

/** One verification, timed: wall clock and CPU of the whole process (workers included). */
async function timedVerify(dir: string, opts: VerifyDatabaseOptions): Promise<Timed> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await verifyDatabase(dir, opts);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (!result.ok) throw new Error(`bench audit: the ledger did not verify: ${result.problem}`);
  if (opts.content !== false && (result.levels.content.skipped || result.levels.content.checked === 0))
    throw new Error("bench audit: content verification did no work");
  return { result, wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/**
 * The machine's speed, measured next to the figures it explains: one core hashing a million 300-byte events chained
 * (sha256 of the previous digest and the event), the yardstick issue 10 states its target against ("about 1.6 s on
 * one core here"). The same code measures slower when the machine is (seen: 1.9-2.4 s on a day the chain and every
 * other figure were 1.5-1.8 times the session before's), so a figure is read against this one.
 */
function referenceChainHashSeconds(): number {
  // In a fresh Node process: inside this one, after the verifications above, the same loop measured ~20 % slower
  // (2.09-2.20 s against 1.71-1.82 s alone, one hour, idle machine), its hash objects collected in a large heap.
  const code = `const crypto = require("node:crypto");
    const event = Buffer.alloc(300, 0x61);
    let digest = Buffer.alloc(32);
    const started = performance.now();
    for (let i = 0; i < 1_000_000; i++) digest = crypto.createHash("sha256").update(digest).update(event).digest();
    if (digest.length !== 32) throw new Error("no digest");
    process.stdout.write(String(performance.now() - started));`;
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const ms = Number(execFileSync(process.execPath, ["-e", code], { encoding: "utf8" }));
    if (!Number.isFinite(ms)) throw new Error("bench audit: the yardstick printed no time");
    runs.push(ms);
  }
  return seconds(median(runs));
}

/**
 * CPU seconds of the JavaScript Merkle tree (merkle.ts, which the bundle verifier and the checkpoint writer use) over
 * a million leaves: in one batch, and pushed one at a time as a checkpoint writer resumes it (median of 3 each).
 */
export function merkleRootCpuSeconds(): { batch: number; streaming: number } {
  const seed = crypto.createHash("sha256").update("seed").digest();
  const leaves = Array.from({ length: 1_000_000 }, (_, i) => {
    const b = Buffer.from(seed);
    b.writeUInt32BE(i, 0);
    return b;
  });
  const cpu = (f: () => Buffer) => {
    const c0 = process.cpuUsage();
    const root = f();
    const c = process.cpuUsage(c0);
    if (root.length !== 32) throw new Error("bench audit: no Merkle root");
    return (c.user + c.system) / 1000;
  };
  const batch: number[] = [];
  const streaming: number[] = [];
  for (let r = 0; r < 3; r++) {
    batch.push(cpu(() => merkleRoot(leaves)));
    streaming.push(
      cpu(() => {
        const acc = new MerkleAccumulator();
        for (const leaf of leaves) acc.push(leaf);
        return acc.root();
      }),
    );
  }
  return { batch: seconds(median(batch)), streaming: seconds(median(streaming)) };
}

/** Runs per size for the median: 5 below a million events, 3 at a million (each takes tens of seconds there). */
const runsFor = (size: number) => (size >= 1_000_000 ? 3 : 5);

export async function benchAudit(sizes: readonly number[] = [100_000, 1_000_000]): Promise<BenchFigure[]> {
  const figures: BenchFigure[] = [];
  for (const size of sizes) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-audit-"));
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-audit-keys-"));
    try {
      const keys = createKeyInDir(keyDir);
      writePublicKeyFile(dir, keys);
      const events = buildAuditDatabase(dir, size, keys);
      const label = size >= 1_000_000 ? `${size / 1_000_000}m` : `${size / 1000}k`;
      // The headline figure is what `npm run cli -- audit verify` does by default ("auto": range workers for large
      // logs, content included); the one-pass figures follow for comparison.
      const load = os.loadavg()[0]!;
      const runs: Timed[] = [];
      for (let i = 0; i < runsFor(size); i++) runs.push(await timedVerify(dir, { workers: "auto" }));
      const r = runs[0]!.result;
      if (r.eventsChecked !== events) throw new Error(`bench audit: checked ${r.eventsChecked} of ${events} events`);
      figures.push({
        name: `audit_verify_${label}_events_s`,
        value: seconds(median(runs.map((x) => x.wallMs))),
        unit: "s",
        ...(size >= 1_000_000 ? { target: "< 4 s" } : {}),
      });
      figures.push({ name: `audit_verify_${label}_events_cpu_s`, value: seconds(median(runs.map((x) => x.cpuMs))), unit: "s" });
      figures.push({ name: `audit_verify_${label}_events_min_s`, value: seconds(Math.min(...runs.map((x) => x.wallMs))), unit: "s" });
      figures.push({
        name: `audit_verify_${label}_load_avg`,
        value: Math.round(((load + os.loadavg()[0]!) / 2) * 100) / 100,
        unit: "load (1 min, 2 cores)",
      });
      figures.push({ name: `audit_verify_${label}_content_facts`, value: r.levels.content.checked, unit: "facts" });
      if (size >= 1_000_000) {
        figures.push({
          name: "audit_reference_chain_hash_1m_s",
          value: referenceChainHashSeconds(),
          unit: "s (one core, 1M 300-byte events hashed chained: the machine's speed; issue 10 measured ~1.6 s)",
        });
        const merkle = merkleRootCpuSeconds();
        figures.push({ name: "merkle_root_1m_leaves_cpu_s", value: merkle.batch, unit: "s CPU (JavaScript, one batch)", target: "< 4 s" });
        figures.push({
          name: "merkle_root_1m_leaves_streaming_cpu_s",
          value: merkle.streaming,
          unit: "s CPU (JavaScript, one leaf at a time)",
          target: "< 5 s",
        });
      }
      const native = auditNativeExtension();
      if (!native.path) console.log(`bench audit: ${native.reason}; the JavaScript reference checked the chain`);
      figures.push({ name: `audit_verify_${label}_native_extension`, value: native.path ? 1 : 0, unit: "(1 = rl_audit loaded)" });
      figures.push({ name: `audit_verify_${label}_checkpoints`, value: r.checkpointsChecked, unit: "signed checkpoints" });
      // The chain level alone (range workers, no content): what the hash chain, tree and signatures cost.
      const chain: Timed[] = [];
      for (let i = 0; i < runsFor(size); i++) chain.push(await timedVerify(dir, { workers: "auto", content: false }));
      figures.push({ name: `audit_verify_${label}_chain_only_s`, value: seconds(median(chain.map((x) => x.wallMs))), unit: "s" });
      figures.push({ name: `audit_verify_${label}_chain_only_cpu_s`, value: seconds(median(chain.map((x) => x.cpuMs))), unit: "s" });
      const onePass = await timedVerify(dir, { workers: 0 });
      figures.push({ name: `audit_verify_${label}_events_one_pass_s`, value: seconds(onePass.wallMs), unit: "s" });
      figures.push({ name: `audit_verify_${label}_events_one_pass_cpu_s`, value: seconds(onePass.cpuMs), unit: "s" });
      // The same ledger as a PostgreSQL store (issue 16), verified through its SQLite snapshot: 100k only (the copy).
      if (size === 100_000) figures.push(...(await benchAuditPg(dir, label, keys.publicKeyPem, events)));

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
      figures.push({
        name: `audit_checkpoint_${label}_events_s`,
        value: seconds(performance.now() - started),
        unit: "s",
        target: "< 0.5 s",
      });
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
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => n > 0);
  benchAudit(sizes.length > 0 ? sizes : undefined).then((figures) => {
    for (const f of figures) console.log(`${f.name.padEnd(40)} ${String(f.value).padStart(12)} ${f.unit}  (target ${f.target})`);
  });
}
