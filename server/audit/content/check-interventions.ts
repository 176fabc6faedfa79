/**
 * Content check of run interventions (run_interventions, live piloting). Each row must be named by exactly one
 * run.interventionRequested event whose recorded request hash (and rationale, kind, changes) the row still gives;
 * a row out of "pending" must also be named by exactly one closing event of its status (run.interventionApplied,
 * run.interventionCancelled, run.interventionRejected) whose recorded outcome hash it still gives, and who closed it
 * (the canceller; a rejection's user: none for the server's, the token's user for a script's). The decision an
 * applied intervention created is checked by check-decisions.ts against the same applied event; that it says what
 * the intervention changed (its path, old and new values: applyPendingAt's derivation) is checked here.
 *
 * Invariants: reads only (one raw pass over the small run_interventions table, events by action); a row whose
 * events lie after the verified range is neither missing nor extra.
 */
import type Database from "better-sqlite3";
import { canonicalJson } from "@/contracts/canonical";
import { type ContentChecker, type EventRef, parsePayload } from "./checker";
import { checkCreations, compareActor } from "./creations";
import type { EventSource } from "./ledger-events";
import { interventionOutcomeSha256, interventionRequestSha256, type InterventionRecordRow } from "./intervention-records";
import type { DecisionRow } from "./tables";

export const INTERVENTION_CLOSE_ACTIONS = {
  applied: "run.interventionApplied",
  cancelled: "run.interventionCancelled",
  rejected: "run.interventionRejected",
} as const;

const E = "intervention";

export function loadInterventions(sqlite: Database.Database): Map<number, InterventionRecordRow> {
  const rows = sqlite
    .prepare(
      `SELECT id, run_id AS runId, kind, changes_json AS changesJson, from_checkpoint_id AS fromCheckpointId, rationale,
              requested_by AS requestedBy, requested_at AS requestedAt, status, applied_at_epoch AS appliedAtEpoch,
              applied_at_step AS appliedAtStep, applied_at AS appliedAt, metrics_snapshot_json AS metricsSnapshotJson,
              checkpoint_id AS checkpointId, decision_id AS decisionId, closed_by AS closedBy, closed_at AS closedAt,
              close_reason AS closeReason
         FROM run_interventions`,
    )
    .all() as InterventionRecordRow[];
  return new Map(rows.map((r) => [r.id, r]));
}

/** Canonical text of a JSON column, or the text itself when it does not parse (then it cannot match). */
function canonicalText(text: string | null): string | null {
  if (text === null) return null;
  try {
    return canonicalJson(JSON.parse(text) as unknown);
  } catch {
    return text;
  }
}

export function checkInterventions(
  c: ContentChecker,
  events: EventSource,
  rows: Map<number, InterventionRecordRow>,
  complete: boolean,
  /** The decisions rows (tables.ts), to check that an applied intervention's decision says what it changed. */
  decisions?: Pick<ReadonlyMap<number, DecisionRow>, "get">,
): void {
  checkCreations(c, events, {
    entityType: E,
    action: "run.interventionRequested",
    rows,
    complete,
    check: (r, ev, p) => {
      c.compareFields(E, r.id, ev, p, [
        ["runId", r.runId, "run"],
        ["kind", r.kind, "kind"],
        ["fromCheckpointId", r.fromCheckpointId, "rollback checkpoint"],
        ["rationale", r.rationale, "rationale"],
        ["requestedAt", r.requestedAt, "request time"],
      ]);
      if ("changes" in p)
        c.compare(E, r.id, "changes (path, old value, new value)", canonicalJson(p.changes), canonicalText(r.changesJson), ev.seq);
      c.compare(E, r.id, "request record (kind, changes, rationale, requester, time)", p.sha256, interventionRequestSha256(r), ev.seq);
    },
    always: (r, ev) => compareActor(c, E, r.id, ev, r.requestedBy, "requester"),
  });

  // Closing events: at most one per intervention, of the action its status calls for.
  const closing = new Map<number, EventRef>();
  for (const action of Object.values(INTERVENTION_CLOSE_ACTIONS)) {
    for (const ev of events.byAction(action)) {
      const id = Number(ev.entityId);
      const seen = closing.get(id);
      if (seen) {
        c.problem({
          entityType: E,
          entityId: String(id),
          field: "status",
          recorded: `${seen.action} at seq ${seen.seq}`,
          found: `${ev.action} at seq ${ev.seq}`,
          seq: ev.seq,
          message: `intervention ${id} left "pending" twice in the ledger (events #${seen.seq} and #${ev.seq})`,
        });
        continue;
      }
      closing.set(id, ev);
      const r = rows.get(id);
      if (!r) {
        if (complete) c.eventWithoutRow(E, id, ev);
        continue;
      }
      const p = parsePayload(c, E, id, ev);
      if (!p) continue;
      c.cover(E, id, ev.seq);
      const expected = Object.entries(INTERVENTION_CLOSE_ACTIONS).find(([, a]) => a === ev.action)![0];
      c.compare(E, id, "status", expected, r.status, ev.seq);
      if (ev.action === INTERVENTION_CLOSE_ACTIONS.applied) {
        c.compareFields(E, id, ev, p, [
          ["epoch", r.appliedAtEpoch, "epoch it took effect"],
          ["step", r.appliedAtStep, "step it took effect"],
          ["appliedAt", r.appliedAt, "time it took effect"],
          ["checkpointId", r.checkpointId, "checkpoint"],
          ["decisionId", r.decisionId, "decision"],
        ]);
        if ("metricsSnapshot" in p)
          c.compare(E, id, "metrics snapshot", canonicalJson(p.metricsSnapshot), canonicalText(r.metricsSnapshotJson), ev.seq);
        const d = r.decisionId === null ? undefined : decisions?.get(r.decisionId);
        if (d && r.kind !== "rollback") checkAppliedDecision(c, r, d, ev.seq);
      } else {
        c.compareFields(E, id, ev, p, [["closedAt", r.closedAt, "time closed"]]);
        if (ev.action === INTERVENTION_CLOSE_ACTIONS.cancelled) {
          c.compareFields(E, id, ev, p, [["rationale", r.closeReason, "cancellation rationale"]]);
          compareActor(c, E, id, ev, r.closedBy ?? -1, "cancelled by");
        } else {
          c.compareFields(E, id, ev, p, [["reason", r.closeReason, "rejection reason"]]);
          // Rejected by the server (no user: closedBy empty, a system event), or by a script through the tracking
          // API (the token's user, who closed the row).
          c.compare(E, id, "rejected by", ev.actorId, r.closedBy, ev.seq);
        }
      }
      c.compare(
        E,
        id,
        "outcome record (status, epoch, step, snapshot, checkpoint, decision)",
        p.sha256,
        interventionOutcomeSha256(r),
        ev.seq,
      );
    }
  }
  // A row out of "pending" with no closing event: its outcome was written outside the app.
  for (const r of rows.values()) {
    if (r.status === "pending" || closing.has(r.id)) continue;
    const action = INTERVENTION_CLOSE_ACTIONS[r.status as keyof typeof INTERVENTION_CLOSE_ACTIONS] ?? "closing";
    if (events.laterEntityIds(action).has(String(r.id))) continue;
    c.problem({
      entityType: E,
      entityId: String(r.id),
      field: "status",
      recorded: "pending",
      found: r.status,
      seq: null,
      message: `intervention ${r.id} is ${r.status}, but the ledger has no ${action} event for it (changed outside the app?)`,
    });
  }
}

/**
 * The decision an applied intervention (other than a rollback, whose decision names its branch) created says what it
 * changed, as applyPendingAt (server/runs/pilot.ts) derives it from the row's changes: its path is the kind then the
 * changed paths ("pause"; a set: the paths only, e.g. a script run's param "learning_rate"), its old and new values
 * the changes' by path, the requester its author, the rationale the request's. A decision rewritten with its hash
 * fails check-decisions.ts; this one fails when the two records disagree with each other.
 */
function checkAppliedDecision(c: ContentChecker, r: InterventionRecordRow, d: DecisionRow, seq: number): void {
  let changes: { path: string; oldValue: unknown; newValue: unknown }[];
  try {
    changes = JSON.parse(r.changesJson) as typeof changes;
    if (!Array.isArray(changes)) return;
  } catch {
    return; // the request hash check reports the row
  }
  const paths = changes.map((ch) => ch.path);
  const expectedPath = (r.kind === "set" ? paths : [r.kind, ...paths]).join(", ");
  const values = (k: "oldValue" | "newValue") =>
    changes.length ? canonicalJson(Object.fromEntries(changes.map((ch) => [ch.path, ch[k]]))) : null;
  c.compare(E, r.id, "decision path (what it changed)", expectedPath, d.path, seq);
  c.compare(E, r.id, "decision old values (from)", values("oldValue"), canonicalText(d.oldValueJson), seq);
  c.compare(E, r.id, "decision new values (to)", values("newValue"), canonicalText(d.newValueJson), seq);
  c.compare(E, r.id, "decision run", r.runId, d.runId, seq);
  c.compare(E, r.id, "decision author (the requester)", r.requestedBy, d.authorId, seq);
  c.compare(E, r.id, "decision rationale", r.rationale, d.rationale, seq);
}
