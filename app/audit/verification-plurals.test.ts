/**
 * The Audit page's verification result reads as English for any count: "1 signed checkpoint", "2 signed checkpoints",
 * never "1 signed checkpoints" (the headline and the Chain row), and "1 problem" instead of "1 problem(s)".
 */
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import type { VerifySummary } from "@/server/audit/verify-summary";
import { VerificationResult } from "./verification-panel";

function summary(events: number, checkpoints: number, contentProblems = 0): VerifySummary {
  const problem = { entityType: "run", entityId: "1", field: "config", recorded: null, found: null, seq: 3, message: "changed" };
  return {
    ok: contentProblems === 0,
    eventsChecked: events,
    checkpointsChecked: checkpoints,
    firstBadSeq: null,
    problem: null,
    keyFingerprint: "SHA256:" + "a".repeat(64),
    unsignedTail: 0,
    durationMs: 12,
    levels: {
      chain: { ok: true, events, checkpoints, problem: null },
      content: {
        ok: contentProblems === 0,
        checked: 1,
        problems: Array.from({ length: contentProblems }, () => problem) as never,
        problemsTotal: contentProblems,
        notCovered: [],
      },
      anchor: { anchored: false, treeSize: 0, by: [], problem: null },
    },
  };
}

/** The result as the page shows it, as text (tags dropped, entities decoded as the browser would). */
function shown(s: VerifySummary): string {
  const html = renderToStaticMarkup(
    createElement(VerificationResult, { shown: { summary: s, at: "2026-12-06T00:00:00Z", by: "Alex Auditor" } }),
  );
  return html
    .replace(/<[^>]+>/g, "")
    .replace(/&#x27;|&apos;/g, "'")
    .replace(/&amp;/g, "&");
}

describe("verification result wording", () => {
  it("says '1 event and 1 signed checkpoint', in the headline and in the Chain row", () => {
    const text = shown(summary(1, 1));
    expect(text).toContain("Intact — 1 event and 1 signed checkpoint checked in 12 ms");
    expect(text).toContain(
      "1 event: every event's hash and chain link recomputed; 1 signed checkpoint: signature and Merkle root checked.",
    );
    expect(text).toContain("1 recorded fact (configs");
    expect(text).not.toMatch(/\b1 (events|signed checkpoints|recorded facts)\b/);
  });
  it("keeps the plural for other counts, 0 included", () => {
    const text = shown(summary(1234, 0));
    expect(text).toContain("1,234 events and 0 signed checkpoints checked");
    expect(text).toContain("1,234 events: every event's hash and chain link recomputed; 0 signed checkpoints: signature");
  });
  it("counts content problems without '(s)'", () => {
    expect(shown(summary(5, 2, 1))).toContain("1 problem among 1 fact compared");
    expect(shown(summary(5, 2, 2))).toContain("2 problems among 1 fact compared");
  });
});
