/**
 * Verification of a live database (a data directory opened read-only, or an open Db): the chain pass (one range
 * on this thread, or range workers), the protective triggers, content verification and witness anchors, all read
 * from ONE read snapshot: this thread holds a read transaction from the first read to the last, and workers read
 * seq <= N only, which the append-only log cannot change under them. With workers, this thread checks signatures,
 * triggers and content while they run, except the run-derived part of the content, which a content worker checks
 * on a read snapshot proved to be the same state as this thread's (verify-content-parts.ts).
 * Nothing is migrated or written.
 */
import Database from "better-sqlite3";
import fs from "node:fs";
import os from "node:os";
import { MessageChannel } from "node:worker_threads";
import path from "node:path";
import type { Db } from "@/db/client";
import type { Anchor } from "./anchors";
import { loadAuditPublicKey } from "./keys";
import { type AuditDbSource, auditEventsWithAction, listAuditCheckpoints, maxAuditSeq, sqliteOf } from "./ledger-reads";
import { KEY_ROTATE_ACTION } from "./key-rotation";
import { checkContent, checkContentExceptRunDerived, laterPhaseReads } from "./content/verify-content";
import { PrefetchedReads } from "./content/sql-reads";
import { RunEventsFeed } from "./content/run-events-feed";
import { checkRunDerivedPartStreaming } from "./content/run-derived-part";
import { ContentWorker, pinSameSnapshot } from "./verify-content-parts";
import { witnessAnchors, witnessLagProblem } from "./witness/witness-anchors";
import type { WitnessUrlAnchors } from "./witness/witness-url-anchors";
import { checkTriggers } from "./verify-triggers";
import { runRangeWorker, splitRange } from "./verify-parallel";
import { scanDatabaseRangeFast } from "./native-range";
import { VERIFY_MMAP_BYTES, type RangeResult } from "./verify-range";
import { AuditLogVerifier, chooseTrustedKey, neededTreeSizes, rangeSpecFor, type VerifyOptions, type VerifyResult } from "./verify";
import type { TriggerLevel } from "./verify-types";

export type VerifyDatabaseOptions = VerifyOptions & {
  /** For an open Db: where the public key and the artifact files live. */
  dataDir?: string;
  /**
   * Worker threads that check ranges of events in parallel while this thread checks signatures, triggers and
   * content. Only for a data directory. Default 0 (one pass). "auto", for logs of AUTO_PARALLEL_FROM_EVENTS events
   * or more: one worker per core not already busy with content (autoRangeWorkers), at least one.
   */
  workers?: number | "auto";
  /** One pass only: called about every 4096 events with (events checked, events in the log). */
  onProgress?: (checked: number, total: number) => void;
  /** Witnesses asked directly before the snapshot (`--witness-url`, witness/witness-url-anchors.ts): checked anchors. */
  witnessUrlAnchors?: Pick<WitnessUrlAnchors, "anchors" | "problems" | "notes">;
  /** With workers: check run_params and metric series in a content worker (default true; false: all content on this thread). */
  contentWorker?: boolean;
  /**
   * The protective triggers' result, when this database is a copy of the store they live in (a PostgreSQL store
   * verified through its SQLite snapshot, verify-pg.ts): the copy's own triggers prove nothing about the source's.
   */
  triggerCheck?: { level: TriggerLevel; problems: string[]; notes: string[] };
  /** Tests: called with the attempt number after this thread's snapshot starts and before the content worker's (verify-content-parts.ts). */
  onSnapshotAttempt?: (attempt: number) => void;
  /**
   * Tests: the checkpoint and evaluation reads the content worker made for this thread (content/sql-reads.ts), how
   * many of those offered were used; with `contentWorkerFirst`, this thread's content check starts only once the
   * worker's part is done (so every read it made is there).
   */
  onLaterReads?: (used: number, offered: number) => void;
  contentWorkerFirst?: boolean;
  /**
   * With a content worker: hand it the run.create and end events this thread's log scan reads, instead of it reading
   * them again (content/run-events-feed.ts; default true; never with `contentWorkerFirst`, which would wait on
   * itself). Tests: `onRunEventsFeed` says whether they went (false: the worker read them itself).
   */
  runEventsFeed?: boolean;
  onRunEventsFeed?: (used: boolean) => void;
};

export const AUTO_PARALLEL_FROM_EVENTS = 50_000;

/**
 * "auto"'s range workers: one per core, less one for each thread that checks content meanwhile (this thread when
 * content is checked, and the content worker when it runs), at least one. On a 2-core machine with content, one range
 * worker instead of two: the chain (~2 s CPU of a million events) still ends before the content does, and a
 * second worker only adds its start and a fourth thread contending for two cores (1M events, 4 alternating pairs:
 * 10.5-10.6 s CPU against 10.9-11.3 s, wall 5.4-5.7 s against 5.6-5.8 s).
 */
export function autoRangeWorkers(cores: number, contentHere: boolean, contentWorker: boolean): number {
  return Math.max(1, cores - (contentHere ? 1 : 0) - (contentWorker ? 1 : 0));
}

function openReadOnly(dataDir: string): Database.Database {
  const file = path.join(dataDir, "runledger.sqlite");
  if (!fs.existsSync(file)) throw new Error(`no Runledger database at ${file}`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma(`mmap_size = ${VERIFY_MMAP_BYTES}`);
  return db;
}

function resolveKey(source: string | Db, opts: VerifyDatabaseOptions) {
  const dataDir = typeof source === "string" ? source : opts.dataDir;
  return chooseTrustedKey(
    opts,
    () => {
      if (!dataDir) throw new Error("verifyDatabase: pass publicKeyPem or dataDir to say which key to trust");
      return loadAuditPublicKey(dataDir);
    },
    "data directory",
  );
}

type WitnessRead = ReturnType<typeof witnessAnchors> | null;
type Snapshot = { verifier: AuditLogVerifier; n: number; sqlite: Database.Database; witness: WitnessRead };

/** Witness cosignatures by the trusted witness keys, as anchors (server/audit/witness); null without keys. */
function readWitness(sqlite: Database.Database, opts: VerifyDatabaseOptions): WitnessRead {
  return opts.witnessKeys && opts.witnessKeys.length > 0 ? witnessAnchors(sqlite, opts.witnessKeys) : null;
}

/** Stored witness cosignatures and witnesses asked directly, as anchors. */
function anchorsOf(witness: WitnessRead, opts: VerifyDatabaseOptions): Anchor[] {
  return [...(witness?.anchors ?? []), ...(opts.witnessUrlAnchors?.anchors ?? [])];
}

/** Inside the read transaction: reads what the pass needs up front and builds the verifier (signatures, anchors). */
function begin(db: AuditDbSource, source: string | Db, opts: VerifyDatabaseOptions, n: number, witness: WitnessRead): Snapshot {
  const { key, source: keySource } = resolveKey(source, opts);
  const sqlite = sqliteOf(db);
  const verifier = new AuditLogVerifier(
    key,
    keySource,
    listAuditCheckpoints(db),
    opts.trustedCheckpoint,
    auditEventsWithAction(db, KEY_ROTATE_ACTION, n),
    anchorsOf(witness, opts),
  );
  if (witness) verifier.addAnchorProblems(witness.problems, witness.notes);
  if (opts.witnessUrlAnchors) verifier.addAnchorProblems(opts.witnessUrlAnchors.problems, opts.witnessUrlAnchors.notes);
  verifier.setRequireAnchor(opts.requireAnchor ?? false);
  return { verifier, n, sqlite, witness };
}

function checkTriggersOf(s: Snapshot, opts: VerifyDatabaseOptions): void {
  const t = opts.triggerCheck ?? checkTriggers(s.sqlite);
  s.verifier.setTriggers(t.level, t.problems, t.notes);
}

/** Inside the same read transaction, after the chain pass: triggers, content, witness lag. */
function checkRest(s: Snapshot, source: string | Db, opts: VerifyDatabaseOptions): void {
  checkTriggersOf(s, opts);
  if (opts.content !== false) {
    const dataDir = typeof source === "string" ? source : opts.dataDir;
    const content = checkContent(s.sqlite, { artifactsDir: dataDir ? path.join(dataDir, "artifacts") : null, uptoSeq: s.n });
    s.verifier.setContent({ ...content.level, files: content.filesHashed });
  }
}

function finishWitness(s: Snapshot): void {
  if (!s.witness) return;
  const lag = witnessLagProblem(s.sqlite, s.verifier.matchedWitnessTreeSize());
  if (lag) s.verifier.addAnchorProblems([lag]);
}

/**
 * Verifies a live database in one pass on this thread: a data directory (opened read-only) or an open Db.
 * Everything is read inside one read transaction, so a concurrent writer cannot make the parts disagree.
 */
export function verifyDatabaseSync(source: string | Db, opts: VerifyDatabaseOptions = {}): VerifyResult {
  const owned = typeof source === "string" ? openReadOnly(source) : null;
  const db: AuditDbSource = owned ?? (source as Db);
  try {
    return sqliteOf(db).transaction(() => {
      const n = maxAuditSeq(db);
      const s = begin(db, source, opts, n, readWitness(sqliteOf(db), opts));
      const spec = { ...s.verifier.rangeSpec(1, s.n), prevChainHex: null };
      const progress = opts.onProgress;
      s.verifier.addRange(scanDatabaseRangeFast(s.sqlite, spec, s.n, progress ? (seq) => progress(seq, s.n) : undefined));
      finishWitness(s);
      checkRest(s, source, opts);
      return s.verifier.finish();
    })();
  } finally {
    owned?.close();
  }
}

/**
 * Verifies a live database. With `workers` (data directories only), range workers check the events while this
 * thread checks triggers and content, and a content worker checks the run-derived part of the content (run_params,
 * metric series: verify-content-parts.ts) on a snapshot proved equal to this thread's; the result is the same as
 * `verifyDatabaseSync`'s (tested). Falls back to one pass when range workers cannot start, and to the content
 * check on this thread when the content worker cannot start, fails, or cannot be pinned to the same snapshot.
 */
export async function verifyDatabase(source: string | Db, opts: VerifyDatabaseOptions = {}): Promise<VerifyResult> {
  if (typeof source !== "string" || !opts.workers) return verifyDatabaseSync(source, opts);
  const startedAt = performance.now();
  const db = openReadOnly(source);
  const file = path.join(source, "runledger.sqlite");
  let contentWorker: ContentWorker | null = null;
  let channel: MessageChannel | null = null;
  let feedChannel: MessageChannel | null = null;
  let feed: RunEventsFeed | null = null;
  try {
    // Outside a transaction: only sizes the work (the log only grows, so the snapshot below has at least this many).
    const n0 = maxAuditSeq(db);
    const cores = os.availableParallelism();
    const requested = opts.workers;
    const auto = requested === "auto";
    const wanted = auto ? (n0 >= AUTO_PARALLEL_FROM_EVENTS ? cores : 0) : requested;
    let workers = Math.min(wanted, cores * 2);
    if (workers < 1 || n0 < workers * 2) {
      db.close();
      return verifyDatabaseSync(source, opts);
    }
    // The content worker opens its connection first, then its snapshot and this thread's are taken together.
    if (opts.content !== false && opts.contentWorker !== false) contentWorker = await ContentWorker.start(file).catch(() => null);
    let n: number;
    if (contentWorker) {
      const pin = await pinSameSnapshot(db, file, contentWorker, opts.onSnapshotAttempt);
      n = pin.n;
      if (!pin.pinned) {
        contentWorker.stop();
        contentWorker = null;
      }
    } else {
      db.prepare("BEGIN").run();
      n = maxAuditSeq(db);
    }
    if (auto) workers = Math.min(workers, autoRangeWorkers(cores, opts.content !== false, contentWorker !== null));
    // The worker first reads what the checkpoint and evaluation phases here will need (sql-reads.ts), then its part.
    channel = contentWorker ? new MessageChannel() : null;
    const laterReads = contentWorker ? laterPhaseReads(db, n) : [];
    if (contentWorker && (opts.runEventsFeed ?? true) && !opts.contentWorkerFirst) {
      feedChannel = new MessageChannel();
      feed = new RunEventsFeed(feedChannel.port1, feedChannel.port2);
    }
    const runDerived = contentWorker && channel ? contentWorker.run(n, laterReads, channel.port2, feed?.worker ?? null) : null;
    runDerived?.catch(() => undefined); // handled below; never an unhandled rejection meanwhile
    // Range workers next (they need only the checkpoint rows, anchor sizes and rotation seqs), then the rest here while they run.
    const checkpoints = listAuditCheckpoints(db);
    const rotations = auditEventsWithAction(db, KEY_ROTATE_ACTION, n);
    const witness = readWitness(db, opts);
    const sizes = neededTreeSizes(checkpoints, anchorsOf(witness, opts), opts.trustedCheckpoint);
    const ranges = splitRange(n, workers);
    const started = ranges.map((r) => runRangeWorker({ file, spec: rangeSpecFor(checkpoints, rotations, sizes, r.from, r.to), maxSeq: n }));
    started.forEach((p) => p.catch(() => undefined)); // handled below; never an unhandled rejection meanwhile
    const s = begin(db, source, opts, n, witness);
    s.verifier.timeFrom(startedAt);
    if (runDerived) {
      checkTriggersOf(s, opts);
      if (opts.contentWorkerFirst) await runDerived.catch(() => undefined);
      const reads = channel ? new PrefetchedReads(s.sqlite, laterReads, channel.port1) : undefined;
      let partial: ReturnType<typeof checkContentExceptRunDerived>;
      try {
        partial = checkContentExceptRunDerived(s.sqlite, {
          artifactsDir: path.join(source, "artifacts"),
          uptoSeq: n,
          reads,
          onRunEvents: feed ? (events) => feed?.send(events) : undefined,
        });
      } finally {
        feed?.send(null); // (the worker waits for it: sent whatever happened; events sent before stay sent)
      }
      if (feed) opts.onRunEventsFeed?.(feed.used);
      if (reads) opts.onLaterReads?.(reads.used, laterReads.length);
      // The worker's part, or (worker failed) the same part on this thread's snapshot.
      const part = await runDerived.catch(() => checkRunDerivedPartStreaming(s.sqlite, n));
      const content = partial.finish(part);
      s.verifier.setContent({ ...content.level, files: content.filesHashed });
    } else checkRest(s, source, opts);
    let results: RangeResult[];
    try {
      results = await Promise.all(started);
    } catch (err) {
      db.prepare("COMMIT").run();
      const r = verifyDatabaseSync(source, opts);
      r.notes.push(`range workers could not run (${(err as Error).message}); verified in one pass instead`);
      return r;
    }
    for (const r of results) s.verifier.addRange(r);
    finishWitness(s);
    db.prepare("COMMIT").run();
    return s.verifier.finish(ranges.length);
  } finally {
    feed?.send(null); // (never leaves the worker waiting, whatever stopped this thread)
    channel?.port1.close();
    feedChannel?.port1.close();
    contentWorker?.stop();
    if (db.open) db.close();
  }
}
