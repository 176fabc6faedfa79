/**
 * One range of the audit log checked completely, in one pass and on one thread: the work unit of the verifier.
 * verify.ts runs a single range over the whole log (one pass: bundles, open Db handles, small logs) or splits
 * the log into ranges checked by worker threads (verify-parallel.ts); either way it merges the RangeResults in
 * order, so both modes give the same result (tested).
 *
 * For each event, in this order: seq is exactly the next one; the stored leaf hash equals the one recomputed
 * from the fields (event-hashing.ts); the stored chain hash equals sha256(previous chain || leaf). Only then is
 * the leaf added to the Merkle tree (a compact range, merkle.ts), and
 * - at every tree size the verifier asked for (checkpoints, anchors), the root (range from seq 1) or the range's
 *   nodes (a later range: the verifier joins them with the prefix) is kept;
 * - an "audit.checkpoint" event is compared with the checkpoint row it records;
 * - events the verifier watches (key rotations) are handed back with their leaf hash;
 * - the newest event time and the oldest event not covered by any checkpoint row are tracked (coverage rule).
 * The range stops at its first bad event: later events cannot be judged against a broken chain.
 *
 * Invariants: reads only; the hot loop allocates no row objects. This file must not import the database schema
 * (drizzle) so range workers start fast; its SQL is plain ANSI on audit_events.
 */
import type Database from "better-sqlite3";
import crypto from "node:crypto";
import { leafHashOfFields, type EventProblem } from "./event-hashing";
import { CompactRange } from "./merkle";

/** The action of a checkpoint's own event. native/rl_audit.c spells it out too (verify-native.test.ts checks they agree). */
export const CHECKPOINT_ACTION = "audit.checkpoint";
/**
 * mmap window for the verifier's own read-only connections (less CPU per row than read(), whose copies also churn
 * SQLite's small page cache): SQLite's largest (SQLITE_MAX_MMAP_SIZE, 2 GiB - 64 KiB, to which a larger value is
 * cut), so a ledger of a few million events is read in place; a larger file is read with read() past it. 1 GiB
 * before: 0.3-0.8 s less CPU on the 1.5 GB bench database of a million events.
 */
export const VERIFY_MMAP_BYTES = 0x7fff0000;

/**
 * A problem found at a position in the log (0 = before any event); `badSeq` when it names an event;
 * `checkpointId` when it is about one checkpoint's root (dropped if that checkpoint's signature is bad anyway).
 */
export type Finding = { at: number; message: string; badSeq: number | null; checkpointId?: number };

/** The fields of a checkpoint row its "audit.checkpoint" event must repeat. */
export type CheckpointCopy = { id: number; treeSize: number; rootHash: string; signature: string; at: string };

export type RangeSpec = {
  /** First seq of the range. */
  from: number;
  /** Last seq the range owns; Infinity = to the end of the input. */
  to: number;
  /** Stored chain hash of seq from - 1 (required when from > 1). */
  prevChainHex: string | null;
  /** Tree sizes in [from, to] whose root the verifier needs, ascending. */
  sizes: number[];
  checkpoints: CheckpointCopy[];
  /** Events with a larger seq are covered by no checkpoint row. */
  coveredUpTo: number;
  /** Events handed back to the verifier: with one of these actions, or at one of these seqs. */
  watchActions: string[];
  watchSeqs: number[];
};

export type RangeResult = {
  from: number;
  /** Events verified and added to the tree: seq from .. from + leaves - 1. */
  leaves: number;
  problem: EventProblem | null;
  findings: Finding[];
  /** [seq, leaf hash, action] of watched events. */
  watched: [number, string, string][];
  /** [checkpoint id, seq] of "audit.checkpoint" events whose copy equals the checkpoint row. */
  copies: [number, number][];
  /** Range from seq 1: [tree size, root hex]. */
  roots: [number, string][];
  /** Later range: [tree size, the range's node hashes (latin1), node sizes] at that size. */
  partials: [number, string, number[]][];
  /** The range's nodes at its end, for the next range to be joined on. */
  hashes: string;
  nodeSizes: number[];
  /** [at, seq] of the newest event that is not a checkpoint event. */
  newest: [string, number] | null;
  /** [at, seq] of the oldest event after `coveredUpTo` that is not a checkpoint event. */
  oldestUncovered: [string, number] | null;
};

/** The range's problems in plain words; the native range (native-range.ts) reports with the same ones. */
export const rangeProblem = {
  gap: (expected: number, found: unknown) => `seq ${expected} missing: expected ${expected}, found ${String(found)} (deleted row?)`,
  order: (expected: number, found: unknown) => `seq ${expected}: found seq ${String(found)} out of order (reordered or duplicated row?)`,
  unhashable: (seq: number) => `seq ${seq}: its fields cannot be hashed (payload is not valid JSON?)`,
  leaf: (seq: number) => `seq ${seq}: leaf hash does not match its content (edited?)`,
  chain: (seq: number) => `seq ${seq}: chain hash does not follow from seq ${seq - 1} (row inserted, removed or rewritten?)`,
  missing: (seq: number) => `seq ${seq} missing (deleted row?)`,
};

const sha256Hex = (data: Buffer): string =>
  typeof crypto.hash === "function" ? crypto.hash("sha256", data, "hex") : crypto.createHash("sha256").update(data).digest("hex");

export class RangeScanner {
  private expected: number;
  private readonly chainInput = Buffer.alloc(64);
  private readonly tree: CompactRange;
  private sizeIndex = 0;
  private readonly checkpointsById = new Map<number, CheckpointCopy>();
  private readonly watchActions: Set<string>;
  private readonly watchSeqs: Set<number>;
  private problem: EventProblem | null = null;
  private readonly result: RangeResult;

  constructor(private readonly spec: RangeSpec) {
    this.expected = spec.from;
    if (spec.from > 1) {
      if (spec.prevChainHex === null || !/^[0-9a-f]{64}$/.test(spec.prevChainHex))
        throw new Error(`range from seq ${spec.from} needs the chain hash of seq ${spec.from - 1}`);
      this.chainInput.write(spec.prevChainHex, 0, 32, "hex");
    }
    this.tree = new CompactRange(spec.from - 1);
    for (const cp of spec.checkpoints) this.checkpointsById.set(cp.id, cp);
    this.watchActions = new Set(spec.watchActions);
    this.watchSeqs = new Set(spec.watchSeqs);
    this.result = {
      from: spec.from,
      leaves: 0,
      problem: null,
      findings: [],
      watched: [],
      copies: [],
      roots: [],
      partials: [],
      hashes: "",
      nodeSizes: [],
      newest: null,
      oldestUncovered: null,
    };
  }

  /** The seq the next event must have. */
  get nextSeq(): number {
    return this.expected;
  }

  /** Checks the next event completely; returns false once the range must stop. */
  add(
    seq: unknown,
    at: unknown,
    actorId: unknown,
    actorName: unknown,
    role: unknown,
    action: unknown,
    entityType: unknown,
    entityId: unknown,
    payload: unknown,
    leafHash: unknown,
    chainHash: unknown,
  ): boolean {
    if (this.problem) return false;
    const expected = this.expected;
    if (seq !== expected) {
      this.problem =
        typeof seq === "number" && seq > expected
          ? { seq: expected, problem: rangeProblem.gap(expected, seq) }
          : { seq: expected, problem: rangeProblem.order(expected, seq) };
      return false;
    }
    const leaf = leafHashOfFields(seq, at, actorId, actorName, role, action, entityType, entityId, payload);
    if (leaf === null) return this.stop(expected, rangeProblem.unhashable(expected));
    if (leaf !== leafHash) return this.stop(expected, rangeProblem.leaf(expected));
    this.chainInput.write(leaf, 32, 32, "hex");
    const chained = sha256Hex(this.chainInput);
    if (chained !== chainHash) return this.stop(expected, rangeProblem.chain(expected));
    const leafNode = this.chainInput.toString("latin1", 32, 64); // the leaf's bytes, decoded once for chain and tree
    this.chainInput.write(chained, 0, 32, "hex");
    this.expected++;

    this.tree.pushLeaf(leafNode);
    this.result.leaves++;
    if (action === CHECKPOINT_ACTION) checkCheckpointEvent(this.result, this.checkpointsById, expected, payload);
    else if (typeof at === "string") this.trackTime(expected, at);
    if (
      (this.watchActions.size > 0 && this.watchActions.has(action as string)) ||
      (this.watchSeqs.size > 0 && this.watchSeqs.has(expected))
    ) {
      this.result.watched.push([expected, leaf, action as string]);
    }
    const sizes = this.spec.sizes;
    if (this.sizeIndex < sizes.length && sizes[this.sizeIndex] === expected) {
      this.sizeIndex++;
      if (this.spec.from === 1) this.result.roots.push([expected, this.tree.rootHex()]);
      else this.result.partials.push([expected, this.tree.hashes(), this.tree.nodeSizes()]);
    }
    return true;
  }

  /** Records a problem found outside the rows (an unreadable bundle line) at the next expected seq. */
  abort(problem: string): void {
    if (!this.problem) this.problem = { seq: this.expected, problem };
  }

  finish(): RangeResult {
    if (!this.problem && Number.isFinite(this.spec.to) && this.expected <= this.spec.to) {
      this.problem = { seq: this.expected, problem: rangeProblem.missing(this.expected) };
    }
    this.result.problem = this.problem;
    this.result.hashes = this.tree.hashes();
    this.result.nodeSizes = this.tree.nodeSizes();
    return this.result;
  }

  private stop(seq: number, problem: string): false {
    this.problem = { seq, problem };
    return false;
  }

  private trackTime(seq: number, at: string): void {
    const r = this.result;
    if (r.newest === null || at > r.newest[0]) r.newest = [at, seq];
    if (seq > this.spec.coveredUpTo && (r.oldestUncovered === null || at < r.oldestUncovered[0])) r.oldestUncovered = [at, seq];
  }
}

/**
 * An "audit.checkpoint" event must match the checkpoint row it records (catches deleted or swapped checkpoint rows):
 * a finding when it does not, else the pair [checkpoint id, seq] in `result.copies`.
 */
export function checkCheckpointEvent(
  result: Pick<RangeResult, "findings" | "copies">,
  checkpointsById: ReadonlyMap<number, CheckpointCopy>,
  seq: number,
  payload: unknown,
): void {
  type Recorded = Partial<Omit<CheckpointCopy, "id">> & { checkpointId?: unknown };
  let recorded: Recorded | null = null;
  try {
    recorded = JSON.parse((payload as string) ?? "null") as Recorded | null;
  } catch {
    // reported below
  }
  const id = recorded?.checkpointId;
  const findings = result.findings;
  if (typeof id !== "number") {
    findings.push({ at: seq, badSeq: seq, message: `seq ${seq}: checkpoint event does not name its checkpoint` });
    return;
  }
  const cp = checkpointsById.get(id);
  if (!cp) {
    findings.push({
      at: seq,
      badSeq: seq,
      message: `seq ${seq} records checkpoint #${id}, but there is no such checkpoint row (deleted?)`,
    });
  } else if (
    cp.treeSize !== recorded?.treeSize ||
    cp.rootHash !== recorded.rootHash ||
    cp.signature !== recorded.signature ||
    cp.at !== recorded.at
  ) {
    findings.push({
      at: seq,
      badSeq: seq,
      message: `checkpoint #${id} differs from the copy recorded at seq ${seq} (altered checkpoint?)`,
    });
  } else {
    result.copies.push([id, seq]);
  }
}

export const EVENT_COLUMNS = "seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash";
type RawEventRow = [number, string, number | null, string, string, string, string, string, string, string, string];
const READ_CHUNK = 1024;

/** The stored chain hash of one event (the start of a later range). */
export function storedChainHash(sqlite: Database.Database, seq: number): string | null {
  const row = sqlite.prepare("SELECT chain_hash FROM audit_events WHERE seq = ?").raw(true).get(seq) as [unknown] | undefined;
  return typeof row?.[0] === "string" ? row[0] : null;
}

/**
 * Checks range `spec` of a database, reading seq from..maxSeq (one past `to` names a gap at its end).
 * `onProgress(seq)` is called after every chunk of READ_CHUNK events.
 */
export function scanDatabaseRange(
  sqlite: Database.Database,
  spec: RangeSpec,
  maxSeq: number,
  onProgress?: (seq: number) => void,
): RangeResult {
  const scanner = new RangeScanner(spec);
  // Chunks of rows (all()) cost about 10% less than a row-by-row iterator; ORDER BY seq walks the rowid B-tree.
  const chunk = sqlite
    .prepare(`SELECT ${EVENT_COLUMNS} FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ${READ_CHUNK}`)
    .raw(true);
  let from = spec.from;
  for (;;) {
    const rows = chunk.all(from, maxSeq) as RawEventRow[];
    for (const r of rows) {
      if (scanner.nextSeq > spec.to || !scanner.add(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10]))
        return scanner.finish();
    }
    if (rows.length < READ_CHUNK) break;
    from = rows[rows.length - 1]![0] + 1;
    if (onProgress !== undefined) onProgress(from - 1);
  }
  return scanner.finish();
}

/**
 * A worker's range: when the stored chain hash before it is missing or garbled, the range that owns that row
 * reports it, so this one reports nothing (and adds no leaves).
 */
export function scanWorkerRange(
  sqlite: Database.Database,
  spec: Omit<RangeSpec, "prevChainHex">,
  maxSeq: number,
  scan: typeof scanDatabaseRange = scanDatabaseRange,
): RangeResult {
  const prev = spec.from > 1 ? storedChainHash(sqlite, spec.from - 1) : null;
  if (spec.from > 1 && (prev === null || !/^[0-9a-f]{64}$/.test(prev))) {
    return {
      from: spec.from,
      leaves: 0,
      problem: null,
      findings: [],
      watched: [],
      copies: [],
      roots: [],
      partials: [],
      hashes: "",
      nodeSizes: [],
      newest: null,
      oldestUncovered: null,
    };
  }
  return scan(sqlite, { ...spec, prevChainHex: prev }, maxSeq);
}
