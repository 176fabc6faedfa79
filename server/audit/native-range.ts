/**
 * A range of the audit log checked inside SQLite by the rl_audit extension (native/rl_audit.c), so that a million
 * rows are not carried into JavaScript: seq, leaf hash, chain hash and the Merkle tree are checked in C while SQLite
 * scans the rowid range, and only the few events that need more (checkpoint events, watched events, leaves the C
 * code is not certain how to hash) are read here. The result is the RangeResult verify-range.ts's RangeScanner
 * (the reference) gives for the same rows (tests/verify-native.test.ts compares them on clean, awkward and tampered
 * logs); `scanDatabaseRangeFast` falls back to the reference whenever the extension is unavailable or disagrees.
 *
 * The extension is built from its C source at first use, like the worker bundles (worker-script.ts), into the
 * project's node_modules/.cache (never the data directory), named by the hash of its inputs so a stale build is never
 * loaded. It needs a C compiler (`cc`) and the SQLite headers better-sqlite3 ships; without them, or with
 * RUNLEDGER_AUDIT_NATIVE=0, verification runs the JavaScript reference (same result, slower).
 *
 * Invariants: reads only; no schema import (range workers load this file).
 */
import type Database from "better-sqlite3";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { threadId } from "node:worker_threads";
import { leafHashOfFields, type EventProblem } from "./event-hashing";
import {
  checkCheckpointEvent,
  EVENT_COLUMNS,
  rangeProblem,
  scanDatabaseRange,
  type CheckpointCopy,
  type RangeResult,
  type RangeSpec,
} from "./verify-range";

const SOURCE = ["server", "audit", "native", "rl_audit.c"];
const HEADERS = ["node_modules", "better-sqlite3", "deps", "sqlite3"];
const ENTRY_POINT = "sqlite3_rlaudit_init";
/** Events per SQL statement when progress is wanted (it is reported between them); else one statement. */
const PROGRESS_WINDOW = 4096;

let built: { path: string | null; reason: string } | null = null;

/** Path of the built extension, building it if needed; null (with the reason) when it cannot be had. */
export function auditNativeExtension(root = process.cwd()): { path: string | null; reason: string } {
  if (process.env.RUNLEDGER_AUDIT_NATIVE === "0") return { path: null, reason: "RUNLEDGER_AUDIT_NATIVE=0" };
  if (built) return built;
  built = buildExtension(root);
  return built;
}

function buildExtension(root: string): { path: string | null; reason: string } {
  try {
    const source = path.join(root, ...SOURCE);
    const headers = path.join(root, ...HEADERS);
    const hash = crypto
      .createHash("sha256")
      .update(fs.readFileSync(source))
      .update(fs.readFileSync(path.join(headers, "sqlite3ext.h")))
      .update(`${process.platform}-${process.arch}-${process.versions.openssl}`)
      .digest("hex")
      .slice(0, 16);
    const dir = path.join(root, "node_modules", ".cache", "runledger-native");
    const file = path.join(dir, `rl_audit-${hash}${process.platform === "darwin" ? ".dylib" : ".so"}`);
    if (fs.existsSync(file)) return { path: file, reason: "built" };
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.${threadId}.${crypto.randomBytes(4).toString("hex")}.tmp`; // range workers build at once
    // -undefined dynamic_lookup (macOS) / the default on Linux: SHA256 resolves from the Node.js binary at load time.
    const platformFlags = process.platform === "darwin" ? ["-undefined", "dynamic_lookup"] : [];
    execFileSync(process.env.CC ?? "cc", ["-O2", "-fPIC", "-shared", ...platformFlags, "-I", headers, source, "-o", tmp, "-lm"], {
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 60_000,
    });
    fs.renameSync(tmp, file);
    return { path: file, reason: "built" };
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return { path: null, reason: `could not build the native audit extension: ${stderr || (err as Error).message}` };
  }
}

const loaded = new WeakMap<Database.Database, boolean>();

/** Loads the extension into this connection once; false when it is unavailable. */
export function loadAuditNative(sqlite: Database.Database): boolean {
  const known = loaded.get(sqlite);
  if (known !== undefined) return known;
  const ext = auditNativeExtension();
  let ok = false;
  if (ext.path) {
    try {
      // better-sqlite3 passes an entry point on to SQLite (its typings omit the argument); the file name carries a hash.
      (sqlite.loadExtension as (file: string, entryPoint: string) => void).call(sqlite, ext.path, ENTRY_POINT);
      ok = true;
    } catch {
      ok = false;
    }
  }
  loaded.set(sqlite, ok);
  return ok;
}

/** What rl_range_result() returns (hashes in hex). */
type NativeRangeState = {
  leaves: number;
  expected: number;
  /** [kind, seq, found seq]: 1 gap, 2 out of order, 3 leaf, 4 chain. */
  problem: [number, number, number] | null;
  roots: [number, string][];
  partials: [number, string, number[]][];
  watched: [number, string][];
  checkpoints: number[];
  deferred: number[];
  nodes: [string, number[]];
  newest: [string, number] | null;
  oldestUncovered: [string, number] | null;
  /** 1 when an accepted event's time is not plain ASCII: the reference tracks times then. */
  oddTime: number;
};

const PROBLEM_GAP = 1;
const PROBLEM_ORDER = 2;
const PROBLEM_LEAF = 3;
const PROBLEM_CHAIN = 4;

const latin1OfHex = (hex: string): string => Buffer.from(hex, "hex").toString("latin1");

function runNative(
  sqlite: Database.Database,
  spec: RangeSpec,
  to: number,
  maxSeq: number,
  onProgress?: (seq: number) => void,
): NativeRangeState {
  sqlite
    .prepare("SELECT rl_range_begin(?, ?, ?, ?, ?, ?, ?)")
    .pluck()
    .get(
      spec.from,
      Number.isFinite(to) ? to : -1,
      spec.prevChainHex,
      spec.sizes.join(","),
      Math.min(spec.coveredUpTo, Number.MAX_SAFE_INTEGER),
      spec.watchActions.join("\n"),
      [...spec.watchSeqs].sort((a, b) => a - b).join(","),
    );
  // SQLite scans the rowid range in order and stops at the first row the range does not accept: a bad event, or the
  // first row after `to` (read, as the reference reads it, so that a gap at the range's end names the row found).
  const stopRow = sqlite
    .prepare(`SELECT seq FROM audit_events WHERE seq >= ? AND seq <= ? AND rl_range_feed(${EVENT_COLUMNS}) = 0 LIMIT 1`)
    .pluck();
  const window = onProgress ? PROGRESS_WINDOW : Number.MAX_SAFE_INTEGER;
  for (let lo = spec.from; lo <= maxSeq; lo += window) {
    const hi = Math.min(maxSeq, lo + window - 1);
    if (stopRow.get(lo, hi) !== undefined) break;
    onProgress?.(hi);
  }
  return JSON.parse(sqlite.prepare("SELECT rl_range_result()").pluck().get() as string) as NativeRangeState;
}

/**
 * Range `spec` checked by the extension, or null when it is unavailable or disagrees with the reference about an
 * event (the caller then runs the reference).
 */
export function scanDatabaseRangeNative(
  sqlite: Database.Database,
  spec: RangeSpec,
  maxSeq: number,
  onProgress?: (seq: number) => void,
): RangeResult | null {
  if (!loadAuditNative(sqlite)) return null;
  try {
    return nativeRange(sqlite, spec, maxSeq, onProgress);
  } catch {
    return null; // e.g. a stored time that is not valid UTF-8 (its JSON cannot be read back): the reference decides
  }
}

function nativeRange(sqlite: Database.Database, spec: RangeSpec, maxSeq: number, onProgress?: (seq: number) => void): RangeResult | null {
  let state = runNative(sqlite, spec, spec.to, maxSeq, onProgress);
  if (state.oddTime) return null;
  const rowAt = sqlite.prepare(`SELECT ${EVENT_COLUMNS} FROM audit_events WHERE seq = ?`).raw(true);

  // Leaves the extension left to the reference, then the row it stopped at (a leaf is judged before its chain link).
  const toJudge = [...state.deferred];
  const stoppedAt = state.problem && (state.problem[0] === PROBLEM_LEAF || state.problem[0] === PROBLEM_CHAIN) ? state.problem[1] : null;
  if (stoppedAt !== null) toJudge.push(stoppedAt);
  let leafProblem: EventProblem | null = null;
  for (const seq of toJudge) {
    const r = rowAt.get(seq) as unknown[] | undefined;
    if (!r) return null;
    const leaf = leafHashOfFields(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]);
    if (leaf === null) leafProblem = { seq, problem: rangeProblem.unhashable(seq) };
    else if (leaf !== r[9]) leafProblem = { seq, problem: rangeProblem.leaf(seq) };
    if (leafProblem) break;
  }

  let problem: EventProblem | null = null;
  if (leafProblem && leafProblem.seq !== stoppedAt) {
    // A deferred leaf is bad: the range ends just before it, as the reference's would.
    state = runNative(sqlite, spec, leafProblem.seq - 1, leafProblem.seq - 1);
    problem = leafProblem;
  } else if (leafProblem) {
    problem = leafProblem;
  } else if (state.problem) {
    const [kind, seq, found] = state.problem;
    if (kind === PROBLEM_LEAF) return null; // the extension found a leaf the reference accepts: let the reference decide
    problem =
      kind === PROBLEM_GAP
        ? { seq, problem: rangeProblem.gap(seq, found) }
        : kind === PROBLEM_ORDER
          ? { seq, problem: rangeProblem.order(seq, found) }
          : { seq, problem: rangeProblem.chain(seq) };
  } else if (Number.isFinite(spec.to) && state.expected <= spec.to) {
    problem = { seq: state.expected, problem: rangeProblem.missing(state.expected) };
  }

  const result: RangeResult = {
    from: spec.from,
    leaves: state.leaves,
    problem,
    findings: [],
    watched: [],
    copies: [],
    roots: state.roots,
    partials: state.partials.map(([size, hex, sizes]) => [size, latin1OfHex(hex), sizes]),
    hashes: latin1OfHex(state.nodes[0]),
    nodeSizes: state.nodes[1],
    newest: state.newest,
    oldestUncovered: state.oldestUncovered,
  };
  const checkpointsById = new Map<number, CheckpointCopy>(spec.checkpoints.map((c) => [c.id, c]));
  const payloadAt = sqlite.prepare("SELECT payload FROM audit_events WHERE seq = ?").pluck();
  for (const seq of state.checkpoints) checkCheckpointEvent(result, checkpointsById, seq, payloadAt.get(seq));
  const actionAt = sqlite.prepare("SELECT action FROM audit_events WHERE seq = ?").pluck();
  for (const [seq, leaf] of state.watched) result.watched.push([seq, leaf, actionAt.get(seq) as string]);
  return result;
}

/** Range `spec` checked by the extension when it is available, else by the JavaScript reference. */
export function scanDatabaseRangeFast(
  sqlite: Database.Database,
  spec: RangeSpec,
  maxSeq: number,
  onProgress?: (seq: number) => void,
): RangeResult {
  return scanDatabaseRangeNative(sqlite, spec, maxSeq, onProgress) ?? scanDatabaseRange(sqlite, spec, maxSeq, onProgress);
}
