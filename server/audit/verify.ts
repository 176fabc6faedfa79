/**
 * The audit ledger verifier, shared by the CLI, the UI and the tests.
 *
 * One pass over the events in seq order, O(log n) memory. For each event it checks, in this order:
 *   seq is exactly the next one (no gap, no reordering, no duplicate);
 *   the stored leaf hash equals the hash recomputed from the row's fields (ledger.ts's definition);
 *   the stored chain hash equals sha256(previous chain hash || leaf hash);
 *   an "audit.checkpoint" event matches the checkpoint row it records.
 * Before the pass every checkpoint's key fingerprint and Ed25519 signature are checked against the key in
 * force at its tree size, following the key rotations ("audit.keyRotate", read up front by action) from the
 * trusted key (key-rotation.ts KeyChain); during the pass the Merkle root at each checkpoint's tree size is compared with the signed root; at
 * the end, checkpoints larger than the log reveal truncation. A trusted checkpoint kept by the auditor is
 * checked the same way, which proves the current log extends it (its first treeSize events have the signed root).
 *
 * The pass stops at the first bad event (later events cannot be judged against a broken chain); signature and
 * root problems are collected. `problem` is the first problem in plain words, `firstBadSeq` the first bad event
 * when one can be named (a root mismatch over an internally consistent log cannot say which event changed).
 * The trusted key comes from the caller; a key read from the data being verified is reported as such.
 * Sources: verifyDatabase / verifyDatabaseSync (live data), verifyAuditEvents (any iterable), bundle.ts (exports).
 */
import Database from "better-sqlite3";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Db } from "@/db/client";
import type { AuditEventRow } from "./ledger";
import { EventChainChecker, type EventProblem } from "./event-hashing";
import { MerkleAccumulator, EMPTY_TREE_ROOT } from "./merkle";
import { type AuditPublicKey, loadAuditPublicKey, parseAuditPublicKey } from "./keys";
import {
  type AuditCheckpointRow,
  type CheckpointEventPayload,
  type TreeHead,
  type TrustedCheckpoint,
  treeHeadOf,
} from "./checkpoints";
import { type AuditDbSource, auditEventsWithAction, iterateAuditEvents, iterateTreeRows, listAuditCheckpoints, maxAuditSeq, sqliteOf } from "./ledger-reads";
import { runRangeWorker, splitRange } from "./verify-parallel";
import { KEY_ROTATE_ACTION, KeyChain } from "./key-rotation";
import type { Anchor, AnchorKind } from "./anchors";
import type { ContentLevel } from "./content/types";

export type KeySource = "given" | "trusted checkpoint" | "data directory" | "bundle";

export type ChainLevel = { ok: boolean; events: number; checkpoints: number; problem: string | null };
export type AnchorLevel = {
  anchored: boolean;
  /** The log is anchored up to this tree size (largest matched anchor), 0 when not anchored. */
  treeSize: number;
  by: { kind: AnchorKind; name: string; treeSize: number }[];
  problem: string | null;
};
export type TriggerLevel = { ok: boolean; missing: string[]; altered: string[] };
export type VerifyLevels = { chain: ChainLevel; content: ContentLevel; anchor: AnchorLevel; triggers?: TriggerLevel };

export const CONTENT_NOT_RUN: ContentLevel = { ok: true, checked: 0, problems: [], notCovered: [], skipped: "content verification not run" };

export type VerifyResult = {
  ok: boolean;
  /** What was proved, level by level (chain, content, anchor, triggers for a live database). */
  levels: VerifyLevels;
  /** Same as levels.anchor.anchored: something outside the log (trusted checkpoint, witness) vouches for it. */
  anchored: boolean;
  eventsChecked: number;
  checkpointsChecked: number;
  firstBadSeq: number | null;
  problem: string | null;
  /** Every problem found (the event pass stops at the first bad event). */
  problems: string[];
  /** Facts worth showing that are not failures: unsigned tail, where the key came from. */
  notes: string[];
  keyFingerprint: string;
  keySource: KeySource;
  latestCheckpoint: { id: number; treeSize: number; at: string } | null;
  /** Events after the last verified checkpoint: intact chain, but no signature covers them yet. */
  unsignedTail: number;
  trustedCheckpointChecked: boolean;
  /** How events were checked: 0 = one pass on the calling thread, else the number of range workers. */
  workers: number;
  durationMs: number;
};

export type VerifyOptions = {
  /** SPKI PEM of the key to trust; otherwise the trusted checkpoint's key, otherwise the key stored with the data. */
  publicKeyPem?: string;
  trustedCheckpoint?: TrustedCheckpoint;
};

type PendingRootCheck = { name: string; trusted: boolean; checkpoint: AuditCheckpointRow | null; treeSize: number; rootHash: string };
/** A problem found at a position in the log (0 = before any event); `badSeq` when it names an event. */
type Finding = { at: number; message: string; badSeq: number | null };

/**
 * The verifier's state machine. Two sides, so they can run apart:
 * - the event side (`add`, or `reportEventProblem` from parallel range workers) checks seq, leaf and chain;
 * - the tree side (`addLeaf`) builds the Merkle tree, compares checkpoint roots, cross-checks checkpoint events.
 * Everything the tree side finds at or after the first bad event is dropped in `finish`, so the result is the
 * same whether the sides ran together (one pass) or apart (workers + main thread).
 */
export class AuditLogVerifier {
  private readonly started = performance.now();
  private readonly findings: Finding[] = [];
  private readonly matches: { at: number; check: PendingRootCheck }[] = [];
  private readonly notes: string[] = [];
  private eventFailure: EventProblem | null = null;
  private readonly events = new EventChainChecker();
  private readonly tree = new MerkleAccumulator();
  private treeBroken = false;
  private leafCount = 0;
  private readonly rootChecks = new Map<number, PendingRootCheck[]>();
  private readonly checkpointsById = new Map<number, AuditCheckpointRow>();
  /** Which key signs at which tree size, from `key` through the log's "audit.keyRotate" events (key-rotation.ts). */
  private readonly keyChain: KeyChain;

  constructor(
    private readonly key: AuditPublicKey,
    private readonly keySource: KeySource,
    checkpoints: readonly AuditCheckpointRow[],
    trusted?: TrustedCheckpoint,
    rotations: readonly AuditEventRow[] = [],
  ) {
    this.keyChain = KeyChain.build(key, rotations, checkpoints);
    for (const p of this.keyChain.problems) this.findings.push({ at: p.seq ?? 0, badSeq: p.seq, message: p.message });
    this.notes.push(...this.keyChain.notes);
    if (keySource === "data directory" || keySource === "bundle") {
      this.notes.push(
        `the public key was read from the ${keySource} being verified; compare its fingerprint ${key.fingerprint} with one you trust, or pass a trusted checkpoint`,
      );
    }
    for (const cp of [...checkpoints].sort((a, b) => a.id - b.id)) {
      this.checkpointsById.set(cp.id, cp);
      const name = `checkpoint #${cp.id}`;
      if (!this.signatureProblem(name, treeHeadOf(cp), cp.signature)) {
        this.expectRoot({ name, trusted: false, checkpoint: cp, treeSize: cp.treeSize, rootHash: cp.rootHash });
      }
    }
    if (trusted && !this.signatureProblem("the trusted checkpoint", trusted.treeHead, trusted.signature)) {
      const { treeSize, rootHash } = trusted.treeHead;
      this.expectRoot({ name: "the trusted checkpoint", trusted: true, checkpoint: null, treeSize, rootHash });
    }
    if (checkpoints.length === 0) this.notes.push("no signed checkpoint yet: the hash chain is checked but no signature covers it");
    this.checkRootsAt(0);
  }

  /** Fingerprint and signature check; returns true (and records the problem) when something is wrong. */
  private signatureProblem(name: string, head: TreeHead, signature: string): boolean {
    const problem = this.keyChain.checkpointProblem(name, head, signature);
    if (problem) this.findings.push({ at: 0, badSeq: null, message: problem });
    return problem !== null;
  }

  private expectRoot(check: PendingRootCheck): void {
    const list = this.rootChecks.get(check.treeSize) ?? [];
    list.push(check);
    this.rootChecks.set(check.treeSize, list);
  }

  private checkRootsAt(size: number): void {
    const checks = this.rootChecks.get(size);
    if (!checks) return;
    this.rootChecks.delete(size);
    const root = size === 0 ? EMPTY_TREE_ROOT.toString("hex") : this.tree.root().toString("hex");
    for (const c of checks) {
      if (c.rootHash === root) {
        this.matches.push({ at: size, check: c });
        continue;
      }
      const lastGood = this.matches.reduce((m, x) => Math.max(m, x.check.treeSize), 0);
      const range = lastGood < size ? ` (the change is in seq ${lastGood + 1}..${size})` : "";
      this.findings.push({ at: size, badSeq: null, message: `${c.name} (tree size ${size}) root does not match the events${range} (rewritten history?)` });
    }
  }

  /** One pass: checks the next event completely; returns false once the pass must stop. */
  add(row: AuditEventRow): boolean {
    if (this.eventFailure) return false;
    const bad = this.events.check(row);
    if (bad) {
      this.eventFailure = bad;
      return false;
    }
    this.addLeaf(row.seq, row.leafHash, row.action, row.action === "audit.checkpoint" ? row.payload : null);
    return true;
  }

  /** Tree side only: the next leaf in seq order (its content is checked by the event side). */
  addLeaf(seq: number, leafHex: string, action: string, checkpointPayload: string | null): void {
    if (this.treeBroken) return;
    try {
      this.tree.pushHex(leafHex);
    } catch {
      this.treeBroken = true; // not a hash: the event side reports this seq, and finish() cuts here
      return;
    }
    this.leafCount = seq;
    const keyProblem = this.keyChain.leafProblem(seq, leafHex, action);
    if (keyProblem) this.findings.push({ at: seq, badSeq: seq, message: keyProblem });
    if (action === "audit.checkpoint") this.checkCheckpointEvent(seq, checkpointPayload);
    this.checkRootsAt(seq);
  }

  /** An "audit.checkpoint" event must match the checkpoint row it records (catches deleted or swapped checkpoint rows). */
  private checkCheckpointEvent(seq: number, payload: string | null): void {
    let recorded: Partial<CheckpointEventPayload> | null = null;
    try {
      recorded = JSON.parse(payload ?? "null") as Partial<CheckpointEventPayload> | null;
    } catch {
      // reported below
    }
    const id = recorded?.checkpointId;
    if (typeof id !== "number") {
      this.findings.push({ at: seq, badSeq: seq, message: `seq ${seq}: checkpoint event does not name its checkpoint` });
      return;
    }
    const cp = this.checkpointsById.get(id);
    if (!cp) {
      this.findings.push({ at: seq, badSeq: seq, message: `seq ${seq} records checkpoint #${id}, but there is no such checkpoint row (deleted?)` });
    } else if (cp.treeSize !== recorded?.treeSize || cp.rootHash !== recorded.rootHash || cp.signature !== recorded.signature || cp.at !== recorded.at) {
      this.findings.push({ at: seq, badSeq: seq, message: `checkpoint #${id} differs from the copy recorded at seq ${seq} (altered checkpoint?)` });
    }
  }

  /** Event side run elsewhere (range workers): the first bad event they found. Keeps the earliest. */
  reportEventProblem(p: EventProblem): void {
    if (!this.eventFailure || p.seq < this.eventFailure.seq) this.eventFailure = p;
  }

  /** Records a problem found outside the rows (unreadable bundle line, etc.) at the next expected seq. */
  abort(problem: string): void {
    this.reportEventProblem({ seq: this.events.nextSeq, problem });
  }

  finish(workers = 0): VerifyResult {
    const cut = this.eventFailure?.seq ?? Number.POSITIVE_INFINITY;
    const kept = this.findings.filter((f) => f.at < cut).sort((a, b) => a.at - b.at);
    const problems = kept.map((f) => f.message);
    if (this.eventFailure) problems.push(this.eventFailure.problem);
    const n = this.eventFailure ? this.eventFailure.seq - 1 : this.leafCount;
    if (!this.eventFailure) {
      // Whatever is still pending lies beyond the end of the log.
      for (const [size, checks] of [...this.rootChecks.entries()].sort((a, b) => a[0] - b[0])) {
        for (const c of checks) {
          problems.push(c.trusted ? `log has ${n} events but the trusted checkpoint covers ${size} (truncated?)` : `${c.name} covers ${size} events but the log has ${n} (truncated?)`);
        }
      }
    }
    const matched = this.matches.filter((m) => m.at < cut);
    const signed = matched.filter((m) => m.check.checkpoint !== null);
    const lastSigned = signed.reduce((m, x) => Math.max(m, x.check.treeSize), 0);
    const latestCp = signed.map((m) => m.check.checkpoint!).sort((a, b) => b.id - a.id)[0];
    const unsignedTail = n - lastSigned;
    if (problems.length === 0 && unsignedTail > 0 && signed.length > 0) {
      this.notes.push(`${unsignedTail} event(s) after the last checkpoint are chained but not yet covered by a signature`);
    }
    const badSeqs = kept.map((f) => f.badSeq).filter((s): s is number => s !== null);
    if (this.eventFailure) badSeqs.push(this.eventFailure.seq);
    const anchorMatches = matched.filter((m) => m.check.trusted);
    const anchorTreeSize = anchorMatches.reduce((m, x) => Math.max(m, x.check.treeSize), 0);
    const anchored = anchorMatches.length > 0 && problems.length === 0;
    const levels: VerifyLevels = {
      chain: { ok: problems.length === 0, events: n, checkpoints: signed.length, problem: problems[0] ?? null },
      content: { ...CONTENT_NOT_RUN },
      anchor: {
        anchored,
        treeSize: anchored ? anchorTreeSize : 0,
        by: anchorMatches.map((m) => ({ kind: "trusted checkpoint" as const, name: m.check.name, treeSize: m.check.treeSize })),
        problem: null,
      },
    };
    return {
      ok: problems.length === 0,
      levels,
      anchored,
      eventsChecked: n,
      checkpointsChecked: signed.length,
      firstBadSeq: badSeqs.length > 0 ? Math.min(...badSeqs) : null,
      problem: problems[0] ?? null,
      problems,
      notes: [...this.notes],
      keyFingerprint: this.key.fingerprint,
      keySource: this.keySource,
      latestCheckpoint: latestCp ? { id: latestCp.id, treeSize: latestCp.treeSize, at: latestCp.at } : null,
      unsignedTail,
      trustedCheckpointChecked: matched.some((m) => m.check.trusted),
      workers,
      durationMs: Math.round((performance.now() - this.started) * 10) / 10,
    };
  }
}

/** Verifies events given in memory or from any iterable (tests, UI uploads). */
export function verifyAuditEvents(
  events: Iterable<AuditEventRow>,
  checkpoints: readonly AuditCheckpointRow[],
  key: AuditPublicKey,
  opts: { trustedCheckpoint?: TrustedCheckpoint; keySource?: KeySource; rotations?: readonly AuditEventRow[] } = {},
): VerifyResult {
  const rotations = opts.rotations ?? (Array.isArray(events) ? (events as AuditEventRow[]).filter((e) => e.action === KEY_ROTATE_ACTION) : []);
  const v = new AuditLogVerifier(key, opts.keySource ?? "given", checkpoints, opts.trustedCheckpoint, rotations);
  for (const row of events) if (!v.add(row)) break;
  return v.finish();
}

export function chooseTrustedKey(opts: VerifyOptions, fallback: () => AuditPublicKey, fallbackSource: KeySource): { key: AuditPublicKey; source: KeySource } {
  if (opts.publicKeyPem) return { key: parseAuditPublicKey(opts.publicKeyPem), source: "given" };
  if (opts.trustedCheckpoint?.publicKeyPem) return { key: parseAuditPublicKey(opts.trustedCheckpoint.publicKeyPem), source: "trusted checkpoint" };
  return { key: fallback(), source: fallbackSource };
}

export type VerifyDatabaseOptions = VerifyOptions & {
  /** For an open Db: where the public key lives when no key is given. */
  dataDir?: string;
  /**
   * Worker threads that check event content in parallel ranges while this thread builds the Merkle tree.
   * Only for a data directory. Default 0 (one pass). The parallel mode spends ~60% more CPU in total (every
   * row is read twice) and ~1 s starting workers, but on the shared 2-core machine it cut 1M-event wall time
   * from 53 s to 19 s under heavy load. "auto" = one worker per core for logs of 200,000 events or more.
   */
  workers?: number | "auto";
  /** One-pass mode: called every 4,096 events with (events checked, events in the log), for "Verify now"'s progress. */
  onProgress?: (checked: number, total: number) => void;
};

const AUTO_PARALLEL_FROM_EVENTS = 200_000;

function openReadOnly(dataDir: string): Database.Database {
  const file = path.join(dataDir, "runledger.sqlite");
  if (!fs.existsSync(file)) throw new Error(`no Runledger database at ${file}`);
  return new Database(file, { readonly: true, fileMustExist: true });
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

/**
 * Verifies a live database in one pass on this thread: a data directory (opened read-only, nothing is migrated
 * or written) or an open Db. Events and checkpoints are read inside one read transaction, so a concurrent
 * writer cannot make them disagree.
 */
export function verifyDatabaseSync(source: string | Db, opts: VerifyDatabaseOptions = {}): VerifyResult {
  const { key, source: keySource } = resolveKey(source, opts);
  const owned = typeof source === "string" ? openReadOnly(source) : null;
  const db: AuditDbSource = owned ?? (source as Db);
  try {
    return sqliteOf(db).transaction(() => {
      const v = new AuditLogVerifier(key, keySource, listAuditCheckpoints(db), opts.trustedCheckpoint, auditEventsWithAction(db, KEY_ROTATE_ACTION));
      const total = opts.onProgress ? maxAuditSeq(db) : 0;
      for (const row of iterateAuditEvents(db)) {
        if (!v.add(row)) break;
        if (opts.onProgress && row.seq % 4096 === 0) opts.onProgress(row.seq, total);
      }
      return v.finish();
    })();
  } finally {
    owned?.close();
  }
}

/**
 * Verifies a live database. With `workers` (data directories only), range workers check event content and
 * chain in parallel while this thread builds the Merkle tree and checks checkpoints; the result is the same as
 * `verifyDatabaseSync`'s (tested). Falls back to one pass when workers cannot start.
 */
export async function verifyDatabase(source: string | Db, opts: VerifyDatabaseOptions = {}): Promise<VerifyResult> {
  if (typeof source !== "string") return verifyDatabaseSync(source, opts);
  const size = opts.workers === undefined || opts.workers === 0 ? 0 : maxAuditSeqOf(source);
  const wanted = opts.workers === "auto" ? (size >= AUTO_PARALLEL_FROM_EVENTS ? os.availableParallelism() : 0) : (opts.workers ?? 0);
  const workers = Math.min(wanted, os.availableParallelism() * 2);
  if (workers < 1 || size < workers * 2) return verifyDatabaseSync(source, opts);

  const { key, source: keySource } = resolveKey(source, opts);
  const db = openReadOnly(source);
  try {
    // One read snapshot for the checkpoints, N and the tree side; workers read seq <= N only (the log is append-only).
    db.prepare("BEGIN").run();
    const n = maxAuditSeq(db);
    const v = new AuditLogVerifier(key, keySource, listAuditCheckpoints(db), opts.trustedCheckpoint, auditEventsWithAction(db, KEY_ROTATE_ACTION, n));
    const ranges = splitRange(n, workers);
    const file = path.join(source, "runledger.sqlite");
    const started = ranges.map((r) => runRangeWorker(file, r.from, r.to, n));
    // The tree side runs here meanwhile (synchronously; worker results are read afterwards).
    for (const [seq, leaf, action, payload] of iterateTreeRows(db, n)) v.addLeaf(seq, leaf, action, payload);
    db.prepare("COMMIT").run();
    let results: (EventProblem | null)[];
    try {
      results = await Promise.all(started);
    } catch (err) {
      // Workers could not run here: do it in one pass, and say so.
      const r = verifyDatabaseSync(source, opts);
      r.notes.push(`range workers could not run (${(err as Error).message}); verified in one pass instead`);
      return r;
    }
    for (const p of results) if (p) v.reportEventProblem(p);
    return v.finish(ranges.length);
  } finally {
    db.close();
  }
}

function maxAuditSeqOf(dataDir: string): number {
  const db = openReadOnly(dataDir);
  try {
    return maxAuditSeq(db);
  } finally {
    db.close();
  }
}
