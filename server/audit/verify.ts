/**
 * The audit ledger verifier, shared by the CLI, the UI and the tests.
 *
 * One pass over the events in seq order, O(log n) memory. For each event it checks, in this order:
 *   seq is exactly the next one (no gap, no reordering, no duplicate);
 *   the stored leaf hash equals the hash recomputed from the row's fields (ledger.ts's definition);
 *   the stored chain hash equals sha256(previous chain hash || leaf hash);
 *   an "audit.checkpoint" event matches the checkpoint row it records.
 * Before the pass every checkpoint's key fingerprint and Ed25519 signature are checked against the trusted
 * key; during the pass the Merkle root at each checkpoint's tree size is compared with the signed root; at
 * the end, checkpoints larger than the log reveal truncation. A trusted checkpoint kept by the auditor is
 * checked the same way, which proves the current log extends it (its first treeSize events have the signed root).
 *
 * The pass stops at the first bad event (later events cannot be judged against a broken chain); signature and
 * root problems are collected. `problem` is the first problem in plain words, `firstBadSeq` the first bad event
 * when one can be named (a root mismatch over an internally consistent log cannot say which event changed).
 * The trusted key comes from the caller; a key read from the data being verified is reported as such.
 */
import Database from "better-sqlite3";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import type { Db } from "@/db/client";
import type { AuditEventRow } from "./ledger";
import { ChainHasher, recomputeLeafHash } from "./event-hashing";
import { MerkleAccumulator, EMPTY_TREE_ROOT } from "./merkle";
import { type AuditPublicKey, loadAuditPublicKey, parseAuditPublicKey } from "./keys";
import {
  type AuditCheckpointRow,
  type CheckpointEventPayload,
  type TrustedCheckpoint,
  treeHeadOf,
  verifyTreeHeadSignature,
} from "./checkpoints";
import { type AuditDbSource, iterateAuditEvents, listAuditCheckpoints, sqliteOf } from "./ledger-reads";

export type KeySource = "given" | "trusted checkpoint" | "data directory" | "bundle";

export type VerifyResult = {
  ok: boolean;
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
  durationMs: number;
};

export type VerifyOptions = {
  /** SPKI PEM of the key to trust; otherwise the trusted checkpoint's key, otherwise the key stored with the data. */
  publicKeyPem?: string;
  trustedCheckpoint?: TrustedCheckpoint;
};

type PendingRootCheck = { name: string; trusted: boolean; treeSize: number; rootHash: string; onMatch: () => void };

/** The verifier's state machine: feed events in order with `add`, then `finish`. */
export class AuditLogVerifier {
  private readonly started = performance.now();
  private readonly problems: string[] = [];
  private readonly notes: string[] = [];
  private firstBadSeq: number | null = null;
  private stopped = false;
  private expectedSeq = 1;
  private readonly chain = new ChainHasher();
  private readonly tree = new MerkleAccumulator();
  private readonly rootChecks = new Map<number, PendingRootCheck[]>();
  private readonly checkpointsById = new Map<number, AuditCheckpointRow>();
  private verifiedCheckpoints = 0;
  private lastVerifiedTreeSize = 0;
  private trustedChecked = false;
  private latest: VerifyResult["latestCheckpoint"] = null;

  constructor(
    private readonly key: AuditPublicKey,
    private readonly keySource: KeySource,
    checkpoints: readonly AuditCheckpointRow[],
    trusted?: TrustedCheckpoint,
  ) {
    if (keySource === "data directory" || keySource === "bundle") {
      this.notes.push(
        `the public key was read from the ${keySource} being verified; compare its fingerprint ${key.fingerprint} with one you trust, or pass a trusted checkpoint`,
      );
    }
    for (const cp of [...checkpoints].sort((a, b) => a.id - b.id)) {
      this.checkpointsById.set(cp.id, cp);
      const name = `checkpoint #${cp.id}`;
      if (!this.signatureProblem(name, treeHeadOf(cp), cp.signature)) {
        this.expectRoot({
          name,
          trusted: false,
          treeSize: cp.treeSize,
          rootHash: cp.rootHash,
          onMatch: () => {
            this.verifiedCheckpoints++;
            this.lastVerifiedTreeSize = Math.max(this.lastVerifiedTreeSize, cp.treeSize);
            if (!this.latest || cp.id > this.latest.id) this.latest = { id: cp.id, treeSize: cp.treeSize, at: cp.at };
          },
        });
      }
    }
    if (trusted) {
      if (!this.signatureProblem("the trusted checkpoint", trusted.treeHead, trusted.signature)) {
        this.expectRoot({
          name: "the trusted checkpoint",
          trusted: true,
          treeSize: trusted.treeHead.treeSize,
          rootHash: trusted.treeHead.rootHash,
          onMatch: () => {
            this.trustedChecked = true;
          },
        });
      }
    }
    if (checkpoints.length === 0) this.notes.push("no signed checkpoint yet: the hash chain is checked but no signature covers it");
    this.checkRootsAt(0);
  }

  /** Fingerprint and signature check; returns true (and records the problem) when something is wrong. */
  private signatureProblem(name: string, head: AuditCheckpointRow | TrustedCheckpoint["treeHead"], signature: string): boolean {
    if (head.keyFingerprint !== this.key.fingerprint) {
      this.problems.push(`${name} was signed with key ${head.keyFingerprint}, not the trusted server key ${this.key.fingerprint}`);
      return true;
    }
    if (!verifyTreeHeadSignature(this.key, treeHeadOf(head), signature)) {
      this.problems.push(`${name} signature is not valid for the server key (altered checkpoint?)`);
      return true;
    }
    return false;
  }

  private expectRoot(check: PendingRootCheck): void {
    const list = this.rootChecks.get(check.treeSize) ?? [];
    list.push(check);
    this.rootChecks.set(check.treeSize, list);
  }

  private checkRootsAt(size: number): void {
    const checks = this.rootChecks.get(size);
    if (!checks) return;
    const root = size === 0 ? EMPTY_TREE_ROOT.toString("hex") : this.tree.root().toString("hex");
    for (const c of checks) {
      if (c.rootHash === root) c.onMatch();
      else {
        const range = this.lastVerifiedTreeSize < size ? ` (the change is in seq ${this.lastVerifiedTreeSize + 1}..${size})` : "";
        this.problems.push(`${c.name} (tree size ${size}) root does not match the events${range} (rewritten history?)`);
      }
    }
    this.rootChecks.delete(size);
  }

  private failEvent(seq: number, problem: string): false {
    this.problems.push(problem);
    this.firstBadSeq ??= seq;
    this.stopped = true;
    return false;
  }

  /** Checks the next event; returns false once the pass must stop. */
  add(row: AuditEventRow): boolean {
    if (this.stopped) return false;
    const expected = this.expectedSeq;
    const seq = row.seq;
    if (seq !== expected) {
      if (typeof seq === "number" && seq > expected) {
        return this.failEvent(expected, `seq ${expected} missing: expected ${expected}, found ${seq} (deleted row?)`);
      }
      return this.failEvent(expected, `seq ${expected}: found seq ${String(seq)} out of order (reordered or duplicated row?)`);
    }
    const leaf = recomputeLeafHash(row);
    if (leaf === null) return this.failEvent(seq, `seq ${seq}: its fields cannot be hashed (payload is not valid JSON?)`);
    if (leaf !== row.leafHash) return this.failEvent(seq, `seq ${seq}: leaf hash does not match its content (edited?)`);
    const chained = this.chain.next(leaf);
    if (chained !== row.chainHash) {
      return this.failEvent(seq, `seq ${seq}: chain hash does not follow from seq ${seq - 1} (row inserted, removed or rewritten?)`);
    }
    this.chain.advance(chained);
    this.tree.pushHex(leaf);
    this.expectedSeq++;
    if (row.action === "audit.checkpoint" && !this.checkCheckpointEvent(row)) return false;
    this.checkRootsAt(seq);
    return true;
  }

  /** An "audit.checkpoint" event must match the checkpoint row it records (catches deleted or swapped checkpoint rows). */
  private checkCheckpointEvent(row: AuditEventRow): boolean {
    let recorded: Partial<CheckpointEventPayload>;
    try {
      recorded = JSON.parse(row.payload) as Partial<CheckpointEventPayload>;
    } catch {
      return this.failEvent(row.seq, `seq ${row.seq}: checkpoint event payload is not valid JSON`);
    }
    const id = recorded.checkpointId;
    if (typeof id !== "number") return this.failEvent(row.seq, `seq ${row.seq}: checkpoint event does not name its checkpoint`);
    const cp = this.checkpointsById.get(id);
    if (!cp) {
      this.problems.push(`seq ${row.seq} records checkpoint #${id}, but there is no such checkpoint row (deleted?)`);
      this.firstBadSeq ??= row.seq;
      return true;
    }
    if (cp.treeSize !== recorded.treeSize || cp.rootHash !== recorded.rootHash || cp.signature !== recorded.signature || cp.at !== recorded.at) {
      this.problems.push(`checkpoint #${id} differs from the copy recorded at seq ${row.seq} (altered checkpoint?)`);
      this.firstBadSeq ??= row.seq;
    }
    return true;
  }

  /** Records a problem found outside the rows (unreadable bundle line, etc.) at the next expected seq and stops the pass. */
  abort(problem: string): void {
    this.failEvent(this.expectedSeq, problem);
  }

  finish(): VerifyResult {
    const n = this.expectedSeq - 1;
    if (!this.stopped) {
      // Whatever is still pending lies beyond the end of the log.
      for (const [size, checks] of [...this.rootChecks.entries()].sort((a, b) => a[0] - b[0])) {
        for (const c of checks) {
          this.problems.push(
            c.trusted
              ? `log has ${n} events but the trusted checkpoint covers ${size} (truncated?)`
              : `${c.name} covers ${size} events but the log has ${n} (truncated?)`,
          );
        }
      }
    }
    const unsignedTail = n - this.lastVerifiedTreeSize;
    if (this.problems.length === 0 && unsignedTail > 0 && this.verifiedCheckpoints > 0) {
      this.notes.push(`${unsignedTail} event(s) after the last checkpoint are chained but not yet covered by a signature`);
    }
    return {
      ok: this.problems.length === 0,
      eventsChecked: n,
      checkpointsChecked: this.verifiedCheckpoints,
      firstBadSeq: this.firstBadSeq,
      problem: this.problems[0] ?? null,
      problems: [...this.problems],
      notes: [...this.notes],
      keyFingerprint: this.key.fingerprint,
      keySource: this.keySource,
      latestCheckpoint: this.latest,
      unsignedTail,
      trustedCheckpointChecked: this.trustedChecked,
      durationMs: Math.round((performance.now() - this.started) * 10) / 10,
    };
  }
}

/** Verifies events given in memory or from any iterable (tests, UI uploads). */
export function verifyAuditEvents(
  events: Iterable<AuditEventRow>,
  checkpoints: readonly AuditCheckpointRow[],
  key: AuditPublicKey,
  opts: { trustedCheckpoint?: TrustedCheckpoint; keySource?: KeySource } = {},
): VerifyResult {
  const v = new AuditLogVerifier(key, opts.keySource ?? "given", checkpoints, opts.trustedCheckpoint);
  for (const row of events) if (!v.add(row)) break;
  return v.finish();
}

function chooseKey(opts: VerifyOptions, fallback: () => AuditPublicKey, fallbackSource: KeySource): { key: AuditPublicKey; source: KeySource } {
  if (opts.publicKeyPem) return { key: parseAuditPublicKey(opts.publicKeyPem), source: "given" };
  if (opts.trustedCheckpoint?.publicKeyPem) return { key: parseAuditPublicKey(opts.trustedCheckpoint.publicKeyPem), source: "trusted checkpoint" };
  return { key: fallback(), source: fallbackSource };
}

/**
 * Verifies a live database: a data directory (opened read-only, nothing is migrated or written) or an open Db.
 * Reads events and checkpoints inside one read transaction, so a concurrent writer cannot make them disagree.
 */
export function verifyDatabase(source: string | Db, opts: VerifyOptions & { dataDir?: string } = {}): VerifyResult {
  const dataDir = typeof source === "string" ? source : opts.dataDir;
  const { key, source: keySource } = chooseKey(
    opts,
    () => {
      if (!dataDir) throw new Error("verifyDatabase: pass publicKeyPem or dataDir to say which key to trust");
      return loadAuditPublicKey(dataDir);
    },
    "data directory",
  );
  let owned: Database.Database | null = null;
  let db: AuditDbSource;
  if (typeof source === "string") {
    const file = path.join(source, "runledger.sqlite");
    if (!fs.existsSync(file)) throw new Error(`no Runledger database at ${file}`);
    owned = new Database(file, { readonly: true, fileMustExist: true });
    db = owned;
  } else {
    db = source;
  }
  try {
    const sqlite = sqliteOf(db);
    return sqlite.transaction(() => {
      const v = new AuditLogVerifier(key, keySource, listAuditCheckpoints(db), opts.trustedCheckpoint);
      const it = iterateAuditEvents(db);
      try {
        for (const row of it) if (!v.add(row)) break;
      } finally {
        it.return?.(); // release the statement if we stopped early
      }
      return v.finish();
    })();
  } finally {
    owned?.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Bundles: a directory with events.jsonl (one event row per line, all columns), checkpoints.json, public-key.pem.

export const BUNDLE_EVENTS_FILE = "events.jsonl";
export const BUNDLE_CHECKPOINTS_FILE = "checkpoints.json";
export const BUNDLE_PUBLIC_KEY_FILE = "public-key.pem";

/** Verifies an exported bundle offline. The bundle's own key is used only when no other key is given. */
export async function verifyBundle(bundleDir: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const { key, source: keySource } = chooseKey(
    opts,
    () => parseAuditPublicKey(fs.readFileSync(path.join(bundleDir, BUNDLE_PUBLIC_KEY_FILE), "utf8")),
    "bundle",
  );
  const checkpoints = JSON.parse(fs.readFileSync(path.join(bundleDir, BUNDLE_CHECKPOINTS_FILE), "utf8")) as AuditCheckpointRow[];
  if (!Array.isArray(checkpoints)) throw new Error(`${BUNDLE_CHECKPOINTS_FILE} is not a list of checkpoints`);
  const v = new AuditLogVerifier(key, keySource, checkpoints, opts.trustedCheckpoint);
  const lines = readline.createInterface({
    input: fs.createReadStream(path.join(bundleDir, BUNDLE_EVENTS_FILE), { encoding: "utf8", highWaterMark: 1 << 20 }),
    crlfDelay: Infinity,
  });
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.length === 0) continue;
      let row: AuditEventRow;
      try {
        row = JSON.parse(line) as AuditEventRow;
      } catch {
        v.abort(`${BUNDLE_EVENTS_FILE} line ${lineNo} is not valid JSON (damaged bundle?)`);
        break;
      }
      if (!v.add(row)) break;
    }
  } finally {
    lines.close();
  }
  return v.finish();
}

/**
 * Writes events.jsonl, checkpoints.json and public-key.pem into `dir` (created if needed) from one consistent
 * read snapshot. Used by the report export; the result verifies with `verifyBundle`.
 */
export function writeBundleAuditFiles(
  db: AuditDbSource,
  dir: string,
  keys: Pick<AuditPublicKey, "publicKeyPem">,
): { events: number; checkpoints: number; files: string[] } {
  fs.mkdirSync(dir, { recursive: true });
  const files = [BUNDLE_EVENTS_FILE, BUNDLE_CHECKPOINTS_FILE, BUNDLE_PUBLIC_KEY_FILE].map((f) => path.join(dir, f));
  const [eventsPath, checkpointsPath, keyPath] = files as [string, string, string];
  const sqlite = sqliteOf(db);
  return sqlite.transaction(() => {
    const checkpoints = listAuditCheckpoints(db);
    const fd = fs.openSync(eventsPath, "w");
    let events = 0;
    try {
      let chunk: string[] = [];
      let chunkChars = 0;
      for (const row of iterateAuditEvents(db)) {
        const line = JSON.stringify(row) + "\n";
        chunk.push(line);
        chunkChars += line.length;
        events++;
        if (chunkChars > 1 << 20) {
          fs.writeSync(fd, chunk.join(""));
          chunk = [];
          chunkChars = 0;
        }
      }
      if (chunk.length > 0) fs.writeSync(fd, chunk.join(""));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.writeFileSync(checkpointsPath, JSON.stringify(checkpoints, null, 2) + "\n");
    fs.writeFileSync(keyPath, keys.publicKeyPem);
    return { events, checkpoints: checkpoints.length, files };
  })();
}

