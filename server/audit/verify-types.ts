/**
 * Types and pure helpers of audit verification (verify.ts): the result level by level, the options, the tree sizes
 * and range work a verification needs, and the coverage rule. Split from verify.ts to keep each file small;
 * verify.ts re-exports everything here.
 */
import type { AuditEventRow } from "./ledger";
import type { AuditCheckpointRow, TrustedCheckpoint } from "./checkpoints";
import { KEY_ROTATE_ACTION } from "./key-rotation";
import type { Anchor, AnchorKind } from "./anchors";
import type { ContentLevel } from "./content/types";
import { CHECKPOINT_EVERY_MINUTES } from "./checkpoint-policy";
import type { Finding, RangeSpec } from "./verify-range";

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
/** ContentLevel (server/audit/content/types.ts), plus how many artifact files were re-hashed when known. */
export type ContentResult = ContentLevel & { files?: number };
export type VerifyLevels = { chain: ChainLevel; content: ContentResult; anchor: AnchorLevel; triggers?: TriggerLevel };

export const CONTENT_NOT_RUN: ContentLevel = {
  ok: true,
  checked: 0,
  problems: [],
  notCovered: [],
  skipped: "content verification not run",
};

/** Slack on top of CHECKPOINT_EVERY_MINUTES: the web server's policy timer runs once a minute. */
export const COVERAGE_GRACE_MINUTES = 2;

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
  /** Facts worth showing that are not failures: unsigned tail, where the key came from, what no anchor means. */
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
  /** Trusted witness verifier keys (C2SP vkey text): their stored cosignatures become anchors (server/audit/witness). */
  witnessKeys?: string[];
  /** Fail (ok: false) when nothing outside the log vouches for it. */
  requireAnchor?: boolean;
  /** Recompute tables and files against the ledger (default true where the data is at hand). */
  content?: boolean;
};

/** Tree sizes whose root a verification needs: every checkpoint row's and every anchor's. */
export function neededTreeSizes(
  checkpoints: readonly Pick<AuditCheckpointRow, "treeSize">[],
  anchors: readonly Pick<Anchor, "treeSize">[],
  trusted?: TrustedCheckpoint,
): number[] {
  const sizes = new Set<number>([...checkpoints.map((c) => c.treeSize), ...anchors.map((a) => a.treeSize)]);
  if (trusted) sizes.add(trusted.treeHead.treeSize);
  return [...sizes].filter((s) => Number.isInteger(s) && s > 0).sort((a, b) => a - b);
}

/** The range work a verification of these checkpoints needs, for seqs from..to (verify-range.ts). */
export function rangeSpecFor(
  checkpoints: readonly AuditCheckpointRow[],
  rotations: readonly AuditEventRow[],
  sizes: readonly number[],
  from: number,
  to: number,
): Omit<RangeSpec, "prevChainHex"> {
  return {
    from,
    to,
    sizes: sizes.filter((s) => s >= from && s <= to),
    checkpoints: checkpoints.map((c) => ({ id: c.id, treeSize: c.treeSize, rootHash: c.rootHash, signature: c.signature, at: c.at })),
    coveredUpTo: checkpoints.reduce((m, c) => Math.max(m, c.treeSize), 0),
    watchActions: [KEY_ROTATE_ACTION],
    watchSeqs: rotations.map((r) => r.seq),
  };
}

/** One entry per anchor (kind + name), with the largest tree size it matched (a witness cosigns many checkpoints). */
export function largestPerAnchor(list: AnchorLevel["by"]): AnchorLevel["by"] {
  const best = new Map<string, AnchorLevel["by"][number]>();
  for (const b of list) {
    const k = `${b.kind}\u0000${b.name}`;
    if ((best.get(k)?.treeSize ?? -1) < b.treeSize) best.set(k, b);
  }
  return [...best.values()].sort((a, b) => b.treeSize - a.treeSize);
}

/**
 * Events more than the checkpoint interval (+ grace) older than the newest event, but covered by no checkpoint:
 * every writer of the app signs within the interval, so their absence means checkpoints were deleted.
 * Measured against the newest event's time, not the clock, so a server that was simply stopped does not fail.
 */
export function coverageProblem(newest: [string, number] | null, oldestUncovered: [string, number] | null): Finding | null {
  if (!newest || !oldestUncovered) return null;
  const limitMinutes = CHECKPOINT_EVERY_MINUTES + COVERAGE_GRACE_MINUTES;
  const gapMs = Date.parse(newest[0]) - Date.parse(oldestUncovered[0]);
  if (!(gapMs > limitMinutes * 60_000)) return null;
  const [at, seq] = oldestUncovered;
  return {
    at: seq,
    badSeq: null,
    message:
      `events from seq ${seq} (${at}) on are covered by no checkpoint, yet ${Math.round(gapMs / 60_000)} minutes older than the newest event ` +
      `(seq ${newest[1]}, ${newest[0]}); the app signs a checkpoint at least every ${CHECKPOINT_EVERY_MINUTES} minutes (checkpoints deleted?)`,
  };
}
