/**
 * The audit ledger verifier, shared by the CLI, the UI and the tests. It reports what it proved, level by level:
 * - chain: every event's seq, leaf hash and chain hash (verify-range.ts), every checkpoint's signature against the
 *   key in force at its tree size, following the key rotations ("audit.keyRotate", read up front by action) from
 *   the trusted key (key-rotation.ts KeyChain), its root against the events, its event copy against its row, and
 *   the coverage rule: events more than CHECKPOINT_EVERY_MINUTES (+ a grace) older than the newest event must be
 *   covered by a checkpoint, as every writer of the app keeps them (checkpoint-policy.ts);
 * - content (live data and bundles): tables and files recomputed against the ledger (server/audit/content);
 * - anchor: tree heads vouched for from outside the log (anchors.ts: a trusted checkpoint, witness cosignatures)
 *   compared with the log's root at their size: a mismatch is a split view or rewritten history, an anchor
 *   larger than the log is truncation. Without one, the result says plainly that a holder of the signing key
 *   could have rewritten history (`anchored: false`); `requireAnchor` makes that a failure;
 * - triggers (live database only, verify-triggers.ts): the protective triggers are present and unaltered.
 *
 * The event pass stops at the first bad event (later events cannot be judged against a broken chain); what was
 * found at or after it is dropped, so one pass and parallel ranges give the same result. `problem` is the first
 * problem in plain words, `firstBadSeq` the first bad event when one can be named (a root mismatch over an
 * internally consistent log cannot say which event changed). The trusted key comes from the caller; a key read
 * from the data being verified is reported as such.
 * Sources: verifyDatabase / verifyDatabaseSync (verify-database.ts, live data), verifyAuditEvents (any iterable),
 * bundle.ts (exports).
 */
import type { AuditEventRow } from "./ledger";
import type { EventProblem } from "./event-hashing";
import { CompactRange, EMPTY_TREE_ROOT, HASH_BYTES } from "./merkle";
import { type AuditPublicKey, parseAuditPublicKey } from "./keys";
import { type AuditCheckpointRow, type TreeHead, type TrustedCheckpoint, treeHeadOf } from "./checkpoints";
import { KEY_ROTATE_ACTION, KeyChain } from "./key-rotation";
import { type Anchor, NOT_ANCHORED_MEANING, anchorFromTrustedCheckpoint } from "./anchors";
import { type Finding, type RangeResult, type RangeSpec, RangeScanner } from "./verify-range";
import {
  type ContentResult,
  type KeySource,
  type TriggerLevel,
  type VerifyLevels,
  type VerifyOptions,
  type VerifyResult,
  CONTENT_NOT_RUN,
  coverageProblem,
  largestPerAnchor,
  neededTreeSizes,
  rangeSpecFor,
} from "./verify-types";
import { countOf } from "@/contracts/count-text";

export * from "./verify-types";

type PendingRootCheck = { name: string; anchor: Anchor | null; checkpoint: AuditCheckpointRow | null; treeSize: number; rootHash: string };

/**
 * The verifier's state: signatures and anchors are checked up front, range results (verify-range.ts, computed
 * here or by workers) are joined in seq order, then `finish` states the result. `add(row)` feeds one range
 * computed on this thread (bundles, iterables).
 */
export class AuditLogVerifier {
  private started = performance.now();
  private readonly findings: Finding[] = [];
  private readonly anchorFindings: Finding[] = [];
  private readonly matches: { at: number; check: PendingRootCheck }[] = [];
  private readonly notes: string[] = [];
  private eventFailure: EventProblem | null = null;
  private readonly prefix = new CompactRange(0);
  private mergeStopped = false;
  private leafCount = 0;
  private readonly rootChecks = new Map<number, PendingRootCheck[]>();
  private readonly checkpoints: readonly AuditCheckpointRow[];
  private readonly sizes: number[];
  private newest: [string, number] | null = null;
  private oldestUncovered: [string, number] | null = null;
  private scanner: RangeScanner | null = null;
  /** Checkpoint rows whose signature is still to be checked (or vouched for) in finish(). */
  private readonly unverified: AuditCheckpointRow[] = [];
  /** Checkpoint id → seq of the event whose copy equals the row. */
  private readonly copies = new Map<number, number>();
  private content: ContentResult = { ...CONTENT_NOT_RUN };
  private triggers: { level: TriggerLevel; problems: string[] } | null = null;
  private requireAnchor = false;
  /** Which key signs at which tree size, from `key` through the log's "audit.keyRotate" events (key-rotation.ts). */
  private readonly keyChain: KeyChain;

  constructor(
    private readonly key: AuditPublicKey,
    private readonly keySource: KeySource,
    checkpoints: readonly AuditCheckpointRow[],
    trusted?: TrustedCheckpoint,
    private readonly rotations: readonly AuditEventRow[] = [],
    anchors: readonly Anchor[] = [],
  ) {
    this.checkpoints = checkpoints;
    this.keyChain = KeyChain.build(key, rotations, checkpoints);
    for (const p of this.keyChain.problems) this.findings.push({ at: p.seq ?? 0, badSeq: p.seq, message: p.message });
    this.notes.push(...this.keyChain.notes);
    if (keySource === "data directory" || keySource === "bundle") {
      this.notes.push(
        `the public key was read from the ${keySource} being verified; compare its fingerprint ${key.fingerprint} with one you trust, or pass a trusted checkpoint`,
      );
    }
    for (const cp of [...checkpoints].sort((a, b) => a.id - b.id)) {
      const name = `checkpoint #${cp.id}`;
      // Signed by the key in force at its size? (Cheap; the Ed25519 signature itself is checked in finish().)
      if (this.keyChain.keyAt(cp.treeSize).key.fingerprint !== cp.keyFingerprint) {
        this.signatureProblem(name, treeHeadOf(cp), cp.signature);
        continue;
      }
      this.unverified.push(cp);
      this.expectRoot({ name, anchor: null, checkpoint: cp, treeSize: cp.treeSize, rootHash: cp.rootHash });
    }
    if (trusted) {
      // The auditor's own copy: a bad signature is an anchor problem (it vouches for nothing), not a log problem.
      const problem = this.keyChain.checkpointProblem("the trusted checkpoint", trusted.treeHead, trusted.signature);
      const anchor = anchorFromTrustedCheckpoint(trusted);
      if (problem) this.anchorFindings.push({ at: 0, badSeq: null, message: problem });
      else this.expectRoot({ name: anchor.name, anchor, checkpoint: null, treeSize: anchor.treeSize, rootHash: anchor.rootHash });
    }
    for (const anchor of anchors)
      this.expectRoot({ name: anchor.name, anchor, checkpoint: null, treeSize: anchor.treeSize, rootHash: anchor.rootHash });
    if (checkpoints.length === 0) this.notes.push("no signed checkpoint yet: the hash chain is checked but no signature covers it");
    this.sizes = neededTreeSizes(checkpoints, anchors, trusted);
    this.checkRootsAt(0, EMPTY_TREE_ROOT.toString("hex"));
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

  private checkRootsAt(size: number, root: string): void {
    const checks = this.rootChecks.get(size);
    if (!checks) return;
    this.rootChecks.delete(size);
    for (const c of checks) {
      if (c.rootHash === root) {
        this.matches.push({ at: size, check: c });
        continue;
      }
      const lastGood = this.matches.reduce((m, x) => Math.max(m, x.check.treeSize), 0);
      const range = lastGood < size ? ` (the change is in seq ${lastGood + 1}..${size})` : "";
      if (c.anchor) {
        this.anchorFindings.push({
          at: size,
          badSeq: null,
          message: `${c.name} (tree size ${size}) root does not match the events${range} (split view or rewritten history?)`,
        });
      } else {
        const message = `${c.name} (tree size ${size}) root does not match the events${range} (rewritten history?)`;
        this.findings.push({ at: size, badSeq: null, message, checkpointId: c.checkpoint?.id });
      }
    }
  }

  /** The range work for seqs from..to (for range workers). */
  rangeSpec(from: number, to: number): Omit<RangeSpec, "prevChainHex"> {
    return rangeSpecFor(this.checkpoints, this.rotations, this.sizes, from, to);
  }

  /** Joins the next range's result (ranges must come in seq order; those after a bad event are ignored). */
  addRange(r: RangeResult): void {
    if (this.mergeStopped) return;
    if (r.from !== this.prefix.end + 1) {
      this.mergeStopped = true; // only after a range that stopped early, which reported why
      return;
    }
    for (const [size, root] of r.roots) this.checkRootsAt(size, root);
    for (const [size, hashes, nodeSizes] of r.partials) {
      const joined = this.prefix.clone();
      joined.append(hashes, nodeSizes);
      this.checkRootsAt(size, joined.rootHex());
    }
    if (r.hashes.length !== r.nodeSizes.length * HASH_BYTES) throw new Error("verify: a range result has malformed tree nodes");
    this.prefix.append(r.hashes, r.nodeSizes);
    this.findings.push(...r.findings);
    for (const [id, seq] of r.copies) if (!this.copies.has(id)) this.copies.set(id, seq);
    for (const [seq, leaf, action] of r.watched) {
      const keyProblem = this.keyChain.leafProblem(seq, leaf, action);
      if (keyProblem) this.findings.push({ at: seq, badSeq: seq, message: keyProblem });
    }
    this.leafCount = r.from - 1 + r.leaves;
    if (r.newest && (!this.newest || r.newest[0] > this.newest[0])) this.newest = r.newest;
    if (r.oldestUncovered && (!this.oldestUncovered || r.oldestUncovered[0] < this.oldestUncovered[0]))
      this.oldestUncovered = r.oldestUncovered;
    if (r.problem) {
      this.eventFailure = r.problem;
      this.mergeStopped = true;
    }
  }

  /** One pass on this thread: checks the next event completely; returns false once the pass must stop. */
  add(row: AuditEventRow): boolean {
    this.scanner ??= new RangeScanner({ ...this.rangeSpec(1, Number.POSITIVE_INFINITY), prevChainHex: null });
    return this.scanner.add(
      row.seq,
      row.at,
      row.actorId,
      row.actorName,
      row.role,
      row.action,
      row.entityType,
      row.entityId,
      row.payload,
      row.leafHash,
      row.chainHash,
    );
  }

  /** Records a problem found outside the rows (unreadable bundle line, etc.) at the next expected seq. */
  abort(problem: string): void {
    this.scanner ??= new RangeScanner({ ...this.rangeSpec(1, Number.POSITIVE_INFINITY), prevChainHex: null });
    this.scanner.abort(problem);
  }

  setContent(level: ContentResult): void {
    this.content = level;
  }

  setTriggers(level: TriggerLevel, problems: string[], notes: string[] = []): void {
    this.triggers = { level, problems };
    this.notes.push(...notes);
  }

  /** Problems of building the anchors (e.g. a witness cosignature that does not verify, witness lag). */
  addAnchorProblems(problems: readonly string[], notes: readonly string[] = []): void {
    for (const message of problems) this.anchorFindings.push({ at: 0, badSeq: null, message });
    this.notes.push(...notes);
  }

  setRequireAnchor(required: boolean): void {
    this.requireAnchor = required;
  }

  /** Largest tree size a matched witness anchor covers so far (for the witness lag rule). */
  matchedWitnessTreeSize(): number {
    return this.matches.filter((m) => m.check.anchor?.kind === "witness").reduce((m, x) => Math.max(m, x.at), 0);
  }

  /**
   * durationMs counts from `at` (a performance.now() taken earlier), so that it includes what was done before this
   * verifier was made: the workers started and the snapshots pinned (verify-database.ts).
   */
  timeFrom(at: number): void {
    this.started = Math.min(this.started, at);
  }

  /** Events checked so far (the log's size when the pass went through). */
  get eventsSoFar(): number {
    return this.leafCount;
  }

  finish(workers = 0): VerifyResult {
    if (this.scanner) {
      this.addRange(this.scanner.finish());
      this.scanner = null;
    }
    const cut = this.eventFailure?.seq ?? Number.POSITIVE_INFINITY;
    const n = this.eventFailure ? this.eventFailure.seq - 1 : this.leafCount;
    const badSignatures = this.checkSignatures(cut);
    if (badSignatures.size > 0) {
      // A checkpoint with a bad signature says nothing about the log: drop its root results (as if never expected).
      const isBad = (c: PendingRootCheck) => c.checkpoint !== null && badSignatures.has(c.checkpoint.id);
      for (let i = this.matches.length - 1; i >= 0; i--) if (isBad(this.matches[i]!.check)) this.matches.splice(i, 1);
      for (let i = this.findings.length - 1; i >= 0; i--)
        if (badSignatures.has(this.findings[i]!.checkpointId ?? -1)) this.findings.splice(i, 1);
      for (const [size, checks] of this.rootChecks)
        this.rootChecks.set(
          size,
          checks.filter((c) => !isBad(c)),
        );
    }
    const coverage = coverageProblem(this.newest, this.oldestUncovered);
    if (coverage) this.findings.push(coverage);
    const kept = this.findings.filter((f) => f.at < cut).sort((a, b) => a.at - b.at);
    const chainProblems = kept.map((f) => f.message);
    if (this.eventFailure) chainProblems.push(this.eventFailure.problem);
    const anchorProblems = this.anchorFindings.filter((f) => f.at < cut).map((f) => f.message);
    if (!this.eventFailure) {
      // Whatever is still pending lies beyond the end of the log.
      for (const [size, checks] of [...this.rootChecks.entries()].sort((a, b) => a[0] - b[0])) {
        for (const c of checks) {
          if (c.anchor) anchorProblems.push(`log has ${n} events but ${c.name} covers ${size} (truncated?)`);
          else chainProblems.push(`${c.name} covers ${size} events but the log has ${n} (truncated?)`);
        }
      }
    }
    const matched = this.matches.filter((m) => m.at < cut);
    const signed = matched.filter((m) => m.check.checkpoint !== null);
    const lastSigned = signed.reduce((m, x) => Math.max(m, x.check.treeSize), 0);
    const latestCp = signed.map((m) => m.check.checkpoint!).sort((a, b) => b.id - a.id)[0];
    const unsignedTail = n - lastSigned;
    const notes = [...this.notes];
    if (chainProblems.length === 0 && unsignedTail > 0 && signed.length > 0) {
      notes.push(
        `${countOf(unsignedTail, "event")} after the last checkpoint ${unsignedTail === 1 ? "is" : "are"} chained but not yet covered by a signature`,
      );
    }

    const anchorMatches = matched.filter((m) => m.check.anchor !== null);
    const anchored = anchorMatches.length > 0 && anchorProblems.length === 0;
    if (!anchored && anchorProblems.length === 0) {
      notes.push(`NOT anchored: ${NOT_ANCHORED_MEANING}`);
      if (this.requireAnchor)
        anchorProblems.push(
          "not anchored, and an anchor is required: give a trusted checkpoint (--trusted-checkpoint) or a witness key (--witness-key)",
        );
    }
    const contentProblems = this.content.problems.map((p) => p.message);
    const triggerProblems = this.triggers?.problems ?? [];
    const problems = [...chainProblems, ...triggerProblems, ...contentProblems, ...anchorProblems];
    const badSeqs = kept.map((f) => f.badSeq).filter((s): s is number => s !== null);
    if (this.eventFailure) badSeqs.push(this.eventFailure.seq);
    const levels: VerifyLevels = {
      chain: { ok: chainProblems.length === 0, events: n, checkpoints: signed.length, problem: chainProblems[0] ?? null },
      content: this.content,
      anchor: {
        anchored,
        treeSize: anchored ? anchorMatches.reduce((m, x) => Math.max(m, x.at), 0) : 0,
        by: largestPerAnchor(anchorMatches.map((m) => ({ kind: m.check.anchor!.kind, name: m.check.name, treeSize: m.at }))),
        problem: anchorProblems[0] ?? null,
      },
      ...(this.triggers ? { triggers: this.triggers.level } : {}),
    };
    return {
      ok: problems.length === 0 && this.content.ok && (this.triggers?.level.ok ?? true),
      levels,
      anchored,
      eventsChecked: n,
      checkpointsChecked: signed.length,
      firstBadSeq: badSeqs.length > 0 ? Math.min(...badSeqs) : null,
      problem: problems[0] ?? null,
      problems,
      notes,
      keyFingerprint: this.key.fingerprint,
      keySource: this.keySource,
      latestCheckpoint: latestCp ? { id: latestCp.id, treeSize: latestCp.treeSize, at: latestCp.at } : null,
      unsignedTail,
      trustedCheckpointChecked: matched.some((m) => m.check.anchor?.kind === "trusted checkpoint"),
      workers,
      durationMs: Math.round((performance.now() - this.started) * 10) / 10,
    };
  }

  /**
   * Ed25519 signatures of the checkpoint rows, newest first. A row whose event copy (equal to the row, checked in
   * the pass) lies inside the tree of a checkpoint whose signature was verified here and whose root matched is
   * vouched for by that signature: the signed root commits to the copy, signature included, so the row is what
   * the key holder wrote. Every other row is verified directly. On a healthy log that is one Ed25519 verification
   * instead of one per checkpoint (10,000 per million events). Returns the ids of rows whose signature is bad.
   */
  private checkSignatures(cut: number): Set<number> {
    const matchedIds = new Set(this.matches.filter((m) => m.at < cut && m.check.checkpoint).map((m) => m.check.checkpoint!.id));
    const bad = new Set<number>();
    let vouchedUpTo = 0;
    for (const cp of [...this.unverified].sort((a, b) => b.treeSize - a.treeSize || b.id - a.id)) {
      const copySeq = this.copies.get(cp.id);
      if (copySeq !== undefined && copySeq <= vouchedUpTo) continue;
      if (this.signatureProblem(`checkpoint #${cp.id}`, treeHeadOf(cp), cp.signature)) bad.add(cp.id);
      else if (matchedIds.has(cp.id)) vouchedUpTo = Math.max(vouchedUpTo, cp.treeSize);
    }
    return bad;
  }
}

/** Verifies events given in memory or from any iterable (tests, UI uploads). */
export function verifyAuditEvents(
  events: Iterable<AuditEventRow>,
  checkpoints: readonly AuditCheckpointRow[],
  key: AuditPublicKey,
  opts: {
    trustedCheckpoint?: TrustedCheckpoint;
    keySource?: KeySource;
    rotations?: readonly AuditEventRow[];
    anchors?: Anchor[];
    requireAnchor?: boolean;
  } = {},
): VerifyResult {
  const rotations =
    opts.rotations ?? (Array.isArray(events) ? (events as AuditEventRow[]).filter((e) => e.action === KEY_ROTATE_ACTION) : []);
  const v = new AuditLogVerifier(key, opts.keySource ?? "given", checkpoints, opts.trustedCheckpoint, rotations, opts.anchors);
  v.setRequireAnchor(opts.requireAnchor ?? false);
  for (const row of events) if (!v.add(row)) break;
  return v.finish();
}

export function chooseTrustedKey(
  opts: VerifyOptions,
  fallback: () => AuditPublicKey,
  fallbackSource: KeySource,
): { key: AuditPublicKey; source: KeySource } {
  if (opts.publicKeyPem) return { key: parseAuditPublicKey(opts.publicKeyPem), source: "given" };
  if (opts.trustedCheckpoint?.publicKeyPem)
    return { key: parseAuditPublicKey(opts.trustedCheckpoint.publicKeyPem), source: "trusted checkpoint" };
  return { key: fallback(), source: fallbackSource };
}

export { type VerifyDatabaseOptions, verifyDatabase, verifyDatabaseSync } from "./verify-database";
