/**
 * The summary of one verification that is recorded as the payload of an "audit.verify" event and shown on the
 * Audit page: the headline figures plus the result per level (chain, content, anchor, triggers).
 *
 * Invariant: a summary is bounded. Lists are capped (the full count is kept next to them), strings are cut, and
 * the canonical JSON of the whole summary never exceeds VERIFY_SUMMARY_MAX_BYTES, whatever a damaged ledger
 * produces, so recording a verification cannot grow the append-only ledger without bound.
 * Older "audit.verify" events have no `levels` (and no `problems`): readers must treat both as optional.
 */
import { canonicalJson } from "@/contracts/canonical";
import type { VerifyResult } from "./verify";
import type { ContentProblem } from "./content/types";

export const VERIFY_SUMMARY_MAX_BYTES = 16_384;
const MAX_PROBLEMS = 10;
const MAX_CONTENT_PROBLEMS = 25;
const MAX_LIST = 20;

export type VerifySummaryLevels = {
  chain: { ok: boolean; events: number; checkpoints: number; problem: string | null };
  content: { ok: boolean; checked: number; problems: ContentProblem[]; problemsTotal: number; notCovered: string[]; skipped?: string };
  anchor: { anchored: boolean; treeSize: number; by: { kind: string; name: string; treeSize: number }[]; problem: string | null };
  triggers?: { ok: boolean; missing: string[]; altered: string[] };
};

export type VerifySummary = {
  ok: boolean;
  eventsChecked: number;
  checkpointsChecked: number;
  firstBadSeq: number | null;
  problem: string | null;
  problems?: string[];
  problemsTotal?: number;
  notes?: string[];
  keyFingerprint: string;
  /** Which key was trusted, in words (for "Verify now": the server's current public key). */
  trustedKey?: string;
  unsignedTail: number;
  durationMs: number;
  anchored?: boolean;
  levels?: VerifySummaryLevels;
};

const cut = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
const cutOrNull = (s: string | null | undefined, max: number) => (s == null ? null : cut(String(s), max));
const cutList = (xs: readonly string[] | undefined, n: number, max: number) => (xs ?? []).slice(0, n).map((s) => cut(String(s), max));

function contentProblem(p: ContentProblem): ContentProblem {
  return {
    entityType: cut(String(p.entityType), 60),
    entityId: cut(String(p.entityId), 80),
    field: cut(String(p.field), 80),
    recorded: cutOrNull(p.recorded, 100),
    found: cutOrNull(p.found, 100),
    seq: typeof p.seq === "number" ? p.seq : null,
    message: cut(String(p.message), 240),
  };
}

/** The bounded summary of a verification result; `trustedKey` says in words which key was trusted. */
export function summarizeVerifyResult(r: VerifyResult, trustedKey: string): VerifySummary {
  const levels: VerifySummaryLevels | undefined = r.levels
    ? {
        chain: { ...r.levels.chain, problem: cutOrNull(r.levels.chain.problem, 300) },
        content: {
          ok: r.levels.content.ok,
          checked: r.levels.content.checked,
          problems: r.levels.content.problems.slice(0, MAX_CONTENT_PROBLEMS).map(contentProblem),
          problemsTotal: r.levels.content.problems.length,
          notCovered: cutList(r.levels.content.notCovered, MAX_LIST, 240),
          ...(r.levels.content.skipped ? { skipped: cut(r.levels.content.skipped, 240) } : {}),
        },
        anchor: {
          anchored: r.levels.anchor.anchored,
          treeSize: r.levels.anchor.treeSize,
          by: r.levels.anchor.by.slice(0, MAX_PROBLEMS).map((b) => ({ kind: b.kind, name: cut(b.name, 120), treeSize: b.treeSize })),
          problem: cutOrNull(r.levels.anchor.problem, 300),
        },
        ...(r.levels.triggers
          ? {
              triggers: {
                ok: r.levels.triggers.ok,
                missing: cutList(r.levels.triggers.missing, MAX_LIST, 80),
                altered: cutList(r.levels.triggers.altered, MAX_LIST, 80),
              },
            }
          : {}),
      }
    : undefined;
  const summary: VerifySummary = {
    ok: r.ok,
    eventsChecked: r.eventsChecked,
    checkpointsChecked: r.checkpointsChecked,
    firstBadSeq: r.firstBadSeq,
    problem: cutOrNull(r.problem, 300),
    problems: cutList(r.problems, MAX_PROBLEMS, 300),
    problemsTotal: r.problems.length,
    notes: cutList(r.notes, MAX_PROBLEMS, 300),
    keyFingerprint: r.keyFingerprint,
    trustedKey: cut(trustedKey, 200),
    unsignedTail: r.unsignedTail,
    durationMs: r.durationMs,
    anchored: r.levels?.anchor.anchored ?? false,
    ...(levels ? { levels } : {}),
  };
  // Last resort for the byte bound: drop detail lists, longest first (the counts stay).
  while (canonicalJson(summary).length > VERIFY_SUMMARY_MAX_BYTES) {
    const content = summary.levels?.content;
    if (content && content.problems.length > 0) content.problems.pop();
    else if (content && content.notCovered.length > 0) content.notCovered.pop();
    else if (summary.problems && summary.problems.length > 0) summary.problems.pop();
    else if (summary.notes && summary.notes.length > 0) summary.notes.pop();
    else break;
  }
  return summary;
}
