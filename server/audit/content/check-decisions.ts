/**
 * Content check of decisions. Initial and change decisions are recorded inside their run's run.create event
 * (payload.decisions: id, path, kind and the sha256 of the whole row); notes and corrections by decision.create /
 * decision.correct (rationale by value, plus the row's sha256). Each row must be named by exactly one event.
 *
 * Older run.create events list only path and kind: their decisions are matched to the run's first decision rows
 * in id order, and their rationale, old/new values and time are reported as not covered.
 *
 * Decisions of kind "intervention" (a pilot's change taking effect while the run trains) are named by the
 * run.interventionApplied event of their intervention (payload decisionId and decisionSha256 of the whole row).
 *
 * Decisions of kind "param" (a param a script logged through the tracking API, server/mlflow/logging.ts) are named
 * by the run.log event of their batch (payload decisions: id, path, kind, sha256 of the whole row).
 */
import { decisionRecordSha256 } from "./records";
import type { ContentChecker, EventRef } from "./checker";
import type { RunDecisions, RunLedger } from "./check-runs";
import { checkCreations, compareActor } from "./creations";
import { RowMatchedEvent } from "./matched-events";
import type { EventSource } from "./ledger-events";
import type { DecisionRow, Tables } from "./tables";

type DecisionRef = { id?: unknown; path?: unknown; kind?: unknown; sha256?: unknown };

function compareRecord(c: ContentChecker, d: DecisionRow, ev: EventRef, recorded: unknown): void {
  c.compare("decision", d.id, "record (rationale, old/new values, author, time)", recorded, decisionRecordSha256(d), ev.seq);
}

const j = JSON.stringify;

function creatingAction(d: DecisionRow): string {
  if (d.kind === "note" || d.kind === "correction") return "decision.create";
  if (d.kind === "param") return "run.log (of its batch)";
  return d.kind === "intervention" ? "run.interventionApplied (of its intervention)" : "run.create (of its run)";
}

/** The decision.create / decision.correct payload text the row calls for (current format). */
export function noteText(d: DecisionRow): string {
  return `{"correctsDecisionId":${d.correctsDecisionId},"createdAt":${j(d.createdAt)},"kind":${j(d.kind)},"path":${j(d.path)},"rationale":${j(d.rationale)},"runId":${d.runId},"sha256":"${decisionRecordSha256(d)}"}`;
}

export function checkDecisions(
  c: ContentChecker,
  events: EventSource,
  t: Tables,
  runCreates: RunLedger["createEvents"],
  withRun: RunDecisions,
): void {
  const claimed = new Set<number>();
  // Decisions created with their run (a run.create that matched its row's text exactly covered them all).
  for (const [runId, { ev, payload }] of runCreates) {
    const ofRun = withRun.get(runId) ?? [];
    if (payload === null) {
      for (const d of ofRun) {
        claimed.add(d.id);
        c.cover("decision", d.id, ev.seq);
        c.checked++;
      }
      continue;
    }
    const refs = Array.isArray(payload.decisions) ? (payload.decisions as DecisionRef[]) : [];
    refs.forEach((ref, i) => {
      const hasId = typeof ref.id === "number";
      const d = hasId ? t.decisions.get(ref.id as number) : ofRun[i];
      const label = hasId ? String(ref.id) : `#${i + 1} of run ${runId}`;
      if (!d) {
        if (t.complete)
          c.problem({
            entityType: "decision",
            entityId: label,
            field: "row",
            recorded: `${String(ref.kind)} ${String(ref.path)}`,
            found: null,
            seq: ev.seq,
            message: `decision ${label} (${String(ref.kind)} "${String(ref.path)}") was recorded by run.create of run ${runId} (event #${ev.seq}) but its row is missing (deleted?)`,
          });
        return;
      }
      claimed.add(d.id);
      c.cover("decision", d.id, ev.seq);
      c.checked++;
      c.compare("decision", d.id, "run", runId, d.runId, ev.seq);
      c.compare("decision", d.id, "path", ref.path, d.path, ev.seq);
      c.compare("decision", d.id, "kind", ref.kind, d.kind, ev.seq);
      compareActor(c, "decision", d.id, ev, d.authorId);
      if (typeof ref.sha256 === "string") compareRecord(c, d, ev, ref.sha256);
      else c.gap("run.create", "decision rationale, old/new values and time", ev.seq, "decision", d.id);
    });
  }
  // Notes and corrections.
  for (const action of ["decision.create", "decision.correct"]) {
    checkCreations(c, events, {
      entityType: "decision",
      action,
      rows: t.decisions,
      complete: false, // events without rows and rows without events are judged below, across all three actions
      judgeOrphans: false,
      // A RowMatchedEvent passed this same test when the log was read (bulk-events.ts).
      fast: (d, ev) => ev instanceof RowMatchedEvent || ev.payload === noteText(d),
      always: (d, ev) => {
        claimed.add(d.id);
        compareActor(c, "decision", d.id, ev, d.authorId);
      },
      check: (d, ev, p) => {
        c.compareFields("decision", d.id, ev, p, [
          ["runId", d.runId, "run"],
          ["kind", d.kind, "kind"],
          ["path", d.path, "path"],
          ["correctsDecisionId", d.correctsDecisionId, "corrected decision"],
          ["rationale", d.rationale, "rationale"],
          ["createdAt", d.createdAt, "decision time"],
        ]);
        if ("sha256" in p) compareRecord(c, d, ev, p.sha256);
        else c.gap(ev.action, "decision old/new values", ev.seq, "decision", d.id);
      },
    });
  }
  // Decisions of applied interventions (live piloting): named by run.interventionApplied (decisionId, decisionSha256).
  for (const ev of events.byAction("run.interventionApplied")) {
    let p: { decisionId?: unknown; decisionSha256?: unknown; runId?: unknown };
    try {
      p = JSON.parse(ev.payload) as typeof p;
    } catch {
      continue; // check-interventions.ts reports the payload
    }
    if (typeof p.decisionId !== "number") continue;
    const d = t.decisions.get(p.decisionId);
    if (!d) {
      if (t.complete) c.eventWithoutRow("decision", p.decisionId, ev);
      continue;
    }
    claimed.add(d.id);
    c.cover("decision", d.id, ev.seq);
    c.checked++;
    c.compare("decision", d.id, "run", p.runId, d.runId, ev.seq);
    compareActor(c, "decision", d.id, ev, d.authorId);
    compareRecord(c, d, ev, p.decisionSha256);
  }
  // Params logged through the tracking API: named by their batch's run.log event.
  for (const ev of events.byAction("run.log")) {
    let p: { decisions?: unknown };
    try {
      p = JSON.parse(ev.payload) as typeof p;
    } catch {
      continue; // check-api.ts reports the payload
    }
    if (!Array.isArray(p.decisions)) continue;
    for (const ref of p.decisions as DecisionRef[]) {
      if (typeof ref.id !== "number") continue;
      const d = t.decisions.get(ref.id);
      if (!d) {
        if (t.complete) c.eventWithoutRow("decision", ref.id, ev);
        continue;
      }
      claimed.add(d.id);
      c.cover("decision", d.id, ev.seq);
      c.checked++;
      c.compare("decision", d.id, "run", Number(ev.entityId), d.runId, ev.seq);
      c.compare("decision", d.id, "path", ref.path, d.path, ev.seq);
      c.compare("decision", d.id, "kind", ref.kind, d.kind, ev.seq);
      compareActor(c, "decision", d.id, ev, d.authorId);
      compareRecord(c, d, ev, ref.sha256);
    }
  }
  if (!t.complete) {
    for (const d of t.decisions.values()) if (!claimed.has(d.id)) c.rowWithoutEvent("decision", d.id, creatingAction(d));
    return;
  }
  const noteIds = new Set([...events.byAction("decision.create"), ...events.byAction("decision.correct")].map((e) => Number(e.entityId)));
  for (const ev of [...events.byAction("decision.create"), ...events.byAction("decision.correct")]) {
    if (!t.decisions.has(Number(ev.entityId))) c.eventWithoutRow("decision", ev.entityId, ev);
  }
  let later: Set<string> | null = null;
  for (const d of t.decisions.values()) {
    if (claimed.has(d.id) || noteIds.has(d.id)) continue;
    later ??= new Set([...events.laterEntityIds("decision.create"), ...events.laterEntityIds("decision.correct")]);
    if (later.has(String(d.id))) continue;
    if (d.kind === "intervention" && events.laterEntityIds("run.interventionApplied").size > 0) continue;
    if (d.kind === "param" && events.laterEntityIds("run.log").has(String(d.runId))) continue;
    if (!runCreates.has(d.runId) && events.laterEntityIds("run.create").has(String(d.runId))) continue;
    c.rowWithoutEvent("decision", d.id, creatingAction(d));
  }
}
